/// <reference types="vite/client" />
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import schemaSql from "../../schema.sql?raw";

/**
 * schema.sql must equal what migrations/ builds. The test D1 has the
 * migrations applied (test/setup.ts); schema.sql is executed into a fresh,
 * empty SQLite database — the storage of a new Durable Object, the only other
 * SQLite engine a test can open — and the two are described the same way
 * and compared: every table, index, view and trigger with its normalised
 * CREATE text, and every table's columns and indexes as SQLite reports them.
 */

interface SchemaObject {
  type: string;
  name: string;
  table: string;
  sql: string;
  columns?: unknown[];
  indexes?: unknown[];
}

type Query = (sql: string) => Promise<Record<string, unknown>[]>;

/** CREATE text without comments, with whitespace made canonical (string literals kept as written). */
function normaliseSql(sql: string): string {
  return sql
    .replace(/('(?:[^']|'')*')|--[^\n]*|\/\*[\s\S]*?\*\//g, (_match, literal: string | undefined) => literal ?? " ")
    .replace(/\s+/g, " ")
    .replace(/\s*([(),])\s*/g, "$1")
    .trim();
}

/** Names that belong to the platform, not to keygate's schema. */
function isPlatformObject(name: string): boolean {
  return name.startsWith("sqlite_") || name.startsWith("_cf_") || name.startsWith("d1_");
}

async function describeSchema(query: Query, ignore: ReadonlySet<string> = new Set()): Promise<SchemaObject[]> {
  const rows = await query("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name");
  const objects: SchemaObject[] = [];
  for (const row of rows) {
    const name = String(row.name);
    if (isPlatformObject(name) || ignore.has(name)) continue;
    const object: SchemaObject = { type: String(row.type), name, table: String(row.tbl_name), sql: normaliseSql(String(row.sql ?? "")) };
    if (object.type === "table") {
      object.columns = await query(`PRAGMA table_xinfo("${name}")`);
      object.indexes = (await query(`PRAGMA index_list("${name}")`)).map(({ seq: _seq, ...index }) => index);
    }
    objects.push(object);
  }
  return objects;
}

/** What the migrated test D1 holds. */
function describeMigrated(): Promise<SchemaObject[]> {
  return describeSchema(async (sql) => (await env.DB.prepare(sql).all<Record<string, unknown>>()).results);
}

/** What schema.sql builds in an empty SQLite database. */
async function describeSchemaSql(): Promise<SchemaObject[]> {
  const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.newUniqueId());
  return runInDurableObject(stub, async (_instance, state) => {
    const storage = state.storage.sql;
    const query: Query = async (sql) => storage.exec(sql).toArray() as Record<string, unknown>[];
    // The object's own tables were made by its constructor; they are not schema.sql's.
    const existing = new Set((await query("SELECT name FROM sqlite_master")).map((row) => String(row.name)));
    storage.exec(schemaSql);
    return describeSchema(query, existing);
  });
}

describe("schema.sql", () => {
  it("builds exactly the tables, indexes and columns the migrations build", async () => {
    const migrated = await describeMigrated();
    const declared = await describeSchemaSql();
    expect(migrated.map((object) => `${object.type} ${object.name}`)).toEqual(
      expect.arrayContaining(["table api_keys", "table products", "table users", "index api_keys_prefix"]),
    );
    expect(declared).toEqual(migrated);
  });
});

describe("normaliseSql", () => {
  it("ignores comments and layout but not content", () => {
    const a = "CREATE TABLE t (\n  a TEXT NOT NULL, -- the a\n  b INTEGER /* the b */ DEFAULT 1\n)";
    const b = "CREATE TABLE t(a TEXT NOT NULL,b INTEGER DEFAULT 1)";
    expect(normaliseSql(a)).toBe(normaliseSql(b));
    expect(normaliseSql(a)).not.toBe(normaliseSql(b.replace("DEFAULT 1", "DEFAULT 2")));
  });

  it("keeps comment-like text inside string literals", () => {
    expect(normaliseSql("DEFAULT '--x'  -- y")).toBe("DEFAULT '--x'");
  });
});
