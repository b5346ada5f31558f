import type { KeyEnv, KeyFormatName } from "../auth/key-format";
import { parseJsonList } from "./json";

export type KeyStatus = "active" | "inactive" | "revoked";

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
  };
}

/** The verification lookup; served by the api_keys_prefix index. */
export async function findKeysByPrefix(db: D1Database, prefix: string): Promise<KeyRecord[]> {
  const { results } = await db.prepare("SELECT * FROM api_keys WHERE prefix = ?").bind(prefix).all<KeyRow>();
  return results.map(rowToKey);
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

/** The columns an edit may change, as SQL values, in one order for INSERT and UPDATE. */
const EDITABLE_COLUMNS =
  "name, owner_id, status, updated_at, expires_at, rate_limit_per_minute, rate_limit_per_day, ip_allowlist, products, scopes";

function editableValues(key: KeyRecord): (string | number | null)[] {
  return [
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
  ];
}

export function insertKeyStatement(db: D1Database, key: KeyRecord): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO api_keys (id, prefix, hash, format, env, created_at, last_used_at, rotated_to, grace_until, ${EDITABLE_COLUMNS})
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(key.id, key.prefix, key.hash, key.format, key.env, key.createdAt, key.lastUsedAt, key.rotatedTo, key.graceUntil, ...editableValues(key));
}

// ---- Keys API writes. Revocation is final: no statement here touches a revoked row. ----

/** The editable fields of a key (name, owner, policy, status); a revoked row is left alone. */
export function updateKeyStatement(db: D1Database, key: KeyRecord): D1PreparedStatement {
  const assignments = EDITABLE_COLUMNS.split(", ")
    .map((column) => `${column} = ?`)
    .join(", ");
  return db
    .prepare(`UPDATE api_keys SET ${assignments} WHERE id = ? AND status != 'revoked'`)
    .bind(...editableValues(key), key.id);
}

export function revokeKeyStatement(db: D1Database, id: string, updatedAt: string): D1PreparedStatement {
  return db
    .prepare("UPDATE api_keys SET status = 'revoked', updated_at = ? WHERE id = ? AND status != 'revoked'")
    .bind(updatedAt, id);
}

/** Points an active, not yet rotated key at its replacement; it keeps working until graceUntil. */
export function markRotatedStatement(
  db: D1Database,
  id: string,
  rotatedTo: string,
  graceUntil: string,
  updatedAt: string,
): D1PreparedStatement {
  return db
    .prepare(
      "UPDATE api_keys SET rotated_to = ?, grace_until = ?, updated_at = ? WHERE id = ? AND status = 'active' AND rotated_to IS NULL",
    )
    .bind(rotatedTo, graceUntil, updatedAt, id);
}

/**
 * Last in a rotation's batch: removes the replacement row again when the old
 * key was not marked as rotated to it (someone rotated or revoked it first).
 */
export function dropUnclaimedReplacementStatement(db: D1Database, oldId: string, replacementId: string): D1PreparedStatement {
  return db
    .prepare("DELETE FROM api_keys WHERE id = ?2 AND NOT EXISTS (SELECT 1 FROM api_keys WHERE id = ?1 AND rotated_to = ?2)")
    .bind(oldId, replacementId);
}

/** Before a user row is deleted: their keys stay (revoked) but no longer point at them. */
export function detachOwnerStatement(db: D1Database, ownerId: string): D1PreparedStatement {
  return db.prepare("UPDATE api_keys SET owner_id = NULL WHERE owner_id = ?").bind(ownerId);
}
