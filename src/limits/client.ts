import { keyNotAfter } from "../auth/api-key";
import type { Config } from "../config";
import type { KeyRecord } from "../db/keys";
import type { Env } from "../env";
import { GatewayError } from "../errors";
import { LEASE_TTL_MS } from "./lease";
import { limiterNames } from "./names";
import type { CreditAnswer, CreditSetting, CreditTarget, CreditView, OwnerLimits, RateLimiter } from "./rate-limiter";
import type { CredentialState, LimitCheck, LimitDecision } from "./windows";

/**
 * Calls a credential's RateLimiter object, applying RATE_LIMIT_FAILURE_MODE
 * when it fails. One RPC per request: counters and revocation state together.
 */
export type LimitResult = LimitDecision | { outcome: "unenforced" };

/** All the limiter needs from the Worker's bindings. */
export type LimiterEnv = Pick<Env, "RATE_LIMITER">;

/** The object of that name (limits/names.ts). */
export function limiterStub(env: LimiterEnv, name: string): DurableObjectStub<RateLimiter> {
  return env.RATE_LIMITER.getByName(name);
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

export async function checkLimits(env: LimiterEnv, config: Config, name: string, check: LimitCheck): Promise<LimitResult> {
  try {
    try {
      return await limiterStub(env, name).check(check);
    } catch (error) {
      if (!shouldRetry(error)) throw error;
      // A fresh stub: a broken one stays broken. The object may have admitted the first attempt.
      return await limiterStub(env, name).check({ ...check, retry: true });
    }
  } catch (error) {
    const context = { event: "rate_limiter_failed", limiter: name, failureMode: config.rateLimitFailureMode };
    if (config.rateLimitFailureMode === "open") {
      // Admitted anyway: no error answer will log it, so this is its one line.
      console.error(JSON.stringify({ ...context, error: String(error) }));
      return { outcome: "unenforced" };
    }
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", { message: "Rate limiter is unavailable", cause: error, context });
  }
}

/**
 * Tells a credential's object its new state. Every request consults that
 * object, so this is what makes a revocation or deactivation take effect on
 * the very next request, in every isolate, whatever their key caches hold.
 * Throws when the object cannot be reached: the caller must not report success.
 */
export async function setCredentialState(env: LimiterEnv, name: string, state: CredentialState): Promise<void> {
  await limiterStub(env, name).setState(state);
}

/**
 * The state a key's object must hold for a key row: its status, its expiry or
 * rotation grace end, and the row's version (the object keeps the newest).
 */
export function credentialStateOf(key: Pick<KeyRecord, "status" | "expiresAt" | "graceUntil"> & { version?: number }): CredentialState {
  return { status: key.status, notAfter: keyNotAfter(key), ...(key.version === undefined ? {} : { version: key.version }) };
}

/**
 * For the keys API: call after every write to a key row (edit, deactivate,
 * reactivate, revoke, rotate), with the row as written to D1. Both objects a
 * key's calls can count in learn it: its lineage's, and its owner's (where
 * they count while the owner has owner-level limits).
 */
export async function syncKeyState(env: LimiterEnv, key: KeyRecord): Promise<void> {
  const state = credentialStateOf(key);
  const drains = await Promise.all([
    limiterStub(env, limiterNames.key(key.lineageId)).setKeyState(key.id, state),
    ...(key.ownerId === null ? [] : [limiterStub(env, limiterNames.user(key.ownerId)).setKeyState(key.id, state)]),
  ]);
  // A leased key's holders may still admit from grants made before: answer once the last has ended (at most a lease).
  await waitOutLeases(Math.max(...drains));
}

/**
 * Waits until grants the object made have ended: `drainMs` is measured by the
 * object and waited here from its answer (a duration, so no clocks are
 * compared), never more than one lease.
 */
export async function waitOutLeases(drainMs: number): Promise<void> {
  const wait = Math.min(Math.max(0, drainMs), LEASE_TTL_MS);
  if (wait > 0) await scheduler.wait(wait);
}

/**
 * For the admin users API: the user's tokens signed with an older grant
 * version are refused from the next request on. Throws when the object cannot
 * be reached, like setCredentialState.
 */
export async function voidUserTokensBefore(env: LimiterEnv, userId: string, grantVersion: number): Promise<void> {
  await limiterStub(env, limiterNames.user(userId)).raiseMinGrantVersion(grantVersion);
}

/** For the admin users API: a deleted user's tokens are refused from the next request on. */
export async function revokeUserTokens(env: LimiterEnv, userId: string): Promise<void> {
  await setCredentialState(env, limiterNames.user(userId), { status: "revoked", notAfter: null });
}

/**
 * A key lineage's live counts, from where they are kept: its own object, or
 * its owner's while the owner has owner-level limits (the lineage's object says so).
 */
export async function readKeyUsage(env: LimiterEnv, key: Pick<KeyRecord, "lineageId" | "ownerId">) {
  const own = await limiterStub(env, limiterNames.key(key.lineageId)).usage();
  if (!own.movedToOwner || key.ownerId === null) return own;
  return limiterStub(env, limiterNames.user(key.ownerId)).usage(key.lineageId);
}

/**
 * After an admin gave a key to another owner: its lineage counts where the new
 * owner's keys count, in the new owner's object (with the current windows'
 * counts) when they have owner-level limits, else in its own object again. A
 * previous owner's object keeps what it counted.
 */
export async function rehomeLineage(env: LimiterEnv, lineageId: string, newOwner: { id: string; limited: boolean } | null): Promise<void> {
  const lineage = limiterStub(env, limiterNames.key(lineageId));
  if (newOwner?.limited) await limiterStub(env, limiterNames.user(newOwner.id)).adoptCounts(await lineage.handOverToOwner(), lineageId);
  else await lineage.adoptCounts({});
}

/**
 * For the admin users API, after the user's owner-level limits were written
 * to D1: the user's object learns them, and each of the user's key lineages
 * moves its counting there (limits set) or back to its own object (limits
 * cleared), with the counts of the current windows.
 */
export async function applyOwnerLimits(env: LimiterEnv, userId: string, limits: OwnerLimits | null, lineageIds: readonly string[]): Promise<void> {
  const owner = limiterStub(env, limiterNames.user(userId));
  const handedBack = await owner.setOwnerLimits(limits);
  const limited = limits !== null && (limits.limitPerMinute !== null || limits.limitPerDay !== null);
  await Promise.all(
    lineageIds.map(async (lineageId) => {
      const lineage = limiterStub(env, limiterNames.key(lineageId));
      if (limited) await owner.adoptCounts(await lineage.handOverToOwner(), lineageId);
      else await lineage.adoptCounts(handedBack[lineageId] ?? {});
    }),
  );
}

/** What an admin does to a balance: read it, set (or remove) it, or add to it. */
export type CreditOperation = { read: true } | { set: CreditSetting | null } | { topUp: number };

function applyCredits(stub: DurableObjectStub<RateLimiter>, target: CreditTarget, operation: CreditOperation): Promise<CreditAnswer> {
  if ("read" in operation) return stub.readCredits(target);
  if ("set" in operation) return stub.setCredits(target, operation.set);
  return stub.topUpCredits(target, operation.topUp);
}

/**
 * A key lineage's credits, where they are kept: its own object, or its
 * owner's while the owner has owner-level limits (the lineage's object
 * answers "moved", as for readKeyUsage). Null: the lineage has no balance.
 */
export async function keyCredits(env: LimiterEnv, key: Pick<KeyRecord, "lineageId" | "ownerId">, operation: CreditOperation): Promise<CreditView | null> {
  const own = await applyCredits(limiterStub(env, limiterNames.key(key.lineageId)), {}, operation);
  if (!own.moved) return own.credits;
  const there = key.ownerId === null ? own : await applyCredits(limiterStub(env, limiterNames.user(key.ownerId)), { lineageId: key.lineageId }, operation);
  if (there.moved) throw new Error(`the credits of lineage ${key.lineageId} are in neither object`);
  return there.credits;
}

/** An owner's shared credits, in the user's object (they bind while the owner has owner-level limits). */
export async function ownerCredits(env: LimiterEnv, userId: string, operation: CreditOperation): Promise<CreditView | null> {
  const answer = await applyCredits(limiterStub(env, limiterNames.user(userId)), { owner: true }, operation);
  return answer.moved ? null : answer.credits;
}
