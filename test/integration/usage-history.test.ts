import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { LimitCheck } from "../../src/limits/windows";
import { limiter, setClock, storedLedger } from "../helpers/limiter";

/**
 * A limiter keeps today's count in its 'day' counter and closes it into the
 * ledger's closed days when the next day's first call arrives; usage() and the D1
 * flush see both, including a day that nothing has closed yet.
 */
const admit = (name: string) =>
  limiter(name).check({
    requestId: crypto.randomUUID(),
    credentialId: name.slice(4),
    limitPerMinute: 100,
    limitPerDay: 1000,
    consume: true,
  } satisfies LimitCheck);

/** The closed days the object stores (its ledger row), oldest first. */
const dailyTable = async (name: string) =>
  Object.entries((await storedLedger(name))?.closedDays[""] ?? {})
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([day, count]) => ({ day, count }));

afterEach(() => vi.useRealTimers());

describe("daily usage history in the limiter", () => {
  it("shows a finished day before any call of the next day closes it, then keeps it in the table", async () => {
    const name = `key:${crypto.randomUUID()}`;
    setClock("2031-03-04T23:59:00Z");
    for (let i = 0; i < 3; i++) expect((await admit(name)).outcome).toBe("admitted");

    vi.setSystemTime(new Date("2031-03-05T08:00:00Z"));
    expect(await limiter(name).usage()).toEqual({
      minuteUsed: 0,
      dayUsed: 0,
      daily: [{ day: "2031-03-04", count: 3, creditsUsed: 3 }],
      movedToOwner: false,
      credits: null,
      creditsUsedToday: 0,
    });
    expect(await dailyTable(name), "not closed yet: no call today").toEqual([]);

    expect((await admit(name)).outcome).toBe("admitted");
    expect(await dailyTable(name)).toEqual([{ day: "2031-03-04", count: 3 }]);
    expect((await limiter(name).usage()).daily).toEqual([
      { day: "2031-03-04", count: 3, creditsUsed: 3 },
      { day: "2031-03-05", count: 1, creditsUsed: 1 },
    ]);
  });

  it("flushes yesterday's and today's counts to usage_daily after midnight", async () => {
    const id = crypto.randomUUID();
    const name = `key:${id}`;
    setClock("2031-05-01T23:59:30Z");
    for (let i = 0; i < 2; i++) await admit(name);
    vi.setSystemTime(new Date("2031-05-02T00:00:10Z"));
    await admit(name);
    expect(await runDurableObjectAlarm(limiter(name))).toBe(true);

    const { results } = await env.DB.prepare("SELECT day, count FROM usage_daily WHERE key_id = ? ORDER BY day").bind(id).all();
    expect(results).toEqual([
      { day: "2031-05-01", count: 2 },
      { day: "2031-05-02", count: 1 },
    ]);
  });
});
