/**
 * Service credentials (migration 0007): who may call POST /api/v1/keys/verify.
 * The row holds the token's SHA-256 and its public prefix, never the token.
 */
export interface ServiceTokenRecord {
  id: string;
  name: string;
  prefix: string;
  hash: string;
  createdAt: string;
  createdBy: string;
  revokedAt: string | null;
}

interface ServiceTokenRow {
  id: string;
  name: string;
  prefix: string;
  hash: string;
  created_at: string;
  created_by: string;
  revoked_at: string | null;
}

function rowToServiceToken(row: ServiceTokenRow): ServiceTokenRecord {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    hash: row.hash,
    createdAt: row.created_at,
    createdBy: row.created_by,
    revokedAt: row.revoked_at,
  };
}

export function insertServiceTokenStatement(db: D1Database, token: ServiceTokenRecord): D1PreparedStatement {
  return db
    .prepare("INSERT INTO service_tokens (id, name, prefix, hash, created_at, created_by, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
    .bind(token.id, token.name, token.prefix, token.hash, token.createdAt, token.createdBy, token.revokedAt);
}

/** Revokes a working token; a revoked one is left as it is (changes() = 0, so its audit row is skipped). */
export function revokeServiceTokenStatement(db: D1Database, id: string, at: string): D1PreparedStatement {
  return db.prepare("UPDATE service_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").bind(at, id);
}

export async function getServiceToken(db: D1Database, id: string): Promise<ServiceTokenRecord | undefined> {
  const row = await db.prepare("SELECT * FROM service_tokens WHERE id = ?").bind(id).first<ServiceTokenRow>();
  return row ? rowToServiceToken(row) : undefined;
}

export async function findServiceTokenByPrefix(db: D1Database, prefix: string): Promise<ServiceTokenRecord | undefined> {
  const row = await db.prepare("SELECT * FROM service_tokens WHERE prefix = ?").bind(prefix).first<ServiceTokenRow>();
  return row ? rowToServiceToken(row) : undefined;
}

/** Every service token, oldest first: an account has a handful, so the list is not paged. */
export async function listServiceTokens(db: D1Database): Promise<ServiceTokenRecord[]> {
  const { results } = await db.prepare("SELECT * FROM service_tokens ORDER BY created_at, id").all<ServiceTokenRow>();
  return results.map(rowToServiceToken);
}
