/**
 * Fixed, UTC-aligned rate-limit windows, the decision the limiter returns, and
 * the response headers that describe it. Pure: the clock is an argument.
 */
import type { CreditState } from "./credits";

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

export interface CredentialState {
  status: "active" | "inactive" | "revoked";
  /** Epoch ms from which the credential is expired (expiry or end of a rotation's grace); null = never. */
  notAfter: number | null;
  /** An API key's row version: the object keeps the newest state it was told, whatever order the writes arrive in. */
  version?: number;
}

export interface LimitCheck {
  /** Idempotency: a retried call with the same id is never counted twice. */
  requestId: string;
  /**
   * Set on a retry. Request ids are made fresh for every request, so only a
   * retry can meet an id already admitted: first attempts skip the lookup.
   */
  retry?: boolean;
  /** Recorded so the object can copy usage to D1 under the right id. */
  credentialId?: string;
  limitPerMinute: number;
  limitPerDay: number;
  /** false = only report (for a call refused after authentication). */
  consume: boolean;
  /**
   * A keygate user's token: the grant version it was signed with (its `gv`).
   * Below the object's minimum, the call is "revoked" whatever `consume` says.
   */
  grantVersion?: number;
  /** An API key's id: its state is kept per key, since a rotation's keys share one object. */
  keyId?: string;
  /**
   * Set when the call counts in its owner's object (the owner has owner-level
   * limits): the key's lineage, whose windows that object keeps beside the owner's.
   */
  lineageId?: string;
  /** The other object answered "moved": this object counts the call whatever it holds, so a move never loops. */
  redirected?: boolean;
  /** Credits the call costs (its product's cost rule; default 1). Windows count calls, whatever their cost. */
  cost?: number;
  /** The least balance a call needs beyond its cost (a metered product's reserve: usage is debited afterwards). */
  creditReserve?: number;
}

/**
 * Something an admission or a debit made happen, for the usage-event
 * webhooks: a crossing, so it happens once per subject and period. `scope`
 * says whose: the call's own credential (its key lineage) or its owner.
 */
export interface LimitEvent {
  type: "credits.low" | "credits.exhausted" | "quota.daily_exhausted";
  scope: "own" | "owner";
  /** A credits epoch (credits.*), or the UTC day (quota.daily_exhausted). */
  period: string;
  /** Plain values only: it crosses the RPC boundary. */
  data: Record<string, string | number | null>;
}

export interface WindowState {
  limit: number;
  used: number;
  remaining: number;
  /** Seconds until this window resets (at least 1). */
  resetSeconds: number;
}

export interface WindowCounts {
  minute: WindowState;
  day: WindowState;
}

/** An owner's shared windows: only those the admin set. */
export interface OwnerWindowCounts {
  minute?: WindowState;
  day?: WindowState;
}

/**
 * What the limiter says about one call. Credential-state refusals carry no
 * counts: the caller is not authenticated. "moved": the call counts in the
 * other object (its owner's, or its lineage's own) since its key row was cached.
 */
export type LimitDecision =
  | ({ outcome: "admitted" | "peek" | "rate_limited" | "daily_quota_exceeded" | "credits_exhausted" } & WindowCounts &
      CreditCounts & {
        owner?: OwnerWindowCounts;
        events?: LimitEvent[];
        /** Leased mode: the counts are an estimate (src/limits/leased-admission.ts); the policies say so. */
        estimated?: boolean;
      })
  | { outcome: "inactive" | "revoked" | "expired" | "moved" };

/** The balances a call draws on, when it draws on any: its own (key lineage) and its owner's. */
export interface CreditCounts {
  credits?: CreditState;
  ownerCredits?: CreditState;
}

/** The calendar minute and the UTC day containing `now` (epoch ms has no leap seconds, so both are exact). */
export function windowStarts(now: number): { minuteStart: number; dayStart: number } {
  return { minuteStart: now - (now % MINUTE_MS), dayStart: now - (now % DAY_MS) };
}

/** Seconds from `now` until the window of `lengthMs` containing it ends, rounded up, at least 1. */
export function secondsUntilReset(now: number, lengthMs: number): number {
  return Math.max(1, Math.ceil((lengthMs - (now % lengthMs)) / 1000));
}

function windowState(now: number, limit: number, used: number, lengthMs: number): WindowState {
  return { limit, used, remaining: Math.max(0, limit - used), resetSeconds: secondsUntilReset(now, lengthMs) };
}

export function ownerWindowCounts(
  now: number,
  limits: { limitPerMinute: number | null; limitPerDay: number | null },
  minuteUsed: number,
  dayUsed: number,
): OwnerWindowCounts {
  return {
    ...(limits.limitPerMinute === null ? {} : { minute: windowState(now, limits.limitPerMinute, minuteUsed, MINUTE_MS) }),
    ...(limits.limitPerDay === null ? {} : { day: windowState(now, limits.limitPerDay, dayUsed, DAY_MS) }),
  };
}

export function windowCounts(now: number, limits: Pick<LimitCheck, "limitPerMinute" | "limitPerDay">, minuteUsed: number, dayUsed: number): WindowCounts {
  return { minute: windowState(now, limits.limitPerMinute, minuteUsed, MINUTE_MS), day: windowState(now, limits.limitPerDay, dayUsed, DAY_MS) };
}

/** Every header a counted call's answer can carry about its limits (rateLimitHeaders, and X-RateLimit-Enforced when fail-open). */
export const RATE_LIMIT_HEADERS = [
  "X-RateLimit-Limit",
  "X-RateLimit-Remaining",
  "X-RateLimit-Reset",
  "X-RateLimit-Daily-Limit",
  "X-RateLimit-Daily-Remaining",
  "X-RateLimit-Enforced",
  "RateLimit",
  "RateLimit-Policy",
  "X-Credits-Remaining",
] as const;

/** The window with less room left (the owner's, when it binds sooner). */
function tighter(own: WindowState, owner: WindowState | undefined): WindowState {
  return owner && owner.remaining < own.remaining ? owner : own;
}

/** The minute and day windows that bind a call: with owner-level limits, the tighter of each pair (what X-RateLimit-* report). */
export function bindingWindows({ minute, day, owner }: WindowCounts & { owner?: OwnerWindowCounts }): WindowCounts {
  return { minute: tighter(minute, owner?.minute), day: tighter(day, owner?.day) };
}

/**
 * The SPEC's X-RateLimit-* headers, plus the pair from
 * draft-ietf-httpapi-ratelimit-headers (-09 to -11): one named policy per
 * window, `q` quota and `w` window seconds; `r` remaining and `t` seconds to
 * reset. With owner-level limits the X-RateLimit-* headers report the tighter
 * of each pair of windows, and the IETF pair lists every policy.
 */
export function rateLimitHeaders({
  minute: ownMinute,
  day: ownDay,
  owner,
  credits,
  ownerCredits,
  estimated,
}: WindowCounts & CreditCounts & { owner?: OwnerWindowCounts; estimated?: boolean }): Record<string, string> {
  const { minute, day } = bindingWindows({ minute: ownMinute, day: ownDay, owner });
  // Leased mode: each policy carries the boolean parameter `estimate` (RFC 9651): its remaining counts are estimates.
  const mark = estimated ? ";estimate" : "";
  const balances: [name: string, credits: CreditState][] = [
    ...(credits ? [["credits", credits] as [string, CreditState]] : []),
    ...(ownerCredits ? [["owner-credits", ownerCredits] as [string, CreditState]] : []),
  ];
  const binding = bindingCredits(credits, ownerCredits);
  const policies: [name: string, window: WindowState, seconds: number][] = [
    ["minute", ownMinute, MINUTE_MS / 1000],
    ["day", ownDay, DAY_MS / 1000],
    ...(owner?.minute ? [["owner-minute", owner.minute, MINUTE_MS / 1000] as [string, WindowState, number]] : []),
    ...(owner?.day ? [["owner-day", owner.day, DAY_MS / 1000] as [string, WindowState, number]] : []),
  ];
  return {
    "X-RateLimit-Limit": String(minute.limit),
    "X-RateLimit-Remaining": String(minute.remaining),
    "X-RateLimit-Reset": String(minute.resetSeconds),
    "X-RateLimit-Daily-Limit": String(day.limit),
    "X-RateLimit-Daily-Remaining": String(day.remaining),
    "RateLimit-Policy": [
      ...policies.map(([name, window, seconds]) => `"${name}";q=${window.limit};w=${seconds}${mark}`),
      // A balance's quota is what it was last set or refilled to; `w` only when it refills (a day, or a month as 30 days: the draft has no calendar months).
      ...balances.map(([name, state]) => `"${name}";q=${Math.max(0, state.quota)}${state.refillSeconds === null ? "" : `;w=${state.refillWindow}`}${mark}`),
    ].join(", "),
    RateLimit: [
      ...policies.map(([name, window]) => `"${name}";r=${window.remaining};t=${window.resetSeconds}`),
      ...balances.map(([name, state]) => `"${name}";r=${Math.max(0, state.balance)}${state.refillSeconds === null ? "" : `;t=${state.refillSeconds}`}`),
    ].join(", "),
    // The balance that binds (may be negative after usage the origin reported).
    ...(binding ? { "X-Credits-Remaining": String(binding.balance) } : {}),
  };
}

/** The balance with less left: the one that refuses first. */
export function bindingCredits(own: CreditState | undefined, owner: CreditState | undefined): CreditState | undefined {
  if (!own || !owner) return own ?? owner;
  return owner.balance < own.balance ? owner : own;
}
