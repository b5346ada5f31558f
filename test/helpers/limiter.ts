import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, vi } from "vitest";

/**
 * Reading the RateLimiter objects' own storage, and a controlled clock. Only
 * Date is faked: timers stay real so workerd's I/O keeps working, and the
 * fake Date reaches Date.now() inside the objects (same isolate in this pool).
 */
export function limiter(name: string) {
  return env.RATE_LIMITER.getByName(name);
}

export interface StoredCounter {
  windowStart: number;
  count: number;
}

/** The object's `counters` table as stored in its SQLite, by counter name. */
export async function storedCounters(name: string): Promise<Record<string, StoredCounter>> {
  return runInDurableObject(limiter(name), (_instance, state) => {
    const rows = state.storage.sql.exec<{ name: string; window_start: number; count: number }>("SELECT * FROM counters").toArray();
    return Object.fromEntries(rows.map((row) => [row.name, { windowStart: row.window_start, count: row.count }]));
  });
}

/** Freezes Date.now() at `iso` until useRealTimers(). */
export function setClock(iso: string): number {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date(iso));
  return Date.now();
}

export interface ExpectedLimitHeaders {
  limit: number;
  remaining: number;
  reset: number;
  dailyLimit: number;
  dailyRemaining: number;
  dailyReset: number;
}

/** Every SPEC header and the IETF pair, exactly. */
export function expectLimitHeaders(response: Response, expected: ExpectedLimitHeaders): void {
  const seen = Object.fromEntries(
    [
      "X-RateLimit-Limit",
      "X-RateLimit-Remaining",
      "X-RateLimit-Reset",
      "X-RateLimit-Daily-Limit",
      "X-RateLimit-Daily-Remaining",
      "RateLimit-Policy",
      "RateLimit",
    ].map((name) => [name, response.headers.get(name)]),
  );
  expect(seen).toEqual({
    "X-RateLimit-Limit": String(expected.limit),
    "X-RateLimit-Remaining": String(expected.remaining),
    "X-RateLimit-Reset": String(expected.reset),
    "X-RateLimit-Daily-Limit": String(expected.dailyLimit),
    "X-RateLimit-Daily-Remaining": String(expected.dailyRemaining),
    "RateLimit-Policy": `"minute";q=${expected.limit};w=60, "day";q=${expected.dailyLimit};w=86400`,
    RateLimit: `"minute";r=${expected.remaining};t=${expected.reset}, "day";r=${expected.dailyRemaining};t=${expected.dailyReset}`,
  });
}

export function expectNoLimitHeaders(response: Response): void {
  for (const name of ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Daily-Limit", "RateLimit-Policy", "RateLimit"]) {
    expect(response.headers.get(name), name).toBeNull();
  }
}
