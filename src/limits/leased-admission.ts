/**
 * @module
 * Leased admission in a Worker isolate (issue 17): the holders' side of
 * src/limits/lease.ts. A leased key's call is admitted from calls its object
 * granted this isolate in advance, decided from memory with no object call;
 * grants are renewed in the background (ctx.waitUntil) before they run out.
 * With nothing held, the call asks the object, and the answer brings a grant
 * (or, in the end-game, decides the call exactly). Headers then report
 * estimates, and their policies say so (`;estimate`).
 *
 * Holders are per key, not per lineage: a revoked key of a rotation gets no
 * new grant while its replacement does. What a holder holds ends within
 * LEASE_TTL_MS of its grant, which is the revocation bound.
 */
import { countingPlace, type CountingPlace, type Principal } from "../auth/principal";
import { BoundedLru } from "../bounded-lru";
import type { Config } from "../config";
import type { Product } from "../db/products";
import type { Env } from "../env";
import { countCall } from "./admission";
import { checkLimits, limiterStub, type LimiterEnv, type LimitResult } from "./client";
import { announce } from "./usage-events";
import { LEASE_TTL_MS, LeaseHolder } from "./lease";
import type { LeaseAnswer, LeaseCheck, RateLimiter } from "./rate-limiter";
import { DAY_MS, MINUTE_MS, secondsUntilReset, type LimitCheck, type LimitDecision, type WindowState } from "./windows";

/** Keys one isolate holds grants for at once: the least recently used is dropped (its calls return when its grants end). */
const MAX_HELD_KEYS = 10_000;

/** Runs work after the answer (ExecutionContext.waitUntil). */
export type Background = (work: Promise<unknown>) => void;

/** Where a holder's requests go: the object's stub (tests wrap it to add latency, never inside the object's decision). */
export type LimiterStubs = (env: LimiterEnv, name: string) => Pick<DurableObjectStub<RateLimiter>, "lease">;

/** A decision with counts (admitted, refused by a window, a peek). */
type Admitted = Extract<LimitDecision, { minute: WindowState }>;

interface Held {
  holder: LeaseHolder;
  /** The counts after the newest grant, at the object: what the estimates start from. */
  snapshot: Admitted | undefined;
  /** The lease request in flight for a call: other calls that find nothing held wait for it (one request, not one per call). */
  asking: Promise<unknown> | undefined;
  /**
   * The object refused a call for its minute window: for a lease's time (and
   * never past that window) this isolate refuses the key's calls itself (a denial cache). Calls
   * refunded meanwhile by other isolates go unused here: under-admission,
   * never over-admission.
   */
  refused: { until: number; decision: Admitted } | undefined;
}

/** One isolate's holders. The gateway uses `isolateHolders`; tests make several, as several isolates. */
export class LeaseHolders {
  private readonly held = new BoundedLru<string, Held>(MAX_HELD_KEYS);
  private id: string | undefined;

  /** `holderId`: this isolate's name at the home; made on first use (random values cannot be made at a Worker's global scope). */
  constructor(
    holderId?: string,
    private readonly stubs: LimiterStubs = limiterStub,
  ) {
    this.id = holderId;
  }

  get holderId(): string {
    this.id ??= crypto.randomUUID();
    return this.id;
  }

  /**
   * Counts one call of a leased API key: from memory when this isolate holds
   * calls for it, else through the object (which grants more). Failures of
   * the object fall back to the exact path, with RATE_LIMIT_FAILURE_MODE.
   */
  async admit(env: Env, config: Config, principal: Extract<Principal, { method: "api_key" }>, check: LimitCheck, background: Background): Promise<LimitResult> {
    const place = countingPlace(principal);
    const slot = `${place.name}|${principal.key.id}`;
    const entry = this.entry(slot);
    const now = Date.now();
    if (entry.refused && now < entry.refused.until && !entry.holder.held(now)) return refusedAgain(entry.refused.decision, now);
    if (entry.holder.tryAdmit(now)) {
      if (entry.holder.wantsRenewal(now)) background(this.renew(env, principal, place, entry, check));
      return estimate(entry, now);
    }

    if (entry.asking) {
      // One lease request per isolate and key at a time: a burst's misses share its grant, else go exact.
      await entry.asking.catch(() => undefined);
      if (entry.holder.tryAdmit(Date.now())) return estimate(entry, Date.now());
      return countCall(env, config, principal, check);
    }
    const request = entry.holder.startRenewal(now);
    let answer: LeaseAnswer;
    const asking = this.stubs(env, place.name).lease(leaseCheck(check, place.lineageId, request));
    entry.asking = asking;
    try {
      answer = await asking;
    } catch {
      entry.holder.renewalFailed(request);
      // The object may be overloaded or down: the exact path's retry and failure mode decide.
      return checkLimits(env, config, place.name, { ...check, ...(place.lineageId ? { lineageId: place.lineageId } : {}) });
    } finally {
      if (entry.asking === asking) entry.asking = undefined;
    }
    switch (answer.outcome) {
      case "granted": {
        entry.holder.applyGrant(answer.grant, now);
        entry.snapshot = answer.decision as Admitted;
        // The grant includes this call; its crossings (credits low, a day's quota granted away) are this call's to report.
        if (entry.holder.tryAdmit(Date.now()))
          return {
            ...estimate(entry, Date.now()),
            ...(answer.decision.outcome === "admitted" && answer.decision.events ? { events: answer.decision.events } : {}),
          } as LimitResult;
        return countCall(env, config, principal, check);
      }
      case "exact":
        entry.holder.applyGrant(undefined, now);
        if (answer.decision.outcome === "rate_limited") {
          // At most a lease (the object counts it in its drain time, so a revocation still answers 401 once the admin call returns).
          entry.refused = { until: Math.min(now - (now % MINUTE_MS) + MINUTE_MS, now + LEASE_TTL_MS), decision: answer.decision };
        }
        return answer.decision;
      case "moved":
        // The key's counting moved (owner limits set or cleared): the exact path follows it.
        entry.holder.renewalFailed(request);
        return countCall(env, config, principal, check);
      case "no_grant":
        entry.holder.applyGrant(undefined, now);
        return countCall(env, config, principal, check);
      default:
        // Inactive, revoked, expired: nothing more is admitted from memory either.
        entry.holder.applyGrant(undefined, now);
        entry.holder.revoke();
        return answer;
    }
  }

  /** Calls held for a key in this isolate now (tests). */
  heldFor(placeName: string, keyId: string, now = Date.now()): number {
    return this.held.get(`${placeName}|${keyId}`)?.holder.held(now) ?? 0;
  }

  private entry(slot: string): Held {
    let entry = this.held.get(slot);
    if (!entry) {
      entry = { holder: new LeaseHolder(this.holderId), snapshot: undefined, asking: undefined, refused: undefined };
      this.held.set(slot, entry);
    }
    return entry;
  }

  /** A background renewal: never throws; a failure leaves the holder to ask with its next call. */
  private async renew(env: Env, principal: Principal, place: CountingPlace, entry: Held, check: LimitCheck): Promise<void> {
    const sentAt = Date.now();
    const request = entry.holder.startRenewal(sentAt);
    try {
      const answer = await this.stubs(env, place.name).lease({ ...leaseCheck(check, place.lineageId, request), renewal: true });
      if (answer.outcome === "granted") {
        entry.holder.applyGrant(answer.grant, sentAt);
        entry.snapshot = answer.decision as Admitted;
        if (answer.decision.outcome === "admitted") await announce(env, principal, answer.decision.events, sentAt);
      } else if (answer.outcome === "moved") {
        entry.holder.renewalFailed(request);
      } else {
        entry.holder.applyGrant(undefined, sentAt);
        if (answer.outcome === "inactive" || answer.outcome === "revoked" || answer.outcome === "expired") entry.holder.revoke();
      }
    } catch {
      entry.holder.renewalFailed(request);
    }
  }
}

function leaseCheck(check: LimitCheck, lineageId: string | undefined, request: LeaseCheck["request"]): LeaseCheck {
  return { ...check, ...(lineageId ? { lineageId } : {}), request };
}

/** The object's refusal, repeated from memory, its reset counted from now; estimated like every leased answer. */
function refusedAgain(decision: Admitted, now: number): LimitResult {
  return {
    ...decision,
    minute: { ...decision.minute, resetSeconds: secondsUntilReset(now, MINUTE_MS) },
    day: { ...decision.day, resetSeconds: secondsUntilReset(now, DAY_MS) },
    events: undefined,
    estimated: true,
  } as LimitResult;
}

/** The counts as this isolate sees them: the object's after the newest grant, plus what this isolate still holds. */
function estimate(entry: Held, now: number): LimitResult {
  const snapshot = entry.snapshot;
  const held = entry.holder.held(now);
  if (!snapshot) throw new Error("a leased admission without a grant's counts");
  const window = (state: WindowState, lengthMs: number): WindowState => {
    const remaining = Math.min(state.limit, state.remaining + held);
    return { limit: state.limit, used: state.limit - remaining, remaining, resetSeconds: secondsUntilReset(now, lengthMs) };
  };
  return {
    ...snapshot,
    minute: window(snapshot.minute, MINUTE_MS),
    day: window(snapshot.day, DAY_MS),
    ...(snapshot.owner
      ? {
          owner: {
            ...(snapshot.owner.minute ? { minute: window(snapshot.owner.minute, MINUTE_MS) } : {}),
            ...(snapshot.owner.day ? { day: window(snapshot.owner.day, DAY_MS) } : {}),
          },
        }
      : {}),
    ...(snapshot.credits ? { credits: { ...snapshot.credits, balance: snapshot.credits.balance + held } } : {}),
    ...(snapshot.ownerCredits ? { ownerCredits: { ...snapshot.ownerCredits, balance: snapshot.ownerCredits.balance + held } } : {}),
    // Events were the grant's: reported once, with the call that brought it.
    events: undefined,
    estimated: true,
  } as LimitResult;
}

/** This isolate's holders: the gateway's and the verify API's. */
export const isolateHolders = new LeaseHolders();

/**
 * Counts a call the way its key is counted: leased when the key (else its
 * product) says so and the call is a plain one (an API key's, costing 1
 * credit, with no reserve: metered and priced calls are decided exactly),
 * else exactly, as every JWT's.
 */
export function countInMode(
  env: Env,
  config: Config,
  principal: Principal,
  check: LimitCheck,
  product: Pick<Product, "rateLimitMode"> | undefined,
  background: Background,
): Promise<LimitResult> {
  if (principal.method === "api_key" && check.consume && (check.cost ?? 1) === 1 && (check.creditReserve ?? 0) === 0) {
    const mode = principal.key.rateLimitMode ?? product?.rateLimitMode ?? "exact";
    if (mode === "leased") return isolateHolders.admit(env, config, principal, check, background);
  }
  return countCall(env, config, principal, check);
}
