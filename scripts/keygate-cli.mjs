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

  keys list [--limit N] [--cursor C] [--all]
  keys create --name NAME [--owner USER_ID] [--products a,b] [--scopes s1,s2]
              [--format ilal|ila] [--env live|test] [--expires ISO_TIME]
              [--per-minute N] [--per-day N] [--ip CIDR,CIDR]
              [--rate-limit-mode exact|leased|product]
              Without --owner, --products is required ('*' = every product);
              a key for an owner inherits the owner's products and scopes.
  keys revoke KEY_ID
  keys rotate KEY_ID [--grace SECONDS]
  keys credits KEY_ID
              Show the key's credits (its rotation's shared balance).
  keys credits KEY_ID --set N [--refill-amount N --refill-interval day|month [--refill-day D]] [--low N]
              Set the balance; a set replaces the refill and low threshold (absent = none).
  keys credits KEY_ID --top-up N
  keys credits KEY_ID --remove
              Back to no balance: only the rate limits apply.
  products list [--limit N] [--cursor C] [--all]
  products create --slug SLUG --name NAME --prefix /path --origin URL [--test-origin URL]
              [--strip-prefix] [--auth api_key,jwt] [--error-format detailed|compact]
              [--per-minute N] [--per-day N] [--cors https://app.example.com,…|*]
              [--cost-rule METHOD:PATH=COST]… [--usage-header NAME [--usage-reserve N]]
              [--rate-limit-mode exact|leased]
              A cost rule prices calls in credits ('*' or no METHOD: any method; no PATH: any
              path under the prefix; repeatable, the first match decides, no match costs 1).
              Rate-limit mode (default exact; a key's 'product' = the product's): leased is
              faster for hot or far-away keys, never over the limits, but remaining counts are
              estimates and revocation takes effect within 1 s.
  users list [--limit N] [--cursor C] [--all]
  users create --email EMAIL --password PASSWORD [--role user|admin] [--products a,b] [--scopes s1,s2]
  users set-limits USER_ID [--per-minute N|none] [--per-day N|none] [--max-keys N|none]
              Owner-level limits, shared by all of the user's keys and tokens ('none' clears one).
  users credits USER_ID [--set N … | --top-up N | --remove]
              An owner's shared balance, with the options of keys credits (--set needs owner-level limits).
  usage [--key KEY_ID]
  service-tokens list
  service-tokens create --name NAME
              A credential for POST /api/v1/keys/verify (shown once).
  service-tokens revoke TOKEN_ID
  webhooks list
  webhooks create --url URL [--description TEXT] [--events a,b]
              An endpoint keygate POSTs signed events to (https; http only to localhost and
              127.0.0.1). --events defaults to '*' (every type). Prints the signing secret,
              which is shown only then.
  webhooks show ENDPOINT_ID
  webhooks update ENDPOINT_ID [--url URL] [--description TEXT] [--events a,b] [--enable|--disable]
              Only what is given changes; --description '' clears it; --disable pauses the
              endpoint (its pending deliveries are dropped).
  webhooks rotate-secret ENDPOINT_ID
              A new signing secret, shown only now; the old one stops verifying at once.
  webhooks delete ENDPOINT_ID

Options: --json prints the gateway's JSON answer instead of a table.
List commands (keys list, products list, users list) show one page (50 rows unless
--limit N, at most 200) and print the command for the next page; --cursor C shows
the page after the one that printed C; --all follows the pages to the end.
Environment: KEYGATE_URL (default ${DEFAULT_URL}); ADMIN_TOKEN (default: from .dev.vars).`;

/** The parsed options: strings, flags, and the repeatable --cost-rule's list. @typedef {Record<string, string | boolean | string[] | undefined>} CliValues */

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
const list = (text) =>
  text === undefined
    ? undefined
    : text
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean);

/** @param {string | undefined} text @param {string} flag */
function integer(text, flag) {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} must be a whole number, got "${text}"`);
  return Number(text);
}

/** A whole number, or 'none' (null: clears the limit). @param {string | undefined} text @param {string} flag */
function limitOrNone(text, flag) {
  return text === 'none' ? null : integer(text, flag);
}

/** Drop undefined members so the gateway sees only what was given. @param {Record<string, unknown>} body */
const compact = (body) => Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined));

/** @param {CliValues} values @param {string} name */
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
  const line = (/** @type {string[]} */ values) =>
    values
      .map((v, i) => v.padEnd(/** @type {number} */ (widths[i])))
      .join('  ')
      .trimEnd();
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
  if (response.status === 401) {
    // Every CLI request carries the admin token: a 401 means this gateway does not know it.
    const said = (() => {
      try {
        return new GatewayRefusal(401, JSON.parse(text)).message;
      } catch {
        return 'HTTP 401';
      }
    })();
    throw new Error(
      `wrong ADMIN_TOKEN: keygate at ${target.url} refused it: ${said}. Check that KEYGATE_URL names the gateway you mean, ` +
        'and that ADMIN_TOKEN (or ADMIN_TOKEN in .dev.vars, for a local gateway) is the token that gateway was given.',
    );
  }
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

/**
 * A list command's paging: the list's path and member in the answer, and the page asked for.
 * @typedef {{ path: string, name: string, limit: number | undefined, cursor: string | undefined }} ListPage
 */

/** The path of one page of a list. @param {ListPage} list @param {string | undefined} cursor */
function pagePath(list, cursor) {
  const query = new URLSearchParams();
  if (list.limit !== undefined) query.set('limit', String(list.limit));
  if (cursor !== undefined) query.set('cursor', cursor);
  const search = query.toString();
  return search ? `${list.path}?${search}` : list.path;
}

/**
 * A list command: one page (its table, then the command for the next page), or with --all every page.
 * @param {string} command @param {string} path @param {string} name @param {CliValues} v
 * @param {(rows: Record<string, unknown>[]) => string} render
 * @returns {Plan}
 */
function listPlan(command, path, name, v, render) {
  const limit = integer(/** @type {string | undefined} */ (v.limit), '--limit');
  const cursor = typeof v.cursor === 'string' ? v.cursor : undefined;
  if (cursor === '') throw new UsageError('--cursor needs the cursor a previous page printed');
  /** @type {ListPage} */
  const list = { path, name, limit, cursor };
  return {
    method: 'GET',
    path: pagePath(list, cursor),
    list,
    print: (a) => {
      const shown = render(a[name]);
      if (typeof a.nextCursor !== 'string') return shown;
      const again = limit === undefined ? '' : ` --limit ${limit}`;
      return `${shown}\n\nMore: npm run keygate -- ${command}${again} --cursor ${a.nextCursor}`;
    },
  };
}

/** The page size --all asks for when --limit is not given: the most the gateway serves. */
const ALL_PAGES_LIMIT = 200;

/**
 * Every page of a list from its cursor (or the start) to the end, as one answer with nextCursor null.
 * @param {{ url: string, token: string }} target @param {ListPage} list
 */
async function requestAllPages(target, list) {
  const paged = { ...list, limit: list.limit ?? ALL_PAGES_LIMIT };
  /** @type {unknown[]} */
  const rows = [];
  const seen = new Set();
  let cursor = list.cursor;
  /** @type {Record<string, any>} */
  let answer;
  do {
    answer = await request(target, 'GET', pagePath(paged, cursor));
    rows.push(...answer[list.name]);
    cursor = typeof answer.nextCursor === 'string' ? answer.nextCursor : undefined;
    // A cursor seen before would page forever: the gateway never repeats one.
    if (cursor !== undefined && seen.has(cursor)) throw new Error(`keygate repeated the cursor ${cursor}`);
    seen.add(cursor);
  } while (cursor !== undefined);
  return { ...answer, [list.name]: rows, nextCursor: null };
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
  ['rateLimitMode', 'MODE'],
]);

// ---- rate-limit mode (issue 17): products create / keys create --rate-limit-mode ----

/**
 * --rate-limit-mode as the API's rateLimitMode: "exact" or "leased"; for a key also
 * "product" (null: the product's mode). Checked here so a typo costs no request.
 * @param {CliValues} v @param {{ forKey: boolean }} options
 * @returns {'exact' | 'leased' | null | undefined}
 */
export function rateLimitMode(v, { forKey }) {
  const text = v['rate-limit-mode'];
  if (text === undefined) return undefined;
  if (text === 'exact' || text === 'leased') return text;
  if (forKey && text === 'product') return null;
  throw new UsageError(`--rate-limit-mode must be ${forKey ? 'exact, leased or product' : 'exact or leased'}, got "${text}"`);
}

/** A key's mode as tables show it: null is the product's. @param {Record<string, unknown>[]} keys */
const keyRows = (keys) => keys.map((key) => ({ ...key, rateLimitMode: key.rateLimitMode ?? 'product' }));

/** A product's limits and mode in one line; leased says what it trades. @param {Record<string, any>} product */
export function productLimitsText(product) {
  const mode = product.rateLimitMode ?? 'exact';
  const note = mode === 'leased' ? ' (remaining counts are estimates; revocation within 1 s)' : '';
  return `Rate limits: ${product.rateLimitPerMinute ?? 'default'}/min, ${product.rateLimitPerDay ?? 'default'}/day, ${mode} mode${note}`;
}

// ---- credits (issue 16): keys credits, users credits, products' cost rules ----

/**
 * `METHOD:PATH=COST` as a product cost rule: '*' or no METHOD is any method, no PATH any path.
 * @param {string} text
 */
export function costRule(text) {
  const match = /^([^:=]*):([^=]*)=(\d+)$/.exec(text);
  if (!match) throw new UsageError(`--cost-rule must be METHOD:PATH=COST (e.g. POST:/chat/**=5 or *:/search=2), got "${text}"`);
  const [, method = '', path = '', cost = ''] = match;
  return compact({ method: method === '' || method === '*' ? undefined : method, path: path === '' ? undefined : path, cost: Number(cost) });
}

/** @param {{method?: string, path?: string, cost: number}} rule */
const costRuleText = (rule) => `${rule.method ?? '*'}:${rule.path ?? ''}=${rule.cost}`;

/**
 * A balance in one or two lines: what is left, then the refill.
 * @param {string} who @param {Record<string, any> | null} credits
 */
export function creditsText(who, credits) {
  if (!credits) return `${who}: no credit balance; only rate limits apply`;
  const low = credits.lowThreshold === null ? '' : `, low at ${credits.lowThreshold}`;
  const refill = credits.refill;
  const every = refill?.interval === 'month' ? `every month on day ${refill.dayOfMonth ?? 1} (UTC)` : 'every day (00:00 UTC)';
  return [
    `${who}: ${credits.balance} of ${credits.quota} credits left, ${credits.usedToday} used today${low}`,
    refill ? `Refill: to ${refill.amount} ${every}, next at ${credits.nextRefillAt}` : 'Refill: none',
  ].join('\n');
}

/** The body of a --set: balance, refill and low threshold (a set replaces all three). @param {CliValues} v */
function creditsSetting(v) {
  const amount = integer(/** @type {string | undefined} */ (v['refill-amount']), '--refill-amount');
  const interval = v['refill-interval'];
  const dayOfMonth = integer(/** @type {string | undefined} */ (v['refill-day']), '--refill-day');
  if ((amount === undefined) !== (interval === undefined)) throw new UsageError('--refill-amount and --refill-interval go together');
  if (interval !== undefined && interval !== 'day' && interval !== 'month') throw new UsageError(`--refill-interval must be day or month, got "${interval}"`);
  if (dayOfMonth !== undefined && interval !== 'month') throw new UsageError('--refill-day is for --refill-interval month');
  return compact({
    balance: integer(/** @type {string | undefined} */ (v.set), '--set'),
    refill: amount === undefined ? undefined : compact({ amount, interval, dayOfMonth }),
    lowThreshold: integer(/** @type {string | undefined} */ (v.low), '--low'),
  });
}

/**
 * keys credits / users credits: show, or one change (--set, --top-up, --remove).
 * @param {'keys' | 'users'} resource @param {string | undefined} id @param {CliValues} v
 * @returns {Plan}
 */
function creditsPlan(resource, id, v) {
  const noun = resource === 'users' ? 'user' : 'key';
  if (!id) throw new UsageError(`${resource} credits needs a ${noun} id`);
  const path = resource === 'users' ? `/api/v1/admin/users/${encodeURIComponent(id)}/credits` : `/api/v1/keys/${encodeURIComponent(id)}/credits`;
  const changes = ['set', 'top-up', 'remove'].filter((flag) => v[flag] !== undefined);
  if (changes.length > 1) throw new UsageError(`give one of --set, --top-up and --remove, not ${changes.map((flag) => `--${flag}`).join(' and ')}`);
  const settings = ['refill-amount', 'refill-interval', 'refill-day', 'low'].filter((flag) => v[flag] !== undefined);
  if (settings.length > 0 && changes[0] !== 'set') throw new UsageError(`${settings.map((flag) => `--${flag}`).join(', ')} only go with --set`);
  const who = `${noun === 'user' ? 'User' : 'Key'} ${id}`;
  /** @param {Record<string, any>} a */
  const print = (a) => creditsText(who, a.credits);
  switch (changes[0]) {
    case 'set':
      return { method: 'PUT', path, body: creditsSetting(v), print };
    case 'top-up':
      return { method: 'POST', path: `${path}/top-up`, body: { amount: integer(/** @type {string | undefined} */ (v['top-up']), '--top-up') }, print };
    case 'remove':
      return { method: 'DELETE', path, print: () => `${who}: credit balance removed; only rate limits apply` };
    default:
      return { method: 'GET', path, print };
  }
}

// ---- webhooks: the admin webhook-endpoints API (/api/v1/admin/webhooks, src/routes/admin-webhooks.ts) ----

const WEBHOOKS_PATH = '/api/v1/admin/webhooks';

/** The path of one endpoint, or the usage mistake of naming none. @param {string} command @param {string | undefined} id */
function webhookPath(command, id) {
  if (!id) throw new UsageError(`${command} needs a webhook endpoint id`);
  return `${WEBHOOKS_PATH}/${encodeURIComponent(id)}`;
}

/** Endpoints as a table (never with a secret: the gateway lists none). @param {Record<string, any>[]} endpoints */
function webhooksTable(endpoints) {
  return table(
    endpoints.map((endpoint) => ({ ...endpoint, status: endpoint.enabled ? 'enabled' : 'disabled' })),
    [
      ['id', 'ID'],
      ['url', 'URL'],
      ['events', 'EVENTS'],
      ['status', 'STATUS'],
      ['description', 'DESCRIPTION'],
      ['createdAt', 'CREATED'],
    ],
  );
}

/** A signing secret as create and rotate-secret print it: on the last line, said to be shown this once. @param {string} secret */
const webhookSecretText = (secret) => `Signing secret (shown only now, keygate cannot show it again; store it now):\n${secret}`;

/** The body of webhooks update: only what was given ('' for --description clears it). @param {CliValues} v */
function webhookChanges(v) {
  if (v.enable && v.disable) throw new UsageError('give --enable or --disable, not both');
  const body = compact({
    url: v.url,
    description: v.description === '' ? null : v.description,
    events: list(/** @type {string | undefined} */ (v.events)),
    enabled: v.enable ? true : v.disable ? false : undefined,
  });
  if (Object.keys(body).length === 0) throw new UsageError('webhooks update needs --url, --description, --events, --enable or --disable');
  return body;
}

/**
 * What each command sends, and how its answer is printed.
 * @typedef {{ method: string, path: string, body?: Record<string, unknown>, list?: ListPage, print: (answer: Record<string, any>) => string }} Plan
 * @param {string[]} positionals @param {CliValues} v
 * @returns {Plan}
 */
export function plan(positionals, v) {
  const [resource, action, id] = positionals;
  const command = [resource, action].filter(Boolean).join(' ');
  const needId = () => {
    if (!id) throw new UsageError(`${command} needs ${resource === 'service-tokens' ? 'a service token' : 'a key'} id`);
    return encodeURIComponent(id);
  };
  switch (command) {
    case 'keys list':
      return listPlan(command, '/api/v1/keys', 'keys', v, (rows) => table(keyRows(rows), KEY_COLUMNS));
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
          rateLimitMode: rateLimitMode(v, { forKey: true }),
        }),
        print: (a) => `${table(keyRows([a]), KEY_COLUMNS)}\n\nKey (shown once, store it now):\n${a.key}`,
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
    case 'keys credits':
    case 'users credits':
      return creditsPlan(resource === 'users' ? 'users' : 'keys', id, v);
    case 'products list':
      return listPlan(command, '/api/v1/admin/products', 'products', v, (rows) =>
        table(rows, [
          ['slug', 'SLUG'],
          ['name', 'NAME'],
          ['pathPrefix', 'PREFIX'],
          ['originUrl', 'ORIGIN'],
          ['authMethods', 'AUTH'],
          ['errorFormat', 'ERRORS'],
          ['rateLimitPerMinute', 'PER MIN'],
          ['rateLimitPerDay', 'PER DAY'],
          ['rateLimitMode', 'MODE'],
        ]),
      );
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
          corsOrigins: list(/** @type {string | undefined} */ (v.cors)),
          costRules: Array.isArray(v['cost-rule']) ? v['cost-rule'].map(costRule) : undefined,
          usageHeader: v['usage-header'],
          usageReserve: integer(/** @type {string | undefined} */ (v['usage-reserve']), '--usage-reserve'),
          rateLimitMode: rateLimitMode(v, { forKey: false }),
        }),
        print: (a) => {
          const created = `Created product ${a.slug} (${a.id}) at ${a.pathPrefix} -> ${a.originUrl}\n${productLimitsText(a)}`;
          const costs = a.costRules?.length ? `cost rules ${a.costRules.map(costRuleText).join(', ')}` : null;
          const metered = a.usageHeader ? `usage header ${a.usageHeader} (reserve ${a.usageReserve})` : null;
          const credits = [costs, metered].filter(Boolean).join('; ');
          return credits ? `${created}\nCredits: ${credits}` : created;
        },
      };
    case 'users list':
      return listPlan(command, '/api/v1/admin/users', 'users', v, (rows) =>
        table(rows, [
          ['id', 'ID'],
          ['email', 'EMAIL'],
          ['role', 'ROLE'],
          ['products', 'PRODUCTS'],
          ['scopes', 'SCOPES'],
          ['createdAt', 'CREATED'],
        ]),
      );
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
    case 'users set-limits': {
      const body = compact({
        rateLimitPerMinute: limitOrNone(/** @type {string | undefined} */ (v['per-minute']), '--per-minute'),
        rateLimitPerDay: limitOrNone(/** @type {string | undefined} */ (v['per-day']), '--per-day'),
        maxActiveKeys: limitOrNone(/** @type {string | undefined} */ (v['max-keys']), '--max-keys'),
      });
      if (Object.keys(body).length === 0) throw new UsageError('users set-limits needs --per-minute, --per-day or --max-keys');
      return {
        method: 'PATCH',
        path: `/api/v1/admin/users/${needId()}`,
        body,
        print: (a) =>
          `Limits of ${a.email}: per minute ${a.rateLimitPerMinute ?? 'none'}, per day ${a.rateLimitPerDay ?? 'none'}, active keys ${a.maxActiveKeys ?? 'any'}`,
      };
    }
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
    case 'service-tokens list':
      return {
        method: 'GET',
        path: '/api/v1/admin/service-tokens',
        print: (a) =>
          table(a.tokens, [
            ['id', 'ID'],
            ['name', 'NAME'],
            ['prefix', 'PREFIX'],
            ['createdAt', 'CREATED'],
            ['revokedAt', 'REVOKED'],
          ]),
      };
    case 'service-tokens create':
      return {
        method: 'POST',
        path: '/api/v1/admin/service-tokens',
        body: { name: required(v, 'name') },
        print: (a) => `Created service credential ${a.name} (${a.id})\n\nToken (shown once, store it now):\n${a.token}`,
      };
    case 'service-tokens revoke':
      return { method: 'DELETE', path: `/api/v1/admin/service-tokens/${needId()}`, print: (a) => `Revoked service credential ${a.id}` };
    case 'webhooks list':
      return { method: 'GET', path: WEBHOOKS_PATH, print: (a) => webhooksTable(a.endpoints) };
    case 'webhooks create':
      return {
        method: 'POST',
        path: WEBHOOKS_PATH,
        body: compact({
          url: required(v, 'url'),
          description: v.description === '' ? undefined : v.description,
          events: list(/** @type {string | undefined} */ (v.events)),
        }),
        print: (a) => `Created webhook endpoint ${a.id} -> ${a.url} (events ${a.events.join(',')})\n\n${webhookSecretText(a.secret)}`,
      };
    case 'webhooks show':
      return { method: 'GET', path: webhookPath(command, id), print: (a) => webhooksTable([a]) };
    case 'webhooks update':
      return {
        method: 'PATCH',
        path: webhookPath(command, id),
        body: webhookChanges(v),
        print: (a) => `Updated webhook endpoint ${a.id}\n\n${webhooksTable([a])}`,
      };
    case 'webhooks rotate-secret':
      return {
        method: 'POST',
        path: `${webhookPath(command, id)}/rotate-secret`,
        print: (a) =>
          `Rotated the signing secret of webhook endpoint ${a.id}: deliveries are signed with the new one from now on, ` +
          `and the old one no longer verifies (update the receiver now)\n\n${webhookSecretText(a.secret)}`,
      };
    case 'webhooks delete':
      return { method: 'DELETE', path: webhookPath(command, id), print: (a) => `Deleted webhook endpoint ${a.id}` };
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
  'max-keys': { type: 'string' },
  ip: { type: 'string' },
  grace: { type: 'string' },
  slug: { type: 'string' },
  prefix: { type: 'string' },
  origin: { type: 'string' },
  'test-origin': { type: 'string' },
  'strip-prefix': { type: 'boolean' },
  auth: { type: 'string' },
  'error-format': { type: 'string' },
  cors: { type: 'string' },
  email: { type: 'string' },
  password: { type: 'string' },
  role: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
  cursor: { type: 'string' },
  limit: { type: 'string' },
  all: { type: 'boolean' },
  set: { type: 'string' },
  'top-up': { type: 'string' },
  remove: { type: 'boolean' },
  'refill-amount': { type: 'string' },
  'refill-interval': { type: 'string' },
  'refill-day': { type: 'string' },
  low: { type: 'string' },
  'cost-rule': { type: 'string', multiple: true },
  'usage-header': { type: 'string' },
  'usage-reserve': { type: 'string' },
  'rate-limit-mode': { type: 'string' },
  url: { type: 'string' },
  description: { type: 'string' },
  events: { type: 'string' },
  enable: { type: 'boolean' },
  disable: { type: 'boolean' },
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
    const answer = step.list && values.all ? await requestAllPages(target, step.list) : await request(target, step.method, step.path, step.body);
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
