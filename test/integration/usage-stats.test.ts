import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { cacheKeys } from "../../src/auth/key-cache";
import { lastDays } from "../../src/routes/usage";
import { UsageStatsSchema } from "../../src/routes/schemas";
import { adminToken, api, userToken } from "../helpers/api";
import { call, createKey, createProduct } from "../helpers/harness";
import { limiter } from "../helpers/limiter";
import { stubOrigin } from "../helpers/origin";
import { createUser } from "../helpers/users";

let origin: ReturnType<typeof stubOrigin> | undefined;
afterEach(() => {
  origin?.restore();
  origin = undefined;
});

async function callProduct(pathPrefix: string, key: string, times: number): Promise<void> {
  origin ??= stubOrigin();
  for (let i = 0; i < times; i++) {
    const response = await call(`${pathPrefix}/work`, { headers: { "X-API-Key": key } });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  }
}

async function stats(headers: Record<string, string>, query = "") {
  const answer = await api("GET", `/api/v1/usage/stats${query}`, headers);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return { ...UsageStatsSchema.parse(answer.body), headers: answer.headers };
}

const keyRow = (id: string) => env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(id).first<Record<string, unknown>>();
const dailyRows = (id: string) => env.DB.prepare("SELECT day, count FROM usage_daily WHERE key_id = ? ORDER BY day").bind(id).all();

describe("GET /api/v1/usage/stats", () => {
  it("an API key sees its own live minute and day counts and limits; asking does not count", async () => {
    const product = await createProduct();
    const { key, record } = await createKey({ rateLimitPerMinute: 20, rateLimitPerDay: 200 });
    await callProduct(product.pathPrefix, key, 3);

    const first = await stats({ "X-API-Key": key });
    expect(first.authMethod).toBe("api_key");
    expect(first.headers.get("X-Auth-Method")).toBe("api_key");
    expect(first.keys).toHaveLength(1);
    const [entry] = first.keys;
    expect(entry).toMatchObject({
      id: record.id,
      prefix: record.prefix,
      minute: { limit: 20, used: 3, remaining: 17 },
      day: { limit: 200, used: 3, remaining: 197 },
    });
    expect(entry!.minute.resetSeconds).toBeGreaterThanOrEqual(1);
    expect(entry!.minute.resetSeconds).toBeLessThanOrEqual(60);
    expect(entry!.last30Days).toHaveLength(30);
    expect(entry!.last30Days.map((d) => d.date)).toEqual(lastDays(Date.now(), 30));
    expect(entry!.last30Days.at(-1)!.count).toBe(3);

    const again = await stats({ "X-API-Key": key });
    expect(again.keys[0]!.minute.used).toBe(3);
  });

  it("last30Days comes from usage_daily, which the limiter's alarm fills; older days are left out", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    await callProduct(product.pathPrefix, key, 2);
    expect((await dailyRows(record.id)).results).toEqual([]);

    expect(await runDurableObjectAlarm(limiter(`key:${record.id}`))).toBe(true);
    const today = lastDays(Date.now(), 1)[0]!;
    expect((await dailyRows(record.id)).results).toEqual([{ day: today, count: 2 }]);

    const days = lastDays(Date.now(), 40);
    await env.DB.batch([
      env.DB.prepare("INSERT INTO usage_daily (key_id, day, count) VALUES (?, ?, ?)").bind(record.id, days[34]!, 12),
      env.DB.prepare("INSERT INTO usage_daily (key_id, day, count) VALUES (?, ?, ?)").bind(record.id, days[0]!, 99),
    ]);
    const { keys } = await stats({ "X-API-Key": key });
    const byDate = Object.fromEntries(keys[0]!.last30Days.map((d) => [d.date, d.count]));
    expect(byDate[days[34]!]).toBe(12);
    expect(byDate[today]).toBe(2);
    expect(byDate[days[0]!]).toBeUndefined();
    expect(keys[0]!.last30Days.reduce((sum, d) => sum + d.count, 0)).toBe(14);
  });

  it("a JWT user sees all their keys and only theirs; another's key id is 404", async () => {
    const product = await createProduct();
    const { user } = await createUser();
    const one = await createKey({ ownerId: user.id });
    const two = await createKey({ ownerId: user.id });
    const foreign = await createKey();
    await callProduct(product.pathPrefix, one.key, 2);
    await callProduct(product.pathPrefix, two.key, 1);

    const mine = await stats(await userToken(user));
    expect(mine.authMethod).toBe("jwt");
    expect(Object.fromEntries(mine.keys.map((k) => [k.id, k.day.used]))).toEqual({ [one.record.id]: 2, [two.record.id]: 1 });

    const narrowed = await stats(await userToken(user), `?keyId=${two.record.id}`);
    expect(narrowed.keys.map((k) => k.id)).toEqual([two.record.id]);
    const refused = await api("GET", `/api/v1/usage/stats?keyId=${foreign.record.id}`, await userToken(user));
    expect(refused.status).toBe(404);
    const asAdmin = await stats(adminToken(), `?keyId=${foreign.record.id}`);
    expect(asAdmin.authMethod).toBe("admin_token");
    expect(asAdmin.keys.map((k) => k.id)).toEqual([foreign.record.id]);
  });

  it("a user with role admin sees every key, as the keys list shows them, not only their own", async () => {
    const product = await createProduct();
    const { user: admin } = await createUser({ role: "admin" });
    const { user: other } = await createUser();
    const own = await createKey({ ownerId: admin.id });
    const foreign = await createKey({ ownerId: other.id });
    await callProduct(product.pathPrefix, foreign.key, 2);

    const seen = await stats(await userToken(admin));
    expect(seen.authMethod).toBe("jwt");
    const byId = new Map(seen.keys.map((k) => [k.id, k.day.used]));
    expect(byId.get(own.record.id)).toBe(0);
    expect(byId.get(foreign.record.id)).toBe(2);
  });

  it("limits shown: the key's own, else its single product's, else the global default", async () => {
    const limited = await createProduct({ rateLimitPerMinute: 11, rateLimitPerDay: 111 });
    const { user } = await createUser();
    const own = await createKey({ ownerId: user.id, rateLimitPerMinute: 5, products: [limited.slug] });
    const single = await createKey({ ownerId: user.id, products: [limited.slug] });
    const wide = await createKey({ ownerId: user.id, products: ["*"] });
    const { keys } = await stats(await userToken(user));
    const limits = Object.fromEntries(keys.map((k) => [k.id, [k.minute.limit, k.day.limit]]));
    expect(limits).toEqual({
      [own.record.id]: [5, 111],
      [single.record.id]: [11, 111],
      [wide.record.id]: [60, 10_000],
    });
  });

  it("a revoked key cannot read stats, even while its row is still cached", async () => {
    const { key, record } = await createKey();
    expect((await api("DELETE", `/api/v1/keys/${record.id}`, adminToken())).status).toBe(200);
    cacheKeys(record.prefix, [{ ...record, ownerLimited: false }], 60, Date.now());
    const refused = await api("GET", "/api/v1/usage/stats", { "X-API-Key": key });
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe("API_KEY_INACTIVE");
  });
});

describe("last_used_at", () => {
  it("N calls write nothing to api_keys until the limiter's alarm runs; then last_used_at is set", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    const before = await keyRow(record.id);
    const started = Date.now();
    await callProduct(product.pathPrefix, key, 5);
    expect(await keyRow(record.id)).toEqual(before);
    expect(before!.last_used_at).toBeNull();

    expect(await runDurableObjectAlarm(limiter(`key:${record.id}`))).toBe(true);
    const after = (await keyRow(record.id))!;
    const lastUsed = Date.parse(String(after.last_used_at));
    expect(lastUsed).toBeGreaterThanOrEqual(started - 1000);
    expect(lastUsed).toBeLessThanOrEqual(Date.now());
    expect({ ...after, last_used_at: null }).toEqual(before);

    const shown = await api("GET", `/api/v1/keys/${record.id}`, adminToken());
    expect(shown.body.lastUsedAt).toBe(after.last_used_at);
  });
});
