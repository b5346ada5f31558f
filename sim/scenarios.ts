/**
 * @module
 * The scenarios of issue 17, each bounded in virtual time. `full` is what
 * `npm run sim` runs; `ci` is the same scenario over a shorter stretch (the
 * node test project, run by `.ci/run`). Every scenario runs in both modes on
 * the same seed, so the exact baseline sees the very same calls.
 */
import { Rng, type Region } from "./engine";
import type { LoadPhase, WorldConfig } from "./model";

export type Size = "full" | "ci";

export interface Scenario {
  name: string;
  description: string;
  /** The scenario without its mode: run it as leased and as exact. */
  config: Omit<WorldConfig, "mode">;
}

/** 12:00:00 UTC: a minute boundary, far from the day's. */
const NOON = Date.UTC(2026, 11, 1, 12, 0, 0);
/** Two minutes before a UTC midnight: minute and day windows end together. */
const BEFORE_MIDNIGHT = Date.UTC(2026, 11, 1, 23, 58, 0);

/** A key with 30,000 calls a minute (500/s): per isolate, enough calls to hold a lease. */
const LIMIT_PER_MINUTE = 30_000;
const LIMIT_RATE = LIMIT_PER_MINUTE / 60;
/** Where this key's clients are: mostly North America and Europe, the home in North America. */
const MIX: Partial<Record<Region, number>> = { NA: 40, EU: 30, APAC: 15, SAM: 10, OC: 5 };
const EVEN: Partial<Record<Region, number>> = { NA: 1, EU: 1, APAC: 1, SAM: 1, OC: 1 };

function base(name: string, seed: number, durationMs: number, load: LoadPhase[]): Omit<WorldConfig, "mode"> {
  return {
    scenario: name,
    seed,
    startAt: NOON,
    durationMs,
    homeRegion: "NA",
    isolatesPerRegion: 4,
    limitPerMinute: LIMIT_PER_MINUTE,
    limitPerDay: 10_000_000,
    load,
    jitter: 0.2,
    lossRate: 0,
    partitions: [],
    crashes: [],
    homeRestarts: [],
    clockSkewMs: 0,
  };
}

function steady(times: number, weights = MIX): LoadPhase[] {
  return [{ from: 0, to: Number.POSITIVE_INFINITY, perSecond: times * LIMIT_RATE, weights }];
}

/** A crash of a random isolate every `everyMs`. */
function crashes(seed: number, durationMs: number, everyMs: number, isolates: number): WorldConfig["crashes"] {
  const rng = new Rng(seed).fork("crash-schedule");
  const regions: Region[] = ["NA", "SAM", "EU", "APAC", "OC"];
  const out: { at: number; region: Region; isolate: number }[] = [];
  for (let at = everyMs; at < durationMs; at += everyMs) out.push({ at, region: regions[rng.int(regions.length)]!, isolate: rng.int(isolates) });
  return out;
}

/** The scenarios `npm run sim` also runs with the other miss paths (sim/model.ts MissPath). */
export const VARIANT_SCENARIOS: readonly string[] = [
  "steady-1x",
  "steady-3x",
  "burst-at-midnight",
  "hot-key-20x",
  "hot-key-cold-start",
  "lossy-1x",
  "many-isolates-1x",
];

export function scenarios(size: Size): Scenario[] {
  const full = size === "full";
  const minutes = (fullMinutes: number, ciMinutes: number) => (full ? fullMinutes : ciMinutes) * 60_000;
  const list: Scenario[] = [
    {
      name: "steady-0.5x",
      description: "Poisson at half the per-minute limit, clients in five regions (NA 40%, EU 30%, APAC 15%, SAM 10%, OC 5%), home in NA",
      config: base("steady-0.5x", 101, minutes(10, 2), steady(0.5)),
    },
    {
      name: "steady-1x",
      description: "Poisson at the limit: half the minutes run out just before their end",
      config: base("steady-1x", 102, minutes(10, 2), steady(1)),
    },
    {
      name: "steady-3x",
      description: "Poisson at three times the limit: each minute runs out after 20 s; the rest is refused",
      config: base("steady-3x", 103, minutes(10, 1), steady(3)),
    },
    {
      name: "steady-3x-denial-cache",
      description:
        'steady-3x with the denial cache leased-admission.ts has: an isolate told "rate limited" refuses by itself for up to a lease (never past the reset)',
      config: { ...base("steady-3x-denial-cache", 103, minutes(10, 1), steady(3)), denialCache: true },
    },
    {
      name: "burst-at-midnight",
      description: "0.2x, then 30,000 calls/s for the second each side of 00:00 UTC, where minute and day end together; day limit 36,000",
      config: {
        ...base("burst-at-midnight", 104, 4 * 60_000, [...steady(0.2), { from: 119_000, to: 121_000, perSecond: 30_000, weights: MIX }]),
        startAt: BEFORE_MIDNIGHT,
        limitPerDay: 36_000,
      },
    },
    {
      name: "spread-1x",
      description: "one client spread evenly over all five regions, at the limit",
      config: base("spread-1x", 105, minutes(5, 2), steady(1, EVEN)),
    },
    {
      name: "spread-5x",
      description: "the same client at 5x, Unkey's over-admission case: admitted must stay at the limit",
      config: base("spread-5x", 106, minutes(3, 1), steady(5, EVEN)),
    },
    {
      name: "spread-5x-denial-cache",
      description: "spread-5x with the Worker's denial cache (up to a lease)",
      config: { ...base("spread-5x-denial-cache", 106, minutes(3, 1), steady(5, EVEN)), denialCache: true },
    },
    {
      name: "hot-key-20x",
      description: "20,000 calls/s (20x one object's soft limit of 1,000/s) after a 5 s ramp from 625/s, limit 1,500,000/min, 8 isolates per region",
      config: {
        ...base("hot-key-20x", 107, full ? 90_000 : 10_000, [
          ...[625, 1_250, 2_500, 5_000, 10_000].map((perSecond, i) => ({ from: i * 1_000, to: (i + 1) * 1_000, perSecond, weights: MIX })),
          { from: 5_000, to: Number.POSITIVE_INFINITY, perSecond: 20_000, weights: MIX },
        ]),
        isolatesPerRegion: 8,
        limitPerMinute: 1_500_000,
      },
    },
    {
      name: "hot-key-cold-start",
      description: "the same key going from 0 to 20,000 calls/s at once: the first round trip of calls is exact",
      config: {
        ...base("hot-key-cold-start", 116, full ? 10_000 : 3_000, [{ from: 0, to: Number.POSITIVE_INFINITY, perSecond: 20_000, weights: MIX }]),
        isolatesPerRegion: 8,
        limitPerMinute: 1_500_000,
      },
    },
    {
      name: "revoke-mid-burst",
      description: "1x, a 5x burst from 28 s to 34 s, the key revoked at 30 s by an admin in EU",
      config: {
        ...base("revoke-mid-burst", 108, 60_000, [...steady(1), { from: 28_000, to: 34_000, perSecond: 4 * LIMIT_RATE, weights: MIX }]),
        revocation: { at: 30_000, adminRegion: "EU" },
      },
    },
    {
      name: "revoke-partitioned",
      description: "the same, with APAC cut off from every other region from 25 s to 45 s",
      config: {
        ...base("revoke-partitioned", 109, 60_000, [...steady(1), { from: 28_000, to: 34_000, perSecond: 4 * LIMIT_RATE, weights: MIX }]),
        revocation: { at: 30_000, adminRegion: "EU" },
        partitions: [{ region: "APAC", from: 25_000, to: 45_000 }],
      },
    },
    {
      name: "lossy-1x",
      description: "1x with 5% of messages lost, 1% duplicated, 1% held up by up to 2 s, and jitter up to +50% (answers reorder)",
      config: { ...base("lossy-1x", 110, minutes(3, 1), steady(1)), lossRate: 0.05, duplicateRate: 0.01, spikeRate: 0.01, spikeMaxMs: 2_000, jitter: 0.5 },
    },
    {
      name: "crashes-1x",
      description: "1x, an isolate crashes every second (grants and answers in flight lost); isolate clocks off by up to ±30 s and lagging by up to 2 ms",
      config: { ...base("crashes-1x", 111, minutes(3, 1), steady(1)), crashes: crashes(111, minutes(3, 1), 1_000, 4), clockSkewMs: 30_000, clockLagMs: 2 },
    },
    {
      name: "partition-1x",
      description: "1x, OC cut off from 60 s to 120 s (its calls fail closed once its grants expire)",
      config: { ...base("partition-1x", 112, minutes(3, 2), steady(1)), partitions: [{ region: "OC", from: 60_000, to: 120_000 }] },
    },
    {
      name: "home-restart-revoke",
      description: "1x, the home restarts at 20 s and 40 s (its book lost), the key revoked 300 ms after the second restart",
      config: { ...base("home-restart-revoke", 113, 60_000, steady(1)), homeRestarts: [20_000, 40_000], revocation: { at: 40_300, adminRegion: "NA" } },
    },
    {
      name: "quiet-key",
      description: "0.05x (25 calls/s over 20 isolates, ~1 call/s each): too few calls per isolate to keep a 1 s lease",
      config: base("quiet-key", 114, minutes(3, 1), steady(0.05)),
    },
    {
      name: "many-isolates-1x",
      description: "1x over 40 isolates per region (200 holders, ~2.5 calls/s each)",
      config: { ...base("many-isolates-1x", 115, minutes(3, 1), steady(1)), isolatesPerRegion: 40 },
    },
  ];
  return list;
}
