// Where things live, resolved from this file so scripts work from any cwd.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { realpathSync } from 'node:fs';

/** Absolute path of the repository root (the directory holding wrangler.toml). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The project's own wrangler binary: never npx, which may resolve another version. */
export const wranglerBin = join(repoRoot, 'node_modules', '.bin', 'wrangler');

/** D1 database name from wrangler.toml. */
export const D1_DATABASE = 'keygate';

/** True when the module at `moduleUrl` is the script node was asked to run. @param {string} moduleUrl */
export function isMainModule(moduleUrl) {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
