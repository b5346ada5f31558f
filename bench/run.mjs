#!/usr/bin/env node
// npm run bench: keygate's hot path against its floors, side by side in one run.
//
// Builds the Worker as `wrangler deploy` bundles it and runs every contender
// at once, each in its own programmatic Miniflare (one workerd process) on
// 127.0.0.1 in front of a local Node origin. Then:
//   1. rounds: each scenario for BENCH_DURATION_S, in turn, the order reversed
//      every other round (A B C … C B A …), BENCH_ROUNDS times; every response
//      is checked, and the origin verifies every signature it was sent;
//   2. the cost pass: each keygate scenario again through a counted build
//      (bench/lib/meter.mjs), its operations per request counted and priced
//      (bench/prices.mjs);
//   3. many keys: BENCH_MANY_KEYS distinct keys, each requested once.
// Prints the tables and writes bench/results.json with the targets.
//
//   a  the origin alone              b   a bare proxy Worker
//   b2 a bare proxy + one DO call    c   keygate, warm API keys
//   d  keygate, cold API keys        e   keygate, ES256 JWTs
//   f  keygate, refused at format (401; each refusal counted in a DO)
//   g  the naive alternative (D1 per request)
//   b2-1, c-1  b2 and c over one connection (latency)
//   h  keygate, many distinct keys (memory)
//
// Settings (environment): BENCH_ROUNDS (5), BENCH_DURATION_S (3), BENCH_WARMUP_S (0.5),
// BENCH_CONNECTIONS (20), BENCH_COUNTED_REQUESTS (300), BENCH_MANY_KEYS (2000: one
// workerd process runs out of SQLite memory near 1 GiB, about 3,000 live objects),
// BENCH_MANY_KEYS_MAX_S (180), BENCH_SCENARIOS (all; e.g. "b2,c" while working).
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { importJWK, SignJWT } from 'jose';
import { repoRoot } from '../scripts/lib/paths.mjs';
import { generateSecrets } from '../scripts/lib/secrets.mjs';
import { buildWorker } from './lib/build.mjs';
import { measure, measureSerial, originStats } from './lib/load.mjs';
import { METER_PATH, meteredWorker } from './lib/meter.mjs';
import { rssMiB, sampleRss } from './lib/proc.mjs';
import {
  cpuRatio,
  load1m,
  machine,
  markdownReport,
  MIN_CORRECT,
  pairedRatio,
  printCosts,
  printScenarios,
  printTargets,
  ratioOf,
  spread,
  summarize,
  target,
  throughputRatio,
  writeResults,
} from './lib/report.mjs';
import { insertKeys, makeKeys, PRODUCT_PREFIX, seedDatabase } from './lib/seed.mjs';
import { PRICES, usdPerMillionRequests } from './prices.mjs';
import { RUNTIME_LOG, startKeygate, startWorker, STORAGE_ROOT, WORKER_VARS } from './lib/workers.mjs';

const setting = (name, fallback) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
  return value;
};
const settings = {
  rounds: Math.max(1, setting('BENCH_ROUNDS', 5)),
  durationSeconds: setting('BENCH_DURATION_S', 3),
  warmupSeconds: setting('BENCH_WARMUP_S', 0.5),
  connections: setting('BENCH_CONNECTIONS', 20),
  countedRequests: Math.max(1, setting('BENCH_COUNTED_REQUESTS', 300)),
  manyKeys: setting('BENCH_MANY_KEYS', 2_000),
  manyKeysMaxSeconds: setting('BENCH_MANY_KEYS_MAX_S', 180),
};
/** Credentials per scenario, sent round-robin: ten keys, ten DO names, ten JWT subjects. */
const MIX_SIZE = 10;
const PATH = `${PRODUCT_PREFIX}/items?page=1`;
const WORKERS_DIR = join(repoRoot, 'bench', 'workers');
/** What bench/origin.mjs answers. */
const ORIGIN_BODY = JSON.stringify({ ok: true, origin: 'bench' });
const selected = process.env.BENCH_SCENARIOS?.split(',').map((id) => id.trim());
/** Whether any of these scenarios is to run. */
const wanted = (...ids) => !selected || ids.some((id) => selected.includes(id));
/**
 * keygate as deployed (wrangler.toml's vars) except for the failed-auth
 * throttle, raised so that (f) measures the counted 401 path every time
 * rather than the 429 a throttled address gets from memory.
 */
const KEYGATE_VARS = { AUTH_FAILURE_LIMIT_PER_MINUTE: '1000000' };

/** Starts bench/origin.mjs in its own process; resolves once it listens. */
async function startOrigin(signingSecret) {
  const child = spawn(process.execPath, [join(repoRoot, 'bench', 'origin.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ORIGIN_SIGNING_SECRET: signingSecret },
  });
  const [line] = await Promise.race([
    createInterface({ input: child.stdout })
      [Symbol.asyncIterator]()
      .next()
      .then(({ value }) => [value]),
    new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`origin exited with ${code}`)))),
  ]);
  return { url: `http://127.0.0.1:${Number(line)}`, pid: child.pid, stop: () => child.kill('SIGTERM') };
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
        .setExpirationTime('2h')
        .sign(key),
    ),
  );
}

/** The cache bound, read from the source: the Worker exposes no debug endpoint by design. */
function keyCacheBound() {
  const source = readFileSync(join(repoRoot, 'src', 'auth', 'key-cache.ts'), 'utf8');
  return Number(/KEY_CACHE_MAX_ENTRIES = ([\d_]+)/.exec(source)?.[1]?.replaceAll('_', '') ?? NaN);
}

// What a right answer is, per kind of scenario: null when right, else the fault.
const plainAnswer = (status, body) => (status !== 200 ? `status ${status}` : body !== ORIGIN_BODY ? `body ${body.slice(0, 80)}` : null);
const keygateAnswer = (method) => {
  const expected = JSON.stringify({ ok: true, origin: 'bench', authMethod: method });
  return (status, body, headers) => {
    if (status !== 200) return `status ${status}: ${body.slice(0, 120)}`;
    if (body !== expected) return `body ${body.slice(0, 80)}`;
    if (headers['x-auth-method'] !== method) return `x-auth-method ${headers['x-auth-method']}`;
    if (!headers['x-request-id']) return 'no x-request-id';
    if (!headers['ratelimit-policy'] || headers['x-ratelimit-remaining'] === undefined) return 'no rate-limit headers';
    return null;
  };
};
const formatRefusal = (status, body, headers) => {
  if (status !== 401) return `status ${status}: ${body.slice(0, 120)}`;
  let code;
  try {
    code = JSON.parse(body).code;
  } catch {
    return `body ${body.slice(0, 80)}`;
  }
  if (code !== 'API_KEY_FORMAT_INVALID') return `code ${code}`;
  return headers['x-request-id'] ? null : 'no x-request-id';
};

/** The mix with the scenario named in a header the origin groups requests by (bench/origin.mjs). */
const tagged = (mix, id) => mix.map(({ headers }) => ({ headers: { ...headers, 'x-bench-scenario': id } }));

/** What the origin must have received during a sample. */
function originFault(expects, received) {
  if (expects === 'nothing') return received.requests === 0 ? null : `origin got ${received.requests} requests`;
  if (received.requests === 0) return 'origin got nothing';
  if (expects === 'unsigned') return received.signed === 0 ? null : `origin got ${received.signed} signed requests`;
  if (received.notKept > 0) return `origin kept ${received.requests - received.notKept} of ${received.requests}`;
  if (received.verified === received.requests) return null;
  return `origin verified ${received.verified} of ${received.requests}: ${JSON.stringify(received.failures)}`;
}

async function main() {
  const startedAt = Date.now();
  const info = machine();
  const loads = [load1m()];
  console.log(`keygate bench on ${info.cpu} (${info.cores} cores, load ${loads[0]}), node ${info.node}`);
  console.log(
    `${settings.rounds} interleaved rounds of ${settings.durationSeconds} s per scenario after ${settings.warmupSeconds} s warm-ups, ${settings.connections} connections\n`,
  );

  const bundle = buildWorker();
  const secrets = await generateSecrets();
  const keys = await makeKeys(MIX_SIZE);
  const keyMix = keys.map(({ key }) => ({ headers: { 'x-api-key': key } }));
  const tokens = await mintTokens(secrets.JWT_SIGNING_KEY, MIX_SIZE);
  const jwtMix = tokens.map((token) => ({ headers: { authorization: `Bearer ${token}` } }));
  // Starts with a known prefix, fails its pattern: refused before any key lookup.
  const malformedMix = [{ headers: { 'x-api-key': 'ilal_live_not-a-key' } }];

  const origin = await startOrigin(secrets.ORIGIN_SIGNING_SECRET);
  const started = [];
  const start = async (starting) => {
    const worker = await starting;
    started.push(worker);
    return worker;
  };
  /** keygate (or its counted build) with its D1 seeded with the shared keys. */
  const keygate = async (vars = {}, scriptPath = bundle) => {
    const worker = await start(startKeygate(scriptPath, secrets, { ...KEYGATE_VARS, ...vars }));
    await seedDatabase(await worker.mf.getD1Database('DB'), origin.url, keys);
    return worker;
  };
  const bareDo = (scriptPath) => start(startWorker({ scriptPath, bindings: { ORIGIN_URL: origin.url }, durableObjects: { COUNTER: 'Counter' } }));

  try {
    const workers = {
      b: wanted('b', 'f', 'c-leased')
        ? await start(startWorker({ scriptPath: join(WORKERS_DIR, 'bare-proxy.js'), bindings: { ORIGIN_URL: origin.url } }))
        : null,
      b2: wanted('b2', 'c', 'e', 'b2-1', 'c-1') ? await bareDo(join(WORKERS_DIR, 'bare-proxy-do.js')) : null,
      k: wanted('c', 'e', 'f', 'c-1', 'd') ? await keygate() : null,
      leased: wanted('c-leased') ? await leasedKeygate(keygate) : null,
      cold: wanted('d') ? await keygate({ KEY_CACHE_TTL_SECONDS: '0' }) : null,
      g: wanted('g', 'c') ? await start(startWorker({ scriptPath: join(WORKERS_DIR, 'naive.js'), bindings: { ORIGIN_URL: origin.url }, d1: ['DB'] })) : null,
    };
    if (workers.g) await seedDatabase(await workers.g.mf.getD1Database('DB'), origin.url, keys);

    /** @type {{ id: string, label: string, worker: any, mix: any[], check: Function, origin: string, serial?: boolean }[]} */
    const scenarios = [
      { id: 'a', label: 'origin alone', worker: origin, mix: keyMix, check: plainAnswer, origin: 'unsigned' },
      { id: 'b', label: 'bare proxy Worker', worker: workers.b, mix: keyMix, check: plainAnswer, origin: 'unsigned' },
      { id: 'b2', label: 'bare proxy + 1 DO call', worker: workers.b2, mix: keyMix, check: plainAnswer, origin: 'unsigned' },
      { id: 'c', label: 'keygate, warm API key', worker: workers.k, mix: keyMix, check: keygateAnswer('api_key'), origin: 'signed' },
      { id: 'c-leased', label: 'keygate, warm API key, leased', worker: workers.leased, mix: keyMix, check: leasedAnswer, origin: 'signed' },
      { id: 'e', label: 'keygate, ES256 JWT', worker: workers.k, mix: jwtMix, check: keygateAnswer('jwt'), origin: 'signed' },
      { id: 'f', label: 'keygate, refused at format (401, counted)', worker: workers.k, mix: malformedMix, check: formatRefusal, origin: 'nothing' },
      { id: 'd', label: 'keygate, cold API key (key cache off)', worker: workers.cold, mix: keyMix, check: keygateAnswer('api_key'), origin: 'signed' },
      { id: 'g', label: 'naive: D1 SELECT + UPDATE', worker: workers.g, mix: keyMix, check: plainAnswer, origin: 'unsigned' },
      { id: 'b2-1', label: 'bare proxy + 1 DO call, 1 connection', worker: workers.b2, mix: keyMix, check: plainAnswer, origin: 'unsigned', serial: true },
      {
        id: 'c-1',
        label: 'keygate, warm API key, 1 connection',
        worker: workers.k,
        mix: keyMix,
        check: keygateAnswer('api_key'),
        origin: 'signed',
        serial: true,
      },
    ].filter((s) => wanted(s.id) && s.worker);

    const samples = Object.fromEntries(scenarios.map((s) => [s.id, { label: s.label, samples: [] }]));
    for (let round = 1; round <= settings.rounds; round++) {
      const order = round % 2 === 1 ? scenarios : [...scenarios].reverse();
      process.stdout.write(`round ${round}/${settings.rounds}:`);
      for (const s of order) {
        await originStats(origin.url); // forget what came before
        const options = { url: s.worker.url, pid: s.worker.pid, path: PATH, mix: tagged(s.mix, s.id), check: s.check, ...settings };
        const sample = s.serial ? await measureSerial(options) : await measure(options);
        const fault = originFault(s.origin, await originStats(origin.url, s.id));
        if (fault) {
          sample.faults[fault] = 1;
          sample.correct = 0;
        }
        samples[s.id].samples.push(sample);
        process.stdout.write(` ${s.id} ${Math.round(sample.reqPerSec)}${sample.correct >= MIN_CORRECT ? '' : ' (WRONG)'}`);
      }
      loads.push(load1m());
      console.log(`  (load ${loads.at(-1)})`);
    }

    const costs = await costPass({ bundle, keygate, bareDo, samples, keyMix, jwtMix, malformedMix, adminToken: secrets.ADMIN_TOKEN });
    // (h) alone: the memory it measures is not shared with the other contenders.
    for (const worker of started.splice(0).reverse()) await worker.dispose();
    const memory = settings.manyKeys > 0 && wanted('h') ? await manyKeysScenario(keygate) : null;
    loads.push(load1m());

    const rows = summarize(samples);
    const targets = judgeTargets(samples, rows, costs);
    console.log('');
    printScenarios(rows);
    console.log('');
    printCosts(costs);
    console.log(`(prices of ${PRICES.date}, bench/prices.mjs; CPU is the whole workerd process's, an upper bound on the Worker's billed CPU)\n`);
    printTargets(targets);
    if (memory) {
      console.log(
        `\n(h) ${memory.keysSeeded} keys seeded, ${memory.distinctKeysRequested} requested once each ` +
          `(${Math.round(memory.reqPerSec)} req/s, checked ${memory.correct >= MIN_CORRECT ? 'ok' : 'WRONG'}); workerd RSS ${memory.rssBeforeMiB} MiB before, ` +
          `peak ${memory.rssPeakMiB}, end ${memory.rssEndMiB} (~${memory.rssGrowthKiBPerKeyRequested} KiB per key requested); key cache bounded at ${memory.keyCacheMaxEntries} entries per isolate`,
      );
    }
    const loadAverage1m = spread(loads);
    const elapsedSeconds = Math.round((Date.now() - startedAt) / 1000);
    console.log(`\nload average (1 min) ${loadAverage1m.median} [${loadAverage1m.min}–${loadAverage1m.max}]; ${elapsedSeconds} s in all`);
    console.log(`results in bench/results.json (tables for the README in bench/results.md), Worker output in ${RUNTIME_LOG}`);

    const results = {
      date: new Date(startedAt).toISOString(),
      machine: { ...info, loadAverage1m: { ...loadAverage1m, samples: loads } },
      settings: {
        ...settings,
        mixSize: MIX_SIZE,
        path: PATH,
        keygateVars: KEYGATE_VARS,
        storageRoot: STORAGE_ROOT,
        miniflare: JSON.parse(readFileSync(join(repoRoot, 'node_modules', 'miniflare', 'package.json'), 'utf8')).version,
      },
      elapsedSeconds,
      prices: PRICES,
      scenarios: rows,
      costs,
      targets,
      memory,
    };
    writeResults(join(repoRoot, 'bench', 'results.json'), results);
    writeFileSync(join(repoRoot, 'bench', 'results.md'), markdownReport(results));
  } finally {
    for (const worker of started.reverse()) await worker.dispose();
    origin.stop();
  }
}

/**
 * Each scenario's operations per request, counted through a metered build of
 * its Worker (never the timed one): Durable Object calls, rows read and
 * written in the objects, D1 queries and rows, then priced.
 */
async function costPass({ bundle, keygate, bareDo, samples, keyMix, jwtMix, malformedMix, adminToken }) {
  const all = [
    {
      id: 'b2',
      label: 'bare proxy + 1 DO call',
      build: () => bareDo(meteredWorker('bare-proxy-do', join(WORKERS_DIR, 'bare-proxy-do.js'), ['Counter'])),
      mix: keyMix,
      check: plainAnswer,
    },
    {
      id: 'c',
      label: 'keygate, warm API key',
      build: () => keygate({}, meteredWorker('keygate', bundle, ['RateLimiter'])),
      mix: keyMix,
      check: keygateAnswer('api_key'),
    },
    { id: 'e', label: 'keygate, ES256 JWT', reuse: 'c', mix: jwtMix, check: keygateAnswer('jwt') },
    { id: 'f', label: 'keygate, refused at format (401)', reuse: 'c', mix: malformedMix, check: formatRefusal },
    {
      id: 'c-leased',
      label: 'keygate, warm API key, leased',
      build: async () => leasedKeygate(keygate, meteredWorker('keygate', bundle, ['RateLimiter'])),
      mix: keyMix,
      check: leasedAnswer,
      // Grants grow with each isolate's rate: count the steady state, over a few seconds of calls.
      warmupRequests: 3000,
      countedRequests: Math.max(settings.countedRequests, 5000),
    },
    {
      id: 'c-credits',
      label: 'keygate, warm API key with credits',
      build: async () => creditEveryKey(await keygate({}, meteredWorker('keygate', bundle, ['RateLimiter'])), adminToken),
      mix: keyMix,
      check: creditedAnswer,
    },
    {
      id: 'd',
      label: 'keygate, cold API key',
      build: () => keygate({ KEY_CACHE_TTL_SECONDS: '0' }, meteredWorker('keygate', bundle, ['RateLimiter'])),
      mix: keyMix,
      check: keygateAnswer('api_key'),
    },
  ];
  const runs = all.filter((run) => wanted(run.id));
  const built = {};
  const costs = [];
  process.stdout.write('\ncost pass:');
  for (const run of runs) {
    const worker = run.reuse ? (built[run.reuse] ??= await all.find((r) => r.id === run.reuse).build()) : (built[run.id] ??= await run.build());
    const meter = async () => (await fetch(`${worker.url}${METER_PATH}`)).json();
    // Warm: the isolate's caches and each credential's object exist, as in the timed rounds.
    await measure({
      url: worker.url,
      path: PATH,
      mix: run.mix,
      check: run.check,
      connections: 10,
      amount: run.warmupRequests ?? Math.max(50, run.mix.length * 5),
      warmupSeconds: 0,
    });
    await meter();
    const sample = await measure({
      url: worker.url,
      path: PATH,
      mix: run.mix,
      check: run.check,
      connections: 10,
      amount: run.countedRequests ?? settings.countedRequests,
      warmupSeconds: 0,
    });
    const counted = await meter();
    const per = (n) => n / sample.requests;
    const cpuMs = spread(samples[run.id]?.samples.map((s) => s.cpuMsPerRequest) ?? []).median;
    const perRequest = {
      doCalls: per(counted.doCalls),
      doRowsRead: per(counted.doRowsRead),
      doRowsWritten: per(counted.doRowsWritten),
      d1Queries: per(counted.d1Queries),
      d1RowsRead: per(counted.d1RowsRead),
      d1RowsWritten: per(counted.d1RowsWritten),
    };
    costs.push({
      id: run.id,
      label: run.label,
      requests: sample.requests,
      correct: sample.correct,
      ...perRequest,
      cpuMs,
      usdPerMillion: usdPerMillionRequests({ ...perRequest, cpuMs }),
    });
    process.stdout.write(` ${run.id}`);
  }
  console.log('');
  return costs;
}

/** keygate whose bench product counts its keys' calls in leased mode (src/limits/lease.ts). */
async function leasedKeygate(keygate, scriptPath) {
  const worker = await keygate({}, scriptPath);
  await (await worker.mf.getD1Database('DB')).prepare("UPDATE products SET rate_limit_mode = 'leased'").run();
  return worker;
}

/** A leased key's answer: right, with estimated limit headers. */
const leasedAnswer = (status, body, headers) =>
  keygateAnswer('api_key')(status, body, headers) ?? (headers['ratelimit-policy']?.includes(';estimate') ? null : 'no estimate in RateLimit-Policy');

/** Gives every seeded key a balance no run can spend (set through the admin API, as an operator would). */
async function creditEveryKey(worker, adminToken) {
  const { results } = await (await worker.mf.getD1Database('DB')).prepare('SELECT id FROM api_keys').all();
  for (const { id } of results) {
    const response = await fetch(`${worker.url}/api/v1/keys/${id}/credits`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ balance: 1_000_000_000 }),
    });
    if (response.status !== 200) throw new Error(`crediting key ${id}: ${response.status} ${await response.text()}`);
  }
  return worker;
}

/** A warm key's answer that drew on credits. */
const creditedAnswer = (status, body, headers) =>
  keygateAnswer('api_key')(status, body, headers) ?? (headers['x-credits-remaining'] === undefined ? 'no X-Credits-Remaining' : null);

/** The issue's targets, each on numbers from this run: medians of round-by-round ratios. */
function judgeTargets(samples, rows, costs) {
  const of = (id) => samples[id]?.samples ?? [];
  const wrongIn = (...ids) => ids.filter((id) => rows.find((r) => r.id === id && r.correct < MIN_CORRECT));
  const both = (id, a, b, threshold, what) => [
    target({ id, metric: `throughput ${a}/${b}${what}`, ...rangeOf(pairedRatio(of(a), of(b), throughputRatio)), target: threshold, wrong: wrongIn(a, b) }),
    target({ id, metric: `CPU per request ${b}/${a}${what}`, ...rangeOf(pairedRatio(of(a), of(b), cpuRatio)), target: threshold, wrong: wrongIn(a, b) }),
  ];
  const cost = (id) => costs.find((c) => c.id === id);
  const costWrong = (id) => (cost(id) && cost(id).correct < MIN_CORRECT ? [`${id} (cost pass)`] : []);
  return [
    ...both('warm-api-key', 'c', 'b2', 0.85, ''),
    ...both('es256-jwt', 'e', 'b2', 0.8, ''),
    ...both('format-refusal', 'f', 'b', 0.9, ' (401, counted; no origin call)'),
    target({
      id: 'cold-key-latency',
      metric: 'p50 d/c',
      ...rangeOf(pairedRatio(of('d'), of('c'), ratioOf('p50Ms'))),
      target: 2,
      atMost: true,
      wrong: wrongIn('d', 'c'),
    }),
    target({
      id: 'p99-one-connection',
      metric: 'p99 c-1/b2-1',
      ...rangeOf(pairedRatio(of('c-1'), of('b2-1'), ratioOf('p99Ms'))),
      target: 1.5,
      atMost: true,
      wrong: wrongIn('c-1', 'b2-1'),
    }),
    target({
      id: 'rows-written-per-admission',
      metric: 'DO rows written per admitted call (c, counted)',
      value: cost('c')?.doRowsWritten ?? null,
      target: 1,
      atMost: true,
      wrong: costWrong('c'),
    }),
    ...both('leased-vs-bare', 'c-leased', 'b', 0.9, ' (leased: no object call per request)'),
    target({
      id: 'leased-object-calls',
      metric: 'DO calls per request, leased (c-leased, counted)',
      value: cost('c-leased')?.doCalls ?? null,
      target: 0.05,
      atMost: true,
      wrong: costWrong('c-leased'),
    }),
    target({
      id: 'leased-rows-written',
      metric: 'DO rows written per request, leased (c-leased, counted)',
      value: cost('c-leased')?.doRowsWritten ?? null,
      target: 0.05,
      atMost: true,
      wrong: costWrong('c-leased'),
    }),
    target({
      id: 'rows-written-per-admission-with-credits',
      metric: 'DO rows written per admitted call drawing on credits (c-credits, counted)',
      value: cost('c-credits')?.doRowsWritten ?? null,
      target: 1,
      atMost: true,
      wrong: costWrong('c-credits'),
    }),
    target({
      id: 'warm-path-cost',
      metric: 'USD per million warm API-key calls (c)',
      value: cost('c')?.usdPerMillion ?? null,
      target: 1.5,
      atMost: true,
      wrong: costWrong('c'),
    }),
    ...both('vs-naive', 'c', 'g', 2, ' (local D1 is in-process: see README)'),
  ];
}

const rangeOf = ({ median, min, max }) => ({ value: median, range: { min, max } });

/** (h): distinct keys, each requested once through one keygate, watching workerd's memory. */
async function manyKeysScenario(keygate) {
  const count = settings.manyKeys;
  process.stdout.write(`(h) seeding ${count} keys ... `);
  const seedStarted = Date.now();
  const many = await makeKeys(count);
  const w = await keygate();
  await insertKeys(await w.mf.getD1Database('DB'), many);
  console.log(`${Math.round((Date.now() - seedStarted) / 1000)} s`);
  const rssBeforeMiB = rssMiB(w.pid);
  const sampler = sampleRss(w.pid);
  const manyMix = many.map(({ key }) => ({ headers: { 'x-api-key': key } }));
  const result = await measure({
    url: w.url,
    pid: w.pid,
    path: PATH,
    mix: manyMix,
    check: keygateAnswer('api_key'),
    connections: settings.connections,
    amount: count,
    maxSeconds: settings.manyKeysMaxSeconds,
    warmupSeconds: 0,
  });
  const { peakMiB, endMiB } = sampler.stop();
  return {
    keysSeeded: count,
    distinctKeysRequested: result.requests,
    reachedAll: result.requests >= count,
    reqPerSec: result.reqPerSec,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    correct: result.correct,
    faults: result.faults,
    rssBeforeMiB,
    rssPeakMiB: peakMiB,
    rssEndMiB: endMiB,
    // Each distinct key also brings its own RateLimiter object to life in this one process.
    rssGrowthKiBPerKeyRequested:
      peakMiB === null || rssBeforeMiB === null || result.requests === 0 ? null : Math.round(((peakMiB - rssBeforeMiB) * 1024) / result.requests),
    keyCacheMaxEntries: keyCacheBound(),
  };
}

await main();
