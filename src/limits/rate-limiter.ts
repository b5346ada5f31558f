import { DurableObject } from "cloudflare:workers";
import { credentialStateOutcome } from "../auth/credential-state";
import type { Env } from "../env";
import { isApiKeyCredential } from "./names";
import {
  DAY_MS,
  MINUTE_MS,
  windowCounts,
  windowStarts,
  type CredentialState,
  type LimitCheck,
  type LimitDecision,
} from "./windows";

/**
 * One object per credential (`key:<id>`, `user:<id>`, `sub:…`: limits/names.ts)
 * holding its minute and day counters and its revocation state, and one per
 * client address (`ip:<address>`) counting failed authentications. All in the
 * object's SQLite storage, read into memory once when the object starts.
 *
 * Exactness: every method runs synchronously from reading a counter to writing
 * it (the SQL API is synchronous; nothing awaits), so calls never interleave
 * and N concurrent calls against limit L admit exactly min(N, L).
 *
 * Storage (constant size per object):
 *   counters(name PK, window_start, count)  name = 'minute' | 'day' | 'auth_failures';
 *                                           window_start = epoch ms of the UTC window
 *   state(name PK, value)                   'status', 'not_after' (epoch ms), 'credential_id',
 *                                           'min_grant_version' (epoch ms; user objects only)
 *   daily(day PK, count)                    admitted calls per finished UTC day, last 31 days
 *                                           (usage stats; today's count is the 'day' counter)
 *   admitted(request_id PK, at)             admissions of the last ~2 minutes (idempotent retries)
 *
 * An admission writes two statements: both counters in one upsert, and its
 * request id. Everything else happens once per window.
 */
const ADMITTED_RETENTION_MS = 2 * MINUTE_MS;
const DAILY_RETENTION_DAYS = 31;
/** How long admitted counts wait before the alarm copies them to D1 (usage_daily, last_used_at). */
export const USAGE_FLUSH_DELAY_MS = 30_000;

type CounterName = "minute" | "day" | "auth_failures";

interface Counter {
  windowStart: number;
  count: number;
}

export interface AuthFailureTally {
  /** Failures from this address in the current minute, this one included. */
  failures: number;
  /** Epoch ms until which the address is throttled, or null while under the limit. */
  throttledUntil: number | null;
}

export class RateLimiter extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly counters = new Map<CounterName, Counter>();
  private state: CredentialState = { status: "active", notAfter: null };
  private credentialId: string | null = null;
  /** Tokens of this user signed with an older grant version (`gv`) are void. */
  private minGrantVersion = 0;
  private flushScheduled = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, window_start INTEGER NOT NULL, count INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT);
      CREATE TABLE IF NOT EXISTS daily (day TEXT PRIMARY KEY, count INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS admitted (request_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
    `);
    for (const row of this.sql.exec<{ name: CounterName; window_start: number; count: number }>("SELECT * FROM counters")) {
      this.counters.set(row.name, { windowStart: row.window_start, count: row.count });
    }
    for (const row of this.sql.exec<{ name: string; value: string | null }>("SELECT * FROM state")) {
      if (row.name === "status") this.state.status = row.value as CredentialState["status"];
      if (row.name === "not_after") this.state.notAfter = row.value === null ? null : Number(row.value);
      if (row.name === "credential_id") this.credentialId = row.value;
      if (row.name === "min_grant_version") this.minGrantVersion = Number(row.value);
    }
  }

  /**
   * Checks the credential's state and both windows, and — when `consume` is
   * set and both have room — counts the call in both. A call refused by either
   * window consumes neither. Retrying with the same requestId never counts twice.
   */
  check(input: LimitCheck): LimitDecision {
    const now = Date.now();
    const { minuteStart, dayStart } = windowStarts(now);
    if (input.credentialId !== undefined && input.credentialId !== this.credentialId) this.rememberCredential(input.credentialId);

    const unusable = credentialStateOutcome(this.state, now);
    if (unusable) return { outcome: unusable };
    // A token signed before its user's access last changed carries the old grants.
    if (input.grantVersion !== undefined && input.grantVersion < this.minGrantVersion) return { outcome: "revoked" };

    const minuteUsed = this.countIn("minute", minuteStart);
    const dayUsed = this.countIn("day", dayStart);
    const decide = (outcome: "admitted" | "peek" | "rate_limited" | "daily_quota_exceeded", minute = minuteUsed, day = dayUsed) => ({
      outcome,
      ...windowCounts(now, input, minute, day),
    });

    if (!input.consume) return decide("peek");
    if (input.retry && this.alreadyAdmitted(input.requestId)) return decide("admitted");
    // Day first: when both windows are exhausted, the day's reset is the true wait.
    if (dayUsed >= input.limitPerDay) return decide("daily_quota_exceeded");
    if (minuteUsed >= input.limitPerMinute) return decide("rate_limited");

    this.admit(input.requestId, now, minuteUsed + 1, dayUsed + 1);
    return decide("admitted", minuteUsed + 1, dayUsed + 1);
  }

  /** Revocation, deactivation, reactivation and rotation grace take effect here at once. */
  setState(state: CredentialState): void {
    this.state = { status: state.status, notAfter: state.notAfter };
    this.sql.exec(
      "INSERT INTO state (name, value) VALUES ('status', ?), ('not_after', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      state.status,
      state.notAfter === null ? null : String(state.notAfter),
    );
  }

  getState(): CredentialState {
    return { ...this.state };
  }

  /**
   * Voids a user's tokens signed with a grant version below `version`. Never
   * lowers it, so a late or repeated call cannot revive tokens.
   */
  raiseMinGrantVersion(version: number): void {
    if (version <= this.minGrantVersion) return;
    this.minGrantVersion = version;
    this.sql.exec(
      "INSERT INTO state (name, value) VALUES ('min_grant_version', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      String(version),
    );
  }

  /**
   * Counts one failed authentication from this object's address in the
   * current minute; past `limitPerMinute` the address is throttled until the
   * minute ends.
   */
  recordAuthFailure(limitPerMinute: number): AuthFailureTally {
    const now = Date.now();
    const { minuteStart } = windowStarts(now);
    const failures = this.countIn("auth_failures", minuteStart) + 1;
    this.storeCounter("auth_failures", minuteStart, failures);
    return { failures, throttledUntil: failures >= limitPerMinute ? minuteStart + MINUTE_MS : null };
  }

  /** Counts for usage stats: this minute, today, and the last 31 days (today last). */
  usage(): { minuteUsed: number; dayUsed: number; daily: { day: string; count: number }[] } {
    const { minuteStart, dayStart } = windowStarts(Date.now());
    return { minuteUsed: this.countIn("minute", minuteStart), dayUsed: this.countIn("day", dayStart), daily: this.dailyCounts(DAILY_RETENTION_DAYS) };
  }

  /**
   * Per UTC day, oldest first: up to `closedDays` closed days from the table,
   * then the 'day' counter's own day — today, or the last day with calls when
   * none came since (it is closed into the table by the next admission).
   */
  private dailyCounts(closedDays: number): { day: string; count: number }[] {
    const open = this.counters.get("day");
    const openDay = open ? isoDay(open.windowStart) : "9999-12-31";
    const closed = [
      ...this.sql.exec<{ day: string; count: number }>("SELECT day, count FROM daily WHERE day < ? ORDER BY day DESC LIMIT ?", openDay, closedDays),
    ].reverse();
    return open && open.count > 0 ? [...closed, { day: openDay, count: open.count }] : closed;
  }

  /** Copies the last two days' counts and the last-use time to D1, off the request path. */
  override async alarm(): Promise<void> {
    this.flushScheduled = false;
    if (!this.credentialId) return;
    // The open day and the one before: a flush just after midnight still owes yesterday's last calls.
    const rows = this.dailyCounts(1);
    const statements = rows.map((row) =>
      this.env.DB.prepare(
        "INSERT INTO usage_daily (key_id, day, count) VALUES (?, ?, ?) ON CONFLICT (key_id, day) DO UPDATE SET count = max(count, excluded.count)",
      ).bind(this.credentialId, row.day, row.count),
    );
    const lastUsed = this.sql.exec<{ at: number | null }>("SELECT max(at) AS at FROM admitted").toArray()[0]?.at;
    if (lastUsed && isApiKeyCredential(this.credentialId)) {
      statements.push(
        this.env.DB.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ?").bind(new Date(lastUsed).toISOString(), this.credentialId),
      );
    }
    if (statements.length > 0) await this.env.DB.batch(statements);
  }

  /** The count of `name` in the window starting at `windowStart`: 0 once the stored window has passed. */
  private countIn(name: CounterName, windowStart: number): number {
    const counter = this.counters.get(name);
    return counter?.windowStart === windowStart ? counter.count : 0;
  }

  private storeCounter(name: CounterName, windowStart: number, count: number): void {
    this.counters.set(name, { windowStart, count });
    this.sql.exec(
      "INSERT INTO counters (name, window_start, count) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
      name,
      windowStart,
      count,
    );
  }

  private rememberCredential(credentialId: string): void {
    this.credentialId = credentialId;
    this.sql.exec(
      "INSERT INTO state (name, value) VALUES ('credential_id', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      credentialId,
    );
  }

  private alreadyAdmitted(requestId: string): boolean {
    return this.sql.exec("SELECT 1 FROM admitted WHERE request_id = ?", requestId).toArray().length > 0;
  }

  /** Both counters and the request id, in one synchronous run (one implicit transaction). */
  private admit(requestId: string, now: number, minuteCount: number, dayCount: number): void {
    const { minuteStart, dayStart } = windowStarts(now);
    const newMinute = this.counters.get("minute")?.windowStart !== minuteStart;
    const finishedDay = this.counters.get("day");
    if (finishedDay && finishedDay.windowStart !== dayStart) this.closeDay(finishedDay, dayStart);
    this.counters.set("minute", { windowStart: minuteStart, count: minuteCount });
    this.counters.set("day", { windowStart: dayStart, count: dayCount });
    this.sql.exec(
      "INSERT INTO counters (name, window_start, count) VALUES ('minute', ?, ?), ('day', ?, ?) ON CONFLICT (name) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
      minuteStart,
      minuteCount,
      dayStart,
      dayCount,
    );
    this.sql.exec("INSERT INTO admitted (request_id, at) VALUES (?, ?)", requestId, now);
    // Pruning once per window keeps storage constant-size without a delete on every call.
    if (newMinute) this.sql.exec("DELETE FROM admitted WHERE at < ?", now - ADMITTED_RETENTION_MS);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // A storage write like the others: the output gate holds the reply until it is durable.
      void this.ctx.storage.setAlarm(now + USAGE_FLUSH_DELAY_MS);
    }
  }

  /** A day's counter has passed: keep its final count for usage stats, and forget days past retention. */
  private closeDay(finished: Counter, dayStart: number): void {
    this.sql.exec(
      "INSERT INTO daily (day, count) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET count = excluded.count",
      isoDay(finished.windowStart),
      finished.count,
    );
    this.sql.exec("DELETE FROM daily WHERE day < ?", isoDay(dayStart - DAILY_RETENTION_DAYS * DAY_MS));
  }
}

function isoDay(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}
