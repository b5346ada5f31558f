/**
 * Leased admission (issue 17), proved by simulation: the bounded ("ci")
 * runs of sim/scenarios.ts with every invariant checked after every event
 * (sim/invariants.ts throws when one breaks), the targets asserted on their
 * results, the checker shown to catch deliberate defects, and fast-check runs
 * over random schedules. `npm run sim` runs the full scenarios.
 *
 * A failing property run prints its counterexample: keep it as a named case
 * in lease-sim-regressions.test.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvariantViolation } from "../../sim/invariants";
import type { ScenarioResult } from "../../sim/metrics";
import { type Mode, runWorld, type Sabotage, type WorldConfig } from "../../sim/model";
import { checkWorld, revocationBounds, worlds } from "../../sim/properties";
import { scenarios } from "../../sim/scenarios";
import { LEASE_TTL_MS } from "../../src/limits/lease";

const CI = new Map(scenarios("ci").map((s) => [s.name, s.config]));

function config(name: string): Omit<WorldConfig, "mode"> {
  const found = CI.get(name);
  if (!found) throw new Error(`no scenario ${name}`);
  return found;
}

function run(name: string, mode: Mode = "leased", patch: Partial<WorldConfig> = {}): ScenarioResult {
  return runWorld({ ...config(name), mode, ...patch });
}

function expectNeverOver(result: ScenarioResult, c: Pick<WorldConfig, "limitPerMinute" | "limitPerDay">): void {
  expect(result.peakAdmitted.minute, JSON.stringify(result)).toBeLessThanOrEqual(c.limitPerMinute);
  expect(result.peakAdmitted.day, JSON.stringify(result)).toBeLessThanOrEqual(c.limitPerDay);
}

describe("leased admission in the simulator (bounded runs)", () => {
  it.each(["steady-0.5x", "steady-1x", "spread-1x"])("%s decides at least 95% of calls without a cross-region round trip, never over the limit", (name) => {
    const leased = run(name);
    const exact = run(name, "exact");
    expect(leased.noCrossRegionShare, JSON.stringify(leased)).toBeGreaterThanOrEqual(0.95);
    expect(exact.noCrossRegionShare).toBeLessThan(0.5);
    expect(leased.addedLatencyMs.p50).toBe(0);
    expect(leased.underAdmission.p99, JSON.stringify(leased.underAdmission)).toBeLessThan(0.01);
    expectNeverOver(leased, config(name));
    expect(leased.calls).toBe(exact.calls);
  });

  it("steady-3x and spread-5x admit the limit and no more: 5x demand over five regions cannot take more than 1x", () => {
    for (const name of ["steady-3x", "spread-5x"]) {
      const c = config(name);
      const leased = run(name);
      expectNeverOver(leased, c);
      expect(leased.peakAdmitted.minute / c.limitPerMinute).toBeGreaterThan(0.99);
      expect(leased.localShareOfAdmitted).toBeGreaterThanOrEqual(0.95);
      expect(leased.underAdmission.p99).toBeLessThan(0.01);
    }
  });

  it("with the Worker's denial cache (a refusal repeated for up to a lease), over-limit calls are mostly refused in the isolate", () => {
    const cached = run("steady-3x-denial-cache");
    // Without it 60 %; a refusal kept until the minute's reset reached 98-99 %, but a lease-long one keeps the revocation
    // bound at 1 s: 94.9 %, just short of the 95 % (docs/leased-admission.md, Results).
    expect(cached.noCrossRegionShare).toBeGreaterThanOrEqual(0.9);
    // A refusal is asked again once a lease per isolate: an order of magnitude fewer home calls than exact mode's one per call.
    const exact = run("steady-3x-denial-cache", "exact");
    expect(cached.homeCallsPerSecond.mean).toBeLessThan(exact.homeCallsPerSecond.mean / 10);
    expectNeverOver(cached, config("steady-3x-denial-cache"));
  });

  it("a hot key at 20,000 calls/s costs the home far fewer than 1,000 calls/s (exact mode: all 20,000)", () => {
    const leased = run("hot-key-20x");
    const exact = run("hot-key-20x", "exact");
    expect(leased.homeCallsPerSecond.peak, JSON.stringify(leased.homeCallsPerSecond)).toBeLessThan(400);
    expect(leased.homeCallsPerSecond.mean).toBeLessThan(200);
    expect(leased.noCrossRegionShare).toBeGreaterThanOrEqual(0.95);
    expect(exact.homeCallsPerSecond.peak).toBeGreaterThan(19_000);
  });

  it("the burst across midnight stays within both the minute and the day limit, whatever the miss path", () => {
    const c = config("burst-at-midnight");
    for (const patch of [{ mode: "exact" }, { missPath: "lease" }, { missPath: "lease-single-flight" }, { missPath: "forward" }] as const) {
      const result = run("burst-at-midnight", "leased", patch);
      expectNeverOver(result, c);
      // Two UTC days, each capped by its day limit.
      expect(result.admitted).toBeLessThanOrEqual(2 * c.limitPerDay);
      if (patch.missPath !== "lease") expect(result.admitted, JSON.stringify(patch)).toBeGreaterThan(1.95 * c.limitPerDay);
    }
  });

  it("coalesced misses (one lease request in flight per isolate, as leased-admission.ts does) keep a burst from stranding its window, unlike one request per miss", () => {
    // One request per miss (the first version): during a 30,000 calls/s burst an isolate had hundreds in flight,
    // each granted up to half the room. docs/leased-admission.md, Findings.
    const c = config("burst-at-midnight");
    const uncoalesced = run("burst-at-midnight", "leased", { missPath: "lease" });
    const coalesced = run("burst-at-midnight", "leased", { missPath: "lease-single-flight" });
    expect(uncoalesced.underAdmission.p99).toBeGreaterThan(0.2);
    expect(coalesced.underAdmission.p99).toBeLessThan(0.05);
    expect(uncoalesced.admitted).toBeLessThan(1.6 * c.limitPerDay);
  });

  it("at a minute's end every grant ends at once: coalesced misses spare the home the stampede one request per miss made", () => {
    // The hot key across 12:00:00 (7 s in): each isolate's misses in the first round trip of the minute each send a request.
    const acrossMinute = { startAt: config("hot-key-20x").startAt - 7_000 };
    const uncoalesced = run("hot-key-20x", "leased", { ...acrossMinute, missPath: "lease" });
    const coalesced = run("hot-key-20x", "leased", { ...acrossMinute, missPath: "lease-single-flight" });
    expect(uncoalesced.homeCallsPerSecond.peak).toBeGreaterThan(1_000);
    expect(coalesced.homeCallsPerSecond.peak).toBeLessThan(1_000);
    expect(coalesced.homeCallsPerSecond.mean).toBeLessThan(250);
  });

  it.each(["revoke-mid-burst", "revoke-partitioned", "home-restart-revoke"])(
    "%s: no call admitted past LEASE_TTL_MS + the admin's trip to the home; the admin call returns within the bound",
    (name) => {
      const bounds = revocationBounds({ ...config(name), mode: "leased" });
      const leased = run(name);
      expect(leased.revocation!.effectiveMs, JSON.stringify(leased.revocation)).toBeLessThanOrEqual(bounds.effectiveMs);
      expect(leased.revocation!.adminCallMs).toBeLessThanOrEqual(bounds.adminCallMs);
      // Holders were admitting locally after the revocation reached the home (later than any exact call could be
      // admitted): the bound is not met vacuously.
      expect(leased.revocation!.effectiveMs).toBeGreaterThan(bounds.effectiveMs - LEASE_TTL_MS);
      const exact = run(name, "exact");
      expect(exact.revocation!.effectiveMs).toBeLessThanOrEqual(bounds.effectiveMs - LEASE_TTL_MS);
    },
  );

  it("loss, crashes, skewed clocks and a partition cost under-admission and fail-closed calls, never over-admission", () => {
    for (const name of ["lossy-1x", "crashes-1x", "partition-1x"]) {
      const c = config(name);
      const leased = run(name);
      expectNeverOver(leased, c);
      expect(leased.admitted).toBeGreaterThan(0.8 * c.limitPerMinute * (c.durationMs / 60_000));
    }
    expect(run("partition-1x").failed).toBeGreaterThan(0);
  });

  it("one seed, one run: the same scenario gives the same result twice", () => {
    const { wallMs: _a, ...first } = run("lossy-1x");
    const { wallMs: _b, ...second } = run("lossy-1x");
    expect(second).toEqual(first);
    const { wallMs: _c, ...other } = run("lossy-1x", "leased", { seed: 7 });
    expect(other).not.toEqual(first);
  });
});

describe("the checker catches what it claims to", () => {
  const cases: [Sabotage, string, Partial<WorldConfig>, RegExp][] = [
    // Grants still out when a minute ends (0.8x), then a minute that uses every call it is given back (3x).
    [
      "refund-stale-minute",
      "steady-3x",
      {
        durationMs: 120_000,
        load: [
          { from: 0, to: 60_000, perSecond: 400, weights: { NA: 1, EU: 1 } },
          { from: 60_000, to: 120_000, perSecond: 1_500, weights: { NA: 1, EU: 1 } },
        ],
      },
      /the home counts -?\d+ used this minute, but \d+ calls were admitted|calls admitted in the window/,
    ],
    ["expiry-from-receipt", "steady-1x", {}, /at or after the home's expiry/],
    ["grant-past-window", "steady-1x", {}, /after its minute ends/],
    // LeaseHolder's precondition: each answer applied once (an RPC settles once). Found by the property runs: lease-sim-regressions.test.ts.
    ["apply-answer-twice", "steady-1x", { duplicateRate: 0.05 }, /spent \d+ times, granted \d+/],
    // The admin call reaches the home 1 ms after its restart: a book that forgot its drain answers at once, while old grants still run.
    [
      "forget-drain-on-restart",
      "home-restart-revoke",
      { homeRestarts: [40_000], revocation: { at: 39_999, adminRegion: "NA" } },
      /after the admin call returned/,
    ],
  ];
  it.each(cases)("%s is caught (%s)", (sabotage, name, patch, message) => {
    expect(() => run(name, "leased", { ...patch, sabotage })).toThrow(message);
    expect(() => run(name, "leased", patch)).not.toThrow();
  });

  it("a holder clock that lags more than the shortest trip to the home spends past a grant's expiry: the lease's one timing assumption", () => {
    // In-region trips take at least 3 ms (sim/engine.ts); crashes-1x runs with a 2 ms lag and passes.
    expect(() => run("steady-1x", "leased", { clockLagMs: 20 })).toThrow(/at or after the home's expiry/);
  });

  it("a violation names the scenario, the seed and the event", () => {
    try {
      run("steady-1x", "leased", { sabotage: "expiry-from-receipt" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvariantViolation);
      const violation = error as InvariantViolation;
      expect(violation.seed).toBe(config("steady-1x").seed);
      expect(violation.eventIndex).toBeGreaterThan(0);
      expect(violation.message).toMatch(/^invariant broken in steady-1x \[leased\] \(seed 102, event \d+\)/);
    }
  });
});

describe("property: random schedules", () => {
  it("never over-admits, never spends past a grant's expiry, and revokes within the bound", { timeout: 60_000 }, () => {
    const numRuns = Number(process.env.LEASE_SIM_RUNS ?? 100);
    fc.assert(
      fc.property(worlds, (c) => {
        checkWorld(c);
      }),
      { numRuns, ...(process.env.LEASE_SIM_SEED ? { seed: Number(process.env.LEASE_SIM_SEED) } : {}) },
    );
  });
});
