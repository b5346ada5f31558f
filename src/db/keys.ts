import type { KeyEnv, KeyFormatName } from "../auth/key-format";
import { parseJsonList } from "./json";
import { pageQuery, readPage, type Condition, type Page, type SqlQuery } from "./page";

export type KeyStatus = "active" | "inactive" | "revoked";

/** How a key's calls are counted (src/limits/lease.ts): every call at its object, or from calls granted to isolates in advance. */
export type RateLimitMode = "exact" | "leased";

/** An api_keys row, in camelCase with its lists parsed. Never holds the plaintext. */
export interface KeyRecord {
  id: string;
  prefix: string;
  hash: string;
  format: KeyFormatName;
  env: KeyEnv | null;
  name: string;
  ownerId: string | null;
  status: KeyStatus;
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  rateLimitPerMinute: number | null;
  rateLimitPerDay: number | null;
  ipAllowlist: string[];
  products: string[];
  scopes: string[];
  rotatedTo: string | null;
  graceUntil: string | null;
  /** Moves with every keys-API write to the row: the key's ETag, and the version a PATCH is conditioned on. */
  version: number;
  /**
   * Who last set the status and the expiry ("admin_token", "user:<id>"); null = not known.
   * Anyone but the owner is an admin, and their decision binds the owner (auth/key-permissions.ts).
   */
  statusSetBy: string | null;
  expiresSetBy: string | null;
  /** The first key of this key's rotation chain: its counters and usage are the lineage's (limiter object key:<lineageId>). */
  lineageId: string;
  /** null: the product's mode. */
  rateLimitMode: RateLimitMode | null;
}

interface KeyRow {
  id: string;
  prefix: string;
  hash: string;
  format: KeyFormatName;
  env: KeyEnv | null;
  name: string;
  owner_id: string | null;
  status: KeyStatus;
  created_at: string;
  updated_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  rate_limit_per_minute: number | null;
  rate_limit_per_day: number | null;
  ip_allowlist: string;
  products: string;
  scopes: string;
  rotated_to: string | null;
  grace_until: string | null;
  version: number;
  status_set_by: string | null;
  expires_set_by: string | null;
  lineage_id: string | null;
  rate_limit_mode: RateLimitMode | null;
}

export function rowToKey(row: KeyRow): KeyRecord {
  return {
    id: row.id,
    prefix: row.prefix,
    hash: row.hash,
    format: row.format,
    env: row.env,
    name: row.name,
    ownerId: row.owner_id,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastUsedAt: row.last_used_at,
    expiresAt: row.expires_at,
    rateLimitPerMinute: row.rate_limit_per_minute,
    rateLimitPerDay: row.rate_limit_per_day,
    ipAllowlist: parseJsonList(row.ip_allowlist),
    products: parseJsonList(row.products),
    scopes: parseJsonList(row.scopes),
    rotatedTo: row.rotated_to,
    graceUntil: row.grace_until,
    version: row.version,
    statusSetBy: row.status_set_by,
    expiresSetBy: row.expires_set_by,
    // Migration 0004 fills every row; a row written by hand without one is its own lineage.
    lineageId: row.lineage_id ?? row.id,
    rateLimitMode: row.rate_limit_mode ?? null,
  };
}

/** A key row as the gateway verifies it, with where its calls count: in its owner's object when the owner has owner-level limits. */
export interface VerifiableKey extends KeyRecord {
  ownerLimited: boolean;
}

/** The verification lookup; served by the api_keys_prefix index (and the users primary key for the owner). */
export async function findKeysByPrefix(db: D1Database, prefix: string): Promise<VerifiableKey[]> {
  const { results } = await db
    .prepare(
      `SELECT api_keys.*, (users.rate_limit_per_minute IS NOT NULL OR users.rate_limit_per_day IS NOT NULL) AS owner_limited
       FROM api_keys LEFT JOIN users ON users.id = api_keys.owner_id WHERE api_keys.prefix = ?`,
    )
    .bind(prefix)
    .all<KeyRow & { owner_limited: number | null }>();
  return results.map((row) => ({ ...rowToKey(row), ownerLimited: row.owner_limited === 1 }));
}

export async function getKey(db: D1Database, id: string): Promise<KeyRecord | undefined> {
  const row = await db.prepare("SELECT * FROM api_keys WHERE id = ?").bind(id).first<KeyRow>();
  return row ? rowToKey(row) : undefined;
}

export async function listKeys(db: D1Database, ownerId?: string): Promise<KeyRecord[]> {
  const statement =
    ownerId === undefined
      ? db.prepare("SELECT * FROM api_keys ORDER BY created_at DESC")
      : db.prepare("SELECT * FROM api_keys WHERE owner_id = ? ORDER BY created_at DESC").bind(ownerId);
  const { results } = await statement.all<KeyRow>();
  return results.map(rowToKey);
}

export interface KeyPageQuery {
  /** Only this owner's keys (a user's own list); all keys when absent (an admin's). */
  ownerId?: string | undefined;
  /** The sort key (createdAt, id) of the last key of the previous page. */
  after?: KeyPosition | undefined;
  limit: number;
}

/**
 * GET /api/v1/keys: newest first, the id breaking ties. Served by
 * api_keys_created (all keys) or api_keys_owner (one owner's), as one range.
 */
export function keyPageQuery(query: KeyPageQuery): SqlQuery {
  const conditions: Condition[] = [];
  if (query.ownerId !== undefined) conditions.push({ sql: "owner_id = ?", params: [query.ownerId] });
  if (query.after) conditions.push({ sql: "(created_at, id) < (?, ?)", params: [...query.after] });
  return pageQuery("api_keys", conditions, "created_at DESC, id DESC", query.limit);
}

export type KeyPosition = readonly [createdAt: string, id: string];

export function listKeyPage(db: D1Database, query: KeyPageQuery): Promise<Page<KeyRecord, KeyPosition>> {
  return readPage(db, keyPageQuery(query), query.limit, rowToKey, (row: KeyRow) => [row.created_at, row.id] as const);
}

/** Every column of a new row, and its values in the same order (a PATCH writes only what it names: KeyChanges). */
const INSERT_COLUMNS =
  "id, prefix, hash, format, env, created_at, last_used_at, rotated_to, grace_until, lineage_id, version, status_set_by, expires_set_by, " +
  "name, owner_id, status, updated_at, expires_at, rate_limit_per_minute, rate_limit_per_day, ip_allowlist, products, scopes, rate_limit_mode";

function insertValues(key: KeyRecord): (string | number | null)[] {
  return [
    key.id,
    key.prefix,
    key.hash,
    key.format,
    key.env,
    key.createdAt,
    key.lastUsedAt,
    key.rotatedTo,
    key.graceUntil,
    key.lineageId,
    key.version,
    key.statusSetBy,
    key.expiresSetBy,
    key.name,
    key.ownerId,
    key.status,
    key.updatedAt,
    key.expiresAt,
    key.rateLimitPerMinute,
    key.rateLimitPerDay,
    JSON.stringify(key.ipAllowlist),
    JSON.stringify(key.products),
    JSON.stringify(key.scopes),
    key.rateLimitMode,
  ];
}

export function insertKeyStatement(db: D1Database, key: KeyRecord): D1PreparedStatement {
  const values = insertValues(key);
  return db.prepare(`INSERT INTO api_keys (${INSERT_COLUMNS}) VALUES (${values.map(() => "?").join(", ")})`).bind(...values);
}

/**
 * A new key for an owner, inserted only while the owner holds fewer live keys
 * (neither revoked nor replaced by a rotation) than their maxActiveKeys: the
 * count and the insert are one statement, so concurrent creates cannot both
 * take the last place. Inserts nothing (changes() = 0) at the cap.
 */
export function insertKeyWithinOwnerCapStatement(db: D1Database, key: KeyRecord & { ownerId: string }): D1PreparedStatement {
  const values = insertValues(key);
  return db
    .prepare(
      `INSERT INTO api_keys (${INSERT_COLUMNS}) SELECT ${values.map(() => "?").join(", ")}
       WHERE NOT EXISTS (
         SELECT 1 FROM users WHERE id = ? AND max_active_keys IS NOT NULL
           AND max_active_keys <= (SELECT count(*) FROM api_keys WHERE owner_id = ? AND status != 'revoked' AND rotated_to IS NULL)
       )`,
    )
    .bind(...values, key.ownerId, key.ownerId);
}

// ---- Keys API writes. Revocation is final: no statement here touches a revoked row. ----

/** What a PATCH writes: only the fields it names (null clears), and who set the status and the expiry. */
export interface KeyChanges {
  name?: string | undefined;
  ownerId?: string | undefined;
  status?: "active" | "inactive" | undefined;
  expiresAt?: string | null | undefined;
  rateLimitPerMinute?: number | null | undefined;
  rateLimitPerDay?: number | null | undefined;
  ipAllowlist?: readonly string[] | undefined;
  products?: readonly string[] | undefined;
  scopes?: readonly string[] | undefined;
  rateLimitMode?: RateLimitMode | null | undefined;
  statusSetBy?: string | undefined;
  expiresSetBy?: string | undefined;
}

/** Each editable field's column; lists are stored as JSON. Only these names ever reach the SQL text. */
const CHANGE_COLUMNS: Record<keyof KeyChanges, { column: string; json?: true }> = {
  name: { column: "name" },
  ownerId: { column: "owner_id" },
  status: { column: "status" },
  expiresAt: { column: "expires_at" },
  rateLimitPerMinute: { column: "rate_limit_per_minute" },
  rateLimitPerDay: { column: "rate_limit_per_day" },
  ipAllowlist: { column: "ip_allowlist", json: true },
  products: { column: "products", json: true },
  scopes: { column: "scopes", json: true },
  rateLimitMode: { column: "rate_limit_mode" },
  statusSetBy: { column: "status_set_by" },
  expiresSetBy: { column: "expires_set_by" },
};

/**
 * A PATCH: writes the columns `changes` names and nothing else, moves the
 * version, and only while the row is still at `expectedVersion` (the version
 * the caller read and judged) and not revoked. RETURNING gives the row as
 * written (writtenKey); no row means the write lost a race and changed nothing.
 */
export function updateKeyStatement(db: D1Database, id: string, expectedVersion: number, changes: KeyChanges, updatedAt: string): D1PreparedStatement {
  const named = (Object.keys(CHANGE_COLUMNS) as (keyof KeyChanges)[]).filter((field) => changes[field] !== undefined);
  const assignments = named.map((field) => `${CHANGE_COLUMNS[field].column} = ?`);
  const values = named.map((field) => (CHANGE_COLUMNS[field].json ? JSON.stringify(changes[field]) : (changes[field] as string | number | null)));
  return db
    .prepare(
      `UPDATE api_keys SET ${[...assignments, "updated_at = ?", "version = version + 1"].join(", ")}
       WHERE id = ? AND version = ? AND status != 'revoked' RETURNING *`,
    )
    .bind(...values, updatedAt, id, expectedVersion);
}

/** The row an `UPDATE … RETURNING *` wrote, or undefined when it matched none. */
export function writtenKey(result: D1Result): KeyRecord | undefined {
  const row = (result.results as KeyRow[] | undefined)?.[0];
  return row ? rowToKey(row) : undefined;
}

export interface RevokeOptions {
  /** Only while the row is at this version (a DELETE with If-Match). */
  expectedVersion?: number | undefined;
  /** Recorded as who set the status. */
  actor?: string | undefined;
}

/** Revokes a key that is not yet revoked, moving its version; RETURNING gives the row as written (writtenKey). */
export function revokeKeyStatement(db: D1Database, id: string, updatedAt: string, options: RevokeOptions = {}): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE api_keys SET status = 'revoked', status_set_by = coalesce(?3, status_set_by), updated_at = ?1, version = version + 1
       WHERE id = ?2 AND status != 'revoked' AND (?4 IS NULL OR version = ?4) RETURNING *`,
    )
    .bind(updatedAt, id, options.actor ?? null, options.expectedVersion ?? null);
}

/**
 * Points an active, not yet rotated key at its replacement; it keeps working
 * until graceUntil. Only while the row is at `expectedVersion`: the
 * replacement copies the policy read at that version, so a change made
 * meanwhile (an admin's allowlist, say) must fail the rotation, not vanish.
 */
export function markRotatedStatement(
  db: D1Database,
  id: string,
  rotatedTo: string,
  graceUntil: string,
  updatedAt: string,
  expectedVersion: number,
): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE api_keys SET rotated_to = ?, grace_until = ?, updated_at = ?, version = version + 1
       WHERE id = ? AND version = ? AND status = 'active' AND rotated_to IS NULL`,
    )
    .bind(rotatedTo, graceUntil, updatedAt, id, expectedVersion);
}

/**
 * Last in a rotation's batch: removes the replacement row again when the old
 * key was not marked as rotated to it (someone rotated or revoked it first).
 */
export function dropUnclaimedReplacementStatement(db: D1Database, oldId: string, replacementId: string): D1PreparedStatement {
  return db.prepare("DELETE FROM api_keys WHERE id = ?2 AND NOT EXISTS (SELECT 1 FROM api_keys WHERE id = ?1 AND rotated_to = ?2)").bind(oldId, replacementId);
}

/** Before a user row is deleted: their keys stay (revoked) but no longer point at them. */
export function detachOwnerStatement(db: D1Database, ownerId: string): D1PreparedStatement {
  return db.prepare("UPDATE api_keys SET owner_id = NULL, version = version + 1 WHERE owner_id = ?").bind(ownerId);
}
