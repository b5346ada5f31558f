// Demo data for local development: two users, two products, three API keys.
// Seeded by script (never by migration) so production databases stay empty.
//
//   node scripts/seed.mjs [--origin URL] [--persist-to DIR]
//
// applies migrations to the local D1 database, then (re)writes the demo rows and prints the
// plaintext demo keys. Defaults: --origin http://127.0.0.1:$DEMO_ORIGIN_PORT (8788),
// --persist-to $KEYGATE_PERSIST_DIR (else wrangler's default .wrangler/state).
//
// Re-running is safe: users are upserted by email (their id, and keys they made, survive),
// the two demo products are replaced, and the three demo keys are replaced by fresh ones, because
// only their hashes are stored and a key we cannot print again is no use to a demo.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DEMO_ORIGIN_PORT } from './demo-origin.mjs';
import { newApiKey } from './lib/keys.mjs';
import { hashPassword } from './lib/passwords.mjs';
import { isMainModule } from './lib/paths.mjs';
import { executeLocalD1File, migrateLocalD1 } from './lib/wrangler.mjs';

export const DEMO_ADMIN = { email: 'admin@keygate.local', password: 'keygate-admin', role: 'admin' };
export const DEMO_USER = { email: 'user@keygate.local', password: 'keygate-user', role: 'user' };

/** The products, pointing at `originUrl` (the demo origin, or a test's recording origin). @param {string} originUrl */
export function demoProducts(originUrl) {
  const base = originUrl.replace(/\/+$/, '');
  return [
    {
      slug: 'summarize',
      name: 'Summarize (ila)',
      path_prefix: '/api/summarize',
      origin_url: base,
      test_origin_url: null,
      strip_prefix: 0,
      error_format: 'compact',
      scope_rules: [],
    },
    {
      slug: 'defi',
      name: 'ILAL DeFi API',
      path_prefix: '/api/v1/defi',
      origin_url: base,
      test_origin_url: `${base}/sandbox`, // ilal_test_ keys land here
      strip_prefix: 0,
      error_format: 'detailed',
      scope_rules: [{ method: 'POST', path: '/swap', scope: 'defi:swap' }],
    },
  ];
}

/** The keys, all owned by the demo user. `name` identifies them when re-seeding. */
export const DEMO_KEYS = [
  { slot: 'ilalLive', name: 'Demo DeFi live key', format: 'ilal', env: 'live', products: ['defi'], scopes: ['defi:*'] },
  // Read-only on purpose: POST /api/v1/defi/swap needs defi:swap, so it shows API_KEY_SCOPE_MISSING.
  { slot: 'ilalTest', name: 'Demo DeFi test key (read-only)', format: 'ilal', env: 'test', products: ['defi'], scopes: ['defi:read'] },
  { slot: 'ila', name: 'Demo Summarize key', format: 'ila', env: undefined, products: ['summarize'], scopes: ['*'] },
];

/** A SQL expression to embed as-is (e.g. a subquery), as opposed to a value to quote. */
class RawSql {
  /** @param {string} text */
  constructor(text) {
    this.text = text;
  }
}

/** A SQL literal: NULL, a number, or a single-quoted string with quotes doubled. @param {unknown} value @returns {string} */
export function sqlValue(value) {
  if (value instanceof RawSql) return value.text;
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'object') value = JSON.stringify(value); // the JSON-text list columns
  return `'${String(value).replace(/'/g, "''")}'`;
}

/** @param {string} table @param {Record<string, unknown>} row @param {string} [suffix] */
function insert(table, row, suffix = '') {
  const columns = Object.keys(row);
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((c) => sqlValue(row[c])).join(', ')})${suffix};`;
}

const ownerIdSql = `(SELECT id FROM users WHERE email = ${sqlValue(DEMO_USER.email)})`;

/** @param {string} now ISO time */
async function userStatements(now) {
  const statements = [];
  for (const user of [DEMO_ADMIN, DEMO_USER]) {
    const row = {
      id: crypto.randomUUID(), // used only when the user does not exist yet
      email: user.email,
      password_hash: await hashPassword(user.password),
      role: user.role,
      products: ['*'],
      scopes: ['*'],
      created_at: now,
      updated_at: now,
    };
    // Upsert: the demo password and role come back, the id (and the user's own keys) stay.
    statements.push(
      insert(
        'users',
        row,
        ' ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role,' +
          ' products = excluded.products, scopes = excluded.scopes, updated_at = excluded.updated_at',
      ),
    );
  }
  return statements;
}

/** @param {string} originUrl @param {string} now */
function productStatements(originUrl, now) {
  const products = demoProducts(originUrl);
  const slugs = products.map((p) => sqlValue(p.slug)).join(', ');
  const prefixes = products.map((p) => sqlValue(p.path_prefix)).join(', ');
  return [
    // Nothing references products by id, so replacing them is safe; matching on path_prefix
    // too clears a product someone created on a demo prefix (path_prefix is unique).
    `DELETE FROM products WHERE slug IN (${slugs}) OR path_prefix IN (${prefixes});`,
    ...products.map((p) =>
      insert('products', {
        id: crypto.randomUUID(),
        ...p,
        auth_methods: ['api_key', 'jwt'],
        inject_auth_method: 1,
        created_at: now,
        updated_at: now,
      }),
    ),
  ];
}

/** @param {string} now */
async function keyStatements(now) {
  const names = DEMO_KEYS.map((k) => sqlValue(k.name)).join(', ');
  const previous = `SELECT id FROM api_keys WHERE owner_id = ${ownerIdSql} AND name IN (${names})`;
  const statements = [
    `DELETE FROM usage_daily WHERE key_id IN (${previous});`,
    // rotated_to references api_keys(id): unlink before deleting.
    `UPDATE api_keys SET rotated_to = NULL WHERE rotated_to IN (${previous});`,
    `DELETE FROM api_keys WHERE id IN (${previous});`,
  ];
  /** @type {Record<string, string>} */
  const plaintext = {};
  for (const spec of DEMO_KEYS) {
    const generated = await newApiKey(/** @type {'ilal' | 'ila'} */ (spec.format), /** @type {'live' | 'test'} */ (spec.env));
    plaintext[spec.slot] = generated.key;
    const row = {
      id: crypto.randomUUID(),
      prefix: generated.prefix,
      hash: generated.hash,
      format: generated.format,
      env: generated.env,
      name: spec.name,
      // By email: the demo user's id differs between databases.
      owner_id: new RawSql(ownerIdSql),
      status: 'active',
      created_at: now,
      updated_at: now,
      ip_allowlist: [],
      products: spec.products,
      scopes: spec.scopes,
    };
    statements.push(insert('api_keys', row));
  }
  return { statements, plaintext };
}

/**
 * @typedef {object} SeedResult
 * @property {string} sql  the statements, one per line
 * @property {{ ilalLive: string, ilalTest: string, ila: string }} keys  plaintext demo keys
 * @property {{ email: string, password: string, role: string }[]} users
 * @property {ReturnType<typeof demoProducts>} products
 */

/**
 * Build the seed SQL. Keys and password salts are fresh on every call.
 * @param {{ originUrl: string, now?: Date }} options
 * @returns {Promise<SeedResult>}
 */
export async function buildSeedSql({ originUrl, now = new Date() }) {
  const at = now.toISOString();
  const { statements: keySql, plaintext } = await keyStatements(at);
  const sql = ['-- keygate demo seed (scripts/seed.mjs). Safe to re-run.', ...(await userStatements(at)), ...productStatements(originUrl, at), ...keySql].join(
    '\n',
  );
  return {
    sql: `${sql}\n`,
    keys: /** @type {SeedResult['keys']} */ (plaintext),
    users: [DEMO_ADMIN, DEMO_USER],
    products: demoProducts(originUrl),
  };
}

/**
 * Migrate the local D1 database and write the demo rows.
 * @param {{ originUrl: string, persistTo?: string, cwd?: string }} options
 * @returns {Promise<SeedResult>}
 */
export async function seedLocalD1({ originUrl, persistTo, cwd }) {
  const seed = await buildSeedSql({ originUrl });
  await migrateLocalD1({ persistTo, cwd });
  const dir = mkdtempSync(join(tmpdir(), 'keygate-seed-'));
  try {
    const file = join(dir, 'seed.sql');
    writeFileSync(file, seed.sql, { mode: 0o600 }); // holds password hashes: keep it private, then delete
    await executeLocalD1File(file, { persistTo, cwd });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return seed;
}

if (isMainModule(import.meta.url)) {
  const { values } = parseArgs({
    options: { origin: { type: 'string' }, 'persist-to': { type: 'string' } },
  });
  const originUrl = values.origin ?? `http://127.0.0.1:${process.env.DEMO_ORIGIN_PORT ?? DEFAULT_DEMO_ORIGIN_PORT}`;
  const persistTo = values['persist-to'] ?? process.env.KEYGATE_PERSIST_DIR ?? undefined;
  seedLocalD1({ originUrl, persistTo }).then(
    (seed) => {
      console.log(`Seeded local D1 (origin ${originUrl}${persistTo ? `, state in ${persistTo}` : ''}).`);
      for (const user of seed.users) console.log(`  ${user.role.padEnd(5)} ${user.email} / ${user.password}`);
      for (const [slot, key] of Object.entries(seed.keys)) console.log(`  ${slot.padEnd(8)} ${key}`);
    },
    (error) => {
      console.error(error.message);
      process.exit(1);
    },
  );
}
