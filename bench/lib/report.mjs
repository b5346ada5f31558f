// Medians over rounds, targets, the printed tables and bench/results.json.
import { cpus, loadavg, platform, release } from 'node:os';
import { writeFileSync } from 'node:fs';

/** Share of checked answers below which a sample's numbers are not trusted. */
export const MIN_CORRECT = 0.999;

const round = (value, digits = 2) => (value === null || value === undefined || !Number.isFinite(value) ? null : Number(value.toFixed(digits)));

/** Median, min and max of numbers (nulls dropped); nulls when there are none. */
export function spread(values) {
  const sorted = values.filter((v) => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return { median: null, min: null, max: null };
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

/**
 * Per scenario, medians [min–max] over its rounds.
 * @param {Record<string, { label: string, samples: any[] }>} scenarios
 */
export function summarize(scenarios) {
  return Object.entries(scenarios).map(([id, { label, samples }]) => {
    const of = (field) => spread(samples.map((s) => s[field]));
    const statusCodes = {};
    for (const s of samples) for (const [code, n] of Object.entries(s.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
    const faults = {};
    for (const s of samples) for (const [fault, n] of Object.entries(s.faults)) faults[fault] = (faults[fault] ?? 0) + n;
    return {
      id,
      label,
      rounds: samples.length,
      reqPerSec: of('reqPerSec'),
      p50Ms: of('p50Ms'),
      p99Ms: of('p99Ms'),
      cpuMsPerRequest: of('cpuMsPerRequest'),
      requests: samples.reduce((sum, s) => sum + s.requests, 0),
      correct: Math.min(...samples.map((s) => s.correct)),
      statusCodes,
      faults,
    };
  });
}

/**
 * Ratios of one scenario to another taken round by round (each pair measured
 * next to each other), then their median [min–max].
 * @param {any[]} a samples of the scenario @param {any[]} b samples of the baseline
 * @param {(a: any, b: any) => number | null} of
 */
export function pairedRatio(a, b, of) {
  const ratios = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) ratios.push(of(a[i], b[i]));
  return spread(ratios);
}

export const throughputRatio = (a, b) => (b.reqPerSec > 0 ? a.reqPerSec / b.reqPerSec : null);
/** The baseline's CPU per request over the scenario's: what the throughput ratio would be if workerd's CPU were the only bound. */
export const cpuRatio = (a, b) => (a.cpuMsPerRequest > 0 && b.cpuMsPerRequest !== null ? b.cpuMsPerRequest / a.cpuMsPerRequest : null);
export const ratioOf = (field) => (a, b) => (b[field] > 0 ? a[field] / b[field] : null);

/**
 * A target judged on a value; `met` is null when the value could not be measured,
 * and false whenever a scenario it rests on gave a wrong answer.
 */
export function target({ id, metric, value, range, target: threshold, atMost = false, wrong = [] }) {
  const v = round(value);
  const met = wrong.length > 0 ? false : v === null ? null : atMost ? v <= threshold : v >= threshold;
  return {
    id,
    metric,
    value: v,
    ...(range ? { range: [round(range.min), round(range.max)] } : {}),
    target: threshold,
    comparison: atMost ? '<=' : '>=',
    met,
    ...(wrong.length > 0 ? { note: `wrong answers in ${wrong.join(', ')}` } : {}),
  };
}

const pad = (value, width, right = false) => (right ? String(value).padStart(width) : String(value).padEnd(width));
const fixed = (value, digits = 0) => (value === null || value === undefined ? '-' : Number(value).toFixed(digits));
const ranged = ({ median, min, max }, digits = 0) => (median === null ? '-' : `${fixed(median, digits)} [${fixed(min, digits)}–${fixed(max, digits)}]`);

function printGrid(header, lines, rightFrom = 2) {
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => String(line[i]).length)));
  const format = (line) => line.map((cell, i) => pad(cell, widths[i], i >= rightFrom)).join('  ');
  console.log(format(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const line of lines) console.log(format(line));
}

/** The scenarios: medians [min–max] over rounds. */
export function printScenarios(rows) {
  printGrid(
    ['', 'scenario', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req', 'checked'],
    rows.map((row) => [
      row.id,
      row.label,
      ranged(row.reqPerSec),
      ranged(row.p50Ms, row.p50Ms.median < 10 ? 2 : 0),
      ranged(row.p99Ms, row.p99Ms.median < 10 ? 2 : 0),
      ranged(row.cpuMsPerRequest, 2),
      `${row.requests} ${row.correct >= MIN_CORRECT ? 'ok' : `WRONG ${JSON.stringify(row.faults)}`}`,
    ]),
  );
}

/** The cost model: operations counted per request, and their price. */
export function printCosts(costs) {
  printGrid(
    ['', 'scenario', 'DO calls', 'DO rows read', 'DO rows written', 'D1 queries', 'D1 rows read', 'D1 rows written', 'CPU ms', 'USD / M req'],
    costs.map((c) => [
      c.id,
      c.label,
      fixed(c.doCalls, 2),
      fixed(c.doRowsRead, 2),
      fixed(c.doRowsWritten, 2),
      fixed(c.d1Queries, 2),
      fixed(c.d1RowsRead, 2),
      fixed(c.d1RowsWritten, 2),
      fixed(c.cpuMs, 2),
      fixed(c.usdPerMillion, 3),
    ]),
  );
}

export function printTargets(targets) {
  for (const t of targets) {
    const verdict = t.met === null ? 'n/a  ' : t.met ? 'met  ' : 'UNMET';
    const range = t.range ? ` [${fixed(t.range[0], 2)}–${fixed(t.range[1], 2)}]` : '';
    console.log(`${verdict}  ${t.id}: ${t.metric} ${t.comparison} ${t.target}  (got ${fixed(t.value, 2)}${range})${t.note ? ` — ${t.note}` : ''}`);
  }
}

export function machine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    os: `${platform()} ${release()}`,
    node: process.version,
  };
}

/** The 1-minute load average, rounded. */
export const load1m = () => Math.round(loadavg()[0] * 100) / 100;

export function writeResults(path, results) {
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
}

/** The README's benchmark tables, as markdown, from bench/results.json's contents. */
export function markdownReport(results) {
  const r = (spreadValue, digits = 0) =>
    spreadValue.median === null ? '–' : `${fixed(spreadValue.median, digits)} [${fixed(spreadValue.min, digits)}–${fixed(spreadValue.max, digits)}]`;
  const load = results.machine.loadAverage1m;
  const lines = [
    `${results.date.slice(0, 10)}, ${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node.replace(/^v/, '')}, ` +
      `1-minute load average ${load.median} [${load.min}–${load.max}] over the run; ${results.settings.rounds} interleaved rounds of ` +
      `${results.settings.durationSeconds} s per scenario, ${results.settings.connections} connections. Medians [min–max] over rounds:`,
    '',
    '| | scenario | req/s | p50 ms | p99 ms | CPU ms/req |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
    ...results.scenarios.map(
      (s) =>
        `| ${s.id} | ${s.label} | ${r(s.reqPerSec)} | ${r(s.p50Ms, s.p50Ms.median < 10 ? 2 : 0)} | ${r(s.p99Ms, s.p99Ms.median < 10 ? 2 : 0)} | ${r(s.cpuMsPerRequest, 2)} |`,
    ),
    '',
    `Operations per request, counted (cost pass, ${results.settings.countedRequests} calls each), priced with \`bench/prices.mjs\` (${results.prices.date}):`,
    '',
    '| | scenario | DO calls | DO rows read | DO rows written | D1 queries | D1 rows read | D1 rows written | CPU ms | USD per million |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.costs.map(
      (c) =>
        `| ${c.id} | ${c.label} | ${fixed(c.doCalls, 2)} | ${fixed(c.doRowsRead, 2)} | ${fixed(c.doRowsWritten, 2)} | ${fixed(c.d1Queries, 2)} | ${fixed(c.d1RowsRead, 2)} | ${fixed(c.d1RowsWritten, 2)} | ${fixed(c.cpuMs, 2)} | ${fixed(c.usdPerMillion, 3)} |`,
    ),
    '',
    'Targets (same run; ratios are medians of round-by-round ratios [min–max]):',
    '',
    '| target | metric | value | wanted | verdict |',
    '| --- | --- | ---: | ---: | --- |',
    ...results.targets.map(
      (t) =>
        `| ${t.id} | ${t.metric} | ${fixed(t.value, 2)}${t.range ? ` [${fixed(t.range[0], 2)}–${fixed(t.range[1], 2)}]` : ''} | ${t.comparison} ${t.target} | ${t.met === null ? 'n/a' : t.met ? 'met' : '**unmet**'}${t.note ? ` (${t.note})` : ''} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
