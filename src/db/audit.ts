import { nowIso } from "./json";
import { pageQuery, readPage, type Condition, type Page, type SqlQuery } from "./page";

/**
 * The audit log: who did what to which key, product or user, and when.
 * Every mutation puts its audit statement in the same D1 batch as the change
 * (a batch is one transaction), so a change is never recorded without having
 * happened, nor made without being recorded.
 */
export const AUDIT_TARGET_TYPES = ["key", "product", "user", "service_token", "webhook_endpoint"] as const;
export type AuditTargetType = (typeof AUDIT_TARGET_TYPES)[number];

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

/** An audit row's columns, in the order the inserts name them. */
function auditValues(input: AuditInput, now: number): (string | null)[] {
  return [
    crypto.randomUUID(),
    nowIso(now),
    input.actor,
    input.action,
    input.targetType,
    input.targetId,
    input.details === undefined ? null : JSON.stringify(input.details),
  ];
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
    .bind(...auditValues(input, now));
}

export interface AuditPageQuery {
  targetType?: AuditTargetType | undefined;
  targetId?: string | undefined;
  /** The sort key (at, rowid) of the last entry of the previous page. */
  after?: AuditPosition | undefined;
  limit: number;
}

/**
 * GET /api/v1/admin/audit: newest first; rowid (the order entries were
 * written in) breaks ties between entries of the same millisecond, as every
 * index ends in the rowid. One range of audit_log_target (a target id, its
 * type then only filtered: `+` keeps the planner off the type's index),
 * audit_log_target_type (a type) or audit_log_at (no filter).
 */
export function auditPageQuery(query: AuditPageQuery): SqlQuery {
  const conditions: Condition[] = [];
  if (query.targetId !== undefined) {
    conditions.push({ sql: "target_id = ?", params: [query.targetId] });
    if (query.targetType !== undefined) conditions.push({ sql: "+target_type = ?", params: [query.targetType] });
  } else if (query.targetType !== undefined) {
    conditions.push({ sql: "target_type = ?", params: [query.targetType] });
  }
  if (query.after) conditions.push({ sql: "(at, rowid) < (?, ?)", params: [...query.after] });
  // The rowid is selected under its own name: `SELECT *` does not include it.
  return pageQuery("audit_log", conditions, "at DESC, rowid DESC", query.limit, "*, rowid AS row_order");
}

export type AuditPosition = readonly [at: string, rowid: number];

export function listAuditPage(db: D1Database, query: AuditPageQuery): Promise<Page<AuditEntry, AuditPosition>> {
  return readPage(
    db,
    auditPageQuery(query),
    query.limit,
    (row: AuditRow & { row_order: number }) => rowToEntry(row),
    (row) => [row.at, row.row_order] as const,
  );
}

/**
 * An audit row for a change that lives outside D1 (a credits balance, held by
 * the rate limiter's object): written after that change succeeded, on its own.
 */
export function changeOutsideD1AuditStatement(db: D1Database, input: AuditInput, now: number = Date.now()): D1PreparedStatement {
  return db
    .prepare("INSERT INTO audit_log (id, at, actor, action, target_type, target_id, details) VALUES (?, ?, ?, ?, ?, ?, ?)")
    .bind(...auditValues(input, now));
}
