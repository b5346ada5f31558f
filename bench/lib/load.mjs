// Drives one sample of a scenario and reduces it to the numbers we compare.
// Every response is checked (a fast wrong answer is not a result), and the
// serving workerd's CPU time is counted over the measured window only.
import { Agent, request as httpRequest } from 'node:http';
import autocannon from 'autocannon';
import { cpuSeconds } from './proc.mjs';

/**
 * @typedef {{ headers: Record<string, string> }} RequestShape
 * @typedef {(status: number, body: string, headers: Record<string, string>) => string | null} ResponseCheck
 *   null when the response is right, else what is wrong with it
 */

/** Header lookup by lowercase name: autocannon hands them over as sent. */
function lowercased(headers) {
  const out = {};
  for (const [name, value] of Object.entries(headers ?? {})) out[name.toLowerCase()] = String(value);
  return out;
}

/** Tallies checked responses: how many were right, and the commonest faults. */
function checker(check) {
  const faults = {};
  let ok = 0;
  let wrong = 0;
  return {
    record(status, body, headers) {
      const fault = check(status, body, lowercased(headers));
      if (fault === null) ok += 1;
      else {
        wrong += 1;
        faults[fault] = (faults[fault] ?? 0) + 1;
      }
    },
    summary: () => ({ ok, wrong, faults }),
  };
}

/**
 * One sample with autocannon: a warm-up, then the measured window.
 * @param {object} options
 * @param {string} options.url base URL; the path is appended
 * @param {string} options.path
 * @param {RequestShape[]} options.mix requests sent round-robin, shared by all connections
 * @param {ResponseCheck} options.check
 * @param {number} options.connections
 * @param {number} options.durationSeconds the measured window, unless `amount` is given
 * @param {number} [options.amount] requests to send instead of a duration (the window then ends when they are answered or after maxSeconds)
 * @param {number} [options.maxSeconds] a bound on a sample sent by amount
 * @param {number} options.warmupSeconds
 * @param {number} [options.pid] the serving workerd process, to count its CPU time per request
 */
export async function measure({ url, path, mix, check, connections, durationSeconds, amount, maxSeconds = 120, warmupSeconds, pid }) {
  let next = 0;
  const setupRequest = (request) => ({ ...request, headers: { ...request.headers, ...mix[next++ % mix.length].headers } });
  if (warmupSeconds > 0) await autocannon({ url: `${url}${path}`, connections, duration: warmupSeconds, requests: [{ setupRequest }] });

  next = 0;
  const checked = checker(check);
  const cpuBefore = cpuSeconds(pid);
  const instance = autocannon({
    url: `${url}${path}`,
    connections: amount ? Math.min(connections, amount) : connections,
    ...(amount ? { amount } : { duration: durationSeconds }),
    // One shared cursor: connections take turns through the mix, so every entry is used evenly.
    requests: [{ setupRequest, onResponse: (status, body, _context, headers) => checked.record(status, body, headers) }],
  });
  const bound = amount ? setTimeout(() => instance.stop(), maxSeconds * 1000) : null;
  const result = await instance;
  if (bound) clearTimeout(bound);
  const cpuAfter = cpuSeconds(pid);

  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, Number(count)]));
  const answered = Object.values(statusCodes).reduce((sum, n) => sum + n, 0);
  const { ok, wrong, faults } = checked.summary();
  return {
    reqPerSec: answered / (result.duration || durationSeconds),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: answered,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    /** Share of answers that passed the check (status, body, headers). */
    correct: answered === 0 ? 0 : ok / answered,
    wrong,
    faults,
    distinctRequests: Math.min(next, mix.length),
    /** workerd CPU (Worker, Durable Objects, D1 simulator, Miniflare's entry worker) per answered request. */
    cpuMsPerRequest: cpuBefore === null || cpuAfter === null || answered === 0 ? null : ((cpuAfter - cpuBefore) * 1000) / answered,
  };
}

/** The q-quantile (0..1) of sorted numbers. */
function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * One sample over a single keep-alive connection, one request at a time, with
 * each latency timed to the microsecond (autocannon's histogram keeps whole ms).
 * Same options as measure(), without connections.
 */
export async function measureSerial({ url, path, mix, check, durationSeconds, warmupSeconds, pid }) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const target = new URL(`${url}${path}`);
  const send = (headers) =>
    new Promise((resolve, reject) => {
      const started = process.hrtime.bigint();
      const req = httpRequest(target, { agent, headers }, (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            body: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
            ms: Number(process.hrtime.bigint() - started) / 1e6,
          }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  const run = async (seconds, record) => {
    const until = Date.now() + seconds * 1000;
    for (let i = 0; Date.now() < until; i++) record(await send(mix[i % mix.length].headers));
  };
  try {
    await run(warmupSeconds, () => {});
    const checked = checker(check);
    const latencies = [];
    const statusCodes = {};
    const cpuBefore = cpuSeconds(pid);
    const started = Date.now();
    await run(durationSeconds, ({ status, body, headers, ms }) => {
      checked.record(status, body, headers);
      latencies.push(ms);
      statusCodes[status] = (statusCodes[status] ?? 0) + 1;
    });
    const elapsed = (Date.now() - started) / 1000;
    const cpuAfter = cpuSeconds(pid);
    latencies.sort((a, b) => a - b);
    const { ok, wrong, faults } = checked.summary();
    return {
      reqPerSec: latencies.length / elapsed,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      requests: latencies.length,
      statusCodes,
      errors: 0,
      timeouts: 0,
      correct: latencies.length === 0 ? 0 : ok / latencies.length,
      wrong,
      faults,
      distinctRequests: Math.min(latencies.length, mix.length),
      cpuMsPerRequest: cpuBefore === null || cpuAfter === null || latencies.length === 0 ? null : ((cpuAfter - cpuBefore) * 1000) / latencies.length,
    };
  } finally {
    agent.destroy();
  }
}

/** Asks the bench origin what `scenario` sent it since the last ask, its signatures verified; it then forgets all it kept. */
export async function originStats(originUrl, scenario = '') {
  const response = await fetch(`${originUrl}/__origin-stats?scenario=${encodeURIComponent(scenario)}`);
  return response.json();
}
