// keygate as `wrangler deploy` would ship it: the dry-run bundle in dist/ (what
// `npm run build:check` writes), run in a programmatic Miniflare on 127.0.0.1 by
// the bench's own launcher (bench/lib/workers.mjs: wrangler.toml's vars, D1 and
// the RateLimiter Durable Object, no network for `cf`), its D1 migrated the way
// bench/lib/seed.mjs does it. Used by scripts/export-openapi.mjs and the node tests.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { applyMigrations } from '../../bench/lib/seed.mjs';
import { RUNTIME_LOG, startKeygate } from '../../bench/lib/workers.mjs';
import { repoRoot, wranglerBin } from './paths.mjs';
import { generateSecrets } from './secrets.mjs';
import { wranglerEnv } from './wrangler.mjs';

export const DIST_DIR = join(repoRoot, 'dist');
export const BUNDLE_PATH = join(DIST_DIR, 'index.js');

/** Newest modification time (ms) of the files the bundle is built from: src/ and wrangler.toml. */
function newestSourceMtime() {
  let newest = statSync(join(repoRoot, 'wrangler.toml')).mtimeMs;
  const walk = (/** @type {string} */ dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  walk(join(repoRoot, 'src'));
  return newest;
}

/**
 * Makes sure dist/index.js is there and not older than src/ (or `force`): runs the same
 * `wrangler deploy --dry-run` as `npm run build:check`, into a private folder, then moves the
 * bundle into dist/ with a rename, so a test reading dist/index.js never sees half a file.
 * @param {{ force?: boolean, timeoutMs?: number }} [options]
 * @returns {{ path: string, built: boolean }}
 */
export function ensureBundle({ force = false, timeoutMs = 120_000 } = {}) {
  if (!force && existsSync(BUNDLE_PATH) && statSync(BUNDLE_PATH).mtimeMs >= newestSourceMtime()) return { path: BUNDLE_PATH, built: false };
  mkdirSync(DIST_DIR, { recursive: true });
  const outdir = mkdtempSync(join(DIST_DIR, '.build-'));
  try {
    const result = spawnSync(wranglerBin, ['deploy', '--dry-run', '--outdir', outdir], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: wranglerEnv(),
      timeout: timeoutMs,
    });
    if (result.status !== 0) {
      throw new Error(`wrangler deploy --dry-run failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout}\n${result.stderr}`);
    }
    for (const name of ['index.js.map', 'index.js']) if (existsSync(join(outdir, name))) renameSync(join(outdir, name), join(DIST_DIR, name));
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
  return { path: BUNDLE_PATH, built: true };
}

/**
 * Rejects after `ms` with a message naming `what`, so no wait is unbounded.
 * @template T @param {Promise<T>} promise @param {number} ms @param {string} what @returns {Promise<T>}
 */
export function withTimeout(promise, ms, what) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, timeout]).finally(() => clearTimeout(timer)));
}

/**
 * Starts the bundle with fresh secrets (ADMIN_TOKEN among them) and, unless `migrate` is
 * false, an empty D1 with migrations/*.sql applied. `dispose()` stops workerd and removes
 * its storage.
 *
 * The migrations go through Miniflare's proxy, whose synchronous calls (each `prepare`) can
 * fail on a loaded machine with `AssertionError: false == true` in SynchronousFetcher.fetch
 * (a late wake-up of the previous call is taken for the answer to the next). A failed start is
 * thrown away whole and made again in a fresh Miniflare, at most `attempts` times in all.
 * @param {{ scriptPath?: string, secrets?: Record<string, string>, vars?: Record<string, string>, migrate?: boolean, timeoutMs?: number, attempts?: number }} [options]
 * @returns {Promise<{ url: string, adminToken: string, secrets: Record<string, string>, mf: import('miniflare').Miniflare, dispose(): Promise<void> }>}
 */
export async function startBundledKeygate({ scriptPath, secrets, vars = {}, migrate = true, timeoutMs = 60_000, attempts = 3 } = {}) {
  const bundle = scriptPath ?? ensureBundle().path;
  const values = secrets ?? (await generateSecrets());
  // The launcher appends workerd's own output to bench/.build/workerd.log (gitignored).
  mkdirSync(dirname(RUNTIME_LOG), { recursive: true });
  /** @type {unknown} */
  let lastError;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const worker = await withTimeout(startKeygate(bundle, values, vars), timeoutMs, 'starting the bundle in Miniflare');
    try {
      if (migrate) {
        const db = await worker.mf.getD1Database('DB');
        await withTimeout(applyMigrations(db), timeoutMs, 'applying the D1 migrations');
      }
      return { url: worker.url, adminToken: /** @type {string} */ (values.ADMIN_TOKEN), secrets: values, mf: worker.mf, dispose: () => worker.dispose() };
    } catch (error) {
      lastError = error;
      await worker.dispose();
    }
  }
  throw new Error(`keygate did not start with its migrations in ${attempts} attempts: ${/** @type {Error} */ (lastError)?.stack ?? lastError}`);
}
