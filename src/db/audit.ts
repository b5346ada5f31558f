import { nowIso } from "./json";

/**
 * The audit log: who did what to which key, product or user, and when.
 * Every mutation puts its audit statement in the same D1 batch as the change
 * (a batch is one transaction), so a change is never recorded without having
 * happened, nor made without being recorded.
 */
export type AuditTargetType = "key" | "product" | "user";

export interface AuditEntry {
  id: string;
  at: string;
  /** "admin_token" or "user:<id>". */
  actor: string;
  action: string;
  targetType: AuditTargetType;
  targetId: string;
  /** The changed fields. Never a secret: no password, hash or plaintext key. */
  details: Record<string, unknown> | null;
}

export interface AuditInput {
  actor: string;
  action: string;
  targetType: AuditTargetType;
  targetId: string;
  details?: Record<string, unknown>;
}

interface AuditRow {
  id: string;
  at: string;
  actor: string;
  action: string;
  target_type: AuditTargetType;
  target_id: string;
  details: string | null;
}

function rowToEntry(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    at: row.at,
    actor: row.actor,
    action: row.action,
    targetType: row.target_type,
    targetId: row.target_id,
    details: row.details === null ? null : (JSON.parse(row.details) as Record<string, unknown>),
  };
}

/**
 * The audit row for the statement just before it in the same batch. It is
 * written only when that statement changed a row (SQLite's changes()), so a
 * guarded update that matched nothing — e.g. a key revoked meanwhile —
 * leaves no record of a change that did not happen.
 */
export function auditStatement(db: D1Database, input: AuditInput, now: number = Date.now()): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO audit_log (id, at, actor, action, target_type, target_id, details)
       SELECT ?, ?, ?, ?, ?, ?, ? WHERE changes() > 0`,
    )
    .bind(
      crypto.randomUUID(),
      nowIso(now),
      input.actor,
      input.action,
      input.targetType,
      input.targetId,
      input.details === undefined ? null : JSON.stringify(input.details),
    );
}

export interface AuditQuery {
  limit: number;
  targetType?: AuditTargetType | undefined;
  targetId?: string | undefined;
}

/** Newest first; rowid breaks ties between entries of the same millisecond. Served by audit_log_at. */
export async function listAudit(db: D1Database, query: AuditQuery): Promise<AuditEntry[]> {
  const { results } = await db
    .prepare(
      `SELECT * FROM audit_log
       WHERE (?1 IS NULL OR target_type = ?1) AND (?2 IS NULL OR target_id = ?2)
       ORDER BY at DESC, rowid DESC LIMIT ?3`,
    )
    .bind(query.targetType ?? null, query.targetId ?? null, query.limit)
    .all<AuditRow>();
  return results.map(rowToEntry);
}
