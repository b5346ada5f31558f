/**
 * Fixed, UTC-aligned rate-limit windows and the decision the limiter returns.
 * Pure: the clock is an argument.
 */
export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

export interface CredentialState {
  status: "active" | "inactive" | "revoked";
  /** Epoch ms after which the credential is expired (expiry or rotation grace); null = never. */
  notAfter: number | null;
}

export interface LimitCheck {
  /** Idempotency: a retried call with the same id is never counted twice. */
  requestId: string;
  /** Recorded so the object can copy usage to D1 under the right id. */
  credentialId?: string;
  limitPerMinute: number;
  limitPerDay: number;
  /** false = only report (for a call refused after authentication). */
  consume: boolean;
}

export interface WindowState {
  limit: number;
  used: number;
  remaining: number;
  /** Seconds until this window resets (at least 1). */
  resetSeconds: number;
}

export interface LimitDecision {
  outcome: "admitted" | "peek" | "rate_limited" | "daily_quota_exceeded" | "inactive" | "revoked" | "expired";
  minute: WindowState;
  day: WindowState;
}

export function windowsAt(
  now: number,
  limits: { limitPerMinute: number; limitPerDay: number },
  minuteUsed: number,
  dayUsed: number,
): { minuteStart: number; dayStart: number; minute: WindowState; day: WindowState } {
  const minuteStart = now - (now % MINUTE_MS);
  const dayStart = now - (now % DAY_MS);
  const window = (limit: number, used: number, end: number): WindowState => ({
    limit,
    used,
    remaining: Math.max(0, limit - used),
    resetSeconds: Math.max(1, Math.ceil((end - now) / 1000)),
  });
  return {
    minuteStart,
    dayStart,
    minute: window(limits.limitPerMinute, minuteUsed, minuteStart + MINUTE_MS),
    day: window(limits.limitPerDay, dayUsed, dayStart + DAY_MS),
  };
}

/** The SPEC's X-RateLimit-* headers, plus the IETF RateLimit-Policy / RateLimit pair. */
export function rateLimitHeaders(decision: Pick<LimitDecision, "minute" | "day">): Record<string, string> {
  const { minute, day } = decision;
  return {
    "X-RateLimit-Limit": String(minute.limit),
    "X-RateLimit-Remaining": String(minute.remaining),
    "X-RateLimit-Reset": String(minute.resetSeconds),
    "X-RateLimit-Daily-Limit": String(day.limit),
    "X-RateLimit-Daily-Remaining": String(day.remaining),
    // draft-ietf-httpapi-ratelimit-headers: one named policy per window.
    "RateLimit-Policy": `"minute";q=${minute.limit};w=60, "day";q=${day.limit};w=86400`,
    RateLimit: `"minute";r=${minute.remaining};t=${minute.resetSeconds}, "day";r=${day.remaining};t=${day.resetSeconds}`,
  };
}
