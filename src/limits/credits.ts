/**
 * @module
 * Credits: a balance a key (its rotation lineage) or an owner draws calls
 * from, with an optional refill on a UTC calendar. Pure: the clock is an
 * argument. The RateLimiter object keeps the accounts and decides with them
 * in the same synchronous run as the windows (src/limits/rate-limiter.ts).
 *
 * Semantics (README "Credits"):
 *  - a call costs its product's cost rule (default 1), debited at admission;
 *  - a call is admitted only if the balance is not negative and covers
 *    `max(cost, reserve)` (a metered product's reserve, default 1: a call
 *    whose real cost the origin reports afterwards needs credits > 0);
 *  - usage the origin reports is debited afterwards and may take the
 *    balance below zero; a negative balance refuses every call until topped up;
 *  - a refill restores the balance to `amount` at 00:00 UTC each day, or on
 *    `dayOfMonth` (default 1; the month's last day when shorter) each month.
 *    Debt carries over: a balance of -40 refilled with 1000 becomes 960.
 */
import { DAY_MS } from "./windows";

export interface CreditRefill {
  amount: number;
  interval: "day" | "month";
  /** For monthly refills: 1–31; a shorter month refills on its last day. */
  dayOfMonth?: number;
}

/** One balance, as the object stores it (ledger JSON). */
export interface CreditAccount {
  balance: number;
  refill: CreditRefill | null;
  /** Epoch ms of the last refill, or of the balance being set: the next refill comes after it. */
  refilledAt: number;
  /** At or below this balance, `credits.low` is sent once per epoch; null = never. */
  lowThreshold: number | null;
  /** What the balance was last set, topped up or refilled to: the `q` of the "credits" RateLimit policy. */
  quota: number;
  /** Moves on every set, top-up and refill: credits events are unique per subject and epoch. */
  epoch: number;
}

/** What an answer reports of an account. */
export interface CreditState {
  balance: number;
  quota: number;
  /** Seconds to the next refill, or null without one. */
  refillSeconds: number | null;
  /** The refill's period in seconds (a month counts as 30 days), or null. */
  refillWindow: number | null;
}

/** The credit events an admission or a debit can cause: each is a crossing, so it happens once per epoch. */
export type CreditCrossing = "credits.low" | "credits.exhausted";

/** The latest refill instant at or before `now`. */
export function lastRefillAt(refill: CreditRefill, now: number): number {
  const dayStart = now - (now % DAY_MS);
  if (refill.interval === "day") return dayStart;
  const date = new Date(now);
  const thisMonth = monthRefill(date.getUTCFullYear(), date.getUTCMonth(), refill.dayOfMonth ?? 1);
  if (thisMonth <= now) return thisMonth;
  return monthRefill(date.getUTCFullYear(), date.getUTCMonth() - 1, refill.dayOfMonth ?? 1);
}

/** The first refill instant after `now`. */
export function nextRefillAt(refill: CreditRefill, now: number): number {
  const dayStart = now - (now % DAY_MS);
  if (refill.interval === "day") return dayStart + DAY_MS;
  const date = new Date(now);
  const thisMonth = monthRefill(date.getUTCFullYear(), date.getUTCMonth(), refill.dayOfMonth ?? 1);
  if (thisMonth > now) return thisMonth;
  return monthRefill(date.getUTCFullYear(), date.getUTCMonth() + 1, refill.dayOfMonth ?? 1);
}

/** 00:00 UTC of `dayOfMonth` in that month (month may be out of 0–11: Date.UTC carries it), clamped to the month's last day. */
function monthRefill(year: number, month: number, dayOfMonth: number): number {
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return Date.UTC(year, month, Math.min(dayOfMonth, lastDay));
}

/** The account as of `now`: refilled when a refill instant passed since the last. Returns the same object when nothing changed. */
export function refilled(account: CreditAccount, now: number): CreditAccount {
  if (!account.refill) return account;
  const due = lastRefillAt(account.refill, now);
  if (due <= account.refilledAt) return account;
  return {
    ...account,
    balance: account.refill.amount + Math.min(account.balance, 0),
    quota: account.refill.amount,
    refilledAt: due,
    epoch: account.epoch + 1,
  };
}

/** Whether a call needing `required` credits may be admitted from this balance. */
export function creditsCover(balance: number, required: number): boolean {
  return balance >= 0 && balance >= required;
}

/** The crossings a debit from `before` to `after` makes. */
export function crossings(account: Pick<CreditAccount, "lowThreshold">, before: number, after: number): CreditCrossing[] {
  const crossed: CreditCrossing[] = [];
  if (account.lowThreshold !== null && before > account.lowThreshold && after <= account.lowThreshold) crossed.push("credits.low");
  if (before > 0 && after <= 0) crossed.push("credits.exhausted");
  return crossed;
}

export function creditState(account: CreditAccount, now: number): CreditState {
  return {
    balance: account.balance,
    quota: account.quota,
    refillSeconds: account.refill ? Math.max(1, Math.ceil((nextRefillAt(account.refill, now) - now) / 1000)) : null,
    refillWindow: account.refill ? (account.refill.interval === "day" ? DAY_MS / 1000 : (30 * DAY_MS) / 1000) : null,
  };
}

/** A new account, as an admin sets it: its first refill comes after `now`. */
export function newAccount(
  input: { balance: number; refill?: CreditRefill | null | undefined; lowThreshold?: number | null | undefined },
  now: number,
  previousEpoch = 0,
): CreditAccount {
  return {
    balance: input.balance,
    refill: input.refill ?? null,
    refilledAt: now,
    lowThreshold: input.lowThreshold ?? null,
    quota: input.balance,
    epoch: previousEpoch + 1,
  };
}

/** Adds `amount` (a top-up): a new epoch, so a later crossing is told again. */
export function toppedUp(account: CreditAccount, amount: number): CreditAccount {
  return { ...account, balance: account.balance + amount, quota: account.balance + amount, epoch: account.epoch + 1 };
}
