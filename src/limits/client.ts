import type { Config } from "../config";
import type { Env } from "../env";
import { GatewayError } from "../errors";
import type { CredentialState, LimitCheck, LimitDecision } from "./windows";

/**
 * Calls a credential's RateLimiter object, applying RATE_LIMIT_FAILURE_MODE
 * when it fails. One RPC per request: counters and revocation state together.
 */
export type LimitResult = LimitDecision | { outcome: "unenforced" };

function stubFor(env: Env, name: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(name));
}

/**
 * Durable Object errors carry `retryable` and `overloaded` flags. Retrying an
 * overloaded object only adds load; anything else marked retryable is tried
 * once more — safe because check() is idempotent on the request id.
 */
function shouldRetry(error: unknown): boolean {
  const flags = error as { retryable?: boolean; overloaded?: boolean } | null;
  return flags?.retryable === true && flags.overloaded !== true;
}

export async function checkLimits(env: Env, config: Config, name: string, check: LimitCheck): Promise<LimitResult> {
  try {
    try {
      return await stubFor(env, name).check(check);
    } catch (error) {
      if (!shouldRetry(error)) throw error;
      // A fresh stub: a broken one stays broken.
      return await stubFor(env, name).check(check);
    }
  } catch (error) {
    console.error(JSON.stringify({ event: "rate_limiter_failed", limiter: name, error: String(error) }));
    if (config.rateLimitFailureMode === "open") return { outcome: "unenforced" };
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", { message: "Rate limiter is unavailable" });
  }
}

/** Tells a credential's object its new state (revocation, deactivation, rotation grace). */
export async function setCredentialState(env: Env, name: string, state: CredentialState): Promise<void> {
  await stubFor(env, name).setState(state);
}

export async function readUsage(env: Env, name: string) {
  return stubFor(env, name).usage();
}
