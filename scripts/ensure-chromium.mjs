#!/usr/bin/env node
// Run by `npm test` before anything else: the browser tests drive Debian's
// chromium at /usr/bin/chromium, or KEYGATE_CHROMIUM (test/browser/browser.ts). When it is missing,
// install it if this process may (root, or password-less sudo, with apt-get);
// otherwise stop at once with one line saying what to run, rather than failing
// the browser tests minutes later.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CHROMIUM_PATH = process.env.KEYGATE_CHROMIUM || '/usr/bin/chromium';
const INSTALL = 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium';

/**
 * How this process could run `INSTALL` as root: directly, through `sudo -n`, or not at all.
 * @returns {[string, string[]] | null}
 */
function installer() {
  if (spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) return null;
  if (process.getuid?.() === 0) return ['sh', ['-c', INSTALL]];
  const sudo = spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' });
  return sudo.status === 0 ? ['sudo', ['-n', 'sh', '-c', INSTALL]] : null;
}

function main() {
  if (existsSync(CHROMIUM_PATH)) return 0;
  const how = installer();
  if (how) {
    console.log(`chromium is missing: installing Debian's chromium for the browser tests (${INSTALL})`);
    const result = spawnSync(how[0], how[1], { stdio: 'inherit' });
    if (result.status === 0 && existsSync(CHROMIUM_PATH)) return 0;
  }
  console.error(`The browser tests need Debian's chromium at ${CHROMIUM_PATH}: run \`sudo apt-get install -y chromium\`, then \`npm test\` again.`);
  return 1;
}

process.exit(main());
