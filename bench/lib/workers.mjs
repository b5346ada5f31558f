// Workers under test, each in its own programmatic Miniflare (one workerd
// process) on a free 127.0.0.1 port, with no network access for `cf`.
//
// Storage (D1, Durable Objects) lives in a fresh directory on tmpfs when
// there is one: a local SQLite commit fsyncs, and on a shared virtual disk
// that wait swamps everything else the bench compares. In production neither
// D1 nor Durable Object storage is a local fsync, so what is left to measure
// is the software and its round trips. BENCH_STORAGE_DIR overrides the root.
import { Miniflare } from 'miniflare';
import { unstable_readConfig } from 'wrangler';
import { createWriteStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, LOOPBACK } from '../../scripts/lib/net.mjs';
import { repoRoot } from '../../scripts/lib/paths.mjs';
import { workerdPids } from './proc.mjs';

const wranglerConfig = unstable_readConfig({ config: join(repoRoot, 'wrangler.toml') });

/** wrangler.toml's [vars]: keygate runs with exactly the configuration it deploys with. */
export const WORKER_VARS = wranglerConfig.vars;

export const STORAGE_ROOT = process.env.BENCH_STORAGE_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());

/** The Workers' own output (console.error logs, runtime errors), kept out of the table. */
export const RUNTIME_LOG = join(repoRoot, 'bench', '.build', 'workerd.log');
let runtimeLog;
const logFile = () => (runtimeLog ??= createWriteStream(RUNTIME_LOG));
/** console.* from the Workers arrives here, one structured entry per call. @param {unknown} entry */
function logStructured(entry) {
  logFile().write(`${JSON.stringify(entry)}\n`);
}
/** workerd's own stderr (runtime errors); its stdout repeats the structured entries. @param {import('node:stream').Readable} stdout @param {import('node:stream').Readable} stderr */
function logRuntimeOutput(stdout, stderr) {
  stdout.resume();
  stderr.pipe(logFile(), { end: false });
}

/**
 * Starts one Worker script. `durableObjects` maps binding → class name (all
 * SQLite-backed); `d1` lists D1 binding names (in-memory databases);
 * `queueProducers` maps binding → queue name (local queues, no consumer here).
 * @param {{ scriptPath: string, bindings?: Record<string, string>, durableObjects?: Record<string, string>, d1?: string[], queueProducers?: Record<string, string> }} options
 */
export async function startWorker({ scriptPath, bindings = {}, durableObjects = {}, d1 = [], queueProducers = {} }) {
  const port = await freePort();
  const running = new Set(workerdPids());
  const storage = mkdtempSync(join(STORAGE_ROOT, 'keygate-bench-'));
  const mf = new Miniflare({
    host: LOOPBACK,
    port,
    cf: false,
    handleRuntimeStdio: logRuntimeOutput,
    handleStructuredLogs: logStructured,
    modules: true,
    scriptPath,
    // Module names are relative to this root; the script's own folder always contains it.
    modulesRoot: dirname(scriptPath),
    compatibilityDate: wranglerConfig.compatibility_date,
    compatibilityFlags: wranglerConfig.compatibility_flags,
    bindings,
    d1Persist: join(storage, 'd1'),
    durableObjectsPersist: join(storage, 'do'),
    d1Databases: Object.fromEntries(d1.map((name) => [name, `bench-${name.toLowerCase()}`])),
    durableObjects: Object.fromEntries(Object.entries(durableObjects).map(([binding, className]) => [binding, { className, useSQLite: true }])),
    queueProducers,
  });
  const url = await mf.ready;
  // Its workerd process: the one that was not there before (workers start one at a time).
  const pid = workerdPids().find((candidate) => !running.has(candidate));
  return {
    mf,
    pid,
    url: url.href.replace(/\/$/, ''),
    async dispose() {
      await mf.dispose();
      rmSync(storage, { recursive: true, force: true });
    },
  };
}

/**
 * keygate's built bundle with wrangler.toml's vars, the given secrets and
 * overrides, and its D1, Durable Object and webhook-queue bindings (events
 * are queued; nothing consumes them here).
 * @param {string} scriptPath @param {Record<string, string>} secrets @param {Record<string, string>} [overrides]
 */
export function startKeygate(scriptPath, secrets, overrides = {}) {
  return startWorker({
    scriptPath,
    bindings: { ...WORKER_VARS, ...secrets, ...overrides },
    d1: ['DB'],
    durableObjects: { RATE_LIMITER: 'RateLimiter' },
    queueProducers: { WEBHOOK_QUEUE: 'keygate-webhooks' },
  });
}
