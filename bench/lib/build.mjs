// Builds the Worker exactly as `wrangler deploy` would bundle it, without deploying.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, wranglerBin } from '../../scripts/lib/paths.mjs';

export const BUILD_DIR = join(repoRoot, 'bench', '.build');

/** Runs `wrangler deploy --dry-run --outdir bench/.build`; returns the bundle's path. */
export function buildWorker() {
  const result = spawnSync(wranglerBin, ['deploy', '--dry-run', '--outdir', BUILD_DIR], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_HIDE_BANNER: 'true', CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
  });
  if (result.status !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${result.stdout}\n${result.stderr}`);
  return join(BUILD_DIR, 'index.js');
}
