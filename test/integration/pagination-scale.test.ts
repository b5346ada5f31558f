import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keyPageQuery } from "../../src/db/keys";
import type { SqlQuery } from "../../src/db/page";
import { adminToken, userToken } from "../helpers/api";
import { bulkKeys, fetchPage, iso } from "../helpers/pages";
import { createUser } from "../helpers/users";

/**
 * A page of keys is one index range: with 100,000 keys in D1 the first page
 * (and any later one) reads as many rows as with 100, by D1's own count
 * (meta.rows_read of the very query GET /api/v1/keys runs). Its own file, so
 * the 100,000 rows stay out of the other pagination tests' storage.
 */

describe("with 100,000 keys a first page reads as many rows as with 100", () => {
  async function rowsRead(query: SqlQuery): Promise<{ rows: number; rowsRead: number }> {
    const { results, meta } = await env.DB.prepare(query.sql)
      .bind(...query.params)
      .all();
    return { rows: results.length, rowsRead: meta.rows_read };
  }

  it("D1's rows_read for the first and a later page does not grow with the table", { timeout: 180_000 }, async () => {
    const { user: small } = await createUser();
    const { user: large } = await createUser();
    const base = Date.now() + 1_000_000;
    await bulkKeys(small.id, 100, base);

    const adminFirstSmall = await rowsRead(keyPageQuery({ limit: 50 }));
    const ownerFirstSmall = await rowsRead(keyPageQuery({ limit: 50, ownerId: small.id }));
    const adminPageOne = await fetchPage("keys", adminToken());
    const ownerLaterSmall = await rowsRead(keyPageQuery({ limit: 50, ownerId: small.id, after: [iso(base + 60), "bulk-zzzz"] }));

    const tag = await bulkKeys(large.id, 100_000, base + 200);
    const count = await env.DB.prepare("SELECT count(*) AS n FROM api_keys WHERE owner_id = ?").bind(large.id).first<{ n: number }>();
    expect(count!.n).toBe(100_000);

    const adminFirstLarge = await rowsRead(keyPageQuery({ limit: 50 }));
    const ownerFirstLarge = await rowsRead(keyPageQuery({ limit: 50, ownerId: large.id }));
    const ownerLaterLarge = await rowsRead(keyPageQuery({ limit: 50, ownerId: large.id, after: [iso(base + 200 + 50_000), "bulk-zzzz"] }));

    const measured = JSON.stringify({ adminFirstSmall, adminFirstLarge, ownerFirstSmall, ownerFirstLarge, ownerLaterSmall, ownerLaterLarge });
    expect(adminFirstSmall.rows).toBe(51);
    expect(adminFirstLarge, measured).toEqual(adminFirstSmall);
    expect(ownerFirstLarge, measured).toEqual(ownerFirstSmall);
    expect(ownerLaterLarge, measured).toEqual(ownerLaterSmall);
    // Only the page (and the one row that says another follows) is read.
    expect(adminFirstLarge.rowsRead).toBeLessThanOrEqual(2 * 51);

    // The endpoint answers with the newest 50, from the 100,000 now.
    const adminPage = await fetchPage("keys", adminToken());
    expect(adminPage.rows).toHaveLength(50);
    expect(adminPage.rows[0]!.id).toBe(`bulk-${tag}-100000`);
    expect(adminPage.rows.map((row) => row.id)).not.toEqual(adminPageOne.rows.map((row) => row.id));
    const ownerPage = await fetchPage("keys", await userToken(large));
    expect(ownerPage.rows.map((row) => row.id)).toEqual(adminPage.rows.map((row) => row.id));
  });
});
