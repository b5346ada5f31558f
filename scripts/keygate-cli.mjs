#!/usr/bin/env node
// keygate admin CLI: talks to a running keygate over its management API.
//
//   npm run keygate -- <command> [options]
//
// KEYGATE_URL picks the gateway (default http://127.0.0.1:8787). The admin token comes from
// ADMIN_TOKEN, else from the repository's .dev.vars (written by `npm start`).
// Exit codes: 0 success, 1 the gateway refused or could not be reached, 2 bad usage.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainModule, repoRoot } from './lib/paths.mjs';
import { parseDotEnv } from './lib/secrets.mjs';

export const DEFAULT_URL = 'http://127.0.0.1:8787';
const REQUEST_TIMEOUT_MS = 15_000;

const HELP = `keygate admin CLI

Usage: npm run keygate -- <command> [options]

  keys list
  keys create --name NAME [--owner USER_ID] [--products a,b] [--scopes s1,s2]
              [--format ilal|ila] [--env live|test] [--expires ISO_TIME]
              [--per-minute N] [--per-day N] [--ip CIDR,CIDR]
              Without --owner, --products is required ('*' = every product);
              a key for an owner inherits the owner's products and scopes.
  keys revoke KEY_ID
  keys rotate KEY_ID [--grace SECONDS]
  products list
  products create --slug SLUG --name NAME --prefix /path --origin URL [--test-origin URL]
              [--strip-prefix] [--auth api_key,jwt] [--error-format detailed|compact]
              [--per-minute N] [--per-day N]
  users list
  users create --email EMAIL --password PASSWORD [--role user|admin] [--products a,b] [--scopes s1,s2]
  usage [--key KEY_ID]

Options: --json prints the gateway's JSON answer instead of a table.
Environment: KEYGATE_URL (default ${DEFAULT_URL}); ADMIN_TOKEN (default: from .dev.vars).`;

/** A mistake in how the CLI was called (exit 2), as opposed to a refusal by the gateway (exit 1). */
export class UsageError extends Error {}

/** The gateway answered with an error: its message and code, as the user should see them. */
export class GatewayRefusal extends Error {
  /** @param {number} status @param {Record<string, any>} body */
  constructor(status, body) {
    const fields = Array.isArray(body.fields)
      ? body.fields.map((/** @type {{path: string, message: string}} */ f) => `\n  - ${f.path || 'body'}: ${f.message}`).join('')
      : '';
    super(`${body.message ?? `HTTP ${status}`} (${body.code ?? status})${fields}`);
    this.status = status;
    this.code = body.code;
  }
}

/** @param {string | undefined} text */
const list = (text) => (text === undefined ? undefined : text.split(',').map((item) => item.trim()).filter(Boolean));

/** @param {string | undefined} text @param {string} flag */
function integer(text, flag) {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} must be a whole number, got "${text}"`);
  return Number(text);
}

/** Drop undefined members so the gateway sees only what was given. @param {Record<string, unknown>} body */
const compact = (body) => Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined));

/** @param {Record<string, string | boolean | undefined>} values @param {string} name */
function required(values, name) {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

/** @param {unknown} value */
function cell(value) {
  if (value === null || value === undefined) return '-';
  if (Array.isArray(value)) return value.length ? value.join(',') : '-';
  return String(value);
}

/**
 * Rows as an aligned text table.
 * @param {Record<string, unknown>[]} rows @param {[string, string][]} columns [field, heading]
 */
export function table(rows, columns) {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((row) => columns.map(([field]) => cell(row[field])));
  const widths = columns.map(([, heading], i) => Math.max(heading.length, ...cells.map((r) => /** @type {string} */ (r[i]).length)));
  const line = (/** @type {string[]} */ values) => values.map((v, i) => v.padEnd(/** @type {number} */ (widths[i]))).join('  ').trimEnd();
  return [line(columns.map(([, heading]) => heading)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** @param {NodeJS.ProcessEnv} env */
export function adminTokenFrom(env) {
  if (env.ADMIN_TOKEN) return env.ADMIN_TOKEN;
  const devVars = join(repoRoot, '.dev.vars');
  const token = existsSync(devVars) ? parseDotEnv(readFileSync(devVars, 'utf8')).ADMIN_TOKEN : undefined;
  if (!token) throw new UsageError('No admin token: set ADMIN_TOKEN, or run `npm start` once to write .dev.vars');
  return token;
}

/**
 * One call to the management API; the parsed JSON body, or a GatewayRefusal.
 * @param {{ url: string, token: string }} target @param {string} method @param {string} path @param {unknown} [body]
 * @returns {Promise<Record<string, any>>}
 */
async function request(target, method, path, body) {
  /** @type {Response} */
  let response;
  try {
    response = await fetch(`${target.url.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { Authorization: `Bearer ${target.token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new Error(`cannot reach keygate at ${target.url}: ${/** @type {Error} */ (error).cause ?? /** @type {Error} */ (error).message}`);
  }
  const text = await response.text();
  /** @type {Record<string, any>} */
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`keygate answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  if (!response.ok) throw new GatewayRefusal(response.status, parsed);
  return parsed;
}

const KEY_COLUMNS = /** @type {[string, string][]} */ ([
  ['id', 'ID'],
  ['prefix', 'PREFIX'],
  ['name', 'NAME'],
  ['env', 'ENV'],
  ['status', 'STATUS'],
  ['products', 'PRODUCTS'],
  ['scopes', 'SCOPES'],
  ['lastUsedAt', 'LAST USED'],
  ['expiresAt', 'EXPIRES'],
]);

/**
 * What each command sends, and how its answer is printed.
 * @typedef {{ method: string, path: string, body?: Record<string, unknown>, print: (answer: Record<string, any>) => string }} Plan
 * @param {string[]} positionals @param {Record<string, string | boolean | undefined>} v
 * @returns {Plan}
 */
export function plan(positionals, v) {
  const [resource, action, id] = positionals;
  const command = [resource, action].filter(Boolean).join(' ');
  const needId = () => {
    if (!id) throw new UsageError(`${command} needs a key id`);
    return encodeURIComponent(id);
  };
  switch (command) {
    case 'keys list':
      return { method: 'GET', path: '/api/v1/keys', print: (a) => table(a.keys, KEY_COLUMNS) };
    case 'keys create': {
      const name = required(v, 'name');
      // Checked here too so the mistake costs no request: the gateway refuses an owner-less key without products.
      if (v.owner === undefined && typeof v.products !== 'string') {
        throw new UsageError("--products is required without --owner (a key with no owner inherits nothing; --products '*' gives it every product)");
      }
      return {
        method: 'POST',
        path: '/api/v1/keys',
        body: compact({
          name,
          format: v.format,
          env: v.env,
          ownerId: v.owner,
          products: list(/** @type {string | undefined} */ (v.products)),
          scopes: list(/** @type {string | undefined} */ (v.scopes)),
          expiresAt: v.expires,
          rateLimitPerMinute: integer(/** @type {string | undefined} */ (v['per-minute']), '--per-minute'),
          rateLimitPerDay: integer(/** @type {string | undefined} */ (v['per-day']), '--per-day'),
          ipAllowlist: list(/** @type {string | undefined} */ (v.ip)),
        }),
        print: (a) => `${table([a], KEY_COLUMNS)}\n\nKey (shown once, store it now):\n${a.key}`,
      };
    }
    case 'keys revoke':
      return { method: 'DELETE', path: `/api/v1/keys/${needId()}`, print: (a) => `Revoked ${a.id}` };
    case 'keys rotate':
      return {
        method: 'POST',
        path: `/api/v1/keys/${needId()}/rotate`,
        body: compact({ gracePeriodSeconds: integer(/** @type {string | undefined} */ (v.grace), '--grace') }),
        print: (a) => `Rotated ${a.rotatedFrom} -> ${a.id} (old key valid until ${a.graceUntil})\n\nNew key (shown once, store it now):\n${a.key}`,
      };
    case 'products list':
      return {
        method: 'GET',
        path: '/api/v1/admin/products',
        print: (a) =>
          table(a.products, [
            ['slug', 'SLUG'],
            ['name', 'NAME'],
            ['pathPrefix', 'PREFIX'],
            ['originUrl', 'ORIGIN'],
            ['authMethods', 'AUTH'],
            ['errorFormat', 'ERRORS'],
            ['rateLimitPerMinute', 'PER MIN'],
            ['rateLimitPerDay', 'PER DAY'],
          ]),
      };
    case 'products create':
      return {
        method: 'POST',
        path: '/api/v1/admin/products',
        body: compact({
          slug: required(v, 'slug'),
          name: required(v, 'name'),
          pathPrefix: required(v, 'prefix'),
          originUrl: required(v, 'origin'),
          testOriginUrl: v['test-origin'],
          stripPrefix: v['strip-prefix'] ? true : undefined,
          authMethods: list(/** @type {string | undefined} */ (v.auth)),
          errorFormat: v['error-format'],
          rateLimitPerMinute: integer(/** @type {string | undefined} */ (v['per-minute']), '--per-minute'),
          rateLimitPerDay: integer(/** @type {string | undefined} */ (v['per-day']), '--per-day'),
        }),
        print: (a) => `Created product ${a.slug} (${a.id}) at ${a.pathPrefix} -> ${a.originUrl}`,
      };
    case 'users list':
      return {
        method: 'GET',
        path: '/api/v1/admin/users',
        print: (a) =>
          table(a.users, [
            ['id', 'ID'],
            ['email', 'EMAIL'],
            ['role', 'ROLE'],
            ['products', 'PRODUCTS'],
            ['scopes', 'SCOPES'],
            ['createdAt', 'CREATED'],
          ]),
      };
    case 'users create':
      return {
        method: 'POST',
        path: '/api/v1/admin/users',
        body: compact({
          email: required(v, 'email'),
          password: required(v, 'password'),
          role: v.role,
          products: list(/** @type {string | undefined} */ (v.products)),
          scopes: list(/** @type {string | undefined} */ (v.scopes)),
        }),
        print: (a) => `Created ${a.role} ${a.email} (${a.id})`,
      };
    case 'usage':
      return {
        method: 'GET',
        path: `/api/v1/usage/stats${typeof v.key === 'string' ? `?keyId=${encodeURIComponent(v.key)}` : ''}`,
        print: (a) =>
          table(
            a.keys.map((/** @type {Record<string, any>} */ k) => ({
              id: k.id,
              prefix: k.prefix,
              minute: `${k.minute.used}/${k.minute.limit}`,
              day: `${k.day.used}/${k.day.limit}`,
              days30: k.last30Days.reduce((/** @type {number} */ sum, /** @type {{count: number}} */ d) => sum + d.count, 0),
            })),
            [
              ['id', 'ID'],
              ['prefix', 'PREFIX'],
              ['minute', 'THIS MINUTE'],
              ['day', 'TODAY'],
              ['days30', 'LAST 30 DAYS'],
            ],
          ),
      };
    default:
      throw new UsageError(command ? `unknown command "${command}"` : 'no command given');
  }
}

const OPTIONS = /** @type {const} */ ({
  name: { type: 'string' },
  format: { type: 'string' },
  env: { type: 'string' },
  owner: { type: 'string' },
  products: { type: 'string' },
  scopes: { type: 'string' },
  expires: { type: 'string' },
  'per-minute': { type: 'string' },
  'per-day': { type: 'string' },
  ip: { type: 'string' },
  grace: { type: 'string' },
  slug: { type: 'string' },
  prefix: { type: 'string' },
  origin: { type: 'string' },
  'test-origin': { type: 'string' },
  'strip-prefix': { type: 'boolean' },
  auth: { type: 'string' },
  'error-format': { type: 'string' },
  email: { type: 'string' },
  password: { type: 'string' },
  role: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
});

/**
 * Runs one command; returns the exit code. Output goes through `out`/`err` so tests can capture it.
 * @param {string[]} argv @param {NodeJS.ProcessEnv} env
 * @param {{ out: (text: string) => void, err: (text: string) => void }} io
 */
export async function main(argv, env, io) {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    if (values.help || positionals.length === 0) {
      io.out(HELP);
      return values.help ? 0 : 2;
    }
    const step = plan(positionals, values);
    const target = { url: env.KEYGATE_URL || DEFAULT_URL, token: adminTokenFrom(env) };
    const answer = await request(target, step.method, step.path, step.body);
    io.out(values.json ? JSON.stringify(answer, null, 2) : step.print(answer));
    return 0;
  } catch (error) {
    if (error instanceof UsageError || /** @type {{ code?: string }} */ (error).code?.startsWith?.('ERR_PARSE_ARGS')) {
      io.err(`Error: ${/** @type {Error} */ (error).message}\nRun with --help for usage.`);
      return 2;
    }
    io.err(`Error: ${/** @type {Error} */ (error).message}`);
    return 1;
  }
}

if (isMainModule(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2), process.env, {
    out: (text) => console.log(text),
    err: (text) => console.error(text),
  });
}
