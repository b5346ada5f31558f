// Ratios, targets, the printed table and bench/results.json.
import { cpus, loadavg, platform, release } from 'node:os';
import { writeFileSync } from 'node:fs';

/** Throughput ratio of `scenario` to `baseline`, rounded; null when either is missing. */
export function ratio(scenario, baseline) {
  if (!scenario || !baseline || baseline.reqPerSec === 0) return null;
  return Math.round((scenario.reqPerSec / baseline.reqPerSec) * 100) / 100;
}

/** Share of expected statuses below which a scenario's numbers are not trusted. */
const MIN_CORRECT = 0.99;

/** Baseline CPU per request over the scenario's: the throughput ratio when CPU-bound. */
function cpuRatio(scenario, baseline) {
  if (!scenario?.cpuMsPerRequest || !baseline?.cpuMsPerRequest) return null;
  return Math.round((baseline.cpuMsPerRequest / scenario.cpuMsPerRequest) * 100) / 100;
}

/**
 * The issue's targets, judged on numbers from the same run.
 * @param {Record<string, any>} s scenarios by id
 */
export function judgeTargets(s) {
  const throughput = (name, id, baseline, threshold) => ({
    name,
    rule: `req/s (${id}) >= ${threshold} x (${baseline})`,
    value: ratio(s[id], s[baseline]),
    threshold,
    atLeast: true,
    ids: [id, baseline],
    // What the ratio would be if workerd's CPU were the only bound: steadier on a busy machine.
    cpuBoundEstimate: cpuRatio(s[id], s[baseline]),
  });
  const targets = [
    throughput('warm API key vs bare proxy + DO', 'c', 'b2', 0.85),
    throughput('ES256 JWT vs bare proxy + DO', 'e', 'b2', 0.75),
    throughput('format-refused vs bare proxy', 'f', 'b', 0.9),
    throughput('keygate warm vs naive D1', 'c', 'g', 2),
    {
      name: 'cold key lookup latency',
      rule: 'p50 (d) <= 2 x p50 (c)',
      value: s.c && s.d && s.c.p50Ms > 0 ? Math.round((s.d.p50Ms / s.c.p50Ms) * 100) / 100 : null,
      threshold: 2,
      atLeast: false,
      ids: ['c', 'd'],
    },
  ];
  return targets.map(({ atLeast, ids, ...target }) => {
    // A fast wrong answer is not a result: any scenario with unexpected statuses fails its targets.
    const wrong = ids.filter((id) => s[id] && s[id].correct < MIN_CORRECT);
    if (wrong.length > 0) return { ...target, met: false, note: `unexpected statuses in ${wrong.join(', ')}` };
    // null: a scenario it needs was not run.
    if (target.value === null) return { ...target, met: null };
    return { ...target, met: atLeast ? target.value >= target.threshold : target.value <= target.threshold };
  });
}

const pad = (value, width, right = false) => (right ? String(value).padStart(width) : String(value).padEnd(width));
const fixed = (value, digits = 0) => (value === null || value === undefined ? '-' : Number(value).toFixed(digits));

/** @param {any[]} rows scenario results with id, label, and ratios */
export function printTable(rows) {
  const header = ['', 'scenario', 'req/s', 'p50 ms', 'p99 ms', 'x (b)', 'x (b2)', 'CPU ms/req', 'statuses'];
  const lines = rows.map((row) => [
    row.id,
    row.label,
    fixed(row.reqPerSec),
    fixed(row.p50Ms),
    fixed(row.p99Ms),
    fixed(row.ratioToBare, 2),
    fixed(row.ratioToBareDo, 2),
    fixed(row.cpuMsPerRequest, 2),
    Object.entries(row.statusCodes).map(([code, n]) => `${code}:${n}`).join(' ') + (row.errors ? ` errors:${row.errors}` : ''),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => String(line[i]).length)));
  const format = (line) => line.map((cell, i) => pad(cell, widths[i], i >= 2 && i <= 7)).join('  ');
  console.log(format(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const line of lines) console.log(format(line));
}

export function printTargets(targets) {
  for (const t of targets) {
    const estimate = t.cpuBoundEstimate === undefined ? '' : `; by CPU per request ${fixed(t.cpuBoundEstimate, 2)}`;
    const verdict = t.met === null ? 'n/a  ' : t.met ? 'met  ' : 'UNMET';
    console.log(`${verdict}  ${t.name}: ${t.rule}  (got ${fixed(t.value, 2)}${estimate})${t.note ? ` — ${t.note}` : ''}`);
  }
}

export function machine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    os: `${platform()} ${release()}`,
    node: process.version,
    loadAverage1mAtStart: Math.round(loadavg()[0] * 100) / 100,
  };
}

export function writeResults(path, results) {
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
}
