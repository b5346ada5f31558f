import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RateLimiter } from "../../src/limits/rate-limiter";
import type { LimitCheck, LimitDecision } from "../../src/limits/windows";
import { limiter, setClock, storedCounters } from "../helpers/limiter";

/**
 * Issue 14: an admission writes one SQLite row in the limiter object (every
 * window of every bucket, the closed days and the last use are one ledger
 * row), a refusal none, on a minute's and a day's first call too. Counted
 * from workerd's own SqlStorageCursor.rowsWritten, not estimated.
 */
afterEach(() => vi.useRealTimers());

const check = (overrides: Partial<LimitCheck> = {}): LimitCheck => ({
  requestId: crypto.randomUUID(),
  credentialId: "counted",
  limitPerMinute: 3,
  limitPerDay: 1000,
  consume: true,
  ...overrides,
});

/** Runs `act` inside the object, returning what it returned and the SQLite rows it wrote. */
async function rowsWrittenBy<T>(name: string, act: (instance: RateLimiter) => T): Promise<{ result: T; rowsWritten: number }> {
  await limiter(name).getState(); // constructed (its CREATE TABLEs) before counting
  return runInDurableObject(limiter(name), (instance) => {
    const holder = instance as unknown as { sql: SqlStorage };
    const real = holder.sql;
    const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
    holder.sql = new Proxy(real, {
      get(target, property) {
        if (property !== "exec") return Reflect.get(target, property, target);
        return (query: string, ...bindings: unknown[]) => {
          const cursor = target.exec(query, ...bindings);
          cursors.push(cursor);
          return cursor;
        };
      },
    });
    try {
      const result = act(instance as unknown as RateLimiter);
      return { result, rowsWritten: cursors.reduce((sum, cursor) => sum + cursor.rowsWritten, 0) };
    } finally {
      holder.sql = real;
    }
  });
}

const outcome = (decision: LimitDecision) => decision.outcome;

describe("limiter storage: one row per admission", () => {
  it("an admission writes 1 row, a refusal and a peek 0, over a minute boundary and a day boundary too", async () => {
    const name = `key:${crypto.randomUUID()}`;
    setClock("2031-07-01T23:58:10Z");
    const written: [string, string, number][] = [];
    const run = async (label: string, input: LimitCheck) => {
      const { result, rowsWritten } = await rowsWrittenBy(name, (instance) => instance.check(input));
      written.push([label, outcome(result), rowsWritten]);
    };
    await run("first call", check());
    await run("second", check());
    await run("third", check());
    await run("over the minute limit", check());
    await run("a peek", check({ consume: false }));
    vi.setSystemTime(new Date("2031-07-01T23:59:05Z"));
    await run("a new minute's first", check());
    vi.setSystemTime(new Date("2031-07-02T00:00:05Z"));
    await run("a new day's first (closes yesterday)", check());
    await run("a retry of an admitted id", { ...check(), requestId: "fixed", retry: true });
    await run("the same id again", { ...check(), requestId: "fixed", retry: true });
    expect(written).toEqual([
      ["first call", "admitted", 1],
      ["second", "admitted", 1],
      ["third", "admitted", 1],
      ["over the minute limit", "rate_limited", 0],
      ["a peek", "peek", 0],
      ["a new minute's first", "admitted", 1],
      ["a new day's first (closes yesterday)", "admitted", 1],
      ["a retry of an admitted id", "admitted", 1],
      ["the same id again", "admitted", 0],
    ]);
    expect((await limiter(name).usage()).daily).toEqual([
      { day: "2031-07-01", count: 4, creditsUsed: 4 },
      { day: "2031-07-02", count: 2, creditsUsed: 2 },
    ]);
  });

  it("a limited owner's key call counts in two buckets and still writes 1 row; a failed authentication 1", async () => {
    const owner = `user:${crypto.randomUUID()}`;
    await limiter(owner).setOwnerLimits({ limitPerMinute: 10, limitPerDay: null });
    const { result, rowsWritten } = await rowsWrittenBy(owner, (instance) => instance.check(check({ lineageId: "lineage-1", keyId: "key-1" })));
    expect(outcome(result)).toBe("admitted");
    expect(rowsWritten).toBe(1);
    const counters = await storedCounters(owner);
    expect(counters["owner:minute"]?.count).toBe(1);
    expect(counters["lineage:lineage-1:minute"]?.count).toBe(1);

    const address = `ip:${crypto.randomUUID()}`;
    const failure = await rowsWrittenBy(address, (instance) => instance.recordAuthFailure(30));
    expect(failure).toMatchObject({ result: { failures: 1 }, rowsWritten: 1 });
  });

  it("with credits: an admission still writes 1 row, a reported-usage debit 1, a credits refusal 0, across a refill and an eviction", async () => {
    const name = `key:${crypto.randomUUID()}`;
    setClock("2031-07-03T10:00:10Z");
    await limiter(name).setCredits({}, { balance: 2, refill: { amount: 2, interval: "day" }, lowThreshold: 1 });
    const written: [string, string, number][] = [];
    const run = async (label: string, input: LimitCheck) => {
      const { result, rowsWritten } = await rowsWrittenBy(name, (instance) => instance.check(input));
      written.push([label, outcome(result), rowsWritten]);
    };
    await run("first call", check({ limitPerMinute: 100 }));
    await run("second (crosses low and exhausted)", check({ limitPerMinute: 100 }));
    await run("no credits left", check({ limitPerMinute: 100 }));
    const debit = await rowsWrittenBy(name, (instance) => instance.debit({ amount: 7 }));
    written.push(["a debit of reported usage", debit.result.outcome, debit.rowsWritten]);
    await abortAllDurableObjects();
    vi.setSystemTime(new Date("2031-07-04T00:00:01Z"));
    await run("after an eviction and a refill: 2 + the debt of -7 = -5", check({ limitPerMinute: 100 }));
    expect(written).toEqual([
      ["first call", "admitted", 1],
      ["second (crosses low and exhausted)", "admitted", 1],
      ["no credits left", "credits_exhausted", 0],
      ["a debit of reported usage", "debited", 1],
      ["after an eviction and a refill: 2 + the debt of -7 = -5", "credits_exhausted", 0],
    ]);
    expect(await limiter(name).readCredits({})).toMatchObject({ moved: false, credits: { balance: -5, quota: 2 } });
  });

  it("counters stay exact across an eviction", async () => {
    const name = `key:${crypto.randomUUID()}`;
    setClock("2031-08-01T10:00:10Z");
    const first = await Promise.all(Array.from({ length: 5 }, () => limiter(name).check(check())));
    expect(first.filter((decision) => decision.outcome === "admitted")).toHaveLength(3);
    await abortAllDurableObjects();
    expect(outcome(await limiter(name).check(check()))).toBe("rate_limited");
    expect((await storedCounters(name)).minute).toEqual({ windowStart: Date.parse("2031-08-01T10:00:00Z"), count: 3 });
  });
});
