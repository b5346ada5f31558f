import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { windowsAt, type LimitCheck, type LimitDecision, type CredentialState } from "./windows";

/**
 * One object per credential (`key:<id>` or `sub:<subject>`): its minute and
 * day counters and its revocation state, in the object's SQLite storage.
 *
 * Exactness: every method here runs synchronously from reading a counter to
 * writing it (the SQL API is synchronous), so no two calls interleave and N
 * concurrent calls against limit L admit exactly min(N, L).
 *
 * Storage (all tables tiny and constant-size per credential):
 *   counters(name PRIMARY KEY, window_start, count)  name = 'minute' | 'day'
 *   state(name PRIMARY KEY, value)                   credential status, notAfter, id
 *   daily(day PRIMARY KEY, count)                    last 31 UTC days, for usage stats
 *   admitted(request_id PRIMARY KEY, at)             last ~2 minutes, for idempotent retries
 */
const ADMITTED_RETENTION_MS = 120_000;
const DAILY_RETENTION_DAYS = 31;
/** How long admitted counts wait before the alarm copies them to D1 (usage_daily, last_used_at). */
export const USAGE_FLUSH_DELAY_MS = 30_000;

export class RateLimiter extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private minute = { start: 0, count: 0 };
  private day = { start: 0, count: 0 };
  private state: CredentialState = { status: "active", notAfter: null };
  private credentialId: string | null = null;
  private flushScheduled = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, window_start INTEGER NOT NULL, count INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT);
      CREATE TABLE IF NOT EXISTS daily (day TEXT PRIMARY KEY, count INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS admitted (request_id TEXT PRIMARY KEY, at INTEGER NOT NULL);
    `);
    for (const row of this.sql.exec<{ name: string; window_start: number; count: number }>("SELECT * FROM counters")) {
      if (row.name === "minute") this.minute = { start: row.window_start, count: row.count };
      if (row.name === "day") this.day = { start: row.window_start, count: row.count };
    }
    for (const row of this.sql.exec<{ name: string; value: string | null }>("SELECT * FROM state")) {
      if (row.name === "status") this.state.status = row.value as CredentialState["status"];
      if (row.name === "not_after") this.state.notAfter = row.value === null ? null : Number(row.value);
      if (row.name === "credential_id") this.credentialId = row.value;
    }
  }

  /**
   * Checks the credential's state and both windows, and — when `consume` is
   * set and both have room — counts the call in both. A call refused by either
   * window consumes neither. Retrying with the same requestId never counts twice.
   */
  check(input: LimitCheck): LimitDecision {
    const now = Date.now();
    this.rollWindows(now);
    if (input.credentialId && this.credentialId !== input.credentialId) this.rememberCredential(input.credentialId);

    const decide = (outcome: LimitDecision["outcome"]): LimitDecision => ({
      outcome,
      ...windowsAt(now, input, this.minute.count, this.day.count),
    });

    if (this.state.status !== "active") return decide(this.state.status);
    if (this.state.notAfter !== null && now >= this.state.notAfter) return decide("expired");
    if (!input.consume) return decide("peek");
    if (this.alreadyAdmitted(input.requestId)) return decide("admitted");
    // Day first: when both windows are exhausted the longer wait is the true one.
    if (this.day.count >= input.limitPerDay) return decide("daily_quota_exceeded");
    if (this.minute.count >= input.limitPerMinute) return decide("rate_limited");

    this.minute.count += 1;
    this.day.count += 1;
    this.persistAdmission(input.requestId, now);
    return decide("admitted");
  }

  /** Revocation, deactivation, reactivation and rotation grace take effect here at once. */
  setState(state: CredentialState): void {
    this.state = { ...state };
    this.sql.exec(
      "INSERT INTO state (name, value) VALUES ('status', ?), ('not_after', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      state.status,
      state.notAfter === null ? null : String(state.notAfter),
    );
  }

  getState(): CredentialState {
    return { ...this.state };
  }

  /** Counts for usage stats: this minute, today, and the last 31 days. */
  usage(): { minuteUsed: number; dayUsed: number; daily: { day: string; count: number }[] } {
    this.rollWindows(Date.now());
    const daily = [...this.sql.exec<{ day: string; count: number }>("SELECT day, count FROM daily ORDER BY day")];
    return { minuteUsed: this.minute.count, dayUsed: this.day.count, daily };
  }

  /** Copies today's counts and the last-use time to D1, off the request path. */
  override async alarm(): Promise<void> {
    this.flushScheduled = false;
    if (!this.credentialId) return;
    const rows = [...this.sql.exec<{ day: string; count: number }>("SELECT day, count FROM daily ORDER BY day DESC LIMIT 2")];
    const statements = rows.map((row) =>
      this.env.DB.prepare(
        "INSERT INTO usage_daily (key_id, day, count) VALUES (?, ?, ?) ON CONFLICT (key_id, day) DO UPDATE SET count = max(count, excluded.count)",
      ).bind(this.credentialId, row.day, row.count),
    );
    const lastUsed = this.sql.exec<{ at: number }>("SELECT max(at) AS at FROM admitted").toArray()[0]?.at;
    if (lastUsed && !this.credentialId.startsWith("sub:")) {
      statements.push(
        this.env.DB.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ?").bind(new Date(lastUsed).toISOString(), this.credentialId),
      );
    }
    if (statements.length > 0) await this.env.DB.batch(statements);
  }

  private rollWindows(now: number): void {
    const { minuteStart, dayStart } = windowsAt(now, { limitPerMinute: 0, limitPerDay: 0 }, 0, 0);
    if (this.minute.start !== minuteStart) this.minute = { start: minuteStart, count: 0 };
    if (this.day.start !== dayStart) this.day = { start: dayStart, count: 0 };
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

  private persistAdmission(requestId: string, now: number): void {
    const day = new Date(this.day.start).toISOString().slice(0, 10);
    this.sql.exec(
      "INSERT INTO counters (name, window_start, count) VALUES ('minute', ?, ?), ('day', ?, ?) ON CONFLICT (name) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
      this.minute.start,
      this.minute.count,
      this.day.start,
      this.day.count,
    );
    this.sql.exec("INSERT INTO daily (day, count) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET count = excluded.count", day, this.day.count);
    this.sql.exec("INSERT INTO admitted (request_id, at) VALUES (?, ?)", requestId, now);
    // Keep storage constant-size per credential.
    this.sql.exec("DELETE FROM admitted WHERE at < ?", now - ADMITTED_RETENTION_MS);
    this.sql.exec(
      "DELETE FROM daily WHERE day < ?",
      new Date(this.day.start - DAILY_RETENTION_DAYS * 86_400_000).toISOString().slice(0, 10),
    );
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // setAlarm is a storage write: it does not open the input gate.
      void this.ctx.storage.setAlarm(now + USAGE_FLUSH_DELAY_MS);
    }
  }
}
