import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { auditPageQuery, type AuditPageQuery } from "../../src/db/audit";
import { keyPageQuery } from "../../src/db/keys";
import type { SqlQuery } from "../../src/db/page";
import { productPageQuery } from "../../src/db/products";
import { userPageQuery } from "../../src/db/users";
import { adminToken, api, userToken } from "../helpers/api";
import { createKey, createProduct } from "../helpers/harness";
import { bulkKeys, fetchAll, fetchPage, idsOf, iso, PATHS, type ListName, type PageAnswer } from "../helpers/pages";
import { createUser } from "../helpers/users";

/**
 * The four management lists page with keyset cursors: every row exactly once
 * and in order, whatever is inserted between two pages; each page is one
 * index range (the plan is shown), so a first page costs the same rows read
 * with 100 rows as with 100,000 (pagination-scale.test.ts). Storage is per
 * file, so each test computes what it expects from what D1 holds at that moment.
 */

/** SQLite compares TEXT as bytes; for these ASCII values that is JavaScript's code-unit order. */
const compare = (a: string | number, b: string | number): number => (a < b ? -1 : a > b ? 1 : 0);

/** Ids sorted by a tuple key, ascending or descending. */
function sortedIds<T extends { id: string }>(rows: T[], key: (row: T) => (string | number)[], direction: "asc" | "desc"): string[] {
  const sign = direction === "asc" ? 1 : -1;
  return [...rows]
    .sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      for (let i = 0; i < x.length; i++) {
        const order = compare(x[i]!, y[i]!);
        if (order !== 0) return sign * order;
      }
      return 0;
    })
    .map((row) => row.id);
}

/** Each page holds at most `limit` rows, only the last page has no nextCursor, and no id repeats. */
function expectWellFormed(pages: PageAnswer[], limit: number): void {
  for (const [index, page] of pages.entries()) {
    expect(page.rows.length, `page ${index}`).toBeLessThanOrEqual(limit);
    if (index < pages.length - 1) {
      expect(page.rows.length, `page ${index} is full`).toBe(limit);
      expect(page.nextCursor, `page ${index} has a next page`).toEqual(expect.any(String));
    }
  }
  expect(pages.at(-1)!.nextCursor, "the last page").toBeNull();
  const ids = idsOf(pages);
  expect(new Set(ids).size, "no row twice").toBe(ids.length);
}

// ---- rows straight into D1 --------------------------------------------------

async function insertUserRow(createdAt: string, id = crypto.randomUUID()): Promise<string> {
  await env.DB.prepare("INSERT INTO users (id, email, password_hash, role, created_at, updated_at) VALUES (?, ?, 'not-a-hash', 'user', ?, ?)")
    .bind(id, `${id}@example.com`, createdAt, createdAt)
    .run();
  return id;
}

async function bulkUsers(count: number, baseMs: number): Promise<void> {
  const tag = crypto.randomUUID().slice(0, 8);
  await env.DB.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
     INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
     SELECT printf('bulk-%s-%06d', ?2, i), printf('bulk-%s-%06d@example.com', ?2, i), 'not-a-hash', 'user',
            strftime('%Y-%m-%dT%H:%M:%fZ', ?3 / 1000.0 + i / 1000.0, 'unixepoch'), strftime('%Y-%m-%dT%H:%M:%fZ', ?3 / 1000.0, 'unixepoch')
     FROM n`,
  )
    .bind(count, tag, baseMs)
    .run();
}

async function bulkProducts(count: number): Promise<void> {
  const tag = crypto.randomUUID().slice(0, 8);
  const now = new Date().toISOString();
  await env.DB.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
     INSERT INTO products (id, slug, name, path_prefix, origin_url, created_at, updated_at)
     SELECT printf('bulk-%s-%06d', ?2, i), printf('bulk-%s-%06d', ?2, i), 'bulk', printf('/api/bulk-%s-%06d', ?2, i), 'https://origin.test', ?3, ?3
     FROM n`,
  )
    .bind(count, tag, now)
    .run();
}

async function insertAudit(targetId: string, at: string, targetType: "key" | "product" | "user" = "key"): Promise<string> {
  const id = crypto.randomUUID();
  await env.DB.prepare("INSERT INTO audit_log (id, at, actor, action, target_type, target_id) VALUES (?, ?, 'admin_token', 'test.entry', ?, ?)")
    .bind(id, at, targetType, targetId)
    .run();
  return id;
}

async function bulkAudit(targetId: string, count: number, baseMs: number): Promise<void> {
  await env.DB.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
     INSERT INTO audit_log (id, at, actor, action, target_type, target_id)
     SELECT lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%fZ', ?3 / 1000.0 + i / 1000.0, 'unixepoch'), 'admin_token', 'test.bulk', 'key', ?2
     FROM n`,
  )
    .bind(count, targetId, baseMs)
    .run();
}

async function allRows<T>(sql: string): Promise<T[]> {
  return (await env.DB.prepare(sql).all<T>()).results;
}

// ---- paging through -----------------------------------------------------------

describe("paging through each list with a small limit gets every row exactly once, in order", () => {
  it("a user's keys, newest first, the id breaking ties between keys of the same millisecond", async () => {
    const { user } = await createUser();
    const base = Date.now() - 60_000;
    const created: { id: string; createdAt: string }[] = [];
    // Three pairs share a createdAt, so only the id orders them.
    for (const offset of [0, 0, 5, 5, 9, 9, 12]) created.push((await createKey({ ownerId: user.id, createdAt: iso(base + offset) })).record);
    const pages = await fetchAll("keys", await userToken(user), { limit: 3 });
    expect(pages.map((page) => page.rows.length)).toEqual([3, 3, 1]);
    expectWellFormed(pages, 3);
    expect(idsOf(pages)).toEqual(sortedIds(created, (key) => [key.createdAt, key.id], "desc"));
  });

  it("all keys for an admin, newest first", async () => {
    for (let i = 0; i < 5; i++) await createKey({ createdAt: iso(Date.now() - i) });
    const rows = await allRows<{ id: string; created_at: string }>("SELECT id, created_at FROM api_keys");
    const pages = await fetchAll("keys", adminToken(), { limit: 4 });
    expectWellFormed(pages, 4);
    expect(idsOf(pages)).toEqual(sortedIds(rows, (row) => [row.created_at, row.id], "desc"));
  });

  it("users, oldest first, the id breaking ties", async () => {
    const at = iso(Date.now() - 3_600_000);
    for (const id of ["u-tie-b", "u-tie-a", "u-tie-c"]) await insertUserRow(at, `${id}-${crypto.randomUUID()}`);
    await createUser();
    const rows = await allRows<{ id: string; created_at: string }>("SELECT id, created_at FROM users");
    expect(rows.length).toBeGreaterThanOrEqual(4);
    const pages = await fetchAll("users", adminToken(), { limit: 2 });
    expectWellFormed(pages, 2);
    expect(idsOf(pages)).toEqual(sortedIds(rows, (row) => [row.created_at, row.id], "asc"));
  });

  it("products, by slug", async () => {
    for (let i = 0; i < 5; i++) await createProduct();
    const rows = await allRows<{ id: string; slug: string }>("SELECT id, slug FROM products");
    const pages = await fetchAll("products", adminToken(), { limit: 2 });
    expectWellFormed(pages, 2);
    expect(idsOf(pages)).toEqual(sortedIds(rows, (row) => [row.slug], "asc"));
  });

  it("audit entries, newest first, entries of the same millisecond newest-written first, with and without filters", async () => {
    const target = crypto.randomUUID();
    const other = crypto.randomUUID();
    const base = Date.now() - 10_000;
    const written: string[] = [];
    for (const offset of [0, 1, 1, 1, 2, 3, 3]) written.push(await insertAudit(target, iso(base + offset)));
    await insertAudit(other, iso(base + 2), "user");
    const newestFirst = [...written].reverse();

    const byTarget = await fetchAll("entries", adminToken(), { limit: 3, targetId: target });
    expectWellFormed(byTarget, 3);
    expect(idsOf(byTarget)).toEqual(newestFirst);
    const byBoth = await fetchAll("entries", adminToken(), { limit: 2, targetId: target, targetType: "key" });
    expect(idsOf(byBoth)).toEqual(newestFirst);
    expect(idsOf(await fetchAll("entries", adminToken(), { limit: 2, targetId: target, targetType: "user" }))).toEqual([]);

    const rows = await allRows<{ id: string; at: string; r: number; target_type: string }>("SELECT id, at, rowid AS r, target_type FROM audit_log");
    const all = await fetchAll("entries", adminToken(), { limit: 4 });
    expectWellFormed(all, 4);
    expect(idsOf(all)).toEqual(sortedIds(rows, (row) => [row.at, row.r], "desc"));
    const users = await fetchAll("entries", adminToken(), { limit: 1, targetType: "user" });
    expect(idsOf(users)).toEqual(
      sortedIds(
        rows.filter((row) => row.target_type === "user"),
        (row) => [row.at, row.r],
        "desc",
      ),
    );
  });
});

describe("paging is stable under concurrent inserts", () => {
  it("keys created between two page fetches neither repeat nor push keys off the later pages", async () => {
    const { user } = await createUser();
    const asUser = await userToken(user);
    for (let i = 0; i < 6; i++) await createKey({ ownerId: user.id, createdAt: iso(Date.now() - 1000 + i) });
    const before = idsOf(await fetchAll("keys", asUser, { limit: 100 }));
    expect(before).toHaveLength(6);

    const first = await fetchPage("keys", asUser, { limit: 2 });
    // New keys are the newest: they sort before the cursor. With OFFSET the next page would repeat rows.
    const added: string[] = [];
    for (let i = 0; i < 3; i++) added.push((await createKey({ ownerId: user.id })).record.id);
    const rest = await fetchAll("keys", asUser, { limit: 2, cursor: first.nextCursor! });
    expect([...first.rows.map((row) => row.id), ...idsOf(rest)]).toEqual(before);
    // A fresh listing shows them first.
    expect(idsOf(await fetchAll("keys", asUser, { limit: 100 })).slice(0, 3)).toEqual(added.reverse());
  });

  it("users inserted before the cursor between page fetches change nothing after it", async () => {
    for (let i = 0; i < 5; i++) await insertUserRow(iso(Date.now() - 20_000 + i));
    const before = idsOf(await fetchAll("users", adminToken(), { limit: 200 }));
    const first = await fetchPage("users", adminToken(), { limit: 3 });
    const oldest = iso(Date.parse(first.rows[0]!.createdAt) - 1000);
    for (let i = 0; i < 3; i++) await insertUserRow(oldest);
    const rest = await fetchAll("users", adminToken(), { limit: 3, cursor: first.nextCursor! });
    expect([...first.rows.map((row) => row.id), ...idsOf(rest)]).toEqual(before);
  });

  it("products whose slugs sort before the cursor, created between page fetches, change nothing after it", async () => {
    for (let i = 0; i < 5; i++) await createProduct();
    const before = idsOf(await fetchAll("products", adminToken(), { limit: 200 }));
    const first = await fetchPage("products", adminToken(), { limit: 2 });
    for (let i = 0; i < 3; i++) await createProduct({ slug: `0-${crypto.randomUUID().slice(0, 8)}` });
    const rest = await fetchAll("products", adminToken(), { limit: 2, cursor: first.nextCursor! });
    expect([...first.rows.map((row) => row.id), ...idsOf(rest)]).toEqual(before);
  });

  it("audit entries written between page fetches (the newest) change nothing after the cursor", async () => {
    const target = crypto.randomUUID();
    for (let i = 0; i < 5; i++) await insertAudit(target, iso(Date.now() - 5000 + i));
    const before = idsOf(await fetchAll("entries", adminToken(), { targetId: target }));
    const first = await fetchPage("entries", adminToken(), { limit: 2, targetId: target });
    for (let i = 0; i < 3; i++) await insertAudit(target, iso(Date.now() + i));
    const rest = await fetchAll("entries", adminToken(), { limit: 2, targetId: target, cursor: first.nextCursor! });
    expect([...first.rows.map((row) => row.id), ...idsOf(rest)]).toEqual(before);
  });
});

describe("a user pages only through their own keys", () => {
  it("never sees another's keys, not even with a cursor taken from an admin's listing", async () => {
    const { user: alice } = await createUser();
    const { user: bob } = await createUser();
    const base = Date.now() - 30_000;
    const alices: { id: string; createdAt: string }[] = [];
    const bobs: string[] = [];
    for (let i = 0; i < 5; i++) {
      alices.push((await createKey({ ownerId: alice.id, createdAt: iso(base + 2 * i) })).record);
      bobs.push((await createKey({ ownerId: bob.id, createdAt: iso(base + 2 * i + 1) })).record.id);
    }
    const asAlice = await userToken(alice);
    const pages = await fetchAll("keys", asAlice, { limit: 2 });
    expectWellFormed(pages, 2);
    expect(idsOf(pages)).toEqual(sortedIds(alices, (key) => [key.createdAt, key.id], "desc"));

    // An admin's cursor positioned on Bob's key is only a position: Alice still gets only hers, after it.
    const adminPages = await fetchAll("keys", adminToken(), { limit: 1 });
    const onBobs = adminPages.findIndex((page) => page.rows[0]!.id === bobs[2]);
    expect(onBobs).toBeGreaterThanOrEqual(0);
    const after = await fetchAll("keys", asAlice, { limit: 10, cursor: adminPages[onBobs]!.nextCursor! });
    // Bob's third key sorts between Alice's third and fourth.
    expect(idsOf(after)).toEqual(sortedIds(alices.slice(0, 3), (key) => [key.createdAt, key.id], "desc"));
  });
});

describe("limit and cursor are validated", () => {
  const lists = ["keys", "users", "products", "entries"] as const;

  async function expectRefused(list: ListName, query: string, field: string): Promise<void> {
    const answer = await api("GET", `${PATHS[list]}?${query}`, adminToken());
    expect(answer.status, `${list} ?${query}: ${JSON.stringify(answer.body)}`).toBe(400);
    expect(answer.headers.get("content-type")).toContain("application/json");
    expect(answer.body.code).toBe("VALIDATION_FAILED");
    expect(answer.body.fields.map((f: { path: string }) => f.path)).toEqual([field]);
    // A known parameter with a bad value, not one the list does not take.
    if (field !== "offset") expect(answer.body.fields[0].message, query).not.toBe("Unknown field");
  }

  const b64url = (text: string) => btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  it.each(lists)("%s: limit outside 1..200 or not a whole number is 400 VALIDATION_FAILED naming limit", async (list) => {
    for (const query of ["limit=0", "limit=201", "limit=-1", "limit=abc", "limit=2.5", "limit="]) await expectRefused(list, query, "limit");
    expect((await fetchPage(list, adminToken(), { limit: 200 })).rows.length).toBeLessThanOrEqual(200);
    expect((await fetchPage(list, adminToken(), { limit: 1 })).rows.length).toBeLessThanOrEqual(1);
  });

  it.each(lists)("%s: a cursor that does not decode, or has the wrong shape, is 400 VALIDATION_FAILED naming cursor", async (list) => {
    for (const cursor of ["garbage!", "", "%%%", b64url("not json"), b64url("[]"), b64url('{"list":"x"}'), "A".repeat(2000)]) {
      await expectRefused(list, `cursor=${encodeURIComponent(cursor)}`, "cursor");
    }
  });

  it("a cursor of one list is refused by every other list", async () => {
    await createKey();
    await createUser();
    await createUser();
    await createProduct();
    await createProduct();
    await insertAudit(crypto.randomUUID(), iso(Date.now()));
    await insertAudit(crypto.randomUUID(), iso(Date.now()));
    const cursors = Object.fromEntries(
      await Promise.all(lists.map(async (list) => [list, (await fetchPage(list, adminToken(), { limit: 1 })).nextCursor] as const)),
    ) as Record<ListName, string | null>;
    for (const from of lists) {
      expect(cursors[from], `${from} has a second page`).toEqual(expect.any(String));
      for (const to of lists) {
        if (to === from) continue;
        await expectRefused(to, `cursor=${encodeURIComponent(cursors[from]!)}`, "cursor");
      }
    }
  });

  it("a tampered cursor (right list, wrong types) is refused; the cursor is opaque base64url", async () => {
    const { user } = await createUser();
    await createKey({ ownerId: user.id });
    await createKey({ ownerId: user.id });
    const cursor = (await fetchPage("keys", await userToken(user), { limit: 1 })).nextCursor!;
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    const decoded = JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/")));
    const tampered = b64url(JSON.stringify({ ...decoded, after: [1, 2] }));
    await expectRefused("keys", `cursor=${tampered}`, "cursor");
    const missing = b64url(JSON.stringify({ ...decoded, after: [decoded.after[0]] }));
    await expectRefused("keys", `cursor=${missing}`, "cursor");
  });

  it("an unknown query parameter is refused, as on the other endpoints", async () => {
    for (const list of lists) await expectRefused(list, "offset=10", "offset");
  });

  it("without credentials a list is 401 before its query is looked at", async () => {
    for (const list of lists) {
      const answer = await api("GET", `${PATHS[list]}?cursor=garbage!`, {});
      expect(answer.status).toBe(401);
      expect(answer.body.code).toBe("AUTH_MISSING");
    }
  });
});

describe("page size: 50 by default, at most 200", () => {
  it("each list answers 50 rows without a limit and 200 with limit=200", async () => {
    const { user } = await createUser();
    await bulkKeys(user.id, 250, Date.now() - 100_000);
    await bulkUsers(250, Date.now() - 100_000);
    await bulkProducts(250);
    const target = crypto.randomUUID();
    await bulkAudit(target, 250, Date.now() - 100_000);

    const asUser = await userToken(user);
    const cases: [ListName, Record<string, string>, Record<string, string>][] = [
      ["keys", asUser, {}],
      ["keys", adminToken(), {}],
      ["users", adminToken(), {}],
      ["products", adminToken(), {}],
      ["entries", adminToken(), {}],
      ["entries", adminToken(), { targetId: target }],
    ];
    for (const [list, headers, query] of cases) {
      const first = await fetchPage(list, headers, query);
      expect(first.rows, list).toHaveLength(50);
      expect(first.nextCursor, list).toEqual(expect.any(String));
      const second = await fetchPage(list, headers, { ...query, cursor: first.nextCursor! });
      expect(second.rows, list).toHaveLength(50);
      const big = await fetchPage(list, headers, { ...query, limit: 200 });
      expect(big.rows, list).toHaveLength(200);
      expect(big.rows.slice(0, 100).map((row) => row.id)).toEqual([...first.rows, ...second.rows].map((row) => row.id));
    }
    // The user's 250 keys end on the second page of 200, with no next page.
    const all = await fetchAll("keys", asUser, { limit: 200 });
    expect(all.map((page) => page.rows.length)).toEqual([200, 50]);
  });
});

// ---- plans and cost -------------------------------------------------------------

async function planOf(query: SqlQuery): Promise<string> {
  const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${query.sql}`)
    .bind(...query.params)
    .all<{ detail: string }>();
  return results.map((row) => row.detail).join("\n");
}

/** One index range or index scan, in index order: no full-table scan and no sort. */
async function expectIndexed(query: SqlQuery, index: RegExp): Promise<void> {
  const plan = await planOf(query);
  expect(plan, query.sql).toMatch(/^(SEARCH|SCAN) \S+ USING (COVERING )?INDEX \S+/);
  expect(plan.split(/USING (?:COVERING )?INDEX /)[1]!.split(" ")[0], plan).toMatch(index);
  expect(plan, query.sql).not.toMatch(/TEMP B-TREE/);
  expect(plan.split("\n"), plan).toHaveLength(1);
}

describe("each page is served by an index (EXPLAIN QUERY PLAN)", () => {
  const at = "2030-01-01T00:00:00.000Z";

  it("keys: all of them by api_keys_created, one owner's by api_keys_owner, first page and after a cursor", async () => {
    await expectIndexed(keyPageQuery({ limit: 50 }), /^api_keys_created$/);
    await expectIndexed(keyPageQuery({ limit: 50, after: [at, "x"] }), /^api_keys_created$/);
    await expectIndexed(keyPageQuery({ limit: 50, ownerId: "u" }), /^api_keys_owner$/);
    await expectIndexed(keyPageQuery({ limit: 50, ownerId: "u", after: [at, "x"] }), /^api_keys_owner$/);
    expect(await planOf(keyPageQuery({ limit: 50, ownerId: "u", after: [at, "x"] }))).toContain("owner_id=? AND (created_at,id)<(?,?)");
  });

  it("users by users_created, products by their unique slug index", async () => {
    await expectIndexed(userPageQuery({ limit: 50 }), /^users_created$/);
    await expectIndexed(userPageQuery({ limit: 50, after: [at, "x"] }), /^users_created$/);
    expect(await planOf(userPageQuery({ limit: 50, after: [at, "x"] }))).toContain("(created_at,id)>(?,?)");
    const slugIndex = (
      await allRows<{ name: string }>("SELECT il.name FROM pragma_index_list('products') il, pragma_index_info(il.name) ii WHERE ii.name = 'slug'")
    )[0]!.name;
    const exact = new RegExp(`^${slugIndex}$`);
    await expectIndexed(productPageQuery({ limit: 50 }), exact);
    await expectIndexed(productPageQuery({ limit: 50, after: ["m"] }), exact);
  });

  it("audit: unfiltered by audit_log_at, by target id (with or without its type) by audit_log_target, by type by audit_log_target_type", async () => {
    const cases: [Omit<AuditPageQuery, "limit">, RegExp][] = [
      [{}, /^audit_log_at$/],
      [{ targetId: "t" }, /^audit_log_target$/],
      [{ targetId: "t", targetType: "key" }, /^audit_log_target$/],
      [{ targetType: "user" }, /^audit_log_target_type$/],
    ];
    for (const [filters, index] of cases) {
      await expectIndexed(auditPageQuery({ ...filters, limit: 50 }), index);
      await expectIndexed(auditPageQuery({ ...filters, limit: 50, after: [at, 12] }), index);
    }
  });
});
