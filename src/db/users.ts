import { parseJsonList } from "./json";
import { pageQuery, readPage, type Condition, type Page, type SqlQuery } from "./page";

export type UserRole = "user" | "admin";

/** A users row, in camelCase with its lists parsed. `passwordHash` never leaves the server. */
export interface UserRecord {
  id: string;
  email: string;
  passwordHash: string;
  role: UserRole;
  products: string[];
  scopes: string[];
  createdAt: string;
  updatedAt: string;
  /** Owner-level limits, set by an admin: shared by all of the user's keys and tokens (null = none). */
  rateLimitPerMinute: number | null;
  rateLimitPerDay: number | null;
  /** How many keys the user may hold that are not revoked nor replaced by a rotation (null = any number). */
  maxActiveKeys: number | null;
}

/**
 * The version of a user's grants that their tokens carry (`gv`): the row's
 * updatedAt in epoch ms. A token older than the user's last access change is
 * refused by the user's limiter object.
 */
export function userGrantVersion(user: Pick<UserRecord, "updatedAt">): number {
  const ms = Date.parse(user.updatedAt);
  // A row written by hand with an unreadable time: version 0, as tokens from before gv existed.
  return Number.isFinite(ms) ? ms : 0;
}

interface UserRow {
  id: string;
  email: string;
  password_hash: string;
  role: UserRole;
  products: string;
  scopes: string;
  created_at: string;
  updated_at: string;
  rate_limit_per_minute: number | null;
  rate_limit_per_day: number | null;
  max_active_keys: number | null;
}

export function rowToUser(row: UserRow): UserRecord {
  return {
    id: row.id,
    email: row.email,
    passwordHash: row.password_hash,
    role: row.role,
    products: parseJsonList(row.products),
    scopes: parseJsonList(row.scopes),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    rateLimitPerMinute: row.rate_limit_per_minute ?? null,
    rateLimitPerDay: row.rate_limit_per_day ?? null,
    maxActiveKeys: row.max_active_keys ?? null,
  };
}

/** Login's lookup; case-insensitive through the column's NOCASE collation and the users_email index. */
export async function findUserByEmail(db: D1Database, email: string): Promise<UserRecord | undefined> {
  const row = await db.prepare("SELECT * FROM users WHERE email = ?").bind(email).first<UserRow>();
  return row ? rowToUser(row) : undefined;
}

export async function getUser(db: D1Database, id: string): Promise<UserRecord | undefined> {
  const row = await db.prepare("SELECT * FROM users WHERE id = ?").bind(id).first<UserRow>();
  return row ? rowToUser(row) : undefined;
}

/** The columns a user write sets besides the id, in one order for INSERT and UPDATE. */
const WRITTEN_COLUMNS = [
  "email",
  "password_hash",
  "role",
  "products",
  "scopes",
  "created_at",
  "updated_at",
  "rate_limit_per_minute",
  "rate_limit_per_day",
  "max_active_keys",
] as const;

function writtenValues(user: UserRecord): (string | number | null)[] {
  return [
    user.email,
    user.passwordHash,
    user.role,
    JSON.stringify(user.products),
    JSON.stringify(user.scopes),
    user.createdAt,
    user.updatedAt,
    user.rateLimitPerMinute,
    user.rateLimitPerDay,
    user.maxActiveKeys,
  ];
}

export function insertUserStatement(db: D1Database, user: UserRecord): D1PreparedStatement {
  return db
    .prepare(`INSERT INTO users (id, ${WRITTEN_COLUMNS.join(", ")}) VALUES (?${", ?".repeat(WRITTEN_COLUMNS.length)})`)
    .bind(user.id, ...writtenValues(user));
}

// ---- Admin users API ----

export interface UserPageQuery {
  /** The sort key (createdAt, id) of the last user of the previous page. */
  after?: UserPosition | undefined;
  limit: number;
}

/** GET /api/v1/admin/users: oldest first, the id breaking ties; one range of users_created. */
export function userPageQuery(query: UserPageQuery): SqlQuery {
  const conditions: Condition[] = query.after ? [{ sql: "(created_at, id) > (?, ?)", params: [...query.after] }] : [];
  return pageQuery("users", conditions, "created_at, id", query.limit);
}

export type UserPosition = readonly [createdAt: string, id: string];

export function listUserPage(db: D1Database, query: UserPageQuery): Promise<Page<UserRecord, UserPosition>> {
  return readPage(db, userPageQuery(query), query.limit, rowToUser, (row: UserRow) => [row.created_at, row.id] as const);
}

/** Every column of the row (created_at is never changed by the API, so writing it back is a no-op). */
export function updateUserStatement(db: D1Database, user: UserRecord): D1PreparedStatement {
  return db.prepare(`UPDATE users SET ${WRITTEN_COLUMNS.map((column) => `${column} = ?`).join(", ")} WHERE id = ?`).bind(...writtenValues(user), user.id);
}

export function deleteUserStatement(db: D1Database, id: string): D1PreparedStatement {
  return db.prepare("DELETE FROM users WHERE id = ?").bind(id);
}
