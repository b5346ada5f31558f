import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { creditsCover, crossings, lastRefillAt, newAccount, nextRefillAt, refilled, toppedUp, type CreditRefill } from "../../src/limits/credits";

const DAY = 86_400_000;

/**
 * An independent calendar: walks UTC days one at a time and asks, of each
 * day, whether it is a refill day (every day; or the month's dayOfMonth, its
 * last day when the month is shorter). Slow and obvious, unlike the module's
 * arithmetic.
 */
function isRefillDay(dayStart: number, refill: CreditRefill): boolean {
  if (refill.interval === "day") return true;
  const date = new Date(dayStart);
  const daysInMonth = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
  return date.getUTCDate() === Math.min(refill.dayOfMonth ?? 1, daysInMonth);
}

function walkBack(now: number, refill: CreditRefill): number {
  for (let day = now - (now % DAY); ; day -= DAY) if (isRefillDay(day, refill)) return day;
}

function walkForward(now: number, refill: CreditRefill): number {
  for (let day = now - (now % DAY) + DAY; ; day += DAY) if (isRefillDay(day, refill)) return day;
}

const instant = fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2040, 11, 31) });
const refill = fc.oneof(
  fc.record({ amount: fc.integer({ min: 1, max: 1000 }), interval: fc.constant("day" as const) }),
  fc.record({ amount: fc.integer({ min: 1, max: 1000 }), interval: fc.constant("month" as const), dayOfMonth: fc.integer({ min: 1, max: 31 }) }),
);

describe("credit refills: the calendar", () => {
  it("agrees with a day-by-day walk, before and after any instant", () => {
    fc.assert(
      fc.property(instant, refill, (now, schedule) => {
        expect(lastRefillAt(schedule, now)).toBe(walkBack(now, schedule));
        expect(nextRefillAt(schedule, now)).toBe(walkForward(now, schedule));
      }),
      { numRuns: 500 },
    );
  });

  it("refills on the 31st fall on each month's last day when it is shorter, leap years included", () => {
    const schedule: CreditRefill = { amount: 1, interval: "month", dayOfMonth: 31 };
    const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    let at = Date.UTC(2031, 11, 31, 12);
    const seen = [];
    for (let i = 0; i < 4; i++) {
      at = nextRefillAt(schedule, at);
      seen.push(iso(at));
    }
    expect(seen).toEqual(["2032-01-31", "2032-02-29", "2032-03-31", "2032-04-30"]);
    expect(iso(lastRefillAt(schedule, Date.UTC(2033, 1, 27)))).toBe("2033-01-31");
    expect(iso(lastRefillAt(schedule, Date.UTC(2033, 1, 28)))).toBe("2033-02-28");
  });
});

describe("credit accounts", () => {
  it("a refill restores the amount once, however many refill instants passed, carrying debt over", () => {
    fc.assert(
      fc.property(instant, refill, fc.integer({ min: -5000, max: 5000 }), fc.integer({ min: 0, max: 400 * DAY }), (setAt, schedule, balance, later) => {
        const account = { ...newAccount({ balance: 0, refill: schedule }, setAt), balance };
        const now = setAt + later;
        const after = refilled(account, now);
        if (lastRefillAt(schedule, now) <= setAt) {
          expect(after).toBe(account);
        } else {
          expect(after.balance).toBe(schedule.amount + Math.min(balance, 0));
          expect(after.epoch).toBe(account.epoch + 1);
          expect(refilled(after, now), "idempotent at the same instant").toBe(after);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("an account without a refill never changes by itself", () => {
    const account = newAccount({ balance: 7 }, Date.UTC(2031, 0, 1));
    expect(refilled(account, Date.UTC(2039, 0, 1))).toBe(account);
  });

  it("admits only from a balance that is not negative and covers the need", () => {
    expect(creditsCover(5, 5)).toBe(true);
    expect(creditsCover(4, 5)).toBe(false);
    expect(creditsCover(0, 0)).toBe(true);
    expect(creditsCover(-1, 0)).toBe(false);
  });

  it("crossings happen once, on the debit that crosses", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 30 }),
        fc.option(fc.integer({ min: 0, max: 50 })),
        (start, debits, low) => {
          let balance = start;
          const seen: string[] = [];
          for (const debit of debits) {
            seen.push(...crossings({ lowThreshold: low }, balance, balance - debit));
            balance -= debit;
          }
          expect(seen.filter((type) => type === "credits.exhausted").length).toBe(start > 0 && balance <= 0 ? 1 : 0);
          expect(seen.filter((type) => type === "credits.low").length).toBe(low !== null && start > low && balance <= low ? 1 : 0);
        },
      ),
    );
  });

  it("a top-up starts a new epoch and a new quota", () => {
    const account = newAccount({ balance: 10 }, 0);
    const topped = toppedUp({ ...account, balance: 2 }, 8);
    expect(topped).toMatchObject({ balance: 10, quota: 10, epoch: account.epoch + 1 });
  });
});
