/**
 * @module
 * The invariants, checked after every event. The checker sees every grant
 * the home issues (whether or not its answer arrives), every admission and
 * where it was spent from, and the revocation's times; it throws an
 * InvariantViolation naming the scenario, the seed and the event index.
 *
 *  1. Never over-admit: per minute and per day window, admissions ≤ the limit,
 *     counted two ways: by the window the call was charged to (the grant's
 *     reservation, or the home's window for an exact call) and by the true
 *     virtual time at which it was admitted.
 *  2. The home's count covers the admissions: in its current windows, what the
 *     home holds as used is ≥ what was really admitted there (a refund never
 *     gives back a spent call).
 *  3. A holder never spends from a grant at or after the home's expiry of it,
 *     nor more than its calls.
 *  4. Revocation: no grant after the revocation reached the home; no admission
 *     later than LEASE_TTL_MS after that; no call admitted whose start is after
 *     the admin call returned.
 */
import { LEASE_TTL_MS } from "../src/limits/lease";
import { DAY_MS, MINUTE_MS } from "../src/limits/windows";

/** What a grant's calls were reserved from at the home: its minute and its day. */
export interface Reserved {
  minuteStart: number;
  dayStart: number;
}

export class InvariantViolation extends Error {
  constructor(
    readonly scenario: string,
    readonly seed: number,
    readonly eventIndex: number,
    readonly detail: string,
  ) {
    super(`invariant broken in ${scenario} (seed ${seed}, event ${eventIndex}): ${detail}`);
    this.name = "InvariantViolation";
  }
}

/** The home's current windows, as the checker reads them. */
export interface HomeWindows {
  minuteStart: number;
  minuteUsed: number;
  dayStart: number;
  dayUsed: number;
}

interface IssuedGrant {
  calls: number;
  used: number;
  expiresAt: number;
  reservedFrom: Reserved;
}

export class Checker {
  private readonly grants = new Map<string, IssuedGrant>();
  private readonly chargedMinute = new Map<number, number>();
  private readonly chargedDay = new Map<number, number>();
  private readonly trueMinute = new Map<number, number>();
  private readonly trueDay = new Map<number, number>();
  private readonly dirty: [Map<number, number>, number, number][] = [];
  private revokedAt: number | undefined;
  private adminReturnedAt: number | undefined;
  /** Admissions checked: a run that checks nothing proves nothing. */
  admissions = 0;

  constructor(
    private readonly scenario: string,
    private readonly seed: number,
    private readonly limits: { perMinute: number; perDay: number },
    private readonly eventIndex: () => number,
    private readonly home: () => HomeWindows,
  ) {}

  grantIssued(grantId: string, calls: number, expiresAt: number, reservedFrom: Reserved, now: number): void {
    if (this.revokedAt !== undefined && now >= this.revokedAt)
      this.fail(`grant ${grantId} issued at ${now}, after the revocation reached the home at ${this.revokedAt}`);
    if (expiresAt > reservedFrom.minuteStart + MINUTE_MS) this.fail(`grant ${grantId} expires at ${expiresAt}, after its minute ends`);
    if (this.grants.has(grantId)) this.fail(`grant id ${grantId} issued twice`);
    this.grants.set(grantId, { calls, used: 0, expiresAt, reservedFrom });
  }

  /** A holder admitted a call (started at `start`) from `grantId` at true time `now`; returns what the call was charged to. */
  localAdmit(grantId: string, now: number, start: number): Reserved {
    const grant = this.grants.get(grantId);
    if (!grant) return this.fail(`a holder spent from grant ${grantId}, which the home never issued`);
    if (now >= grant.expiresAt) this.fail(`a holder spent from grant ${grantId} at ${now}, at or after the home's expiry ${grant.expiresAt}`);
    if (++grant.used > grant.calls) this.fail(`grant ${grantId} spent ${grant.used} times, granted ${grant.calls}`);
    this.admitted(grant.reservedFrom, now, start);
    return grant.reservedFrom;
  }

  /** The room really left in these windows (limit − admitted): what an exact header would say. */
  trueRemaining(windows: Reserved): number {
    return Math.min(
      this.limits.perMinute - (this.chargedMinute.get(windows.minuteStart) ?? 0),
      this.limits.perDay - (this.chargedDay.get(windows.dayStart) ?? 0),
    );
  }

  /** The home admitted an exact call at `now`, charged to its windows then. */
  exactAdmit(charged: Reserved, now: number, start: number): void {
    this.admitted(charged, now, start);
  }

  revocationAtHome(now: number, drainedAt: number): void {
    this.revokedAt = now;
    if (drainedAt > now + LEASE_TTL_MS) this.fail(`drainedAt ${drainedAt} is more than LEASE_TTL_MS after the revocation reached the home (${now})`);
  }

  adminReturned(now: number): void {
    this.adminReturnedAt = now;
  }

  /** After every event: the windows the event touched, and the home's cover of its current windows. */
  afterEvent(): void {
    for (const [counts, windowStart, limit] of this.dirty) {
      const n = counts.get(windowStart) ?? 0;
      if (n > limit) this.fail(`${n} calls admitted in the window starting ${new Date(windowStart).toISOString()} (${this.kindOf(counts)}), limit ${limit}`);
    }
    this.dirty.length = 0;
    const home = this.home();
    const minuteSpent = this.chargedMinute.get(home.minuteStart) ?? 0;
    const daySpent = this.chargedDay.get(home.dayStart) ?? 0;
    if (home.minuteUsed < minuteSpent) this.fail(`the home counts ${home.minuteUsed} used this minute, but ${minuteSpent} calls were admitted in it`);
    if (home.dayUsed < daySpent) this.fail(`the home counts ${home.dayUsed} used today, but ${daySpent} calls were admitted in it`);
    if (home.minuteUsed > this.limits.perMinute || home.dayUsed > this.limits.perDay)
      this.fail(`the home counts ${home.minuteUsed}/${home.dayUsed}, past its limits`);
  }

  private admitted(charged: Reserved, now: number, start: number): void {
    this.admissions++;
    if (this.adminReturnedAt !== undefined && start > this.adminReturnedAt)
      this.fail(`a call started at ${start} was admitted at ${now}, after the admin call returned at ${this.adminReturnedAt}`);
    if (this.revokedAt !== undefined && now >= this.revokedAt + LEASE_TTL_MS)
      this.fail(`a call was admitted at ${now}, LEASE_TTL_MS or more after the revocation reached the home at ${this.revokedAt}`);
    this.count(this.chargedMinute, charged.minuteStart, this.limits.perMinute);
    this.count(this.chargedDay, charged.dayStart, this.limits.perDay);
    this.count(this.trueMinute, now - (now % MINUTE_MS), this.limits.perMinute);
    this.count(this.trueDay, now - (now % DAY_MS), this.limits.perDay);
  }

  private count(counts: Map<number, number>, windowStart: number, limit: number): void {
    counts.set(windowStart, (counts.get(windowStart) ?? 0) + 1);
    this.dirty.push([counts, windowStart, limit]);
  }

  /** Which count a failure is about, for the message. */
  private kindOf(counts: Map<number, number>): string {
    if (counts === this.chargedMinute) return "minute, by reservation";
    if (counts === this.chargedDay) return "day, by reservation";
    if (counts === this.trueMinute) return "minute, by true time";
    return "day, by true time";
  }

  private fail(detail: string): never {
    throw new InvariantViolation(this.scenario, this.seed, this.eventIndex(), detail);
  }
}
