import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { AuditListSchema, KeyListSchema, ProductListSchema, UserListSchema } from "../../src/routes/schemas";
import { api } from "./api";

/** The four management lists through their endpoints, a page at a time; and many keys at once, straight into D1. */

/** Each list by the member its answer holds the rows in. */
export type ListName = "keys" | "users" | "products" | "entries";

export const PATHS: Record<ListName, string> = {
  keys: "/api/v1/keys",
  users: "/api/v1/admin/users",
  products: "/api/v1/admin/products",
  entries: "/api/v1/admin/audit",
};

const SCHEMAS = { keys: KeyListSchema, users: UserListSchema, products: ProductListSchema, entries: AuditListSchema };

export interface PageAnswer {
  rows: Record<string, any>[];
  nextCursor: string | null;
}

/** One page of a list through its endpoint; `query` is added to the query string. */
export async function fetchPage(list: ListName, headers: Record<string, string>, query: Record<string, string | number> = {}): Promise<PageAnswer> {
  const search = new URLSearchParams(Object.entries(query).map(([name, value]): [string, string] => [name, String(value)]));
  const path = `${PATHS[list]}${search.size > 0 ? `?${search}` : ""}`;
  const answer = await api("GET", path, headers);
  expect(answer.status, `GET ${path}: ${JSON.stringify(answer.body).slice(0, 500)}`).toBe(200);
  const body = SCHEMAS[list].parse(answer.body) as Record<string, unknown>;
  expect(Object.keys(answer.body)).toContain("nextCursor");
  return { rows: body[list] as Record<string, any>[], nextCursor: answer.body.nextCursor as string | null };
}

/** Every page of a list, following nextCursor to the end (bounded, so a cursor that never ends fails). */
export async function fetchAll(list: ListName, headers: Record<string, string>, query: Record<string, string | number> = {}): Promise<PageAnswer[]> {
  const pages: PageAnswer[] = [];
  let cursor: string | null | undefined;
  do {
    const page = await fetchPage(list, headers, { ...query, ...(cursor ? { cursor } : {}) });
    pages.push(page);
    expect(pages.length, "pages never end").toBeLessThan(500);
    cursor = page.nextCursor;
  } while (cursor);
  return pages;
}

export const idsOf = (pages: PageAnswer[]): string[] => pages.flatMap((page) => page.rows.map((row) => String(row.id)));

export const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * `count` key rows for one owner in one INSERT … SELECT over a recursive CTE,
 * created at base + 1 ms, base + 2 ms, …, with ids bulk-<tag>-000001, … (the tag is returned).
 */
export async function bulkKeys(ownerId: string | null, count: number, baseMs: number): Promise<string> {
  const tag = crypto.randomUUID().slice(0, 8);
  await env.DB.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
     INSERT INTO api_keys (id, prefix, hash, format, env, name, owner_id, status, created_at, updated_at)
     SELECT printf('bulk-%s-%06d', ?2, i), printf('ilal_live_%08x', i), lower(hex(randomblob(32))), 'ilal', 'live',
            'bulk key', ?3, 'active', strftime('%Y-%m-%dT%H:%M:%fZ', ?4 / 1000.0 + i / 1000.0, 'unixepoch'),
            strftime('%Y-%m-%dT%H:%M:%fZ', ?4 / 1000.0, 'unixepoch')
     FROM n`,
  )
    .bind(count, tag, ownerId, baseMs)
    .run();
  return tag;
}
