/**
 * `npm run sim`: every scenario in sim/scenarios.ts, leased and exact, at full
 * length, and the other miss paths on a few of them; prints the results
 * tables and writes sim/results.json. Options:
 * `--ci` (the shorter runs the tests use), `--only <name>` (repeatable).
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { LEASE_TTL_MS } from "../src/limits/lease";
import type { ScenarioResult } from "./metrics";
import { type MissPath, type Mode, runWorld, type WorldConfig } from "./model";
import { scenarios, VARIANT_SCENARIOS } from "./scenarios";
import { resultsTable } from "./table";

const args = process.argv.slice(2);
const size = args.includes("--ci") ? "ci" : "full";
const only = args.flatMap((arg, i) => (args[i - 1] === "--only" ? [arg] : []));
const selected = scenarios(size).filter((s) => only.length === 0 || only.includes(s.name));

const wallStart = performance.now();
function runOne(config: WorldConfig): ScenarioResult {
  const result = runWorld(config);
  process.stderr.write(
    `${config.scenario} [${config.mode}${config.missPath ? `, ${config.missPath}` : ""}]: ${result.events} events, ${(result.wallMs / 1000).toFixed(1)} s\n`,
  );
  return result;
}
const results = selected.flatMap((s) => (["leased", "exact"] as Mode[]).map((mode) => runOne({ ...s.config, mode })));
const variants = selected
  .filter((s) => VARIANT_SCENARIOS.includes(s.name))
  .flatMap((s) => (["lease", "forward"] as MissPath[]).map((missPath) => runOne({ ...s.config, mode: "leased", missPath })));
const wallSeconds = (performance.now() - wallStart) / 1000;
const all = [...results, ...variants];

// The results belong to one version of the algorithm: name it. (npm runs scripts from the package root.)
const leaseVersion = createHash("sha256").update(readFileSync("src/limits/lease.ts")).digest("hex").slice(0, 12);
console.log(
  `\nLeased admission, simulated (src/limits/lease.ts sha256 ${leaseVersion}, LEASE_TTL_MS = ${LEASE_TTL_MS}; ${size} runs; every invariant held after every event).`,
);
console.log(`\nLeased (a miss sends a lease request carrying the call, as src/limits/leased-admission.ts does) against exact (every call to the home):\n`);
console.log(resultsTable(results));
if (variants.length > 0) {
  console.log(
    `\nOther miss paths: lease (one lease request per miss, not coalesced: the first version), forward (the call goes exact, a renewal in the background):\n`,
  );
  console.log(resultsTable(variants));
}
console.log(`\n${all.length} runs, ${all.reduce((n, r) => n + r.events, 0)} events, ${wallSeconds.toFixed(1)} s of wall time.`);

writeFileSync(
  "sim/results.json",
  `${JSON.stringify({ size, leaseVersion, leaseTtlMs: LEASE_TTL_MS, scenarios: selected.map((s) => ({ name: s.name, description: s.description })), results, variants }, null, 2)}\n`,
);
