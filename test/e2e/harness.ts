// End-to-end harness: a real `wrangler dev` (workerd, local D1 and Durable Objects) in front
// of a recording origin, all on 127.0.0.1, with state in a fresh temp dir. Tests talk plain
// HTTP to it. Start it once per test file (wrangler takes ~5-15 s to come up):
//
//   let gateway: Gateway;
//   beforeAll(async () => { gateway = await startGateway(); }, STARTUP_TIMEOUT_MS);
//   afterAll(() => gateway?.stop(), SHUTDOWN_TIMEOUT_MS);
//
// The gateway, the seeding and the process handling are the same code `npm start` uses
// (scripts/lib, scripts/seed.mjs, scripts/demo-origin.mjs).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startDemoOrigin, type OriginRequest } from '../../scripts/demo-origin.mjs';
import { seedLocalD1, type SeedResult } from '../../scripts/seed.mjs';
import { freePort } from '../../scripts/lib/net.mjs';
import { generateSecrets, writeDotEnv } from '../../scripts/lib/secrets.mjs';
import { startWranglerDev } from '../../scripts/lib/wrangler.mjs';

export type { OriginRequest };

/** Bounds for beforeAll/afterAll: migrate + seed + wrangler start on a slow 2-core box. */
export const STARTUP_TIMEOUT_MS = 120_000;
export const SHUTDOWN_TIMEOUT_MS = 30_000;
/** Every single HTTP call a test makes is bounded by this. */
export const REQUEST_TIMEOUT_MS = 15_000;

export interface RecordingOrigin {
  url: string;
  /** Every request the origin received, oldest first. */
  requests: OriginRequest[];
  /** The most recent request, or undefined. */
  last(): OriginRequest | undefined;
}

export interface Gateway {
  /** e.g. http://127.0.0.1:43123 */
  url: string;
  origin: RecordingOrigin;
  /** Plaintext demo keys from the seed. */
  keys: SeedResult['keys'];
  users: SeedResult['users'];
  /** The secrets the Worker runs with (ADMIN_TOKEN, ORIGIN_SIGNING_SECRET, JWT_SIGNING_KEY). */
  secrets: Record<string, string>;
  /** The temp dir holding D1/DO state and the env file; removed by stop(). */
  dir: string;
  persistDir: string;
  /** fetch(gateway.url + path), bounded by REQUEST_TIMEOUT_MS. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** The last lines wrangler printed (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  /** `--var NAME:VALUE` overrides of wrangler.toml vars, e.g. { KEY_CACHE_TTL_SECONDS: '0' }. */
  vars?: Record<string, string>;
}

/** Start origin, migrate, seed, start wrangler dev; on any failure undo what was started. */
export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-e2e-'));
  const persistDir = join(dir, 'state');
  const envFile = join(dir, 'secrets.env');
  const cleanups: Array<() => Promise<void> | void> = [() => rmSync(dir, { recursive: true, force: true })];
  const stop = async () => {
    // Reverse order: wrangler first (it calls the origin), the temp dir last.
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        console.warn('e2e cleanup step failed:', error);
      }
    }
  };

  try {
    const requests: OriginRequest[] = [];
    // Port 0: the OS picks a free port, no race.
    const origin = await startDemoOrigin(0, { onRequest: (request) => requests.push(request) });
    cleanups.push(() => origin.close());

    const seed = await seedLocalD1({ originUrl: origin.url, persistTo: persistDir });

    // Secrets go in an env file, not --var: they stay out of `ps`, and --env-file makes
    // wrangler ignore the developer's own .dev.vars.
    const secrets = await generateSecrets();
    writeDotEnv(envFile, secrets);

    const dev = await startWranglerDev({
      port: await freePort(),
      persistTo: persistDir,
      envFile,
      vars: options.vars,
      timeoutMs: 90_000,
    });
    cleanups.push(() => dev.stop());

    return {
      url: dev.url,
      origin: { url: origin.url, requests, last: () => requests.at(-1) },
      keys: seed.keys,
      users: seed.users,
      secrets,
      dir,
      persistDir,
      fetch: (path, init = {}) => fetch(`${dev.url}${path}`, { ...init, signal: init.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS) }),
      output: dev.output,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Read a response body as JSON, failing with the raw text when it is not JSON. */
export async function readJson<T = Record<string, unknown>>(response: Response): Promise<T> {
  const text = await response.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`expected JSON, got ${response.status} ${response.headers.get('content-type')}: ${text.slice(0, 500)}`);
  }
}

/**
 * One gateway for the whole test file: started before its tests, stopped after
 * them. Returns an accessor, since the gateway exists only once beforeAll ran.
 */
export function useGateway(options: GatewayOptions = {}): () => Gateway {
  let gateway: Gateway | undefined;
  beforeAll(async () => {
    gateway = await startGateway(options);
  }, STARTUP_TIMEOUT_MS);
  afterAll(async () => {
    await gateway?.stop();
  }, SHUTDOWN_TIMEOUT_MS);
  return () => {
    if (!gateway) throw new Error('the gateway did not start (see beforeAll)');
    return gateway;
  };
}
