import { DurableObject } from "cloudflare:workers";
import { credentialStateOutcome } from "../auth/credential-state";
import type { Env } from "../env";
import { creditState, creditsCover, crossings, newAccount, nextRefillAt, refilled, toppedUp, type CreditAccount, type CreditRefill } from "./credits";
import { LEASE_TTL_MS, LeaseBook, type LeaseGrant, type LeaseRequest, type Refund } from "./lease";
import { isApiKeyCredential } from "./names";
import {
  DAY_MS,
  MINUTE_MS,
  ownerWindowCounts,
  windowCounts,
  windowStarts,
  type CredentialState,
  type LimitCheck,
  type LimitDecision,
  type LimitEvent,
} from "./windows";

/**
 * One object per credential (`key:<lineage id>`, `user:<id>`, `sub:…`:
 * limits/names.ts) holding its minute and day counters and its revocation
 * state, and one per client address (`ip:<address>`) counting failed
 * authentications. All in the object's SQLite storage, read into memory once
 * when the object starts.
 *
 * Exactness: every method runs synchronously from reading a counter to writing
 * it (the SQL API is synchronous; nothing awaits), so calls never interleave
 * and N concurrent calls against limit L admit exactly min(N, L).
 *
 * Windows are kept per bucket: the object's own credential (counter names
 * 'minute', 'day'), a rotation lineage counted in its owner's object
 * ('lineage:<id>:minute', …) and the owner's shared windows ('owner:minute', …).
 * A call is checked against its own bucket and, in a user's object with
 * owner-level limits, the owner's: admitted by all or counted in none.
 *
 * Where a key counts: an API key's calls count in `key:<lineage>`, the object
 * of its rotation lineage (both keys of a rotation draw from one count), unless
 * its owner has owner-level limits: then in the owner's `user:<id>` object, as
 * a lineage bucket beside the owner's windows, so one synchronous decision
 * covers both. Moving between the two (an admin sets or clears the owner's
 * limits) hands the counts over; an isolate whose cached row still routes the
 * old way is answered "moved" and asks the other object once.
 *
 * Storage (constant size per bucket):
 *   ledger(id = 1, data)                    one row, JSON: every counter by name ([bucket ':'] 'minute' | 'day',
 *                                           or 'auth_failures') as [window_start, count]; each bucket's closed
 *                                           UTC days (last 31; today's count is the 'day' counter); each key's
 *                                           last admission; the credential id usage is filed under
 *   state(name PK, value)                   'status', 'not_after', 'version', 'min_grant_version' (users),
 *                                           'owner_limit_per_minute', 'owner_limit_per_day' (user objects),
 *                                           'moved_to_owner' ('1': a key lineage now counted in its owner's object)
 *   key_state(key_id PK, status, not_after, version)  each API key's state (a lineage object serves a rotation's keys)
 *
 * Credits (src/limits/credits.ts) are kept per bucket in the same ledger row:
 * a key lineage's balance in its object (or beside its windows in the owner's
 * object, moved with its counts), an owner's in the user's object. A call is
 * checked against credits, day and minute in the same synchronous run, so
 * N concurrent calls with C credits admit exactly min(N, C, window room), and
 * a debit is a change of the one row an admission writes anyway. The credits
 * each bucket used are counted per UTC day like its calls ('credits' counters).
 *
 * An admission writes exactly one row (the ledger upsert), whatever windows
 * and buckets it counts in, on a window's or a day's first call too; a refusal
 * writes none; nothing is deleted per request. The request ids of the last
 * two minutes (idempotent retries) are kept in memory only: a retry that
 * reaches a restarted object may count twice, which under-admits by one and
 * never over-admits. Objects from before the ledger are read from their old
 * tables once and written as a ledger by their next admission.
 */
const ADMITTED_RETENTION_MS = 2 * MINUTE_MS;
const DAILY_RETENTION_DAYS = 31;
/** How long admitted counts wait before the alarm copies them to D1 (usage_daily, last_used_at). */
export const USAGE_FLUSH_DELAY_MS = 30_000;

/** A counter's name: a window of a bucket ('minute', 'owner:day', 'lineage:<id>:minute'), the credits a bucket used today ('credits', …), or 'auth_failures'. */
type CounterName = string;

/** The object's own credential (''), a lineage counted in its owner's object, or the owner's shared windows. */
type Bucket = "" | "owner" | `lineage:${string}`;

interface Counter {
  windowStart: number;
  count: number;
}

/** A bucket's counters and credits, as handed from one object to another when a key's counting moves. */
export interface BucketCounts {
  minute?: Counter;
  day?: Counter;
  /** Credits used today. */
  credits?: Counter;
  account?: CreditAccount;
}

/** Whose credits an admin call is about, in the object it reaches: its own credential's, a lineage counted here, or the owner's. */
export type CreditTarget = { lineageId?: string } | { owner: true };

/** Credits as the keys API shows them. */
export interface CreditView {
  balance: number;
  quota: number;
  refill: CreditRefill | null;
  lowThreshold: number | null;
  /** ISO 8601, or null without a refill. */
  nextRefillAt: string | null;
  usedToday: number;
}

/** An admin's credits call: answered here, or "moved" (the lineage counts in its owner's object now). */
export type CreditAnswer = { moved: true } | { moved: false; credits: CreditView | null };

export interface CreditSetting {
  balance: number;
  refill?: CreditRefill | null;
  lowThreshold?: number | null;
}

/** Debiting usage the origin reported after a call. */
export interface UsageDebit {
  amount: number;
  /**
   * The call's request id, when the origin reports through the API (POST
   * /api/v1/usage/report): a report is debited once, however often it is sent
   * (kept for a day: usage_reports).
   */
  requestId?: string;
  /** As in LimitCheck: set when the call counts in its owner's object. */
  lineageId?: string;
  redirected?: boolean;
}

/** A leased key's holder asking for calls in advance (src/limits/lease.ts), with the call that made it ask. */
export interface LeaseCheck extends LimitCheck {
  request: LeaseRequest;
  /** A background renewal carries no call: without a grant nothing is decided. */
  renewal?: boolean;
}

/**
 * "granted": calls reserved in every window (and balance) the call counts in,
 * with the counts after the reservation; "exact": the end-game, so this call
 * was decided as an exact one (`decision`); or the credential's state, or moved.
 */
export type LeaseAnswer =
  | { outcome: "granted"; grant: LeaseGrant; decision: LimitDecision }
  | { outcome: "exact"; decision: LimitDecision }
  /** A renewal the home made no grant for (the end-game): the holder asks for each call from now on. */
  | { outcome: "no_grant" }
  | { outcome: "inactive" | "revoked" | "expired" | "moved" };

/** What a grant was reserved from: buckets, the windows' starts, and each bucket's balance epoch (null: none). */
interface Reservation {
  buckets: Bucket[];
  minuteStart: number;
  dayStart: number;
  epochs: (number | null)[];
}

export type DebitResult =
  | { outcome: "moved" }
  /** `balance`: the debited bucket's after the debit, null when it has none. "duplicate": that request's usage was debited before. */
  | { outcome: "debited" | "duplicate"; events: LimitEvent[]; balance: number | null };

/** How long a reported request id is remembered, so a repeated report debits nothing. */
export const USAGE_REPORT_RETENTION_MS = DAY_MS;

export interface OwnerLimits {
  limitPerMinute: number | null;
  limitPerDay: number | null;
}

export interface AuthFailureTally {
  /** Failures from this address in the current minute, this one included. */
  failures: number;
  /** Epoch ms until which the address is throttled, or null while under the limit. */
  throttledUntil: number | null;
}

/** The ledger row's JSON. */
interface LedgerData {
  counters: Record<CounterName, [windowStart: number, count: number]>;
  closedDays: Record<string, Record<string, number>>;
  lastUse: Record<string, number>;
  /** The id usage is filed under (LimitCheck.credentialId); objects from before the ledger kept it in `state`. */
  credentialId?: string;
  /** Credit accounts by bucket. */
  credits?: Record<string, CreditAccount>;
  /** Closed UTC days' credits used, like closedDays. */
  closedCredits?: Record<string, Record<string, number>>;
}

const counterName = (bucket: Bucket, window: "minute" | "day" | "credits"): CounterName => (bucket === "" ? window : `${bucket}:${window}`);
/** closedDays' key of a bucket: '' the object's own, else the lineage id. */
const dayKey = (bucket: Bucket): string => (bucket === "" ? "" : bucket.slice("lineage:".length));
const lineageBucket = (lineageId: string): Bucket => `lineage:${lineageId}`;

export class RateLimiter extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly counters = new Map<CounterName, Counter>();
  /** Closed UTC days' counts, last DAILY_RETENTION_DAYS, per bucket: '' the object's own, else a lineage id. */
  private readonly closedDays = new Map<string, Map<string, number>>();
  /** closedDays as ledger JSON; null once they change (at most once a day per bucket). */
  private closedDaysJson: string | null = null;
  /** Closed UTC days' credits used, like closedDays. */
  private readonly closedCredits = new Map<string, Map<string, number>>();
  /** Credit accounts by bucket; a bucket without one draws on no credits. */
  private readonly credits = new Map<Bucket, CreditAccount>();
  /** Each key's last admission (epoch ms), copied to api_keys.last_used_at by the alarm. */
  private readonly lastUse = new Map<string, number>();
  /** Request ids admitted in the last ~2 minutes, for idempotent retries. Memory only: see check(). */
  private readonly recentAdmissions = new Map<string, number>();
  private recentPrunedAt = 0;
  private state: CredentialState = { status: "active", notAfter: null };
  /** Per API key (a lineage's object serves a rotation's old and new key). */
  private readonly keyStates = new Map<string, CredentialState>();
  private credentialId: string | null = null;
  /** Tokens of this user signed with an older grant version (`gv`) are void. */
  private minGrantVersion = 0;
  /** A user's owner-level limits; null while the user has none. */
  private ownerLimits: OwnerLimits | null = null;
  /** A key lineage's object whose counting moved to the owner's object. */
  private movedToOwner = false;
  private flushScheduled = false;
  /**
   * Grants out to leased keys' holders. In memory: after a restart their
   * unused calls are never refunded (under-admission), and since grants from
   * before it may still run, an object that ever granted ('leased' in state)
   * waits out one lease before it reports a revocation as in force everywhere.
   */
  private readonly leases = new LeaseBook<Reservation>();
  private hasLeased = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT);
      CREATE TABLE IF NOT EXISTS key_state (key_id TEXT PRIMARY KEY, status TEXT NOT NULL, not_after INTEGER, version INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
    `);
    this.loadLedger();
    for (const row of this.sql.exec<{ key_id: string; status: CredentialState["status"]; not_after: number | null; version: number }>(
      "SELECT * FROM key_state",
    )) {
      this.keyStates.set(row.key_id, { status: row.status, notAfter: row.not_after, version: row.version });
    }
    const owner: OwnerLimits = { limitPerMinute: null, limitPerDay: null };
    for (const row of this.sql.exec<{ name: string; value: string | null }>("SELECT * FROM state")) {
      if (row.name === "status") this.state.status = row.value as CredentialState["status"];
      if (row.name === "not_after") this.state.notAfter = row.value === null ? null : Number(row.value);
      if (row.name === "version" && row.value !== null) this.state.version = Number(row.value);
      if (row.name === "credential_id") this.credentialId ??= row.value; // objects from before the ledger
      if (row.name === "min_grant_version") this.minGrantVersion = Number(row.value);
      if (row.name === "owner_limit_per_minute" && row.value !== null) owner.limitPerMinute = Number(row.value);
      if (row.name === "owner_limit_per_day" && row.value !== null) owner.limitPerDay = Number(row.value);
      if (row.name === "moved_to_owner") this.movedToOwner = row.value === "1";
      if (row.name === "leased") this.hasLeased = true;
    }
    if (this.hasLeased) this.leases.drainedAt = Date.now() + LEASE_TTL_MS;
    if (owner.limitPerMinute !== null || owner.limitPerDay !== null) this.ownerLimits = owner;
  }

  /**
   * Checks the credential's state and its windows (its own, and its owner's
   * when this object holds owner-level limits), and — when `consume` is set
   * and every window has room — counts the call in all of them. A call refused
   * by any window consumes none. Retrying with the same requestId never counts
   * twice while the object lives (the ids are kept in memory: see Storage above).
   */
  check(input: LimitCheck): LimitDecision {
    const now = Date.now();
    const { minuteStart, dayStart } = windowStarts(now);
    const refused = this.refusalBeforeCounting(input, now);
    if (refused) return { outcome: refused };

    const own: Bucket = input.lineageId === undefined ? "" : lineageBucket(input.lineageId);
    const used = (bucket: Bucket) => ({
      minute: this.countIn(counterName(bucket, "minute"), minuteStart),
      day: this.countIn(counterName(bucket, "day"), dayStart),
    });
    const ownUsed = used(own);
    const owner = this.ownerLimits;
    const ownerUsed = owner ? used("owner") : undefined;
    const ownerRoom = (window: "minute" | "day") => {
      const limit = window === "minute" ? owner?.limitPerMinute : owner?.limitPerDay;
      return limit === null || limit === undefined || ownerUsed![window] < limit;
    };
    const account = this.accountAt(own, now);
    const ownerAccount = owner ? this.accountAt("owner", now) : undefined;
    const decide = (
      outcome: "admitted" | "peek" | "rate_limited" | "daily_quota_exceeded" | "credits_exhausted",
      added = 0,
      events: LimitEvent[] = [],
    ): LimitDecision => ({
      outcome,
      ...windowCounts(now, input, ownUsed.minute + added, ownUsed.day + added),
      ...(owner && ownerUsed ? { owner: ownerWindowCounts(now, owner, ownerUsed.minute + added, ownerUsed.day + added) } : {}),
      // Read after admit(): the balance the call left.
      ...(account ? { credits: creditState(this.credits.get(own)!, now) } : {}),
      ...(ownerAccount ? { ownerCredits: creditState(this.credits.get("owner")!, now) } : {}),
      ...(events.length > 0 ? { events } : {}),
    });

    if (!input.consume) return decide("peek");
    if (input.retry && this.alreadyAdmitted(input.requestId)) return decide("admitted");
    // Credits first: without a refill they come back only when an admin adds some, the longest wait there is.
    const cost = input.cost ?? 1;
    const required = Math.max(cost, input.creditReserve ?? 0);
    if ((account && !creditsCover(account.balance, required)) || (ownerAccount && !creditsCover(ownerAccount.balance, required))) {
      return decide("credits_exhausted");
    }
    // Day first: when both windows are exhausted, the day's reset is the true wait.
    if (ownUsed.day >= input.limitPerDay || !ownerRoom("day")) return decide("daily_quota_exceeded");
    if (ownUsed.minute >= input.limitPerMinute || !ownerRoom("minute")) return decide("rate_limited");

    const events = this.admit(input, now, owner ? [own, "owner"] : [own], cost);
    if (ownUsed.day + 1 === input.limitPerDay) events.push(dailyEvent("own", dayStart, input.limitPerDay));
    if (owner?.limitPerDay != null && ownerUsed!.day + 1 === owner.limitPerDay) events.push(dailyEvent("owner", dayStart, owner.limitPerDay));
    return decide("admitted", 1, events);
  }

  /**
   * What check() and lease() answer before looking at any window: the
   * counting moved to the other object (an admin set or cleared the owner's
   * limits after the caller's key row was cached), the credential is not
   * usable, or a keygate token was signed before its user's access last changed.
   */
  private refusalBeforeCounting(input: LimitCheck, now: number): "moved" | "inactive" | "revoked" | "expired" | undefined {
    if (!input.redirected && (input.lineageId === undefined ? this.movedToOwner : this.ownerLimits === null)) return "moved";
    if (input.lineageId === undefined && input.credentialId !== undefined && input.credentialId !== this.credentialId) {
      this.rememberCredential(input.credentialId);
    }
    const unusable = credentialStateOutcome(input.keyId === undefined ? this.state : this.stateOfKey(input.keyId), now);
    if (unusable) return unusable;
    if (input.grantVersion !== undefined && input.grantVersion < this.minGrantVersion) return "revoked";
    return undefined;
  }

  // ---- Leased admission (src/limits/lease.ts). ----

  /**
   * A holder's request for calls in advance, made with a call it could not
   * admit itself. The same checks as check(), then: refunds of the holder's
   * expired grants, and a grant cut from the least room of every window and
   * balance the call counts in, reserved in all of them at once (one row
   * written). In the end-game no grant is made and the call is decided exactly.
   */
  lease(input: LeaseCheck): LeaseAnswer {
    const now = Date.now();
    const { minuteStart, dayStart } = windowStarts(now);
    const refused = this.refusalBeforeCounting(input, now);
    if (refused) return { outcome: refused };

    const refunded = this.refund(this.leases.release(input.request.released, now), minuteStart, dayStart);
    const own: Bucket = input.lineageId === undefined ? "" : lineageBucket(input.lineageId);
    const owner = this.ownerLimits;
    const buckets: Bucket[] = owner ? [own, "owner"] : [own];
    const rooms = [
      input.limitPerMinute - this.countIn(counterName(own, "minute"), minuteStart),
      input.limitPerDay - this.countIn(counterName(own, "day"), dayStart),
    ];
    if (owner?.limitPerMinute != null) rooms.push(owner.limitPerMinute - this.countIn("owner:minute", minuteStart));
    if (owner?.limitPerDay != null) rooms.push(owner.limitPerDay - this.countIn("owner:day", dayStart));
    // A leased call costs 1 credit (other prices are decided exactly: src/limits/leased-admission.ts).
    for (const bucket of buckets) {
      const account = this.accountAt(bucket, now);
      if (account) rooms.push(account.balance);
    }
    const room = Math.max(0, Math.min(...rooms));
    const reservation: Reservation = { buckets, minuteStart, dayStart, epochs: buckets.map((bucket) => this.credits.get(bucket)?.epoch ?? null) };
    const grant = this.leases.grant(input.request, { calls: room, windowEndsAt: minuteStart + MINUTE_MS }, now, reservation);
    if (!grant) {
      if (refunded) this.persist();
      if (input.renewal) return { outcome: "no_grant" };
      const decision = this.check({ ...input, redirected: true });
      // The holder repeats a minute's refusal from memory for up to a lease (leased-admission.ts): a revocation waits that out too.
      if (decision.outcome === "rate_limited") this.leases.drainedAt = Math.max(this.leases.drainedAt, now + LEASE_TTL_MS);
      return { outcome: "exact", decision };
    }

    const before = { ownDay: this.countIn(counterName(own, "day"), dayStart), ownerDay: this.countIn("owner:day", dayStart) };
    for (const bucket of buckets) {
      this.closeDayIfPassed(bucket, dayStart);
      for (const [window, start] of [
        ["minute", minuteStart],
        ["day", dayStart],
      ] as const) {
        const name = counterName(bucket, window);
        this.counters.set(name, { windowStart: start, count: this.countIn(name, start) + grant.calls });
      }
    }
    const events = this.spend(buckets, grant.calls, now);
    if (before.ownDay < input.limitPerDay && before.ownDay + grant.calls >= input.limitPerDay) events.push(dailyEvent("own", dayStart, input.limitPerDay));
    if (owner?.limitPerDay != null && before.ownerDay < owner.limitPerDay && before.ownerDay + grant.calls >= owner.limitPerDay) {
      events.push(dailyEvent("owner", dayStart, owner.limitPerDay));
    }
    if (input.keyId !== undefined) this.lastUse.set(input.keyId, now);
    this.persist();
    if (!this.hasLeased) {
      this.hasLeased = true;
      this.sql.exec("INSERT INTO state (name, value) VALUES ('leased', '1') ON CONFLICT (name) DO NOTHING");
    }
    this.scheduleFlush(now);
    const ownCounts = windowCounts(now, input, this.countIn(counterName(own, "minute"), minuteStart), this.countIn(counterName(own, "day"), dayStart));
    const account = this.credits.get(own);
    const ownerAccount = owner ? this.credits.get("owner") : undefined;
    const decision: LimitDecision = {
      outcome: "admitted",
      ...ownCounts,
      ...(owner ? { owner: ownerWindowCounts(now, owner, this.countIn("owner:minute", minuteStart), this.countIn("owner:day", dayStart)) } : {}),
      ...(account ? { credits: creditState(account, now) } : {}),
      ...(ownerAccount ? { ownerCredits: creditState(ownerAccount, now) } : {}),
      ...(events.length > 0 ? { events } : {}),
    };
    return { outcome: "granted", grant, decision };
  }

  /** Milliseconds until every grant this object issued has ended: a revocation is in force everywhere then. */
  leaseDrainMs(): number {
    return Math.max(0, this.leases.drainedAt - Date.now());
  }

  /** Gives released calls back to the windows (and balances) they were reserved from, where those are still current. */
  private refund(refunds: readonly Refund<Reservation>[], minuteStart: number, dayStart: number): boolean {
    let changed = false;
    for (const { calls, reservedFrom } of refunds) {
      reservedFrom.buckets.forEach((bucket, i) => {
        const giveBack = (name: CounterName, start: number) => {
          const counter = this.counters.get(name);
          if (!counter || counter.windowStart !== start) return;
          this.counters.set(name, { windowStart: start, count: Math.max(0, counter.count - calls) });
          changed = true;
        };
        if (reservedFrom.minuteStart === minuteStart) giveBack(counterName(bucket, "minute"), minuteStart);
        if (reservedFrom.dayStart === dayStart) {
          giveBack(counterName(bucket, "day"), dayStart);
          giveBack(counterName(bucket, "credits"), dayStart);
        }
        // A balance set, topped up or refilled since is a new balance: what the old one reserved is not added to it.
        const account = this.credits.get(bucket);
        if (account && account.epoch === reservedFrom.epochs[i]) {
          this.credits.set(bucket, { ...account, balance: account.balance + calls });
          changed = true;
        }
      });
    }
    return changed;
  }

  // ---- Credits: usage the origin reports, and the admin's calls. ----

  /**
   * Debits usage the origin reported after an admitted call (it may take the
   * balance below zero: the next call is refused) and counts it as credits
   * used today. Answers "moved" like check() when the lineage counts elsewhere now.
   */
  debit(input: UsageDebit): DebitResult {
    if (!input.redirected && (input.lineageId === undefined ? this.movedToOwner : this.ownerLimits === null)) return { outcome: "moved" };
    const now = Date.now();
    const own: Bucket = input.lineageId === undefined ? "" : lineageBucket(input.lineageId);
    if (input.requestId !== undefined && !this.firstReport(input.requestId, now)) {
      return { outcome: "duplicate", events: [], balance: this.accountAt(own, now)?.balance ?? null };
    }
    const events = this.spend(this.ownerLimits ? [own, "owner"] : [own], input.amount, now);
    this.persist();
    this.scheduleFlush(now);
    return { outcome: "debited", events, balance: this.credits.get(own)?.balance ?? null };
  }

  /** Records a reported request id; false when it was reported before. The table exists only in objects that took reports. */
  private firstReport(requestId: string, now: number): boolean {
    this.sql.exec("CREATE TABLE IF NOT EXISTS usage_reports (request_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID");
    const inserted = this.sql.exec("INSERT INTO usage_reports (request_id, at) VALUES (?, ?) ON CONFLICT (request_id) DO NOTHING RETURNING 1", requestId, now);
    return inserted.toArray().length === 1;
  }

  /** The credits of a bucket here, or "moved" when a lineage's counting is in the other object. */
  readCredits(target: CreditTarget): CreditAnswer {
    const bucket = this.creditBucket(target);
    if (bucket === undefined) return { moved: true };
    return { moved: false, credits: this.creditView(bucket, Date.now()) };
  }

  /** Sets a balance (and its refill and low threshold), or removes it (null: calls draw on no credits). A new epoch. */
  setCredits(target: CreditTarget, setting: CreditSetting | null): CreditAnswer {
    const bucket = this.creditBucket(target);
    if (bucket === undefined) return { moved: true };
    const now = Date.now();
    if (setting === null) this.credits.delete(bucket);
    else this.credits.set(bucket, newAccount(setting, now, this.credits.get(bucket)?.epoch ?? 0));
    this.persist();
    return { moved: false, credits: this.creditView(bucket, now) };
  }

  /** Adds credits to a balance; null credits when the bucket has none (topping up needs a balance set first). */
  topUpCredits(target: CreditTarget, amount: number): CreditAnswer {
    const bucket = this.creditBucket(target);
    if (bucket === undefined) return { moved: true };
    const now = Date.now();
    const account = this.accountAt(bucket, now);
    if (!account) return { moved: false, credits: null };
    this.credits.set(bucket, toppedUp(account, amount));
    this.persist();
    return { moved: false, credits: this.creditView(bucket, now) };
  }

  private creditBucket(target: CreditTarget): Bucket | undefined {
    if ("owner" in target) return "owner";
    if (target.lineageId === undefined) return this.movedToOwner ? undefined : "";
    return this.ownerLimits === null ? undefined : lineageBucket(target.lineageId);
  }

  private creditView(bucket: Bucket, now: number): CreditView | null {
    const account = this.accountAt(bucket, now);
    if (!account) return null;
    return {
      balance: account.balance,
      quota: account.quota,
      refill: account.refill,
      lowThreshold: account.lowThreshold,
      nextRefillAt: account.refill ? new Date(nextRefillAt(account.refill, now)).toISOString() : null,
      usedToday: this.countIn(counterName(bucket, "credits"), windowStarts(now).dayStart),
    };
  }

  /**
   * A bucket's account as of `now`, refilled if a refill came due. The refill
   * is kept in memory and written with the next change: it is a function of
   * the clock, so an object that restarts before then computes it again.
   */
  private accountAt(bucket: Bucket, now: number): CreditAccount | undefined {
    const held = this.credits.get(bucket);
    if (!held) return undefined;
    const current = refilled(held, now);
    if (current !== held) this.credits.set(bucket, current);
    return current;
  }

  /** Debits `amount` from each bucket's account (if any) and counts it as credits used today; the caller persists. */
  private spend(buckets: readonly Bucket[], amount: number, now: number): LimitEvent[] {
    const { dayStart } = windowStarts(now);
    const events: LimitEvent[] = [];
    for (const bucket of buckets) {
      this.closeDayIfPassed(bucket, dayStart);
      const used = counterName(bucket, "credits");
      if (amount !== 0 || this.counters.has(used)) this.counters.set(used, { windowStart: dayStart, count: this.countIn(used, dayStart) + amount });
      const account = this.accountAt(bucket, now);
      if (!account || amount === 0) continue;
      const after = account.balance - amount;
      this.credits.set(bucket, { ...account, balance: after });
      for (const type of crossings(account, account.balance, after)) {
        events.push({
          type,
          scope: bucket === "owner" ? "owner" : "own",
          period: String(account.epoch),
          data: { balance: after, quota: account.quota, ...(type === "credits.low" ? { threshold: account.lowThreshold } : {}) },
        });
      }
    }
    return events;
  }

  // ---- Per-key state: a lineage's object and the owner's object both hold it for each key. ----

  /**
   * A key's state as its row was last written (`version` orders the writes):
   * an older or repeated state is ignored, and a revoked key stays revoked.
   */
  setKeyState(keyId: string, state: CredentialState): number {
    const held = this.keyStates.get(keyId);
    // Revocation is final and wins whatever version it comes with (a user's deletion revokes with the version it read).
    if (held && (held.status === "revoked" || (state.status !== "revoked" && (held.version ?? 0) > (state.version ?? 0)))) return this.leaseDrainMs();
    const stored = { status: state.status, notAfter: state.notAfter, version: state.version ?? 0 };
    this.keyStates.set(keyId, stored);
    this.sql.exec(
      "INSERT INTO key_state (key_id, status, not_after, version) VALUES (?, ?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET status = excluded.status, not_after = excluded.not_after, version = excluded.version",
      keyId,
      stored.status,
      stored.notAfter,
      stored.version,
    );
    // Grants made before this state may still run in holders: the caller waits this long (src/limits/client.ts syncKeyState).
    return this.leaseDrainMs();
  }

  /** What this object knows of a key: nothing yet means active (the key row's own state is checked before). */
  keyState(keyId: string): CredentialState {
    return { ...this.stateOfKey(keyId) };
  }

  private stateOfKey(keyId: string): CredentialState {
    const held = this.keyStates.get(keyId);
    if (held) return held;
    // Objects from before per-key state kept one state, that of the key they were made for.
    return keyId === this.credentialId ? this.state : { status: "active", notAfter: null };
  }

  // ---- Moving a lineage's counting between its own object and its owner's. ----

  /**
   * In a user's object: sets (or clears) the owner-level limits. Clearing them
   * hands every lineage's counts back, to be given to each lineage's object.
   */
  setOwnerLimits(limits: OwnerLimits | null): Record<string, BucketCounts> {
    const none = limits === null || (limits.limitPerMinute === null && limits.limitPerDay === null);
    const wasLimited = this.ownerLimits !== null;
    this.ownerLimits = none ? null : { ...limits };
    this.sql.exec(
      "INSERT INTO state (name, value) VALUES ('owner_limit_per_minute', ?), ('owner_limit_per_day', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      none ? null : limits.limitPerMinute === null ? null : String(limits.limitPerMinute),
      none ? null : limits.limitPerDay === null ? null : String(limits.limitPerDay),
    );
    if (!none) {
      // The owner's windows start with what the user's own tokens used in them; their keys' counts follow (adoptCounts).
      if (!wasLimited) this.addCounts("owner", { minute: this.counters.get("minute"), day: this.counters.get("day") });
      return {};
    }
    const handed: Record<string, BucketCounts> = {};
    const now = Date.now();
    const { dayStart } = windowStarts(now);
    const lineages = new Set<string>();
    for (const name of this.counters.keys()) {
      const lineage = /^lineage:(.+):(?:minute|day|credits)$/.exec(name)?.[1];
      if (lineage) lineages.add(lineage);
    }
    for (const bucket of this.credits.keys()) if (bucket.startsWith("lineage:")) lineages.add(dayKey(bucket));
    for (const lineage of lineages) {
      this.closeDayIfPassed(lineageBucket(lineage), dayStart);
      handed[lineage] = this.bucketCounts(lineageBucket(lineage), now);
      this.dropBucket(lineageBucket(lineage));
    }
    // The owner's own windows end with the limits; a later limit starts counting afresh.
    this.dropCounter("owner:minute");
    this.dropCounter("owner:day");
    return handed;
  }

  /** In a lineage's object: its counting moves to the owner's object; the counts so far go with it. */
  handOverToOwner(): BucketCounts {
    const now = Date.now();
    this.closeDayIfPassed("", windowStarts(now).dayStart);
    const handed = this.bucketCounts("", now);
    this.movedToOwner = true;
    this.sql.exec("INSERT INTO state (name, value) VALUES ('moved_to_owner', '1') ON CONFLICT (name) DO UPDATE SET value = excluded.value");
    this.dropBucket("");
    return handed;
  }

  /**
   * Adds counts handed over by the other object to a bucket (a lineage in the
   * owner's object, or the lineage object's own when `lineageId` is absent),
   * and ends a move away: calls counted here meanwhile are kept, not replaced.
   */
  adoptCounts(counts: BucketCounts, lineageId?: string): void {
    if (lineageId === undefined && this.movedToOwner) {
      this.movedToOwner = false;
      this.sql.exec("DELETE FROM state WHERE name = 'moved_to_owner'");
    }
    const bucket: Bucket = lineageId === undefined ? "" : lineageBucket(lineageId);
    this.addCounts(bucket, counts);
    // The balance travels with the counts; one set here meanwhile (an admin's, after the move) is newer and kept.
    if (counts.account && !this.credits.has(bucket)) {
      this.credits.set(bucket, counts.account);
      this.persist();
    }
    // The lineage's calls in the current windows were the owner's calls too.
    if (lineageId !== undefined && this.ownerLimits) this.addCounts("owner", { minute: counts.minute, day: counts.day });
  }

  /** A bucket's counters and account, to hand to another object. */
  private bucketCounts(bucket: Bucket, now: number): BucketCounts {
    const account = this.accountAt(bucket, now);
    const credits = this.counters.get(counterName(bucket, "credits"));
    return {
      minute: this.counters.get(counterName(bucket, "minute")),
      day: this.counters.get(counterName(bucket, "day")),
      ...(credits ? { credits } : {}),
      ...(account ? { account } : {}),
    };
  }

  /** Forgets a bucket's counters and account (handed to another object). */
  private dropBucket(bucket: Bucket): void {
    this.credits.delete(bucket);
    for (const window of ["minute", "day", "credits"] as const) this.counters.delete(counterName(bucket, window));
    this.persist();
  }

  private addCounts(bucket: Bucket, counts: BucketCounts): void {
    const { minuteStart, dayStart } = windowStarts(Date.now());
    for (const [window, start] of [
      ["minute", minuteStart],
      ["day", dayStart],
      ["credits", dayStart],
    ] as const) {
      const handed = counts[window];
      if (!handed || handed.windowStart !== start || handed.count === 0) continue; // a window that has passed counts nothing
      const name = counterName(bucket, window);
      this.storeCounter(name, start, this.countIn(name, start) + handed.count);
    }
  }
  /**
   * Revocation, deactivation, reactivation and rotation grace take effect here
   * at once. Writes reach the object in any order, so a state carrying a
   * version (its key row's) that is not newer than the one held is ignored.
   * `revoked` is final: once held it is never replaced, and a revoked state is
   * taken whatever its version (revocation is final in D1 too). A state with
   * no version (a user's object) is taken as given, except over `revoked`.
   * Returns the state held afterwards.
   */
  setState(state: CredentialState): CredentialState {
    const held = this.state;
    if (held.status === "revoked") return { ...held };
    const notNewer = state.version !== undefined && held.version !== undefined && state.version <= held.version;
    if (notNewer && state.status !== "revoked") return { ...held };
    const version = state.version === undefined ? held.version : Math.max(state.version, held.version ?? state.version);
    this.state = { status: state.status, notAfter: state.notAfter, ...(version === undefined ? {} : { version }) };
    this.sql.exec(
      "INSERT INTO state (name, value) VALUES ('status', ?), ('not_after', ?), ('version', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      state.status,
      state.notAfter === null ? null : String(state.notAfter),
      version === undefined ? null : String(version),
    );
    return { ...this.state };
  }

  /** The object's own credential's state, with the version it came with (when it had one). */
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
    this.sql.exec("INSERT INTO state (name, value) VALUES ('min_grant_version', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value", String(version));
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

  /**
   * Counts for usage stats: this minute, today, and the last 31 days (today
   * last), of the object's own credential or of a lineage counted here.
   */
  usage(lineageId?: string): {
    minuteUsed: number;
    dayUsed: number;
    daily: DailyUsage[];
    movedToOwner: boolean;
    credits: CreditView | null;
    creditsUsedToday: number;
  } {
    const bucket: Bucket = lineageId === undefined ? "" : lineageBucket(lineageId);
    const { minuteStart, dayStart } = windowStarts(Date.now());
    return {
      // A lineage counted in its owner's object: its counts are there (readKeyUsage follows).
      movedToOwner: lineageId === undefined && this.movedToOwner,
      minuteUsed: this.countIn(counterName(bucket, "minute"), minuteStart),
      dayUsed: this.countIn(counterName(bucket, "day"), dayStart),
      daily: this.dailyCounts(bucket, DAILY_RETENTION_DAYS),
      credits: this.creditView(bucket, Date.now()),
      creditsUsedToday: this.countIn(counterName(bucket, "credits"), dayStart),
    };
  }

  /**
   * Per UTC day, oldest first: up to `closedDays` closed days from the table,
   * then the bucket's 'day' counter's own day — today, or the last day with
   * calls when none came since (it is closed into the table by the next admission).
   */
  private dailyCounts(bucket: Bucket, closedDays: number): DailyUsage[] {
    const open = this.counters.get(counterName(bucket, "day"));
    const openDay = open ? isoDay(open.windowStart) : "9999-12-31";
    const days = this.closedDays.get(dayKey(bucket)) ?? new Map<string, number>();
    const credits = this.closedCredits.get(dayKey(bucket));
    const closed = [...days]
      .filter(([day]) => day < openDay)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .slice(-closedDays)
      .map(([day, count]) => ({ day, count, creditsUsed: credits?.get(day) ?? 0 }));
    const openCredits = this.counters.get(counterName(bucket, "credits"));
    const creditsUsed = openCredits && open && openCredits.windowStart === open.windowStart ? openCredits.count : 0;
    return open && open.count > 0 ? [...closed, { day: openDay, count: open.count, creditsUsed }] : closed;
  }

  /** Copies the last two days' counts and each key's last-use time to D1, off the request path. */
  override async alarm(): Promise<void> {
    this.flushScheduled = false;
    const hasReports = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'usage_reports'").toArray().length > 0;
    if (hasReports) this.sql.exec("DELETE FROM usage_reports WHERE at < ?", Date.now() - USAGE_REPORT_RETENTION_MS);
    // Usage is filed by credential: the object's own, and each lineage counted here (a limited owner's keys).
    const filings: [id: string, bucket: Bucket][] = this.credentialId ? [[this.credentialId, ""]] : [];
    for (const name of this.counters.keys()) {
      const lineage = /^lineage:(.+):day$/.exec(name)?.[1];
      if (lineage) filings.push([lineage, lineageBucket(lineage)]);
    }
    const statements: D1PreparedStatement[] = [];
    for (const [id, bucket] of filings) {
      // The open day and the one before: a flush just after midnight still owes yesterday's last calls.
      for (const row of this.dailyCounts(bucket, 1)) {
        statements.push(
          this.env.DB.prepare(
            "INSERT INTO usage_daily (key_id, day, count, credits_used) VALUES (?, ?, ?, ?) ON CONFLICT (key_id, day) DO UPDATE SET count = max(count, excluded.count), credits_used = max(credits_used, excluded.credits_used)",
          ).bind(id, row.day, row.count, row.creditsUsed),
        );
      }
    }
    for (const [keyId, at] of this.lastUse) {
      // "": admissions from before per-key last use, which were the object's own key's.
      const id = keyId !== "" ? keyId : this.credentialId && isApiKeyCredential(this.credentialId) ? this.credentialId : null;
      if (id) statements.push(this.env.DB.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ?").bind(new Date(at).toISOString(), id));
    }
    if (statements.length > 0) await this.env.DB.batch(statements);
  }

  /**
   * Everything an admission changes is one row: the counters of every bucket,
   * the closed days and each key's last use, as JSON. One upsert per admission
   * (one row written), however many windows and buckets the call counts in,
   * on a window's first call and a day's too; nothing is deleted per request.
   */
  private persist(): void {
    // Written as text directly, the closed days from a cache: this runs on every admission.
    let counters = "";
    for (const [name, counter] of this.counters) counters += `${counters ? "," : ""}${JSON.stringify(name)}:[${counter.windowStart},${counter.count}]`;
    let lastUse = "";
    for (const [keyId, at] of this.lastUse) lastUse += `${lastUse ? "," : ""}${JSON.stringify(keyId)}:${at}`;
    this.closedDaysJson ??= closedJson(this.closedDays, this.closedCredits);
    const credential = this.credentialId === null ? "" : `,"credentialId":${JSON.stringify(this.credentialId)}`;
    // Only objects that hold credits write them: most rows stay as they were.
    const credits = this.credits.size === 0 ? "" : `,"credits":${JSON.stringify(Object.fromEntries(this.credits))}`;
    const data = `{"counters":{${counters}},"closedDays":${this.closedDaysJson}${credits},"lastUse":{${lastUse}}${credential}}`;
    this.sql.exec("INSERT INTO ledger (id, data) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data", data);
  }

  private loadLedger(): void {
    const row = this.sql.exec<{ data: string }>("SELECT data FROM ledger WHERE id = 1").toArray()[0];
    if (row) {
      const data = JSON.parse(row.data) as LedgerData;
      for (const [name, [windowStart, count]] of Object.entries(data.counters)) this.counters.set(name, { windowStart, count });
      for (const [bucket, days] of Object.entries(data.closedDays)) this.closedDays.set(bucket, new Map(Object.entries(days)));
      for (const [bucket, days] of Object.entries(data.closedCredits ?? {})) this.closedCredits.set(bucket, new Map(Object.entries(days)));
      for (const [bucket, account] of Object.entries(data.credits ?? {})) this.credits.set(bucket as Bucket, account);
      for (const [keyId, at] of Object.entries(data.lastUse)) this.lastUse.set(keyId, at);
      if (data.credentialId !== undefined) this.credentialId = data.credentialId;
      return;
    }
    // An object from before the ledger: its tables, read once; the next write stores them as a ledger.
    const tables = new Set(
      this.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .toArray()
        .map((t) => t.name),
    );
    if (tables.has("counters")) {
      for (const r of this.sql.exec<{ name: string; window_start: number; count: number }>("SELECT * FROM counters")) {
        this.counters.set(r.name, { windowStart: r.window_start, count: r.count });
      }
    }
    if (tables.has("daily")) {
      this.closedDays.set(
        "",
        new Map(
          this.sql
            .exec<{ day: string; count: number }>("SELECT day, count FROM daily")
            .toArray()
            .map((r) => [r.day, r.count]),
        ),
      );
    }
    if (tables.has("admitted")) {
      // Admissions from before per-key last use name no key: they were the object's own key's (credential_id).
      for (const r of this.sql.exec<Record<string, number | string | null>>("SELECT * FROM admitted")) {
        const keyId = (r.key_id as string | null | undefined) ?? "";
        this.lastUse.set(keyId, Math.max(this.lastUse.get(keyId) ?? 0, Number(r.at)));
      }
    }
  }

  /** The count of `name` in the window starting at `windowStart`: 0 once the stored window has passed. */
  private countIn(name: CounterName, windowStart: number): number {
    const counter = this.counters.get(name);
    return counter?.windowStart === windowStart ? counter.count : 0;
  }

  private storeCounter(name: CounterName, windowStart: number, count: number): void {
    this.counters.set(name, { windowStart, count });
    this.persist();
  }

  /** Kept in the ledger row, written with the admission that follows (usage is only filed for admitted calls). */
  private rememberCredential(credentialId: string): void {
    this.credentialId = credentialId;
  }

  private alreadyAdmitted(requestId: string): boolean {
    return this.recentAdmissions.has(requestId);
  }

  private dropCounter(name: CounterName): void {
    if (this.counters.delete(name)) this.persist();
  }

  /** Every bucket's counters and credits, in one synchronous run and one row written (persist). Returns the credit crossings. */
  private admit(input: LimitCheck, now: number, buckets: Bucket[], cost: number): LimitEvent[] {
    const { minuteStart, dayStart } = windowStarts(now);
    for (const bucket of buckets) {
      this.closeDayIfPassed(bucket, dayStart);
      const minute = counterName(bucket, "minute");
      const day = counterName(bucket, "day");
      this.counters.set(minute, { windowStart: minuteStart, count: this.countIn(minute, minuteStart) + 1 });
      this.counters.set(day, { windowStart: dayStart, count: this.countIn(day, dayStart) + 1 });
    }
    const events = this.spend(buckets, cost, now);
    if (input.keyId !== undefined) this.lastUse.set(input.keyId, now);
    this.persist();
    this.recentAdmissions.set(input.requestId, now);
    // Pruned in memory once per minute: ids older than a retry can be.
    if (now - this.recentPrunedAt >= MINUTE_MS) {
      this.recentPrunedAt = now;
      for (const [id, at] of this.recentAdmissions) if (at < now - ADMITTED_RETENTION_MS) this.recentAdmissions.delete(id);
    }
    this.scheduleFlush(now);
    return events;
  }

  /** The alarm that copies usage to D1, once per flush delay. */
  private scheduleFlush(now: number): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // A storage write like the others: the output gate holds the reply until it is durable.
      void this.ctx.storage.setAlarm(now + USAGE_FLUSH_DELAY_MS);
    }
  }

  /** A bucket's day counter has passed: keep its final count for usage stats (in memory; the caller persists), and forget days past retention. */
  private closeDayIfPassed(bucket: Bucket, dayStart: number): void {
    if (bucket === "owner") return;
    const oldest = isoDay(dayStart - DAILY_RETENTION_DAYS * DAY_MS);
    for (const [window, closed] of [
      ["day", this.closedDays],
      ["credits", this.closedCredits],
    ] as const) {
      const finished = this.counters.get(counterName(bucket, window));
      if (!finished || finished.windowStart === dayStart) continue;
      const days = closed.get(dayKey(bucket)) ?? new Map<string, number>();
      days.set(isoDay(finished.windowStart), finished.count);
      for (const day of days.keys()) if (day < oldest) days.delete(day);
      closed.set(dayKey(bucket), days);
      if (window === "credits") this.counters.delete(counterName(bucket, "credits"));
      this.closedDaysJson = null;
    }
  }
}

/** One UTC day's usage of a bucket: calls admitted and credits used. */
export interface DailyUsage {
  day: string;
  count: number;
  creditsUsed: number;
}

function isoDay(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

function dailyEvent(scope: LimitEvent["scope"], dayStart: number, limit: number): LimitEvent {
  return { type: "quota.daily_exhausted", scope, period: isoDay(dayStart), data: { day: isoDay(dayStart), limit } };
}

/** The closed days as ledger JSON: calls per day, and credits used per day once any bucket used some. */
function closedJson(closedDays: Map<string, Map<string, number>>, closedCredits: Map<string, Map<string, number>>): string {
  const json = (closed: Map<string, Map<string, number>>) =>
    JSON.stringify(Object.fromEntries([...closed].map(([bucket, days]) => [bucket, Object.fromEntries(days)])));
  return closedCredits.size === 0 ? json(closedDays) : `${json(closedDays)},"closedCredits":${json(closedCredits)}`;
}
