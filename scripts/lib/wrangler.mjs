// Running wrangler: local D1 commands, and `wrangler dev` as a detached process group.
import { execFile, spawn } from 'node:child_process';
import { D1_DATABASE, repoRoot, wranglerBin } from './paths.mjs';
import { ConfigInvalid, LOOPBACK, freePort, sleep, waitForHttp200 } from './net.mjs';

/** Environment for every wrangler child: offline-friendly, quiet, no telemetry. @param {Record<string, string>} [extra] */
export function wranglerEnv(extra = {}) {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: 'false',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    WRANGLER_HIDE_BANNER: 'true',
    NO_COLOR: '1',
    FORCE_COLOR: '0',
    ...extra,
  };
}

/** `--persist-to DIR` when a directory is given, else wrangler's default (.wrangler/state). @param {string} [persistTo] */
function persistArgs(persistTo) {
  return persistTo ? ['--persist-to', persistTo] : [];
}

/**
 * Run a short wrangler command to completion; rejects with its output on failure.
 * @param {string[]} args
 * @param {{ cwd?: string, timeoutMs?: number }} [options]
 * @returns {Promise<string>} stdout
 */
export function runWrangler(args, { cwd = repoRoot, timeoutMs = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    // stdin is a pipe, not a TTY, so wrangler skips its confirmation prompts.
    execFile(wranglerBin, args, { cwd, env: wranglerEnv({ CI: 'true' }), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`wrangler ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`.trim()));
      } else {
        resolve(stdout);
      }
    });
  });
}

/**
 * @typedef {{ persistTo?: string, cwd?: string }} LocalD1Options
 */

/** Apply migrations/ to the local D1 database. @param {LocalD1Options} [options] */
export function migrateLocalD1({ persistTo, cwd } = {}) {
  return runWrangler(['d1', 'migrations', 'apply', D1_DATABASE, '--local', ...persistArgs(persistTo)], { cwd });
}

/** Execute a .sql file against the local D1 database. @param {string} file @param {LocalD1Options} [options] */
export function executeLocalD1File(file, { persistTo, cwd } = {}) {
  return runWrangler(['d1', 'execute', D1_DATABASE, '--local', '--yes', '--file', file, ...persistArgs(persistTo)], {
    cwd,
  });
}

/**
 * Run one SQL query against the local D1 database and return its rows.
 * @param {string} sql @param {LocalD1Options} [options]
 * @returns {Promise<Record<string, unknown>[]>}
 */
export async function queryLocalD1(sql, { persistTo, cwd } = {}) {
  const stdout = await runWrangler(['d1', 'execute', D1_DATABASE, '--local', '--yes', '--json', '--command', sql, ...persistArgs(persistTo)], { cwd });
  const parsed = JSON.parse(stdout);
  return parsed.flatMap((/** @type {{ results?: Record<string, unknown>[] }} */ r) => r.results ?? []);
}

/**
 * Keeps the last lines a child printed, so a failure can show why.
 */
class OutputTail {
  constructor(maxLines = 80) {
    this.maxLines = maxLines;
    /** @type {string[]} */
    this.lines = [];
  }
  /** @param {string} chunk */
  push(chunk) {
    this.lines.push(...String(chunk).split(/\r?\n/).filter(Boolean));
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
  }
  toString() {
    return this.lines.join('\n');
  }
}

/**
 * @typedef {object} DevServer
 * @property {string} url           e.g. http://127.0.0.1:8787
 * @property {number} port
 * @property {import('node:child_process').ChildProcess} child
 * @property {() => string} output  the last lines wrangler printed
 * @property {() => Promise<void>} stop  stop wrangler and its workerd children
 */

/**
 * Start `wrangler dev` in its own process group and wait until GET /healthz answers 200.
 * Detached because stopping wrangler by pid alone leaves workerd holding the port;
 * the whole group is stopped instead (see stopProcessGroup).
 *
 * @param {object} options
 * @param {number} options.port
 * @param {string} [options.host]          bind address, 127.0.0.1 by default
 * @param {string} [options.persistTo]     local state dir (D1, Durable Objects)
 * @param {string} [options.envFile]       dotenv file with the secrets; when given, wrangler ignores .dev.vars
 * @param {Record<string, string>} [options.vars]  extra `--var NAME:VALUE` overrides (they beat every other source)
 * @param {string} [options.cwd]           project dir (default: the repo root)
 * @param {number} [options.timeoutMs]     bound on the wait for /healthz
 * @param {(chunk: string) => void} [options.onOutput]  receives wrangler's stdout/stderr
 * @param {(child: import('node:child_process').ChildProcess) => void} [options.onSpawn]
 *   gets the child at once, so a caller interrupted during the wait can still stop it
 * @returns {Promise<DevServer>}
 */
export async function startWranglerDev({ port, host = LOOPBACK, persistTo, envFile, vars = {}, cwd = repoRoot, timeoutMs = 60_000, onOutput, onSpawn }) {
  const args = [
    'dev',
    '--ip',
    host,
    '--port',
    String(port),
    // An explicit free inspector port: two dev servers must not race for 9229.
    '--inspector-port',
    String(await freePort(host)),
    '--show-interactive-dev-session=false',
    ...persistArgs(persistTo),
    ...(envFile ? ['--env-file', envFile] : []),
    ...Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}:${value}`]),
  ];
  const child = spawn(wranglerBin, args, {
    cwd,
    env: wranglerEnv(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onSpawn?.(child);
  const tail = new OutputTail();
  // Always drain the pipes: a full pipe would block wrangler.
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk) => {
      tail.push(chunk);
      onOutput?.(chunk);
    });
  }
  /** @type {string | undefined} */
  let exited;
  child.once('exit', (code, signal) => {
    exited = `wrangler exited (${signal ?? `code ${code}`})`;
  });
  child.once('error', (error) => {
    exited = `wrangler could not start: ${error.message}`;
  });

  const url = `http://${host}:${port}`;
  const server = {
    url,
    port,
    child,
    output: () => tail.toString(),
    stop: () => stopProcessGroup(child),
  };
  try {
    await waitForHttp200(`${url}/healthz`, { timeoutMs, shouldStop: () => exited });
  } catch (error) {
    await server.stop();
    if (error instanceof ConfigInvalid) throw error; // its message names the variable to fix
    throw new Error(`${/** @type {Error} */ (error).message}\n--- wrangler output (last lines) ---\n${tail}`);
  }
  return server;
}

/** Whether any process of group `pgid` is still alive. @param {number} pgid */
function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stop a child started with `detached: true` and everything it spawned: SIGTERM to the
 * process group, then SIGKILL if anything is left after `graceMs`.
 * @param {import('node:child_process').ChildProcess} child
 */
export async function stopProcessGroup(child, graceMs = 5_000) {
  const pgid = child.pid;
  if (!pgid) return;
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return; // nothing left in the group
  }
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(100);
  if (groupAlive(pgid)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // exited in between
    }
    const killDeadline = Date.now() + 2_000;
    while (groupAlive(pgid) && Date.now() < killDeadline) await sleep(50);
  }
}
