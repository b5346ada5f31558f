/**
 * Every failing seed the simulator's property runs found, kept as a named
 * case, and the seeds of the fixed scenarios (sim/scenarios.ts).
 *
 * Found so far (fast-check over sim/properties.ts `worlds`; about 20,000 random
 * worlds explored while building the simulator):
 *  - two worlds where a duplicated renewal answer arrived after the first copy
 *    had been applied and the model, applying late answers, applied it again:
 *    the holder held the same grant twice and spent it twice ("grant home0-6
 *    spent 14 times, granted 13"). The defect was the model's: an RPC answer
 *    settles its call once, so sim/model.ts now drops every later copy. It
 *    shows LeaseHolder's one precondition (apply each answer once), which the
 *    `apply-answer-twice` sabotage keeps under test in lease-sim.test.ts.
 *    src/limits/lease.ts was not changed.
 * A seed's exact event sequence moves whenever src/limits/lease.ts tunes its
 * sizes; these worlds are kept because they mix rare faults (a duplicated,
 * late answer applied after its timeout), not because they still fail.
 * No seed has broken an invariant with the lease algorithm as written.
 */
import { describe, expect, it } from "vitest";
import type { WorldConfig } from "../../sim/model";
import { checkWorld } from "../../sim/properties";
import { scenarios } from "../../sim/scenarios";

const EU_ONLY = { NA: 0, SAM: 0, EU: 1, APAC: 0, OC: 0 };

/** fast-check seed 31, counterexample after 19 runs: a duplicated answer applied after its first copy. */
const DUPLICATE_ANSWER_EU: WorldConfig = {
  scenario: "regression duplicate-answer-eu",
  seed: 259757658,
  mode: "leased",
  startAt: 1796126400000,
  durationMs: 5000,
  homeRegion: "NA",
  isolatesPerRegion: 1,
  // Found before the "lease" miss path was modelled: the "forward" path.
  missPath: "forward",
  limitPerMinute: 100,
  limitPerDay: 500,
  load: [
    { from: 0, to: Number.POSITIVE_INFINITY, perSecond: 12, weights: EU_ONLY },
    { from: 1236, to: 1336, perSecond: 1000, weights: EU_ONLY },
  ],
  jitter: 0,
  lossRate: 0.001,
  spikeRate: 0.001,
  spikeMaxMs: 0,
  duplicateRate: 0.018,
  partitions: [],
  crashes: [],
  homeRestarts: [],
  clockSkewMs: 0,
  clockLagMs: 0,
  denialCache: false,
  applyLateAnswers: true,
};

/** fast-check seed 32, counterexample after 18 runs: the same defect, with held-up messages. */
const DUPLICATE_ANSWER_APAC_OC: WorldConfig = {
  scenario: "regression duplicate-answer-apac-oc",
  seed: 1215191969,
  mode: "leased",
  startAt: 1796126400000,
  durationMs: 5000,
  homeRegion: "NA",
  isolatesPerRegion: 2,
  missPath: "forward",
  limitPerMinute: 100,
  limitPerDay: 500,
  load: [{ from: 0, to: Number.POSITIVE_INFINITY, perSecond: 144, weights: { NA: 0, SAM: 0, EU: 0, APAC: 1, OC: 1 } }],
  jitter: 0.13,
  lossRate: 0,
  spikeRate: 0.013,
  spikeMaxMs: 165,
  duplicateRate: 0.007,
  partitions: [],
  crashes: [],
  homeRestarts: [],
  clockSkewMs: 0,
  clockLagMs: 0,
  denialCache: false,
  applyLateAnswers: true,
};

describe("failing seeds, kept", () => {
  it.each([DUPLICATE_ANSWER_EU, DUPLICATE_ANSWER_APAC_OC])("$scenario (seed $seed) holds every invariant", (world) => {
    const result = checkWorld(world);
    expect(result.admitted).toBeGreaterThan(0);
    expect(result.peakAdmitted.minute).toBeLessThanOrEqual(world.limitPerMinute);
  });
});

/** The fixed scenarios' seeds: changing one changes every number in docs/leased-admission.md, so it is deliberate. */
const SCENARIO_SEEDS: Record<string, number> = {
  "steady-0.5x": 101,
  "steady-1x": 102,
  "steady-3x": 103,
  "steady-3x-denial-cache": 103,
  "burst-at-midnight": 104,
  "spread-1x": 105,
  "spread-5x": 106,
  "spread-5x-denial-cache": 106,
  "hot-key-20x": 107,
  "hot-key-cold-start": 116,
  "revoke-mid-burst": 108,
  "revoke-partitioned": 109,
  "lossy-1x": 110,
  "crashes-1x": 111,
  "partition-1x": 112,
  "home-restart-revoke": 113,
  "quiet-key": 114,
  "many-isolates-1x": 115,
};

describe("the fixed scenarios' seeds", () => {
  const ci = scenarios("ci");

  it("are the seeds recorded here", () => {
    expect(Object.fromEntries(ci.map((s) => [s.name, s.config.seed]))).toEqual(SCENARIO_SEEDS);
  });

  it.each(ci.map((s) => [s.name, s] as const))("%s holds every invariant, leased and exact", (_name, scenario) => {
    for (const mode of ["leased", "exact"] as const) checkWorld({ ...scenario.config, mode });
  });
});
