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

/** The object's ledger row as stored in its SQLite: counters, closed days, last use per key. */
export interface StoredLedger {
  counters: Record<string, [windowStart: number, count: number]>;
  closedDays: Record<string, Record<string, number>>;
  lastUse: Record<string, number>;
}

export async function storedLedger(name: string): Promise<StoredLedger | undefined> {
  return runInDurableObject(limiter(name), (_instance, state) => {
    const tables = state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'ledger'").toArray();
    if (tables.length === 0) return undefined;
    const row = state.storage.sql.exec<{ data: string }>("SELECT data FROM ledger WHERE id = 1").toArray()[0];
    return row ? (JSON.parse(row.data) as StoredLedger) : undefined;
  });
}

/** The object's counters as stored in its SQLite (the ledger row), by counter name. */
export async function storedCounters(name: string): Promise<Record<string, StoredCounter>> {
  const ledger = await storedLedger(name);
  return Object.fromEntries(Object.entries(ledger?.counters ?? {}).map(([counter, [windowStart, count]]) => [counter, { windowStart, count }]));
}

/** The object's `state` table as stored in its SQLite (status, not_after, version, …), by row name. */
export async function storedState(name: string): Promise<Record<string, string | null>> {
  return runInDurableObject(limiter(name), (_instance, state) => {
    const rows = state.storage.sql.exec<{ name: string; value: string | null }>("SELECT * FROM state").toArray();
    return Object.fromEntries(rows.map((row) => [row.name, row.value]));
  });
}

export interface StoredKeyState {
  status: string;
  notAfter: number | null;
  version: number | null;
}

/**
 * An API key's state as the object `objectName` stores it: the key's row of
 * `key_state` (a lineage's or an owner's object keeps one per key), else, in
 * the key's own object from before per-key state, the `state` table's rows.
 * Null when the object holds nothing for the key.
 */
export async function storedKeyState(objectName: string, keyId: string): Promise<StoredKeyState | null> {
  return runInDurableObject(limiter(objectName), (_instance, state) => {
    const sql = state.storage.sql;
    if (sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'key_state'").toArray().length > 0) {
      const row = sql
        .exec<{ status: string; not_after: number | null; version: number | null }>("SELECT status, not_after, version FROM key_state WHERE key_id = ?", keyId)
        .toArray()[0];
      if (row) return { status: row.status, notAfter: row.not_after, version: row.version };
    }
    if (objectName !== `key:${keyId}`) return null;
    const rows = Object.fromEntries(
      sql
        .exec<{ name: string; value: string | null }>("SELECT * FROM state")
        .toArray()
        .map((row) => [row.name, row.value]),
    );
    if (rows.status === undefined || rows.status === null) return null;
    const number = (value: string | null | undefined) => (value === null || value === undefined ? null : Number(value));
    return { status: rows.status, notAfter: number(rows.not_after), version: number(rows.version) };
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
