/// <reference types="vite/client" />
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import migration0004 from "../../migrations/0004_lineage_owner_limits.sql?raw";
import { adminToken, api } from "../helpers/api";
import { createKey, createProduct, send, settled } from "../helpers/harness";
import { setClock, storedCounters } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";

/**
 * Security review F5: quotas follow the credential, not the key id. A
 * rotation's replacement continues its predecessor's lineage, so both keys
 * draw from one minute and one day count, during the grace period and after,
 * however often the key is rotated; usage stats follow the lineage.
 */
useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

async function rotate(id: string, gracePeriodSeconds: number): Promise<{ id: string; key: string }> {
  const answer = await api("POST", `/api/v1/keys/${id}/rotate`, adminToken(), { gracePeriodSeconds });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return answer.body as { id: string; key: string };
}

describe("rotation lineage (F5)", () => {
  it("the review's reproduction: rotating five times yields 3 admissions of a 3-per-day quota, not 15", async () => {
    setClock(new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000 + 3_600_000).toISOString());
    const product = await createProduct({ rateLimitPerDay: 3 });
    let { key, record } = await createKey();
    const statuses: number[] = [];
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 3; i++) statuses.push((await settled(send(`${product.pathPrefix}/quota`, { key }))).status);
      const next = await rotate(record.id, 0);
      key = next.key;
      record = { ...record, id: next.id };
    }
    expect(statuses.filter((status) => status === 200)).toHaveLength(3);
    expect(statuses.filter((status) => status === 429)).toHaveLength(12);
  });

  it("during the grace period the old and the new key draw from one minute and one day count", async () => {
    setClock(new Date(Math.floor(Date.now() / 60_000) * 60_000 + 10_000).toISOString());
    const product = await createProduct({ rateLimitPerMinute: 4, rateLimitPerDay: 1000 });
    const { key: oldKey, record } = await createKey();
    expect((await settled(send(`${product.pathPrefix}/quota`, { key: oldKey }))).status).toBe(200);
    const replacement = await rotate(record.id, 3600);
    const answers = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => (await settled(send(`${product.pathPrefix}/quota`, { key: i % 2 === 0 ? oldKey : replacement.key }))).status),
    );
    // 4 per minute in all: 1 before the rotation, 3 of the 8 after.
    expect(answers.filter((status) => status === 200)).toHaveLength(3);
    const counters = await storedCounters(`key:${record.id}`);
    expect(counters.minute?.count).toBe(4);
    expect(counters.day?.count).toBe(4);
    // Nothing counts under the replacement's own id.
    expect(await storedCounters(`key:${replacement.id}`)).toEqual({});
  });

  it("the replacement's stats show the lineage's counts, and the old key's object state still ends its grace", async () => {
    const product = await createProduct();
    const { key: oldKey, record } = await createKey();
    for (let i = 0; i < 2; i++) expect((await settled(send(`${product.pathPrefix}/quota`, { key: oldKey }))).status).toBe(200);
    const replacement = await rotate(record.id, 0);
    expect((await settled(send(`${product.pathPrefix}/quota`, { key: replacement.key }))).status).toBe(200);
    // Grace 0: the old key is expired at once, though it shares the replacement's object.
    expect((await settled(send(`${product.pathPrefix}/quota`, { key: oldKey }))).status).toBe(401);

    const stats = await api("GET", `/api/v1/usage/stats?keyId=${replacement.id}`, adminToken());
    expect(stats.status, JSON.stringify(stats.body)).toBe(200);
    const [entry] = stats.body.keys;
    expect(entry.id).toBe(replacement.id);
    expect(entry.day.used).toBe(3);
    expect(entry.last30Days.at(-1).count).toBe(3);
    const old = await api("GET", `/api/v1/usage/stats?keyId=${record.id}`, adminToken());
    expect(old.body.keys[0].day.used).toBe(3);
  });

  it("a replacement's row carries its predecessor's lineage; a new key starts its own", async () => {
    const created = await api("POST", "/api/v1/keys", adminToken(), { name: "lineage", products: ["*"] });
    expect(created.status).toBe(201);
    const first = await rotate(created.body.id, 0);
    const second = await rotate(first.id, 0);
    const { results } = await env.DB.prepare("SELECT id, lineage_id FROM api_keys WHERE id IN (?, ?, ?)")
      .bind(created.body.id, first.id, second.id)
      .all<{ id: string; lineage_id: string }>();
    expect(results.map((row) => row.lineage_id)).toEqual([created.body.id, created.body.id, created.body.id]);
  });

  it("migration 0004 gives every existing rotation chain the id of its first key as lineage", async () => {
    const created = await api("POST", "/api/v1/keys", adminToken(), { name: "backfill", products: ["*"] });
    const first = await rotate(created.body.id, 0);
    const second = await rotate(first.id, 0);
    const lone = await api("POST", "/api/v1/keys", adminToken(), { name: "backfill-lone", products: ["*"] });
    const ids = [created.body.id, first.id, second.id, lone.body.id];
    // As rows from before the migration: no lineage yet.
    await env.DB.prepare(`UPDATE api_keys SET lineage_id = NULL WHERE id IN (${ids.map(() => "?").join(", ")})`)
      .bind(...ids)
      .run();
    const backfill = /WITH RECURSIVE chain[\s\S]*?;/.exec(migration0004)![0];
    await env.DB.prepare(backfill).run();
    const { results } = await env.DB.prepare(`SELECT id, lineage_id FROM api_keys WHERE id IN (${ids.map(() => "?").join(", ")})`)
      .bind(...ids)
      .all<{ id: string; lineage_id: string }>();
    const lineage = Object.fromEntries(results.map((row) => [row.id, row.lineage_id]));
    expect(lineage).toEqual({ [created.body.id]: created.body.id, [first.id]: created.body.id, [second.id]: created.body.id, [lone.body.id]: lone.body.id });
  });
});
