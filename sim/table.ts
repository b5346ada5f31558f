/**
 * @module
 * The results table, as Markdown: what `npm run sim` prints and
 * docs/leased-admission.md quotes.
 */
import type { ScenarioResult } from "./metrics";

const percent = (x: number, digits = 1) => `${(x * 100).toFixed(digits)}%`;
const ms = (x: number) => (Number.isNaN(x) ? "–" : x.toFixed(0));
const perSecond = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

const COLUMNS: [header: string, cell: (r: ScenarioResult) => string][] = [
  ["scenario", (r) => r.scenario],
  ["mode", (r) => (r.mode === "exact" || r.missPath === "lease-single-flight" ? r.mode : `leased, ${r.missPath}`)],
  ["calls", (r) => String(r.calls)],
  ["admitted", (r) => String(r.admitted)],
  ["failed", (r) => String(r.failed)],
  ["no x-region", (r) => percent(r.noCrossRegionShare)],
  ["local of admitted", (r) => percent(r.localShareOfAdmitted)],
  ["under p50", (r) => (r.underAdmission.windows === 0 ? "–" : percent(r.underAdmission.p50, 2))],
  ["under p99", (r) => (r.underAdmission.windows === 0 ? "–" : percent(r.underAdmission.p99, 2))],
  ["+ms p50", (r) => ms(r.addedLatencyMs.p50)],
  ["+ms p99", (r) => ms(r.addedLatencyMs.p99)],
  ["home/s mean", (r) => perSecond(r.homeCallsPerSecond.mean)],
  ["home/s peak", (r) => String(r.homeCallsPerSecond.peak)],
  ["revoke effective ms", (r) => (r.revocation ? ms(r.revocation.effectiveMs) : "–")],
  ["admin call ms", (r) => (r.revocation ? ms(r.revocation.adminCallMs) : "–")],
];

export function resultsTable(results: readonly ScenarioResult[]): string {
  const rows = [COLUMNS.map(([header]) => header), ...results.map((r) => COLUMNS.map(([, cell]) => cell(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i < 2 ? `${"-".repeat(w + 1)}-` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join("\n");
}
