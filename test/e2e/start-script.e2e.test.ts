// `npm start` end to end: run scripts/start.mjs as a newcomer would, read the keys it prints,
// call the gateway with one, stop it with SIGTERM and check nothing is left on its ports.
// It runs against temp state, a temp secrets file and free ports (PORT, DEMO_ORIGIN_PORT,
// KEYGATE_PERSIST_DIR, KEYGATE_DEV_VARS), so a developer's own setup is never touched.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitForPortFree } from '../../scripts/lib/net.mjs';
import { repoRoot } from '../../scripts/lib/paths.mjs';
import { parseDotEnv } from '../../scripts/lib/secrets.mjs';
import { stopProcessGroup } from '../../scripts/lib/wrangler.mjs';
import { REQUEST_TIMEOUT_MS } from './harness';

const READY_TIMEOUT_MS = 100_000;
const RUN_TIMEOUT_MS = 150_000;
const READY_LINE = 'Press Ctrl-C to stop.';

interface StartRun {
  child: ChildProcess;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface Banner {
  url: string;
  adminToken: string;
  keys: { ila: string; ilalLive: string; ilalTest: string };
}

let dir: string;
let env: NodeJS.ProcessEnv;
let ports: { gateway: number; origin: number };
const runs: StartRun[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keygate-start-e2e-'));
  ports = { gateway: await freePort(), origin: await freePort() };
  env = {
    ...process.env,
    PORT: String(ports.gateway),
    DEMO_ORIGIN_PORT: String(ports.origin),
    KEYGATE_PERSIST_DIR: join(dir, 'state'),
    KEYGATE_DEV_VARS: join(dir, 'dev.vars'),
    KEYGATE_READY_TIMEOUT_MS: '90000',
  };
});

afterAll(async () => {
  // Whatever a failed test left running: start.mjs's group, which stops wrangler's in turn.
  for (const run of runs) await stopProcessGroup(run.child, 10_000);
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** `node scripts/start.mjs` in its own process group (as a terminal would run it). */
function runStart(overrides: NodeJS.ProcessEnv = {}): StartRun {
  const child = spawn(process.execPath, ['scripts/start.mjs'], {
    cwd: repoRoot,
    env: { ...env, ...overrides },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const run = { child, stdout: () => `${stdout}${stderr ? `\n[stderr]\n${stderr}` : ''}`, exited };
  runs.push(run);
  return run;
}

/** Wait until the banner is complete, or fail with what was printed. */
async function waitForBanner(run: StartRun): Promise<Banner> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited = false;
  void run.exited.then(() => (exited = true));
  while (!run.stdout().includes(READY_LINE)) {
    if (exited) throw new Error(`start.mjs exited before it was ready:\n${run.stdout()}`);
    if (Date.now() > deadline) throw new Error(`start.mjs not ready after ${READY_TIMEOUT_MS / 1000} s:\n${run.stdout()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const out = run.stdout();
  const find = (pattern: RegExp) => {
    const match = pattern.exec(out);
    if (!match) throw new Error(`${pattern} not found in:\n${out}`);
    return match[1] ?? match[0];
  };
  return {
    url: find(/keygate is running at (http:\/\/\S+)/),
    adminToken: find(/ADMIN_TOKEN\s+(\S+)/),
    keys: {
      ila: find(/\bila_[A-Za-z0-9]{72}\b/),
      ilalLive: find(/\bilal_live_[0-9a-f]{48}\b/),
      ilalTest: find(/\bilal_test_[0-9a-f]{48}\b/),
    },
  };
}

function summarize(url: string, key: string) {
  return fetch(`${url}/api/summarize`, {
    method: 'POST',
    headers: { 'X-API-Key': key, 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: { text: 'hello' } }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
}

/** SIGTERM to start.mjs's group; it must exit and free both ports. */
async function stopAndCheckPorts(run: StartRun) {
  process.kill(-run.child.pid!, 'SIGTERM');
  const exit = await Promise.race([run.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('start.mjs ignored SIGTERM')), 20_000))]);
  expect(exit.code !== 0 || exit.signal !== null, `exit ${JSON.stringify(exit)}`).toBe(true);
  expect(await waitForPortFree(ports.gateway, 10_000), `gateway port ${ports.gateway} freed`).toBe(true);
  expect(await waitForPortFree(ports.origin, 10_000), `origin port ${ports.origin} freed`).toBe(true);
}

describe('npm start (scripts/start.mjs)', () => {
  let first: Banner;

  it(
    'writes secrets, prints working demo keys and curl lines, and stops cleanly on SIGTERM',
    async () => {
      const run = runStart();
      first = await waitForBanner(run);
      expect(first.url).toBe(`http://127.0.0.1:${ports.gateway}`);
      expect(run.stdout()).toContain(`curl -s -X POST ${first.url}/api/summarize -H 'X-API-Key: ${first.keys.ila}'`);

      const secrets = parseDotEnv(readFileSync(env.KEYGATE_DEV_VARS!, 'utf8'));
      expect(Object.keys(secrets).sort()).toEqual(['ADMIN_TOKEN', 'JWT_SIGNING_KEY', 'ORIGIN_SIGNING_SECRET']);
      expect(secrets.ADMIN_TOKEN).toBe(first.adminToken);
      expect(JSON.parse(secrets.JWT_SIGNING_KEY!)).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' });

      const response = await summarize(first.url, first.keys.ila);
      const text = await response.text();
      expect(response.status, text).toBe(200);
      expect(JSON.parse(text)).toMatchObject({ origin: 'demo', path: '/api/summarize' });

      await stopAndCheckPorts(run);
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'runs again on the same state: keeps the secrets, issues new keys, old keys stop working',
    async () => {
      expect(first, 'the first run must have succeeded').toBeDefined();
      const run = runStart();
      const second = await waitForBanner(run);
      expect(second.adminToken).toBe(first.adminToken);
      expect(second.keys.ila).not.toBe(first.keys.ila);

      const fresh = await summarize(second.url, second.keys.ila);
      expect(fresh.status, await fresh.text()).toBe(200);
      const stale = await summarize(second.url, first.keys.ila);
      expect(stale.status, await stale.text()).toBe(401);

      await stopAndCheckPorts(run);
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'refuses to start on a bad secret, naming the variable (not its value), and leaves nothing running',
    async () => {
      const badVars = join(dir, 'bad.vars');
      writeFileSync(badVars, 'ORIGIN_SIGNING_SECRET=too-short\n');
      const run = runStart({ KEYGATE_DEV_VARS: badVars, KEYGATE_PERSIST_DIR: join(dir, 'bad-state') });
      const exit = await Promise.race([
        run.exited,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`start.mjs still running:\n${run.stdout()}`)), READY_TIMEOUT_MS)),
      ]);
      expect(exit.code, run.stdout()).toBe(1);
      expect(run.stdout()).toMatch(/npm start failed: Invalid configuration: ORIGIN_SIGNING_SECRET must be at least 32 characters/);
      expect(run.stdout()).not.toContain('too-short');
      expect(await waitForPortFree(ports.gateway, 10_000), `gateway port ${ports.gateway} freed`).toBe(true);
      expect(await waitForPortFree(ports.origin, 10_000), `origin port ${ports.origin} freed`).toBe(true);
    },
    RUN_TIMEOUT_MS,
  );
});
