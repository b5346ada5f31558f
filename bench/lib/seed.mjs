// D1 rows for the benchmark: the migrations, one product, and API keys made
// with the same generator, prefix and hash functions as scripts/ (SPEC §2).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unstable_splitSqlQuery } from 'wrangler';
import { newApiKey } from '../../scripts/lib/keys.mjs';
import { repoRoot } from '../../scripts/lib/paths.mjs';

/** @typedef {import('@cloudflare/workers-types/experimental').D1Database} D1 */

export const PRODUCT_PREFIX = '/api/bench';
/** High enough that no scenario is ever rate-limited: the bench measures the path, not the refusal. */
const UNLIMITED = 1_000_000_000;
/** D1 allows at most 100 bound parameters per statement. */
const MAX_BOUND_PARAMETERS = 100;

/** Applies migrations/*.sql in order. @param {D1} db */
export async function applyMigrations(db) {
  const dir = join(repoRoot, 'migrations');
  for (const file of readdirSync(dir)
    .filter((name) => name.endsWith('.sql'))
    .sort()) {
    const statements = unstable_splitSqlQuery(readFileSync(join(dir, file), 'utf8'));
    await db.batch(statements.map((sql) => db.prepare(sql)));
  }
}

/** The product every scenario calls, forwarding to `originUrl`. @param {D1} db @param {string} originUrl */
export async function seedProduct(db, originUrl) {
  const now = new Date().toISOString();
  await db
    .prepare(
      `INSERT INTO products (id, slug, name, path_prefix, origin_url, auth_methods, rate_limit_per_minute, rate_limit_per_day, created_at, updated_at)
       VALUES (?, 'bench', 'Benchmark', ?, ?, '["api_key","jwt"]', ?, ?, ?, ?)`,
    )
    .bind(crypto.randomUUID(), PRODUCT_PREFIX, originUrl, UNLIMITED, UNLIMITED, now, now)
    .run();
}

/**
 * `count` new ilal keys: plaintext, prefix and hash, made by scripts/lib/keys.mjs.
 * Made once and inserted into every database, so all scenarios send the same keys.
 * @param {number} count
 */
export async function makeKeys(count) {
  const keys = [];
  // In slices: tens of thousands of pending digests at once would only queue.
  for (let start = 0; start < count; start += 1000) {
    keys.push(...(await Promise.all(Array.from({ length: Math.min(1000, count - start) }, () => newApiKey('ilal', 'live')))));
  }
  return keys;
}

const KEY_COLUMNS = ['id', 'prefix', 'hash', 'format', 'env', 'name', 'created_at', 'updated_at'];

/**
 * Inserts active keys for every product (limits inherited from the product)
 * as batches of multi-row INSERTs.
 * @param {D1} db @param {Awaited<ReturnType<typeof makeKeys>>} keys
 */
export async function insertKeys(db, keys) {
  const rowsPerStatement = Math.floor(MAX_BOUND_PARAMETERS / KEY_COLUMNS.length);
  const statementsPerBatch = 50;
  const now = new Date().toISOString();
  let batch = [];
  for (let start = 0; start < keys.length; start += rowsPerStatement) {
    const rows = keys.slice(start, start + rowsPerStatement);
    const values = rows.flatMap(({ prefix, hash, format, env }, i) => [crypto.randomUUID(), prefix, hash, format, env, `bench ${start + i}`, now, now]);
    const placeholders = rows.map(() => `(${KEY_COLUMNS.map(() => '?').join(', ')})`).join(', ');
    batch.push(db.prepare(`INSERT INTO api_keys (${KEY_COLUMNS.join(', ')}) VALUES ${placeholders}`).bind(...values));
    if (batch.length === statementsPerBatch) {
      await db.batch(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await db.batch(batch);
}

/**
 * A fresh keygate or naive database: schema, the product, the keys.
 * @param {D1} db @param {string} originUrl @param {Awaited<ReturnType<typeof makeKeys>>} keys
 */
export async function seedDatabase(db, originUrl, keys) {
  await applyMigrations(db);
  await seedProduct(db, originUrl);
  await insertKeys(db, keys);
}
