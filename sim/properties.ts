/**
 * @module
 * The property-based side: random worlds (fast-check) and the checks every
 * world must pass beyond the invariants the checker throws on. Shared by
 * test/node/lease-sim.test.ts (random runs) and
 * test/node/lease-sim-regressions.test.ts (the seeds kept).
 */
import fc from "fast-check";
import { LEASE_TTL_MS } from "../src/limits/lease";
import { ONE_WAY_MS, REGIONS, type Region } from "./engine";
import type { ScenarioResult } from "./metrics";
import { type MissPath, type Mode, runWorld, type WorldConfig } from "./model";

/** The worst one-way trip with a config's jitter: base × (1 + jitter) + 1 ms (engine.ts Network.send). */
export function worstOneWay(c: Pick<WorldConfig, "jitter">, from: Region, to: Region): number {
  return ONE_WAY_MS[from][to] * (1 + c.jitter) + 1;
}

/** The revocation bounds: the last admission, and the admin call's return. */
export function revocationBounds(c: WorldConfig): { effectiveMs: number; adminCallMs: number } {
  if (!c.revocation) throw new Error("no revocation in this world");
  const toHome = worstOneWay(c, c.revocation.adminRegion, c.homeRegion);
  return { effectiveMs: LEASE_TTL_MS + toHome, adminCallMs: LEASE_TTL_MS + toHome + worstOneWay(c, c.homeRegion, c.revocation.adminRegion) };
}

/** Runs a world and checks what the checker does not: the result's peaks and the revocation bounds. Throws on failure. */
export function checkWorld(c: WorldConfig): ScenarioResult {
  const result = runWorld(c);
  const fail = (what: string) => {
    throw new Error(`${what} (seed ${c.seed}): ${JSON.stringify(result)}`);
  };
  if (result.peakAdmitted.minute > c.limitPerMinute) fail(`${result.peakAdmitted.minute} admitted in a minute, limit ${c.limitPerMinute}`);
  if (result.peakAdmitted.day > c.limitPerDay) fail(`${result.peakAdmitted.day} admitted in a day, limit ${c.limitPerDay}`);
  if (c.revocation && result.revocation) {
    const bounds = revocationBounds(c);
    if (result.revocation.effectiveMs > bounds.effectiveMs) fail(`revocation effective after ${result.revocation.effectiveMs} ms, bound ${bounds.effectiveMs}`);
    if (result.revocation.adminCallMs > bounds.adminCallMs) fail(`the admin call took ${result.revocation.adminCallMs} ms, bound ${bounds.adminCallMs}`);
  }
  return result;
}

const region = fc.constantFrom(...REGIONS);

/** A random world: rates, limits, regions, faults and their times, small enough for CI (≤ ~100,000 calls). */
export const worlds: fc.Arbitrary<WorldConfig> = fc
  .record({
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    mode: fc.constantFrom<Mode>("leased", "leased", "leased", "exact"),
    missPath: fc.constantFrom<MissPath>("lease", "lease-single-flight", "forward"),
    homeRegion: region,
    weights: fc.tuple(...REGIONS.map(() => fc.integer({ min: 0, max: 10 }))).filter((w) => w.some((x) => x > 0)),
    perSecond: fc.integer({ min: 10, max: 1_500 }),
    limitPerMinute: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 100, max: 60_000 })),
    limitPerDay: fc.oneof(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 500, max: 200_000 })),
    isolatesPerRegion: fc.integer({ min: 1, max: 12 }),
    lossPerMille: fc.integer({ min: 0, max: 200 }),
    jitterPercent: fc.integer({ min: 0, max: 100 }),
    /** Start this long before a minute boundary (or, when nearMidnight, before 00:00 UTC). */
    leadMs: fc.integer({ min: 0, max: 60_000 }),
    nearMidnight: fc.boolean(),
    durationMs: fc.integer({ min: 5_000, max: 30_000 }),
    burst: fc.option(
      fc.record({
        at: fc.integer({ min: 0, max: 30_000 }),
        lengthMs: fc.integer({ min: 100, max: 2_000 }),
        perSecond: fc.integer({ min: 1_000, max: 20_000 }),
      }),
    ),
    crashes: fc.array(fc.record({ at: fc.integer({ min: 0, max: 30_000 }), region, isolate: fc.integer({ min: 0, max: 5 }) }), { maxLength: 12 }),
    partitions: fc.array(fc.record({ region, from: fc.integer({ min: 0, max: 30_000 }), lengthMs: fc.integer({ min: 100, max: 15_000 }) }), { maxLength: 3 }),
    homeRestarts: fc.array(fc.integer({ min: 0, max: 30_000 }), { maxLength: 3 }),
    revocation: fc.option(fc.record({ at: fc.integer({ min: 0, max: 30_000 }), adminRegion: region })),
    clockSkewMs: fc.integer({ min: 0, max: 120_000 }),
    /** Below the 3 ms shortest trip: the lag the lease tolerates (model.ts clockLagMs). */
    clockLagTenthsMs: fc.integer({ min: 0, max: 29 }),
    spikePerMille: fc.integer({ min: 0, max: 50 }),
    spikeMaxMs: fc.integer({ min: 0, max: 5_000 }),
    duplicatePerMille: fc.integer({ min: 0, max: 50 }),
    denialCache: fc.boolean(),
    applyLateAnswers: fc.boolean(),
  })
  .map((r): WorldConfig => {
    const weights = Object.fromEntries(REGIONS.map((name, i) => [name, r.weights[i]!]));
    const boundary = r.nearMidnight ? Date.UTC(2026, 11, 2) : Date.UTC(2026, 11, 1, 12, 0);
    return {
      scenario: "property",
      seed: r.seed,
      mode: r.mode,
      startAt: boundary - r.leadMs,
      durationMs: r.durationMs,
      homeRegion: r.homeRegion,
      isolatesPerRegion: r.isolatesPerRegion,
      missPath: r.missPath,
      limitPerMinute: r.limitPerMinute,
      limitPerDay: r.limitPerDay,
      load: [
        { from: 0, to: Number.POSITIVE_INFINITY, perSecond: r.perSecond, weights },
        ...(r.burst ? [{ from: r.burst.at, to: r.burst.at + r.burst.lengthMs, perSecond: r.burst.perSecond, weights }] : []),
      ],
      jitter: r.jitterPercent / 100,
      lossRate: r.lossPerMille / 1000,
      spikeRate: r.spikePerMille / 1000,
      spikeMaxMs: r.spikeMaxMs,
      duplicateRate: r.duplicatePerMille / 1000,
      partitions: r.partitions.map((p) => ({ region: p.region, from: p.from, to: p.from + p.lengthMs })),
      crashes: r.crashes,
      homeRestarts: r.homeRestarts,
      clockSkewMs: r.clockSkewMs,
      clockLagMs: r.clockLagTenthsMs / 10,
      denialCache: r.denialCache,
      applyLateAnswers: r.applyLateAnswers,
      ...(r.revocation ? { revocation: r.revocation } : {}),
    };
  });
