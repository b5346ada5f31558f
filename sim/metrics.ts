/**
 * @module
 * What a run measures, and the ideal it is measured against: an instantaneous
 * global limiter that sees every call at its start and admits it if its
 * minute and day still have room (and the key is not yet revoked).
 */
import { DAY_MS, MINUTE_MS } from "../src/limits/windows";
import { percentile } from "./engine";

export interface ScenarioResult {
  scenario: string;
  mode: "leased" | "exact";
  /** How a leased holder handles a miss (sim/model.ts MissPath); undefined in exact mode. */
  missPath?: "lease" | "lease-single-flight" | "forward";
  seed: number;
  virtualSeconds: number;
  calls: number;
  /** Calls the system counted as admitted (at the home, or from a grant). */
  admitted: number;
  /** The most calls charged to any one minute, and to any one day: never above the limits (the invariants say so after every event). */
  peakAdmitted: { minute: number; day: number };
  /** Calls whose answer never came (a lost message, a partition, a crashed isolate): refused, fail-closed. */
  failed: number;
  /** Decided with no cross-region round trip: from a grant (0 ms) or an exact call to a home in the caller's region. */
  noCrossRegionShare: number;
  /** Decided in the isolate (0 ms added): admitted from a grant, or refused by the denial cache. */
  localShare: number;
  /** Of admitted calls, the share admitted from a grant. */
  localShareOfAdmitted: number;
  /** (ideal − admitted) / limit per full minute window; negative = admitted more than the ideal did at that moment (never more than the limit). */
  underAdmission: { p50: number; p99: number; max: number; windows: number };
  addedLatencyMs: { p50: number; p99: number };
  homeCallsPerSecond: { mean: number; peak: number };
  /** |estimated remaining − true remaining| / limit over local admissions (the leased mode's headers). */
  headerError?: { p50: number; p99: number };
  revocation?: {
    /** From the admin call's start to the last admission anywhere. */
    effectiveMs: number;
    /** The admin call's duration (start to return). */
    adminCallMs: number;
    /** LEASE_TTL_MS + the admin's and the farthest holder's worst one-way trips: what the tests hold effectiveMs to. */
    boundMs: number;
  };
  events: number;
  wallMs: number;
}

/** A growable array of doubles (latencies run to millions). */
class Samples {
  private data = new Float64Array(1024);
  length = 0;

  push(x: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = x;
  }

  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort();
  }
}

function bump(counts: Map<number, number>, key: number): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

export class Metrics {
  calls = 0;
  admitted = 0;
  failed = 0;
  local = 0;
  localAdmitted = 0;
  noCrossRegion = 0;
  adminStartedAt: number | undefined;
  adminReturnedAt: number | undefined;
  lastAdmissionAt: number | undefined;
  private readonly latencies = new Samples();
  private readonly headerErrors = new Samples();
  private readonly arrivals = new Map<number, number>();
  private readonly charged = new Map<number, number>();
  private readonly chargedDay = new Map<number, number>();
  private readonly ideal = new Map<number, number>();
  private readonly idealDay = new Map<number, number>();
  private readonly homeBySecond = new Map<number, number>();

  constructor(
    private readonly start: number,
    private readonly end: number,
    private readonly limits: { perMinute: number; perDay: number },
  ) {}

  /** A call starts: the ideal limiter decides it at once. */
  arrival(at: number): void {
    this.calls++;
    const minute = at - (at % MINUTE_MS);
    const day = at - (at % DAY_MS);
    bump(this.arrivals, minute);
    const revoked = this.adminStartedAt !== undefined && at >= this.adminStartedAt;
    if (!revoked && (this.ideal.get(minute) ?? 0) < this.limits.perMinute && (this.idealDay.get(day) ?? 0) < this.limits.perDay) {
      bump(this.ideal, minute);
      bump(this.idealDay, day);
    }
  }

  /** The system counted a call as admitted, charged to these windows. */
  admission(charged: { minuteStart: number; dayStart: number }, at: number): void {
    this.admitted++;
    bump(this.charged, charged.minuteStart);
    bump(this.chargedDay, charged.dayStart);
    if (this.adminStartedAt !== undefined && at >= this.adminStartedAt) this.lastAdmissionAt = at;
  }

  /** A call's answer reached the isolate `latencyMs` after the call started. */
  answered(latencyMs: number, crossRegion: boolean): void {
    this.latencies.push(latencyMs);
    if (!crossRegion) this.noCrossRegion++;
  }

  /** A call admitted from a grant, in the isolate. */
  decidedLocally(headerError: number | undefined): void {
    this.local++;
    this.localAdmitted++;
    this.answered(0, false);
    if (headerError !== undefined) this.headerErrors.push(Math.abs(headerError));
  }

  /** A call refused in the isolate (the denial cache). */
  refusedLocally(): void {
    this.local++;
    this.answered(0, false);
  }

  /** A call with no answer: refused after `timeoutMs`. */
  timedOut(timeoutMs: number): void {
    this.failed++;
    this.latencies.push(timeoutMs);
  }

  homeMessage(at: number): void {
    bump(this.homeBySecond, Math.floor((at - this.start) / 1000));
  }

  summary(head: Pick<ScenarioResult, "scenario" | "mode" | "missPath" | "seed" | "events" | "wallMs">, revocationBoundMs: number): ScenarioResult {
    const under = new Samples();
    for (let minute = this.start - (this.start % MINUTE_MS); minute + MINUTE_MS <= this.end; minute += MINUTE_MS) {
      if (minute < this.start) continue;
      if (this.adminStartedAt !== undefined && minute + MINUTE_MS > this.adminStartedAt) continue;
      under.push(((this.ideal.get(minute) ?? 0) - (this.charged.get(minute) ?? 0)) / this.limits.perMinute);
    }
    const underSorted = under.sorted();
    const latency = this.latencies.sorted();
    const seconds = Math.max(1, Math.ceil((this.end - this.start) / 1000));
    let homeTotal = 0;
    let homePeak = 0;
    for (const [second, n] of this.homeBySecond) {
      if (second >= seconds) continue;
      homeTotal += n;
      homePeak = Math.max(homePeak, n);
    }
    const headerErrors = this.headerErrors.sorted();
    const share = (n: number, of: number) => (of === 0 ? 0 : n / of);
    return {
      ...head,
      virtualSeconds: (this.end - this.start) / 1000,
      calls: this.calls,
      admitted: this.admitted,
      peakAdmitted: { minute: Math.max(0, ...this.charged.values()), day: Math.max(0, ...this.chargedDay.values()) },
      failed: this.failed,
      noCrossRegionShare: share(this.noCrossRegion, this.calls),
      localShare: share(this.local, this.calls),
      localShareOfAdmitted: share(this.localAdmitted, this.admitted),
      underAdmission: { p50: percentile(underSorted, 50), p99: percentile(underSorted, 99), max: percentile(underSorted, 100), windows: underSorted.length },
      addedLatencyMs: { p50: percentile(latency, 50), p99: percentile(latency, 99) },
      homeCallsPerSecond: { mean: homeTotal / seconds, peak: homePeak },
      ...(headerErrors.length > 0 ? { headerError: { p50: percentile(headerErrors, 50), p99: percentile(headerErrors, 99) } } : {}),
      ...(this.adminStartedAt !== undefined
        ? {
            revocation: {
              effectiveMs: Math.max(0, (this.lastAdmissionAt ?? this.adminStartedAt) - this.adminStartedAt),
              adminCallMs: this.adminReturnedAt === undefined ? Number.NaN : this.adminReturnedAt - this.adminStartedAt,
              boundMs: revocationBoundMs,
            },
          }
        : {}),
    };
  }
}
