/**
 * @module
 * The actors: the key's home (its RateLimiter object), the holders (Worker
 * isolates, several per region, each with a LeaseHolder for the key), the
 * clients (Poisson arrivals per region), the admin who revokes the key, and
 * the faults. The lease algorithm is src/limits/lease.ts itself, unchanged;
 * the home's windows are UTC-aligned on the virtual clock as in
 * src/limits/windows.ts.
 *
 * A call goes to a random isolate of its client's region. In leased mode the
 * isolate asks `tryAdmit`: true = admitted in the isolate (0 ms added), and
 * if then `wantsRenewal`, the isolate sends `startRenewal`'s request to the
 * home in the background and applies the answer with `applyGrant(grant,
 * sentAt)`; no answer within RENEWAL_TIMEOUT_MS = `renewalFailed`. False =
 * one round trip to the home, in one of two ways (`missPath`):
 *  - "lease-single-flight" (the default; what src/limits/leased-admission.ts
 *    and RateLimiter.lease do): the isolate sends a lease request carrying
 *    the call; the home grants (the call is then admitted from the grant) or,
 *    in the end-game, decides the call exactly in the same answer; while that
 *    request is in flight, the isolate's other misses wait for its answer and
 *    spend from its grant, else go exact;
 *  - "lease": the same without coalescing, one request per miss (the first
 *    version, kept for comparison: docs/leased-admission.md, "Findings");
 *  - "forward" (the issue's description): the call is checked and counted at
 *    the home, and the isolate asks for a grant in the background as well.
 * In exact mode (the baseline) every call is forwarded to the home.
 */
import { LEASE_TTL_MS, LeaseBook, type LeaseGrant, LeaseHolder, type LeaseRequest } from "../src/limits/lease";
import { DAY_MS, MINUTE_MS } from "../src/limits/windows";
import { Network, REGIONS, type Region, Rng, Simulator } from "./engine";
import { Checker, type HomeWindows, type Reserved } from "./invariants";
import { Metrics, type ScenarioResult } from "./metrics";

export type Mode = "leased" | "exact";
export type MissPath = "lease" | "lease-single-flight" | "forward";

/** A forwarded call with no answer after this is refused (RATE_LIMIT_FAILURE_MODE = closed). */
export const EXACT_TIMEOUT_MS = 1_000;
/** A renewal with no answer after this failed: a later grant would have expired on arrival anyway (ttl ≤ LEASE_TTL_MS from the send). */
export const RENEWAL_TIMEOUT_MS = LEASE_TTL_MS;

/** Clients calling at `perSecond` (Poisson) from `from` to `to` ms into the run, spread over regions by weight. */
export interface LoadPhase {
  from: number;
  to: number;
  perSecond: number;
  weights: Partial<Record<Region, number>>;
}

/**
 * Deliberate defects, for the tests that prove the checker catches what it
 * claims to (a checker that never fires proves nothing):
 *  - refund-stale-minute: refunds go to the current minute, whatever minute they were reserved from;
 *  - forget-drain-on-restart: a restarted home starts with drainedAt = 0;
 *  - expiry-from-receipt: a holder counts a grant's ttl from when the answer arrived, not from its request;
 *  - grant-past-window: the home does not clip a grant's ttl to its minute's end;
 *  - apply-answer-twice: a duplicated answer is applied again (LeaseHolder
 *    trusts its caller to apply each answer once, as an RPC delivers it).
 */
export type Sabotage = "refund-stale-minute" | "forget-drain-on-restart" | "expiry-from-receipt" | "grant-past-window" | "apply-answer-twice";

export interface WorldConfig {
  scenario: string;
  seed: number;
  mode: Mode;
  /** Virtual epoch ms at which the run starts. */
  startAt: number;
  durationMs: number;
  homeRegion: Region;
  isolatesPerRegion: number;
  /** What a holder does with a call it cannot admit itself (see the module comment); default "lease-single-flight". */
  missPath?: MissPath;
  limitPerMinute: number;
  limitPerDay: number;
  load: readonly LoadPhase[];
  jitter: number;
  lossRate: number;
  /** Held-up messages (see NetworkFaults) and duplicated ones. */
  spikeRate?: number;
  spikeMaxMs?: number;
  duplicateRate?: number;
  /** Times are ms into the run. */
  partitions: readonly { region: Region; from: number; to: number }[];
  /** An isolate dies (its memory and in-flight answers lost) and a fresh one takes its place. */
  crashes: readonly { at: number; region: Region; isolate: number }[];
  /** The home object restarts: windows are durable, its LeaseBook (memory) is lost. */
  homeRestarts: readonly number[];
  /** Each isolate's clock is off by U(−skew, +skew) ms: leases use no shared clock, so this must not matter. */
  clockSkewMs: number;
  /**
   * Each reading of an isolate's clock lags true time by U(0, lag) ms, as a
   * Worker's Date.now() stands still while it computes. Safe while the lag is
   * below the shortest one-way trip to the home (the send time's lag is on
   * the safe side; the admission time's is not).
   */
  clockLagMs?: number;
  revocation?: { at: number; adminRegion: Region };
  /**
   * A proposal, not in src/limits/lease.ts: after the home refuses a call as
   * rate limited, the isolate refuses calls itself until the window resets,
   * or, while calls are still out on grants, until the last of them ends
   * (their unused part may come back), and stops renewing meanwhile. Refunds
   * that come back in that time are left unused: under-admission only.
   */
  denialCache?: boolean;
  /**
   * A renewal's answer that arrives after RENEWAL_TIMEOUT_MS is applied
   * anyway (an implementation whose timeout does not cancel the call), after
   * `renewalFailed` already ran. By default it is dropped (its calls stranded).
   */
  applyLateAnswers?: boolean;
  sabotage?: Sabotage;
}

type LeaseAnswer = { revoked: true } | { revoked: false; grant: LeaseGrant | undefined; reservedFrom: Reserved; exact?: ExactAnswer };
type ExactAnswer = { outcome: "admitted"; charged: Reserved } | { outcome: "rate_limited"; resetMs: number } | { outcome: "revoked" };

/**
 * The key's home, exactly as the RateLimiter object runs the lease path:
 * status first, then refunds (only to windows still current), then the room
 * (the least of minute and day), the grant, and its reservation in both
 * windows, all in one synchronous run.
 */
export class Home {
  book: LeaseBook<Reserved>;
  minuteStart = -1;
  minuteUsed = 0;
  dayStart = -1;
  dayUsed = 0;
  revokedAt: number | undefined;
  private restarts = 0;

  constructor(
    private readonly limits: { perMinute: number; perDay: number },
    private readonly sabotage?: Sabotage,
  ) {
    this.book = new LeaseBook<Reserved>("home0");
  }

  /** A lease request; `withCall`: it carries a call, decided exactly when no grant is made (the end-game). */
  lease(request: LeaseRequest, now: number, withCall = false): LeaseAnswer {
    this.roll(now);
    if (this.revokedAt !== undefined) return { revoked: true };
    for (const refund of this.book.release(request.released, now)) {
      if (refund.reservedFrom.minuteStart === this.minuteStart || this.sabotage === "refund-stale-minute") this.minuteUsed -= refund.calls;
      if (refund.reservedFrom.dayStart === this.dayStart) this.dayUsed -= refund.calls;
    }
    const reservedFrom = { minuteStart: this.minuteStart, dayStart: this.dayStart };
    const windowEndsAt = this.minuteStart + MINUTE_MS + (this.sabotage === "grant-past-window" ? LEASE_TTL_MS : 0);
    const room = { calls: Math.min(this.limits.perMinute - this.minuteUsed, this.limits.perDay - this.dayUsed), windowEndsAt };
    const grant = this.book.grant(request, room, now, reservedFrom);
    if (grant) {
      this.minuteUsed += grant.calls;
      this.dayUsed += grant.calls;
    }
    return { revoked: false, grant, reservedFrom, ...(!grant && withCall ? { exact: this.exact(now) } : {}) };
  }

  /** One call checked and counted here: what a holder does when tryAdmit says no. */
  exact(now: number): ExactAnswer {
    this.roll(now);
    if (this.revokedAt !== undefined) return { outcome: "revoked" };
    const full =
      this.dayUsed >= this.limits.perDay ? this.dayStart + DAY_MS : this.minuteUsed >= this.limits.perMinute ? this.minuteStart + MINUTE_MS : undefined;
    // The reset, or sooner if calls are still out on grants: their unused part may come back before it (the denial cache's horizon).
    if (full !== undefined) return { outcome: "rate_limited", resetMs: (this.book.drainedAt > now ? Math.min(full, this.book.drainedAt) : full) - now };
    this.minuteUsed++;
    this.dayUsed++;
    return { outcome: "admitted", charged: { minuteStart: this.minuteStart, dayStart: this.dayStart } };
  }

  revoke(now: number): void {
    this.revokedAt ??= now;
  }

  /** The object restarts: its windows are in storage, its book was in memory, so it assumes grants may run until now + LEASE_TTL_MS. */
  restart(now: number): void {
    this.book = new LeaseBook<Reserved>(`home${++this.restarts}`);
    if (this.sabotage !== "forget-drain-on-restart") this.book.drainedAt = now + LEASE_TTL_MS;
  }

  windows(): HomeWindows {
    return { minuteStart: this.minuteStart, minuteUsed: this.minuteUsed, dayStart: this.dayStart, dayUsed: this.dayUsed };
  }

  private roll(now: number): void {
    const minuteStart = now - (now % MINUTE_MS);
    const dayStart = now - (now % DAY_MS);
    if (minuteStart !== this.minuteStart) {
      this.minuteStart = minuteStart;
      this.minuteUsed = 0;
    }
    if (dayStart !== this.dayStart) {
      this.dayStart = dayStart;
      this.dayUsed = 0;
    }
  }
}

/** The simulator's one window into a LeaseHolder: which grant a call was spent from (the checker holds grants to their expiry). */
interface HolderInternals {
  grants: { grantId: string; calls: number; used: number }[];
}

function heldGrants(holder: LeaseHolder): HolderInternals["grants"] {
  const grants = (holder as unknown as Partial<HolderInternals>).grants;
  if (!Array.isArray(grants)) throw new Error("LeaseHolder no longer keeps `grants`: update sim/model.ts heldGrants");
  return grants;
}

/** tryAdmit, and the id of the grant it spent from. */
function spendLocally(holder: LeaseHolder, localNow: number): string | undefined {
  const before = heldGrants(holder).map((grant) => [grant, grant.used] as const);
  if (!holder.tryAdmit(localNow)) return undefined;
  for (const [grant, used] of before) if (grant.used > used) return grant.grantId;
  throw new Error("tryAdmit admitted a call but no grant was spent");
}

/** A Worker isolate in a region: its LeaseHolder for the key, its clock offset. */
class Isolate {
  incarnation = 0;
  holder: LeaseHolder;
  /** With the denial cache: refuse calls until then (this isolate's clock). */
  refusedUntil = Number.NEGATIVE_INFINITY;
  /** lease-single-flight: the starts of the misses waiting for the lease request in flight. */
  waiting: number[] | undefined;

  constructor(
    readonly region: Region,
    readonly index: number,
    readonly skewMs: number,
  ) {
    this.holder = new LeaseHolder(this.holderId());
  }

  holderId(): string {
    return `${this.region}-${this.index}.${this.incarnation}`;
  }

  crash(): void {
    this.incarnation++;
    this.holder = new LeaseHolder(this.holderId());
    this.refusedUntil = Number.NEGATIVE_INFINITY;
    this.waiting = undefined;
  }
}

export class World {
  readonly sim: Simulator;
  readonly net: Network;
  readonly home: Home;
  readonly checker: Checker;
  readonly metrics: Metrics;
  private readonly isolates: Record<Region, Isolate[]>;
  private readonly end: number;
  private readonly lag: Rng;

  constructor(readonly config: WorldConfig) {
    const limits = { perMinute: config.limitPerMinute, perDay: config.limitPerDay };
    const rng = new Rng(config.seed);
    this.end = config.startAt + config.durationMs;
    this.home = new Home(limits, config.sabotage);
    this.sim = new Simulator(config.startAt, () => this.checker.afterEvent());
    this.checker = new Checker(
      `${config.scenario} [${config.mode}]`,
      config.seed,
      limits,
      () => this.sim.eventIndex,
      () => this.home.windows(),
    );
    this.metrics = new Metrics(config.startAt, this.end, limits);
    const at = (offset: number) => config.startAt + offset;
    this.net = new Network(this.sim, rng.fork("network"), {
      jitter: config.jitter,
      lossRate: config.lossRate,
      ...(config.spikeRate ? { spikeRate: config.spikeRate, spikeMaxMs: config.spikeMaxMs ?? 0 } : {}),
      ...(config.duplicateRate ? { duplicateRate: config.duplicateRate } : {}),
      partitions: config.partitions.map((p) => ({ region: p.region, from: at(p.from), to: at(p.to) })),
    });
    const clocks = rng.fork("clocks");
    this.lag = rng.fork("clock-lag");
    this.isolates = Object.fromEntries(
      REGIONS.map((region) => [
        region,
        Array.from({ length: config.isolatesPerRegion }, (_, i) => new Isolate(region, i, (clocks.next() * 2 - 1) * config.clockSkewMs)),
      ]),
    ) as Record<Region, Isolate[]>;

    const arrivals = rng.fork("arrivals");
    for (const phase of config.load) this.poisson(arrivals, phase);
    for (const crash of config.crashes) {
      this.sim.at(at(crash.at), () => this.isolates[crash.region][crash.isolate % config.isolatesPerRegion]!.crash());
    }
    for (const restart of config.homeRestarts) this.sim.at(at(restart), () => this.home.restart(this.sim.now));
    if (config.revocation) this.scheduleRevocation(at(config.revocation.at), config.revocation.adminRegion);
  }

  /** Runs the scenario to its end, lets answers in flight land, and sums it up. */
  run(): ScenarioResult {
    const wallStart = performance.now();
    this.sim.run(this.end + 2 * Math.max(EXACT_TIMEOUT_MS, LEASE_TTL_MS));
    // A run that checked no admission proves nothing (failed calls aside: a world may cut its only region off).
    if (this.checker.admissions === 0 && this.metrics.calls > 0 && this.metrics.failed === 0 && !this.config.revocation)
      throw new Error(`${this.config.scenario}: no call was admitted`);
    const { scenario, mode, seed } = this.config;
    const head = { scenario, mode, ...(mode === "leased" ? { missPath: this.config.missPath ?? "lease-single-flight" } : {}), seed };
    return this.metrics.summary({ ...head, events: this.sim.eventIndex, wallMs: performance.now() - wallStart }, this.revocationBoundMs());
  }

  /** LEASE_TTL_MS plus the admin's worst trips to the home and back: the admin call's bound (and so the last admission's). */
  revocationBoundMs(): number {
    const admin = this.config.revocation?.adminRegion ?? this.config.homeRegion;
    return LEASE_TTL_MS + this.net.maxOneWayMs(admin, this.config.homeRegion) + this.net.maxOneWayMs(this.config.homeRegion, admin);
  }

  private poisson(rng: Rng, phase: LoadPhase): void {
    const weights = REGIONS.map((r) => phase.weights[r] ?? 0);
    const meanGapMs = 1000 / phase.perSecond;
    const stop = Math.min(this.end, this.config.startAt + phase.to);
    const next = (from: number) => {
      const t = from + rng.exponential(meanGapMs);
      if (t >= stop) return;
      this.sim.at(t, () => {
        const region = REGIONS[rng.weighted(weights)]!;
        const isolate = rng.int(this.config.isolatesPerRegion);
        this.call(this.isolates[region][isolate]!, this.sim.now);
        next(this.sim.now);
      });
    };
    next(this.config.startAt + phase.from);
  }

  private call(isolate: Isolate, start: number): void {
    this.metrics.arrival(start);
    if (this.config.mode === "exact") {
      this.forward(isolate, start);
      return;
    }
    const now = this.sim.now;
    const localNow = this.localClock(isolate);
    if (localNow < isolate.refusedUntil) {
      this.metrics.refusedLocally();
      return;
    }
    const grantId = spendLocally(isolate.holder, localNow);
    if (grantId !== undefined) {
      const charged = this.checker.localAdmit(grantId, now, start);
      this.metrics.admission(charged, now);
      const estimate = isolate.holder.estimatedRemaining(localNow);
      const truth = this.checker.trueRemaining(charged);
      this.metrics.decidedLocally(estimate === undefined ? undefined : (estimate - truth) / this.config.limitPerMinute);
      this.renewIfDue(isolate);
    } else if (this.config.missPath === "forward") {
      this.forward(isolate, start);
      this.renewIfDue(isolate);
    } else {
      this.leaseWithCall(isolate, start);
    }
  }

  /**
   * The miss path of src/limits/leased-admission.ts: a lease request carrying
   * the call. A grant includes the call (admitted from it on arrival, else
   * forwarded); no grant = the home decided the call exactly. Like an RPC it
   * settles once; no answer within EXACT_TIMEOUT_MS = `renewalFailed`, and the
   * call is refused (fail-closed).
   */
  private leaseWithCall(isolate: Isolate, start: number): void {
    if (isolate.waiting) return void isolate.waiting.push(start);
    const waiting: number[] = [];
    if ((this.config.missPath ?? "lease-single-flight") === "lease-single-flight") isolate.waiting = waiting;
    const holder = isolate.holder;
    const sentAt = this.localClock(isolate);
    const request = holder.startRenewal(sentAt);
    const incarnation = isolate.incarnation;
    const home = this.config.homeRegion;
    let state: "waiting" | "timed out" | "answered" = "waiting";
    const settle = (to: "timed out" | "answered") => {
      state = to;
      if (isolate.waiting === waiting) isolate.waiting = undefined;
    };
    this.sim.after(EXACT_TIMEOUT_MS, () => {
      if (state !== "waiting") return;
      settle("timed out");
      if (isolate.incarnation === incarnation) holder.renewalFailed(request);
      this.metrics.timedOut(EXACT_TIMEOUT_MS);
      for (const _ of waiting) this.metrics.timedOut(EXACT_TIMEOUT_MS);
    });
    this.net.send(isolate.region, home, () => {
      const now = this.sim.now;
      this.metrics.homeMessage(now);
      const answer = this.home.lease(request, now, true);
      if (!answer.revoked && answer.grant)
        this.checker.grantIssued(answer.grant.grantId, answer.grant.calls, now + answer.grant.ttlMs, answer.reservedFrom, now);
      if (!answer.revoked && answer.exact?.outcome === "admitted") {
        this.checker.exactAdmit(answer.exact.charged, now, start);
        this.metrics.admission(answer.exact.charged, now);
      }
      this.net.send(home, isolate.region, () => {
        if (isolate.incarnation !== incarnation || state !== "waiting") return;
        settle("answered");
        const crossRegion = isolate.region !== home;
        if (answer.revoked) {
          holder.applyGrant(undefined, sentAt);
          holder.revoke();
        } else if (!answer.grant) {
          holder.applyGrant(undefined, sentAt);
          if (answer.exact?.outcome === "rate_limited" && this.config.denialCache)
            isolate.refusedUntil = this.localClock(isolate) + Math.min(answer.exact.resetMs, LEASE_TTL_MS);
        } else {
          holder.applyGrant(answer.grant, this.config.sabotage === "expiry-from-receipt" ? this.localClock(isolate) : sentAt);
          this.spendOnArrival(isolate, start);
        }
        if (answer.revoked || !answer.grant) this.metrics.answered(this.sim.now - start, crossRegion);
        // Those who waited for this answer: from its grant if it has room left, else the exact path.
        for (const waiter of waiting) {
          if (answer.revoked) this.metrics.answered(this.sim.now - waiter, crossRegion);
          else this.spendOnArrival(isolate, waiter);
        }
      });
    });
  }

  /** A call that waited for a grant: admitted from what the holder holds now (after a round trip), else forwarded to the home. */
  private spendOnArrival(isolate: Isolate, start: number): void {
    const grantId = spendLocally(isolate.holder, this.localClock(isolate));
    if (grantId === undefined) {
      this.forward(isolate, start);
      return;
    }
    this.metrics.admission(this.checker.localAdmit(grantId, this.sim.now, start), this.sim.now);
    this.metrics.answered(this.sim.now - start, isolate.region !== this.config.homeRegion);
  }

  /** What the isolate's clock reads now: skewed, and lagging when clockLagMs says so. */
  private localClock(isolate: Isolate): number {
    const lag = this.config.clockLagMs ? this.lag.next() * this.config.clockLagMs : 0;
    return this.sim.now + isolate.skewMs - lag;
  }

  /** The exact path: the call is checked and counted at the home, one round trip away. */
  private forward(isolate: Isolate, start: number): void {
    const home = this.config.homeRegion;
    const incarnation = isolate.incarnation;
    let answered = false;
    this.sim.after(EXACT_TIMEOUT_MS, () => {
      if (answered) return;
      answered = true;
      this.metrics.timedOut(EXACT_TIMEOUT_MS);
    });
    this.net.send(isolate.region, home, () => {
      const now = this.sim.now;
      this.metrics.homeMessage(now);
      const answer = this.home.exact(now);
      if (answer.outcome === "admitted") {
        this.checker.exactAdmit(answer.charged, now, start);
        this.metrics.admission(answer.charged, now);
      }
      this.net.send(home, isolate.region, () => {
        if (answered || isolate.incarnation !== incarnation) return;
        answered = true;
        this.metrics.answered(this.sim.now - start, isolate.region !== home);
        if (answer.outcome === "revoked") isolate.holder.revoke();
        if (answer.outcome === "rate_limited" && this.config.denialCache)
          isolate.refusedUntil = this.localClock(isolate) + Math.min(answer.resetMs, LEASE_TTL_MS);
      });
    });
  }

  /**
   * The background renewal: never blocks the call that triggered it. Like an
   * RPC, it settles once: with the first copy of its answer, or with its
   * timeout (`renewalFailed`); later copies, and answers to a crashed
   * isolate, are dropped (their calls stay reserved: under-admission).
   */
  private renewIfDue(isolate: Isolate): void {
    const holder = isolate.holder;
    const sentAt = this.localClock(isolate);
    if (!holder.wantsRenewal(sentAt)) return;
    const request = holder.startRenewal(sentAt);
    const incarnation = isolate.incarnation;
    let state: "waiting" | "timed out" | "answered" = "waiting";
    this.sim.after(RENEWAL_TIMEOUT_MS, () => {
      if (state !== "waiting" || isolate.incarnation !== incarnation) return;
      state = "timed out";
      holder.renewalFailed(request);
    });
    const home = this.config.homeRegion;
    this.net.send(isolate.region, home, () => {
      const now = this.sim.now;
      this.metrics.homeMessage(now);
      const answer = this.home.lease(request, now);
      if (!answer.revoked && answer.grant)
        this.checker.grantIssued(answer.grant.grantId, answer.grant.calls, now + answer.grant.ttlMs, answer.reservedFrom, now);
      this.net.send(home, isolate.region, () => {
        if (isolate.incarnation !== incarnation) return;
        if (state === "answered" && this.config.sabotage !== "apply-answer-twice") return;
        if (state === "timed out" && !this.config.applyLateAnswers) return;
        state = "answered";
        if (answer.revoked) {
          holder.applyGrant(undefined, sentAt);
          holder.revoke();
          return;
        }
        holder.applyGrant(answer.grant, this.config.sabotage === "expiry-from-receipt" ? this.localClock(isolate) : sentAt);
      });
    });
  }

  /** The admin call: to the home, which stops granting at once and answers when its last grant has expired (drainedAt). */
  private scheduleRevocation(at: number, adminRegion: Region): void {
    const home = this.config.homeRegion;
    this.sim.at(at, () => {
      this.metrics.adminStartedAt = this.sim.now;
      this.net.send(
        adminRegion,
        home,
        () => {
          const now = this.sim.now;
          this.home.revoke(now);
          this.checker.revocationAtHome(now, this.home.book.drainedAt);
          this.sim.at(Math.max(now, this.home.book.drainedAt), () =>
            this.net.send(
              home,
              adminRegion,
              () => {
                this.metrics.adminReturnedAt = this.sim.now;
                this.checker.adminReturned(this.sim.now);
              },
              true,
            ),
          );
        },
        true,
      );
    });
  }
}

/** Builds and runs one world. */
export function runWorld(config: WorldConfig): ScenarioResult {
  return new World(config).run();
}
