/**
 * @module
 * Leased admission (issue 17): escrow of calls. Pure: clocks are arguments,
 * so the discrete-event simulator (sim/) and the RateLimiter object run this
 * very code.
 *
 * The home (a key's RateLimiter object) grants a holder (a Worker isolate) a
 * number of calls in advance and counts them as admitted *when it grants
 * them*: Σ home admissions + Σ grants ≤ the limit of every window, so the
 * calls the holders admit from their grants can never pass it, whatever the
 * interleaving, delay, loss or crash. A holder admits from memory while it
 * holds calls; it renews in the background before its grant runs out.
 *
 * State machine of a holder, per key:
 *   idle ──first call──▶ exact (each call asks the home) ──grant──▶ leased
 *   leased ──tokens or time running low──▶ renewing (one request in flight; still admits from what it holds)
 *   renewing ──grant──▶ leased;  ──no grant (end-game, revoked, lost)──▶ exact
 *   leased ──every grant expired──▶ exact
 *
 * Messages: holder → home `LeaseRequest {holderId, rate, released[]}`;
 * home → holder `LeaseGrant {grantId, calls, ttlMs, remaining}` or no grant.
 *
 * Bounds, and why they hold:
 *  - never over-admit: calls are reserved in every window (and from credits)
 *    at grant time; a holder spends only what it was granted;
 *  - a grant never outlives its window: ttl ≤ the time to the minute's end
 *    (a day ends on a minute's end), measured by the home from the grant;
 *    the holder starts its own clock when it *sent* the request, before the
 *    home granted, so it stops spending no later than the home's expiry,
 *    whatever the latency and with no clock shared;
 *  - unused calls come back: a holder reports each expired grant's use in
 *    its next request (`released`); the home refunds `calls − used` to the
 *    windows it reserved from, if they are still current. A report that
 *    never arrives (a crashed holder, a lost message) strands those calls
 *    until the window ends: under-admission, never over-admission;
 *  - end-game: when the room left is small (below END_GAME_CALLS_PER_HOLDER
 *    per active holder), the home grants nothing and holders ask it for each
 *    call, so the last calls are exact;
 *  - revocation: a holder's grants end within LEASE_TTL_MS of being granted,
 *    and the home grants nothing once a key is unusable, so every holder has
 *    stopped within LEASE_TTL_MS of the revocation reaching the home. The
 *    admin call waits until the last grant issued has expired (`drainedAt`).
 */

/** The longest a grant lives: the revocation bound. */
export const LEASE_TTL_MS = 1_000;
/** A holder asks for calls to last this long at its recent rate (two renewals per lease). */
export const LEASE_TARGET_MS = 1_000;
/** Below this room per active holder (and one for the asker), the home grants nothing: the end-game is exact. */
export const END_GAME_CALLS_PER_HOLDER = 4;
/** No holder gets more than this share of the room left, so other holders and the end-game keep some. */
export const MAX_SHARE_OF_ROOM = 0.5;
/** A holder renews when what it holds would last less than this at its rate, or when its newest grant is this close to its end. */
export const RENEW_AHEAD_MS = 500;

export interface LeaseRequest {
  holderId: string;
  /** Calls per second the holder saw recently (its demand). */
  rate: number;
  /** Expired grants and what the holder admitted from each: the home refunds the rest. */
  released: { grantId: string; used: number }[];
}

/** The room a grant is cut from: the least room of every window and balance the call counts in. */
export interface Room {
  calls: number;
  /** Epoch ms when the minute window (the shortest) ends. */
  windowEndsAt: number;
}

export interface LeaseGrant {
  grantId: string;
  calls: number;
  ttlMs: number;
  /** Room left after this grant (at the home, at grant time): what the holder's headers estimate from. */
  remaining: number;
}

/** A grant as the home remembers it, until it is released or its day ends. `R`: what it was reserved from (windows, balances). */
export interface OutstandingGrant<R> {
  holderId: string;
  calls: number;
  expiresAt: number;
  reservedFrom: R;
}

/** Calls to give back to what they were reserved from: the home applies it only to windows (and balance epochs) still current. */
export interface Refund<R> {
  calls: number;
  reservedFrom: R;
}

/**
 * The home's side: the grants it has out. In memory only: an object that
 * restarts forgets them, so their unused calls are never refunded (under-
 * admission) and `drainedAt` is then unknown; an object that ever granted
 * therefore starts with `drainedAt` = its start + LEASE_TTL_MS (see RateLimiter).
 */
export class LeaseBook<R> {
  private readonly grants = new Map<string, OutstandingGrant<R>>();
  private sequence = 0;
  /** The latest expiry of any grant issued: every holder has stopped by then. */
  drainedAt = 0;

  /** Grant ids are `<prefix>-<n>`: a whole UUID per book, so ids of a restarted object never meet an earlier one's. */
  constructor(private readonly idPrefix: string = crypto.randomUUID()) {}

  /** Refunds of the released grants this book still knows (each once), and forgets grants past their window. */
  release(released: readonly { grantId: string; used: number }[], now: number): Refund<R>[] {
    const refunds: Refund<R>[] = [];
    for (const { grantId, used } of released) {
      const grant = this.grants.get(grantId);
      if (!grant) continue;
      this.grants.delete(grantId);
      const unused = grant.calls - Math.min(Math.max(0, Math.floor(used)), grant.calls);
      if (unused > 0) refunds.push({ calls: unused, reservedFrom: grant.reservedFrom });
    }
    this.forgetEnded(now);
    return refunds;
  }

  /** Holders with a grant still running, the asker excluded. */
  activeHolders(now: number, except?: string): number {
    const holders = new Set<string>();
    for (const grant of this.grants.values()) if (grant.expiresAt > now && grant.holderId !== except) holders.add(grant.holderId);
    return holders.size;
  }

  /**
   * The grant for a request, cut from `room`, or undefined in the end-game.
   * The caller reserves `calls` in every window (and credits) in the same
   * synchronous run, before anything else can decide.
   */
  grant(request: LeaseRequest, room: Room, now: number, reservedFrom: R): LeaseGrant | undefined {
    const others = this.activeHolders(now, request.holderId);
    if (room.calls < END_GAME_CALLS_PER_HOLDER * (others + 1)) return undefined;
    const ttlMs = Math.min(LEASE_TTL_MS, room.windowEndsAt - now);
    if (ttlMs <= 0) return undefined;
    const wanted = Math.ceil(Math.max(1, request.rate) * (LEASE_TARGET_MS / 1000));
    const cap = Math.floor(room.calls * MAX_SHARE_OF_ROOM);
    const calls = Math.max(1, Math.min(wanted, cap));
    const grantId = `${this.idPrefix}-${++this.sequence}`;
    const expiresAt = now + ttlMs;
    this.grants.set(grantId, { holderId: request.holderId, calls, expiresAt, reservedFrom });
    this.drainedAt = Math.max(this.drainedAt, expiresAt);
    return { grantId, calls, ttlMs, remaining: room.calls - calls };
  }

  /** A grant a day past its expiry can refund nothing (its day has ended): forget it, so the book stays small. */
  private forgetEnded(now: number): void {
    for (const [id, grant] of this.grants) if (grant.expiresAt <= now - 86_400_000) this.grants.delete(id);
  }
}

/** A grant as a holder spends it. */
interface HeldGrant {
  grantId: string;
  calls: number;
  used: number;
  /** Holder's clock: when it sent the request + ttl (no later than the home's expiry). */
  localExpiresAt: number;
  remainingAtGrant: number;
  /** Shorter than a lease: it ends with its minute. */
  cutShort: boolean;
}

/**
 * The holder's side, per key, in one isolate: admits from what it holds,
 * says when to renew, and reports what expired grants were used for.
 */
export class LeaseHolder {
  private readonly grants: HeldGrant[] = [];
  private readonly expired: { grantId: string; used: number }[] = [];
  private renewing = false;
  /** The last grant's size, and whether this holder ran out before its renewal: then it asks for twice as much (slow start). */
  private lastGrant = 0;
  private ranOut = false;
  /** Admissions (local or not) in the last second, for the rate estimate. */
  private readonly recent: number[] = [];

  constructor(readonly holderId: string) {}

  /** A call: admitted from a grant (true), or to be asked of the home (false). Synchronous: nothing can spend twice. */
  tryAdmit(now: number): boolean {
    this.note(now);
    this.retire(now);
    const grant = this.grants.find((g) => g.used < g.calls);
    if (!grant) {
      // Spent to the last call before it ended (not merely expired): demand is above the grant.
      this.ranOut = this.grants.length > 0;
      return false;
    }
    grant.used++;
    return true;
  }

  /** Whether a renewal should start now (none is in flight, and what is held runs low). */
  wantsRenewal(now: number): boolean {
    if (this.renewing) return false;
    this.retire(now);
    const left = this.grants.reduce((sum, g) => sum + g.calls - g.used, 0);
    const newest = this.grants.at(-1);
    const rate = this.rate(now);
    if (left < (rate * RENEW_AHEAD_MS) / 1000 || newest === undefined) return true;
    // A grant the minute's end cut short is not renewed for time: every renewal would be cut short too (a loop).
    // A grant the minute's end cut short is not renewed for time: every renewal would be cut short too (a loop).
    return !newest.cutShort && newest.localExpiresAt - now < RENEW_AHEAD_MS;
  }

  /** Starts a renewal: the request to send, with the expired grants' use. Call applyGrant or renewalFailed after. */
  startRenewal(now: number): LeaseRequest {
    this.renewing = true;
    this.retire(now);
    const released = this.expired.splice(0);
    // A holder that spent its grant before renewing asks for at least twice that: demand is above what its rate window shows yet.
    const rate = Math.max(this.rate(now), this.ranOut ? (2 * this.lastGrant * 1000) / LEASE_TARGET_MS : 0);
    this.ranOut = false;
    return { holderId: this.holderId, rate, released };
  }

  /** The home's answer to a request sent at `sentAt` (holder's clock): the grant counts from then. */
  applyGrant(grant: LeaseGrant | undefined, sentAt: number): void {
    this.renewing = false;
    if (!grant || grant.calls <= 0) return;
    this.lastGrant = grant.calls;
    this.grants.push({
      grantId: grant.grantId,
      calls: grant.calls,
      used: 0,
      localExpiresAt: sentAt + grant.ttlMs,
      remainingAtGrant: grant.remaining,
      cutShort: grant.ttlMs < LEASE_TTL_MS,
    });
  }

  /** The request or its answer was lost: what it released is reported again next time. */
  renewalFailed(request: LeaseRequest): void {
    this.renewing = false;
    this.expired.push(...request.released);
  }

  /** Calls held now. */
  held(now: number): number {
    this.retire(now);
    return this.grants.reduce((sum, g) => sum + g.calls - g.used, 0);
  }

  /** An estimate of the room left everywhere: the home's at the newest grant, plus what this holder still holds. */
  estimatedRemaining(now: number): number | undefined {
    this.retire(now);
    const newest = this.grants.at(-1);
    if (!newest) return undefined;
    return newest.remainingAtGrant + this.grants.reduce((sum, g) => sum + g.calls - g.used, 0);
  }

  /** Drops every grant at once (a refusal from the home says the key is no longer usable). */
  revoke(): void {
    for (const grant of this.grants.splice(0)) this.expired.push({ grantId: grant.grantId, used: grant.used });
  }

  private retire(now: number): void {
    for (let i = this.grants.length - 1; i >= 0; i--) {
      const grant = this.grants[i]!;
      if (grant.localExpiresAt <= now) {
        this.grants.splice(i, 1);
        this.expired.push({ grantId: grant.grantId, used: grant.used });
      }
    }
  }

  private note(now: number): void {
    this.recent.push(now);
    while (this.recent.length > 0 && this.recent[0]! <= now - 1000) this.recent.shift();
  }

  private rate(now: number): number {
    while (this.recent.length > 0 && this.recent[0]! <= now - 1000) this.recent.shift();
    return this.recent.length;
  }
}
