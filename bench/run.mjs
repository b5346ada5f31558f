#!/usr/bin/env node
// npm run bench: keygate's hot path against a bare proxy, side by side in one run.
//
// Builds the Worker as `wrangler deploy` bundles it, runs each contender in its
// own programmatic Miniflare (workerd) on 127.0.0.1 in front of a local Node
// origin, drives it with autocannon, prints a table and writes
// bench/results.json. Bounded: a warm-up plus BENCH_DURATION_S per scenario.
//
//   a  the origin alone               b   a bare proxy Worker
//   b2 a bare proxy + one DO call     c   keygate, warm API keys
//   d  keygate, cold API keys         e   keygate, ES256 JWTs
//   f  keygate, refused at format     f2  the same, every refusal counted in a DO
//   g  the naive alternative (D1 per request)
//   h  keygate, 50,000 distinct keys round-robin (memory)
//
// Settings (environment): BENCH_DURATION_S (5), BENCH_WARMUP_S (1),
// BENCH_CONNECTIONS (20), BENCH_MANY_KEYS (50000), BENCH_MANY_KEYS_DURATION_S (10),
// BENCH_SCENARIOS (all; e.g. "b2,c" to run a subset while working).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { importJWK, SignJWT } from 'jose';
import { repoRoot } from '../scripts/lib/paths.mjs';
import { generateSecrets } from '../scripts/lib/secrets.mjs';
import { buildWorker } from './lib/build.mjs';
import { measure } from './lib/load.mjs';
import { rssMiB, sampleRss } from './lib/proc.mjs';
import { judgeTargets, machine, printTable, printTargets, ratio, writeResults } from './lib/report.mjs';
import { insertKeys, makeKeys, PRODUCT_PREFIX, seedDatabase } from './lib/seed.mjs';
import { RUNTIME_LOG, startKeygate, startWorker, STORAGE_ROOT, WORKER_VARS } from './lib/workers.mjs';

const setting = (name, fallback) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
  return value;
};
const settings = {
  durationSeconds: setting('BENCH_DURATION_S', 5),
  warmupSeconds: setting('BENCH_WARMUP_S', 1),
  connections: setting('BENCH_CONNECTIONS', 20),
};
const MANY_KEYS = setting('BENCH_MANY_KEYS', 50_000);
const MANY_KEYS_DURATION_S = setting('BENCH_MANY_KEYS_DURATION_S', 10);
/** Credentials per scenario, sent round-robin: ten keys, ten DO names, ten JWT subjects. */
const MIX_SIZE = 10;
const PATH = `${PRODUCT_PREFIX}/items?page=1`;
const WORKERS_DIR = join(repoRoot, 'bench', 'workers');
const selected = process.env.BENCH_SCENARIOS?.split(',').map((id) => id.trim());
/** Whether any of these scenarios is to run. */
const wanted = (...ids) => !selected || ids.some((id) => selected.includes(id));

/** Starts bench/origin.mjs in its own process; resolves once it listens. */
async function startOrigin() {
  const child = spawn(process.execPath, [join(repoRoot, 'bench', 'origin.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await Promise.race([
    createInterface({ input: child.stdout })[Symbol.asyncIterator]().next().then(({ value }) => [value]),
    new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`origin exited with ${code}`)))),
  ]);
  return { url: `http://127.0.0.1:${Number(line)}`, pid: child.pid, stop: () => child.kill('SIGTERM') };
}

/** Runs `use` against a started worker and always disposes it. */
async function withWorker(starting, use) {
  const worker = await starting;
  try {
    return await use(worker);
  } finally {
    await worker.dispose();
  }
}

/** ES256 tokens signed with the gateway's own key, for the issuer and audience it checks. */
async function mintTokens(signingJwk, count) {
  const jwk = JSON.parse(signingJwk);
  const key = await importJWK(jwk, 'ES256');
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      new SignJWT({ products: ['*'], scope: 'read' })
        .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'JWT' })
        .setSubject(`bench-user-${i}`)
        .setIssuer(WORKER_VARS.JWT_ISSUER)
        .setAudience(WORKER_VARS.JWT_AUDIENCE)
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(key),
    ),
  );
}

/** The cache bound, read from the source: the Worker exposes no debug endpoint by design. */
function keyCacheBound() {
  const source = readFileSync(join(repoRoot, 'src', 'auth', 'key-cache.ts'), 'utf8');
  return Number(/KEY_CACHE_MAX_ENTRIES = ([\d_]+)/.exec(source)?.[1]?.replaceAll('_', '') ?? NaN);
}

async function main() {
  const startedAt = Date.now();
  const info = machine();
  console.log(`keygate bench on ${info.cpu} (${info.cores} cores, load ${info.loadAverage1mAtStart}), node ${info.node}`);
  console.log(`${settings.durationSeconds} s per scenario after a ${settings.warmupSeconds} s warm-up, ${settings.connections} connections\n`);

  const bundle = buildWorker();
  const secrets = await generateSecrets();
  const keys = await makeKeys(MIX_SIZE);
  const keyMix = keys.map(({ key }) => ({ headers: { 'x-api-key': key } }));
  const tokens = await mintTokens(secrets.JWT_SIGNING_KEY, MIX_SIZE);
  const jwtMix = tokens.map((token) => ({ headers: { authorization: `Bearer ${token}` } }));
  // Starts with a known prefix, fails its pattern: refused before any key lookup.
  const malformedMix = [{ headers: { 'x-api-key': 'ilal_live_not-a-key' } }];

  const origin = await startOrigin();
  const results = {};
  /** One scenario against `target` ({ url, pid }): autocannon, then its numbers under `id`. */
  const run = async (id, label, target, mix, expect, overrides = {}) => {
    if (!wanted(id)) return undefined;
    process.stdout.write(`(${id}) ${label} ... `);
    const measured = await measure({ url: target.url, pid: target.pid, path: PATH, mix, expect, settings: { ...settings, ...overrides } });
    results[id] = { id, label, ...measured };
    console.log(`${Math.round(results[id].reqPerSec)} req/s`);
    return results[id];
  };
  /** keygate with its D1 seeded with the shared keys. */
  const keygate = async (overrides = {}) => {
    const worker = await startKeygate(bundle, secrets, overrides);
    await seedDatabase(await worker.mf.getD1Database('DB'), origin.url, keys);
    return worker;
  };

  let memory = null;
  try {
    await run('a', 'origin alone', origin, keyMix, [200]);
    if (wanted('b')) {
      await withWorker(startWorker({ scriptPath: join(WORKERS_DIR, 'bare-proxy.js'), bindings: { ORIGIN_URL: origin.url } }), (w) =>
        run('b', 'bare proxy Worker', w, keyMix, [200]),
      );
    }
    if (wanted('b2')) {
      await withWorker(
        startWorker({ scriptPath: join(WORKERS_DIR, 'bare-proxy-do.js'), bindings: { ORIGIN_URL: origin.url }, durableObjects: { COUNTER: 'Counter' } }),
        (w) => run('b2', 'bare proxy + 1 DO call', w, keyMix, [200]),
      );
    }
    if (wanted('c', 'e', 'f')) {
      await withWorker(keygate(), async (w) => {
        await run('c', 'keygate, warm API key', w, keyMix, [200]);
        await run('e', 'keygate, ES256 JWT', w, jwtMix, [200]);
        // 401 API_KEY_FORMAT_INVALID, or 429 AUTH_THROTTLED once the address is throttled.
        await run('f', 'keygate, refused at format', w, malformedMix, [401, 429]);
      });
    }
    if (wanted('d')) {
      await withWorker(keygate({ KEY_CACHE_TTL_SECONDS: '0' }), (w) => run('d', 'keygate, cold API key (key cache off)', w, keyMix, [200]));
    }
    if (wanted('f2')) {
      // Never throttled: each refusal is counted in the address's RateLimiter object, as the first ones of a minute are.
      await withWorker(keygate({ AUTH_FAILURE_LIMIT_PER_MINUTE: '1000000' }), (w) =>
        run('f2', 'keygate, refused at format, counted', w, malformedMix, [401]),
      );
    }
    if (wanted('g')) {
      await withWorker(
        (async () => {
          const worker = await startWorker({ scriptPath: join(WORKERS_DIR, 'naive.js'), bindings: { ORIGIN_URL: origin.url }, d1: ['DB'] });
          await seedDatabase(await worker.mf.getD1Database('DB'), origin.url, keys);
          return worker;
        })(),
        (w) => run('g', 'naive: D1 SELECT + UPDATE', w, keyMix, [200]),
      );
    }
    if (MANY_KEYS > 0 && wanted('h')) memory = await manyKeysScenario(keygate, run);
  } finally {
    origin.stop();
  }

  const rows = Object.values(results).map((row) => ({ ...row, ratioToBare: ratio(row, results.b), ratioToBareDo: ratio(row, results.b2) }));
  const targets = judgeTargets(results);
  console.log('');
  printTable(rows);
  console.log('');
  printTargets(targets);
  if (memory) {
    console.log(
      `\n(h) ${memory.keys} keys seeded, ${memory.distinctKeysRequested} requested; workerd RSS ${memory.rssBeforeMiB} MiB before, ` +
        `peak ${memory.rssPeakMiB}, end ${memory.rssEndMiB} (~${memory.rssGrowthKiBPerKeyRequested} KiB per key requested); key cache bounded at ${memory.keyCacheMaxEntries} entries per isolate (src/auth/key-cache.ts)`,
    );
  }
  const elapsedSeconds = Math.round((Date.now() - startedAt) / 1000);
  console.log(`\n${elapsedSeconds} s in all; results in bench/results.json, Worker output in ${RUNTIME_LOG}`);

  writeResults(join(repoRoot, 'bench', 'results.json'), {
    date: new Date(startedAt).toISOString(),
    machine: info,
    settings: {
      ...settings,
      mixSize: MIX_SIZE,
      path: PATH,
      storageRoot: STORAGE_ROOT,
      miniflare: JSON.parse(readFileSync(join(repoRoot, 'node_modules', 'miniflare', 'package.json'), 'utf8')).version,
    },
    elapsedSeconds,
    scenarios: rows,
    targets,
    memory,
  });
}

/** (h): MANY_KEYS distinct keys round-robin through one keygate, watching workerd's memory. */
async function manyKeysScenario(keygate, run) {
  process.stdout.write(`(h) seeding ${MANY_KEYS} keys ... `);
  const seedStarted = Date.now();
  const many = await makeKeys(MANY_KEYS);
  return withWorker(keygate(), async (w) => {
    await insertKeys(await w.mf.getD1Database('DB'), many);
    console.log(`${Math.round((Date.now() - seedStarted) / 1000)} s`);
    const rssBeforeMiB = rssMiB(w.pid);
    const sampler = sampleRss(w.pid);
    const manyMix = many.map(({ key }) => ({ headers: { 'x-api-key': key } }));
    const result = await run('h', `keygate, ${MANY_KEYS} keys round-robin`, w, manyMix, [200], { durationSeconds: MANY_KEYS_DURATION_S });
    const { peakMiB, endMiB } = sampler.stop();
    return {
      keys: MANY_KEYS,
      distinctKeysRequested: result.distinctRequests,
      rssBeforeMiB,
      rssPeakMiB: peakMiB,
      rssEndMiB: endMiB,
      // Each distinct key also brings its own RateLimiter object to life in this one process.
      rssGrowthKiBPerKeyRequested:
        peakMiB === null || rssBeforeMiB === null ? null : Math.round(((peakMiB - rssBeforeMiB) * 1024) / result.distinctRequests),
      keyCacheMaxEntries: keyCacheBound(),
    };
  });
}

await main();
