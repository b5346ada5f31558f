// `npm run setup:cloudflare`: from a laptop to a deployed keygate, one idempotent step at a time.
//
// Steps: D1 database (create or find) -> its id into wrangler.toml -> remote migrations ->
// the Worker's secrets (only those not set yet, unless rotating) -> deploy -> the first admin.
// Every wrangler call goes through one runner whose executable (KEYGATE_WRANGLER) and config
// (--config) can be swapped, so a test can stand a stub in for Cloudflare.
import { spawn } from 'node:child_process';
import { closeSync, fchmodSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { randomAlphanumeric } from './keys.mjs';
import { repoRoot, wranglerBin } from './paths.mjs';
import { dotEnvLine, generateSecrets, REQUIRED_SECRETS } from './secrets.mjs';
import { sleep } from './net.mjs';
import { wranglerEnv } from './wrangler.mjs';

/** Login email of the first admin when neither --admin-email nor KEYGATE_ADMIN_EMAIL names one. */
export const DEFAULT_ADMIN_EMAIL = 'admin@keygate.local';

/** A wrangler step failed: the message says which command and why; the run stops with exit 1. */
export class SetupError extends Error {}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/**
 * The `[[d1_databases]]` blocks of a wrangler.toml, with where each one's lines are.
 * Tables end at the next line that opens a table (`[` at the start, after optional blanks).
 * @param {string} text
 * @returns {{ start: number, end: number, binding?: string, databaseName?: string, databaseId?: string }[]}
 */
function d1Blocks(text) {
  const lines = text.split('\n');
  /** @type {{ start: number, end: number, binding?: string, databaseName?: string, databaseId?: string }[]} */
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\[\[\s*d1_databases\s*\]\]\s*(#.*)?\r?$/.test(/** @type {string} */ (lines[i]))) continue;
    let end = i + 1;
    while (end < lines.length && !/^\s*\[/.test(/** @type {string} */ (lines[end]))) end++;
    const body = lines.slice(i + 1, end).join('\n');
    const value = (/** @type {string} */ key) => new RegExp(`^\\s*${key}\\s*=\\s*"([^"]*)"`, 'm').exec(body)?.[1];
    blocks.push({ start: i, end, binding: value('binding'), databaseName: value('database_name'), databaseId: value('database_id') });
  }
  return blocks;
}

/**
 * The D1 database the config binds: the block named `databaseName`, else the first one.
 * @param {string} text @param {string} [databaseName]
 */
export function readD1Config(text, databaseName) {
  const blocks = d1Blocks(text);
  const block = databaseName ? blocks.find((b) => b.databaseName === databaseName) : blocks[0];
  if (!block?.databaseName) {
    throw new SetupError(`no [[d1_databases]] table with a database_name${databaseName ? ` "${databaseName}"` : ''} in the config`);
  }
  return { binding: block.binding, databaseName: block.databaseName, databaseId: block.databaseId };
}

/**
 * The config text with that database's `database_id` value replaced by `id`; every other byte
 * (comments, spacing, the other tables) is kept.
 * @param {string} text @param {string} databaseName @param {string} id
 */
export function replaceD1DatabaseId(text, databaseName, id) {
  if (!UUID.test(id) || id.length !== 36) throw new SetupError(`not a D1 database id: "${id}"`);
  const block = d1Blocks(text).find((b) => b.databaseName === databaseName);
  if (!block) throw new SetupError(`no [[d1_databases]] table for "${databaseName}" in the config`);
  const lines = text.split('\n');
  for (let i = block.start + 1; i < block.end; i++) {
    const line = /** @type {string} */ (lines[i]);
    const match = /^(\s*database_id\s*=\s*")[^"]*(".*)$/s.exec(line);
    if (match) {
      lines[i] = `${match[1]}${id}${match[2]}`;
      return lines.join('\n');
    }
  }
  throw new SetupError(`the [[d1_databases]] table for "${databaseName}" has no database_id line to fill in; add database_id = "" to it`);
}

/** The id `wrangler d1 create` printed in its config snippet (TOML or JSON), if any. @param {string} output */
export function parseCreatedDatabaseId(output) {
  return /database_id["']?\s*[=:]\s*["']([0-9a-f-]{36})["']/i.exec(output)?.[1];
}

/** The id of database `name` in `wrangler d1 list --json` output, if listed. @param {string} output @param {string} name */
export function findDatabaseId(output, name) {
  const list = parseJson(output, 'wrangler d1 list --json');
  if (!Array.isArray(list)) throw new SetupError('wrangler d1 list --json did not print a JSON list');
  const found = list.find((/** @type {{ name?: string }} */ db) => db?.name === name);
  return found ? String(found.uuid ?? found.id ?? '') || undefined : undefined;
}

/** Secret names from `wrangler secret list` (JSON: [{ name, type }]). @param {string} output */
export function parseSecretNames(output) {
  const list = parseJson(output, 'wrangler secret list');
  if (!Array.isArray(list)) throw new SetupError('wrangler secret list did not print a JSON list');
  return list.map((/** @type {{ name?: string }} */ s) => String(s?.name ?? '')).filter(Boolean);
}

/**
 * The Worker's URL from `wrangler deploy` output: the first URL listed under "Deployed … triggers"
 * (the workers.dev address when it is enabled). Undefined when none is (routes or custom domains only).
 * @param {string} output
 */
export function parseDeployedUrl(output) {
  const lines = output.split(/\r?\n/);
  const start = lines.findIndex((line) => /Deployed .*triggers/i.test(line));
  const candidates = start === -1 ? lines : lines.slice(start + 1);
  for (const line of candidates) {
    const match = /^\s*(https?:\/\/[^\s()]+)/.exec(line);
    if (match) return /** @type {string} */ (match[1]).replace(/\/+$/, '');
  }
  // No triggers section: any workers.dev address printed.
  return /https:\/\/[A-Za-z0-9.-]+\.workers\.dev\b/.exec(output)?.[0];
}

/** JSON printed by wrangler, possibly after a line or two of notices. @param {string} output @param {string} what */
function parseJson(output, what) {
  try {
    return JSON.parse(output);
  } catch {
    const start = output.search(/^[[{]/m);
    if (start !== -1) {
      try {
        return JSON.parse(output.slice(start));
      } catch {
        // fall through
      }
    }
    throw new SetupError(`${what} printed something that is not JSON:\n${output.slice(0, 400)}`);
  }
}

/**
 * @typedef {{ code: number, stdout: string, stderr: string }} WranglerResult
 * @typedef {(args: string[], options?: { input?: string, allowFailure?: boolean }) => Promise<WranglerResult>} Wrangler
 */

/**
 * A runner for wrangler commands with `--config` appended: resolves with the output, rejects with a
 * SetupError naming the command and its last output lines unless `allowFailure`.
 * @param {{ command: string, config: string, cwd?: string, timeoutMs?: number }} options
 * @returns {Wrangler}
 */
export function wranglerRunner({ command, config, cwd = repoRoot, timeoutMs = 300_000 }) {
  return (args, { input, allowFailure = false } = {}) =>
    new Promise((resolve, reject) => {
      const fullArgs = [...args, '--config', config];
      const shown = `wrangler ${args.join(' ')}`;
      // stdin is a pipe, never a TTY: wrangler takes its non-interactive answers and reads a secret from it.
      const child = spawn(command, fullArgs, { cwd, env: wranglerEnv({ CI: 'true' }), stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
      const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new SetupError(`${shown}: cannot run ${command}: ${error.message}`));
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        const result = { code: code ?? 1, stdout, stderr };
        if (result.code === 0 && !signal) return resolve(result);
        if (allowFailure) return resolve(result);
        const tail = `${stdout}\n${stderr}`.trim().split(/\r?\n/).slice(-15).join('\n');
        const hint = /login|CLOUDFLARE_API_TOKEN|not authenticated/i.test(tail) ? '\n(Log in first: npx wrangler login, or set CLOUDFLARE_API_TOKEN.)' : '';
        reject(new SetupError(`${shown} failed (${signal ?? `exit ${code}`}):\n${tail}${hint}`));
      });
      child.stdin.on('error', () => {}); // a child that exits without reading stdin
      child.stdin.end(input ?? '');
    });
}

/**
 * POST the first admin; 201 = created, 409 = that email exists already. Waits for a fresh
 * deployment to answer (network errors and 5xx are retried until `waitMs`).
 * @param {{ url: string, token: string, email: string, password: string, waitMs?: number, intervalMs?: number }} options
 * @returns {Promise<'created' | 'exists'>}
 */
export async function createAdmin({ url, token, email, password, waitMs = 90_000, intervalMs = 3_000 }) {
  const endpoint = `${url.replace(/\/+$/, '')}/api/v1/admin/users`;
  const deadline = Date.now() + waitMs;
  let last = '';
  for (;;) {
    try {
      const response = await fetch(endpoint, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ email, password, role: 'admin' }),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await response.text();
      if (response.status === 201) return 'created';
      if (response.status === 409) return 'exists';
      if (response.status === 401 || response.status === 403) {
        throw new SetupError(
          `${endpoint} answered ${response.status}: wrong ADMIN_TOKEN for this deployment. ` +
            'Give the token that is set on Cloudflare in ADMIN_TOKEN, or re-run with --rotate to set a new one.',
        );
      }
      last = `HTTP ${response.status}: ${text.slice(0, 300)}`;
      if (response.status < 500) throw new SetupError(`${endpoint} refused the admin user: ${last}`);
    } catch (error) {
      if (error instanceof SetupError) throw error;
      const cause = /** @type {{ cause?: { message?: string } }} */ (error).cause;
      last = `${/** @type {Error} */ (error).message}${cause?.message ? ` (${cause.message})` : ''}`;
    }
    if (Date.now() >= deadline) throw new SetupError(`${endpoint} did not accept the admin user within ${Math.round(waitMs / 1000)} s (last: ${last})`);
    await sleep(intervalMs);
  }
}

/** Append `values` to a dotenv file that ends up owner-only (0600). @param {string} path @param {Record<string, string>} values */
function appendSecretsFile(path, values) {
  const fd = openSync(path, 'a', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, `# keygate on Cloudflare, written by npm run setup:cloudflare (${new Date().toISOString()}). Never commit.\n`);
    writeSync(
      fd,
      `${Object.entries(values)
        .map(([name, value]) => dotEnvLine(name, value))
        .join('\n')}\n`,
    );
  } finally {
    closeSync(fd);
  }
}

/**
 * @typedef {object} SetupOptions
 * @property {string} config          path of wrangler.toml (edited in place: only the database_id)
 * @property {string} [wrangler]      wrangler executable (default: the project's own)
 * @property {string} [url]           the deployed Worker's URL (default: parsed from wrangler deploy)
 * @property {string} [adminToken]    the ADMIN_TOKEN already set on Cloudflare, to create the admin on a re-run
 * @property {string} [adminEmail]
 * @property {string} [adminPassword] default: generated (and shown once)
 * @property {boolean} [rotate]       put fresh values for every secret even when set
 * @property {string} [secretsFile]   write the generated secrets there (0600) instead of printing them
 * @property {number} [waitMs]        how long to wait for the deployment to answer
 */

/**
 * The whole setup; returns the exit code (0 done, 1 a step failed). One line per step on `out`.
 * @param {SetupOptions} options
 * @param {{ out: (text: string) => void, err: (text: string) => void }} io
 */
export async function runSetup(options, io) {
  const run = wranglerRunner({ command: options.wrangler || wranglerBin, config: options.config });
  const steps = 6;
  let n = 0;
  const step = (/** @type {string} */ text) => io.out(`[${++n}/${steps}] ${text}`);
  /** Values the operator needs and cannot read back from Cloudflare. @type {Record<string, string>} */
  const shownOnce = {};
  try {
    const configText = readFileSync(options.config, 'utf8');
    const d1 = readD1Config(configText);

    // 1. The D1 database: found by name, else created.
    let databaseId = findDatabaseId((await run(['d1', 'list', '--json'])).stdout, d1.databaseName);
    if (databaseId) {
      step(`D1 database ${d1.databaseName}: already exists (${databaseId})`);
    } else {
      const created = await run(['d1', 'create', d1.databaseName]);
      databaseId =
        parseCreatedDatabaseId(`${created.stdout}\n${created.stderr}`) ?? findDatabaseId((await run(['d1', 'list', '--json'])).stdout, d1.databaseName);
      if (!databaseId) throw new SetupError(`wrangler d1 create ${d1.databaseName} succeeded but printed no database id, and d1 list does not show it`);
      step(`D1 database ${d1.databaseName}: created (${databaseId})`);
    }

    // 2. Its id into the config, nothing else touched.
    if (d1.databaseId === databaseId) {
      step(`${options.config}: database_id already set`);
    } else {
      writeFileSync(options.config, replaceD1DatabaseId(configText, d1.databaseName, databaseId));
      step(`${options.config}: database_id set to ${databaseId} (was ${d1.databaseId || 'empty'})`);
    }

    // 3. Migrations, on Cloudflare's copy.
    const migrated = await run(['d1', 'migrations', 'apply', d1.databaseName, '--remote']);
    step(/No migrations to apply/i.test(migrated.stdout) ? 'migrations: already applied' : 'migrations: applied (remote)');

    // 4. Secrets: only the missing ones, so a re-run never rotates a live secret unless asked.
    const listed = await run(['secret', 'list'], { allowFailure: true });
    /** @type {string[]} */
    let present = [];
    if (listed.code === 0) {
      present = parseSecretNames(listed.stdout);
    } else if (!/not found/i.test(`${listed.stdout}\n${listed.stderr}`)) {
      // "Worker not found" is a first run: no Worker yet, so no secrets. Anything else is a failure.
      throw new SetupError(`wrangler secret list failed (exit ${listed.code}):\n${`${listed.stdout}\n${listed.stderr}`.trim()}`);
    }
    const toPut = options.rotate ? [...REQUIRED_SECRETS] : REQUIRED_SECRETS.filter((name) => !present.includes(name));
    const generated = await generateSecrets();
    for (const name of toPut) {
      await run(['secret', 'put', name], { input: /** @type {string} */ (generated[name]) });
      // The operator needs these: the admin API's token, and the secret origins verify signatures with.
      // Recorded at once, so a later failure still hands over what is now live.
      if (name === 'ADMIN_TOKEN' || name === 'ORIGIN_SIGNING_SECRET') shownOnce[name] = /** @type {string} */ (generated[name]);
    }
    if (toPut.length === 0) {
      step(`secrets: already set (${REQUIRED_SECRETS.join(', ')})`);
    } else {
      const kept = REQUIRED_SECRETS.filter((name) => !toPut.includes(name));
      step(`secrets: put ${toPut.join(', ')}${kept.length ? `; already set: ${kept.join(', ')}` : ''}`);
    }

    // 5. Deploy (always: a re-deploy of the same code is harmless and picks up local changes).
    const deployed = await run(['deploy']);
    const url = options.url || parseDeployedUrl(deployed.stdout);
    step(`deploy: done${url ? ` (${url})` : ''}`);
    if (url) shownOnce.KEYGATE_URL = url;

    // 6. The first admin, through the deployed API.
    const token = toPut.includes('ADMIN_TOKEN') ? generated.ADMIN_TOKEN : options.adminToken;
    const email = options.adminEmail || DEFAULT_ADMIN_EMAIL;
    if (!url) {
      step('admin user: skipped: wrangler deploy printed no URL; re-run with --url https://your-keygate (or KEYGATE_URL)');
      return finish(1);
    }
    if (!token) {
      step('admin user: skipped: ADMIN_TOKEN is set on Cloudflare but not known here; re-run with ADMIN_TOKEN=<token> (or --rotate)');
      return finish(1);
    }
    const password = options.adminPassword || randomAlphanumeric(24);
    const outcome = await createAdmin({ url, token, email, password, waitMs: options.waitMs });
    if (outcome === 'created') {
      step(`admin user ${email}: created`);
      if (!options.adminPassword) {
        shownOnce.KEYGATE_ADMIN_EMAIL = email;
        shownOnce.KEYGATE_ADMIN_PASSWORD = password;
      }
    } else {
      step(`admin user ${email}: already exists`);
    }
    return finish(0);
  } catch (error) {
    io.err(`Error: ${/** @type {Error} */ (error).message}`);
    io.err('Setup stopped; fix the cause and run npm run setup:cloudflare again (the steps already done are skipped).');
    finish(1);
    return 1;
  }

  /** Hand over what was generated (once), then return the code. @param {number} code */
  function finish(code) {
    const secretNames = Object.keys(shownOnce).filter((name) => name !== 'KEYGATE_URL');
    if (secretNames.length === 0) return code;
    if (options.secretsFile) {
      appendSecretsFile(options.secretsFile, shownOnce);
      io.out(`Generated secrets (${secretNames.join(', ')}) written to ${options.secretsFile} (mode 0600).`);
    } else {
      io.out('\nShown once, store them now (Cloudflare never shows a secret again):');
      for (const [name, value] of Object.entries(shownOnce)) io.out(`  ${name}=${value}`);
    }
    return code;
  }
}
