import { parseIp } from "../auth/ip-allowlist";
import type { Config } from "../config";
import { GatewayError, isGatewayError } from "../errors";
import { limiterStub, type LimiterEnv } from "./client";

/**
 * Failed authentications per client address (SPEC section 5). Each address
 * has a RateLimiter object (`ip:<address>`) counting its failures per calendar
 * minute; past AUTH_FAILURE_LIMIT_PER_MINUTE the object says "throttled until
 * the minute ends", and this isolate remembers it, so every further request
 * from that address is answered 429 from memory: no D1 lookup, no object call.
 *
 * Limitation: the memory is per isolate. An isolate that has not itself
 * recorded a failure past the limit lets one more attempt through (which it
 * counts, learning the throttle) before refusing that address too.
 */
export const THROTTLE_MEMORY_MAX_ENTRIES = 10_000;

/** Address key → epoch ms until which it is throttled. Insertion-ordered, so the oldest entry is dropped first. */
const throttledUntil = new Map<string, number>();

/**
 * The throttle name (and object name) for a client address: IPv4 as is, IPv6 by its /64 (one
 * subscriber usually holds a whole /64, so single addresses would be free to
 * rotate). undefined when there is no usable address (never on Cloudflare's
 * edge, which always sets CF-Connecting-IP): such calls are not throttled.
 */
export function throttleName(ip: string | null): string | undefined {
  const address = ip === null ? undefined : parseIp(ip.trim());
  if (address === undefined) return undefined;
  if (address >> 32n === 0xffffn) {
    const v4 = Number(address & 0xffffffffn);
    return `ip:${[24, 16, 8, 0].map((shift) => (v4 >>> shift) & 0xff).join(".")}`;
  }
  const groups = [112n, 96n, 80n, 64n].map((shift) => ((address >> shift) & 0xffffn).toString(16));
  return `ip:${groups.join(":")}::/64`;
}

/**
 * Throws 429 AUTH_THROTTLED when this isolate knows the address is throttled.
 * Memory only, by design. Takes the same arguments as recordAuthFailure so
 * callers guard and record with one triple.
 */
export function assertNotThrottled(_env: LimiterEnv, _config: Config, ip: string | null, now = Date.now()): void {
  if (throttledUntil.size === 0) return; // the usual case: nothing to parse the address for
  assertNameNotThrottled(throttleName(ip), now);
}

/** The same throttle under a name that is not an address (POST /auth/login: `email:<lowercased>`). */
export function assertNameNotThrottled(name: string | undefined, now = Date.now()): void {
  if (name === undefined) return;
  const until = throttledUntil.get(name);
  if (until === undefined) return;
  if (until <= now) {
    throttledUntil.delete(name);
    return;
  }
  throw new GatewayError("AUTH_THROTTLED", { headers: { "Retry-After": String(Math.max(1, Math.ceil((until - now) / 1000))) } });
}

/** Counts one failed authentication for the address. */
export async function recordAuthFailure(env: LimiterEnv, config: Config, ip: string | null): Promise<void> {
  await recordNamedFailure(env, config, throttleName(ip));
}

/**
 * Counts one failed authentication under any throttle name (an address's, or
 * `email:<lowercased>` for POST /auth/login). A failure to count is logged,
 * never turned into another answer: the client still gets its 401.
 */
export async function recordNamedFailure(env: LimiterEnv, config: Config, name: string | undefined): Promise<void> {
  if (name === undefined) return;
  try {
    const tally = await limiterStub(env, name).recordAuthFailure(config.authFailureLimitPerMinute);
    if (tally.throttledUntil !== null) remember(name, tally.throttledUntil);
  } catch (error) {
    console.error(JSON.stringify({ event: "auth_failure_not_counted", limiter: name, error: String(error) }));
  }
}

/**
 * A failed authentication: a 401 from credential, key, JWT or password
 * verification. A request without any credential is not a guess, so
 * AUTH_MISSING does not count; 403s (authenticated but refused) and 503s
 * (storage down, credential not judged) are not failures of the caller's credential.
 */
export function isAuthFailure(error: unknown): boolean {
  return isGatewayError(error) && error.status === 401 && error.code !== "AUTH_MISSING";
}

/** Runs an authentication step, counting it against the address when it fails. */
export async function recordingAuthFailures<T>(env: LimiterEnv, config: Config, ip: string | null, attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (error) {
    if (isAuthFailure(error)) await recordAuthFailure(env, config, ip);
    throw error;
  }
}

function remember(name: string, until: number): void {
  throttledUntil.delete(name);
  throttledUntil.set(name, until);
  if (throttledUntil.size > THROTTLE_MEMORY_MAX_ENTRIES) throttledUntil.delete(throttledUntil.keys().next().value!);
}
