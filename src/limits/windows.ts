/**
 * Fixed, UTC-aligned rate-limit windows, the decision the limiter returns, and
 * the response headers that describe it. Pure: the clock is an argument.
 */
export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

export interface CredentialState {
  status: "active" | "inactive" | "revoked";
  /** Epoch ms from which the credential is expired (expiry or end of a rotation's grace); null = never. */
  notAfter: number | null;
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

/** What the limiter says about one call. Credential-state refusals carry no counts: the caller is not authenticated. */
export type LimitDecision =
  | ({ outcome: "admitted" | "peek" | "rate_limited" | "daily_quota_exceeded" } & WindowCounts)
  | { outcome: "inactive" | "revoked" | "expired" };

/** The calendar minute and the UTC day containing `now` (epoch ms has no leap seconds, so both are exact). */
export function windowStarts(now: number): { minuteStart: number; dayStart: number } {
  return { minuteStart: now - (now % MINUTE_MS), dayStart: now - (now % DAY_MS) };
}

/** Seconds from `now` until the window of `lengthMs` containing it ends, rounded up, at least 1. */
export function secondsUntilReset(now: number, lengthMs: number): number {
  return Math.max(1, Math.ceil((lengthMs - (now % lengthMs)) / 1000));
}

export function windowCounts(
  now: number,
  limits: Pick<LimitCheck, "limitPerMinute" | "limitPerDay">,
  minuteUsed: number,
  dayUsed: number,
): WindowCounts {
  const window = (limit: number, used: number, lengthMs: number): WindowState => ({
    limit,
    used,
    remaining: Math.max(0, limit - used),
    resetSeconds: secondsUntilReset(now, lengthMs),
  });
  return { minute: window(limits.limitPerMinute, minuteUsed, MINUTE_MS), day: window(limits.limitPerDay, dayUsed, DAY_MS) };
}

/**
 * The SPEC's X-RateLimit-* headers, plus the pair from
 * draft-ietf-httpapi-ratelimit-headers (-09 to -11): one named policy per
 * window, `q` quota and `w` window seconds; `r` remaining and `t` seconds to reset.
 */
export function rateLimitHeaders({ minute, day }: WindowCounts): Record<string, string> {
  return {
    "X-RateLimit-Limit": String(minute.limit),
    "X-RateLimit-Remaining": String(minute.remaining),
    "X-RateLimit-Reset": String(minute.resetSeconds),
    "X-RateLimit-Daily-Limit": String(day.limit),
    "X-RateLimit-Daily-Remaining": String(day.remaining),
    "RateLimit-Policy": `"minute";q=${minute.limit};w=${MINUTE_MS / 1000}, "day";q=${day.limit};w=${DAY_MS / 1000}`,
    RateLimit: `"minute";r=${minute.remaining};t=${minute.resetSeconds}, "day";r=${day.remaining};t=${day.resetSeconds}`,
  };
}
