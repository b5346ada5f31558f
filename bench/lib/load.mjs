// Drives one scenario with autocannon and reduces its result to the numbers we compare.
import autocannon from 'autocannon';
import { cpuSeconds } from './proc.mjs';

/**
 * @typedef {{ headers: Record<string, string> }} RequestShape
 * @param {object} options
 * @param {string} options.url base URL; the path is appended
 * @param {string} options.path
 * @param {RequestShape[]} options.mix requests sent round-robin, shared by all connections
 * @param {number[]} options.expect the statuses a correct run answers
 * @param {{ durationSeconds: number, warmupSeconds: number, connections: number }} options.settings
 * @param {number} [options.pid] the serving workerd process, to count its CPU time per request
 */
export async function measure({ url, path, mix, expect, settings, pid }) {
  let next = 0;
  const cpuBefore = cpuSeconds(pid);
  const result = await autocannon({
    url: `${url}${path}`,
    connections: settings.connections,
    duration: settings.durationSeconds,
    warmup: settings.warmupSeconds > 0 ? { connections: settings.connections, duration: settings.warmupSeconds } : undefined,
    requests: [
      {
        // One shared cursor: connections take turns through the mix, so every entry is used evenly.
        setupRequest: (request) => ({ ...request, headers: { ...request.headers, ...mix[next++ % mix.length].headers } }),
      },
    ],
  });
  const cpuAfter = cpuSeconds(pid);
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, Number(count)]));
  const total = Object.values(statusCodes).reduce((sum, n) => sum + n, 0);
  const expected = expect.reduce((sum, code) => sum + (statusCodes[code] ?? 0), 0);
  return {
    reqPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: total,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    /** Share of answers with an expected status: a fast wrong answer is not a result. */
    correct: total === 0 ? 0 : expected / total,
    distinctRequests: Math.min(next, mix.length),
    /** workerd CPU (Worker, Durable Objects, D1 together) per request, warm-up included on both sides. */
    cpuMsPerRequest: cpuBefore === null || cpuAfter === null ? null : Math.round(((cpuAfter - cpuBefore) * 1000 * 100) / next) / 100,
  };
}
