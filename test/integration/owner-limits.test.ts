import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { cacheKeys } from "../../src/auth/key-cache";
import { applyOwnerLimits } from "../../src/limits/client";
import { adminToken, api, userToken } from "../helpers/api";
import { createKey, createProduct, send, settled } from "../helpers/harness";
import { signToken } from "../helpers/jwt";
import { setClock, storedCounters } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * Owner-level limits (issue 13): an admin sets rateLimitPerMinute /
 * rateLimitPerDay on a user; every call with any of the user's keys, and
 * their JWT, counts against both its own windows and the owner's, in one
 * decision of the owner's object: all or nothing.
 */
useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** Mid-minute, early in the UTC day: no window ends during a test. */
function freezeClock(): void {
  const now = Date.now();
  setClock(new Date(now - (now % 86_400_000) + 3_600_000 + 20_000).toISOString());
}

async function product(overrides = {}) {
  return createProduct({ rateLimitPerMinute: 1000, rateLimitPerDay: 100_000, ...overrides });
}

async function setLimits(userId: string, limits: Record<string, number | null>) {
  const answer = await api("PATCH", `/api/v1/admin/users/${userId}`, adminToken(), limits);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer;
}

describe("owner-level limits", () => {
  it("N concurrent calls spread over the owner's keys admit exactly min(N, owner limit)", async () => {
    freezeClock();
    const { user } = await createUser();
    const p = await product();
    const keys = await Promise.all([0, 1, 2].map(() => createKey({ ownerId: user.id })));
    const answer = await setLimits(user.id, { rateLimitPerDay: 7 });
    expect(answer.body).toMatchObject({ rateLimitPerDay: 7, rateLimitPerMinute: null });

    const responses = await Promise.all(Array.from({ length: 24 }, (_, i) => settled(send(`${p.pathPrefix}/owner`, { key: keys[i % 3]!.key }))));
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(7);
    expect(statuses.filter((status) => status === 429)).toHaveLength(17);
    const refused = responses.find((response) => response.status === 429)!;
    expect(((await refused.json()) as { code: string }).code).toBe("DAILY_QUOTA_EXCEEDED");

    // The owner's object holds the owner's count and each lineage's; the keys' own objects count nothing.
    const counters = await storedCounters(`user:${user.id}`);
    expect(counters["owner:day"]?.count).toBe(7);
    const perKey = keys.map(({ record }) => counters[`lineage:${record.id}:day`]?.count ?? 0);
    expect(perKey.reduce((a, b) => a + b, 0)).toBe(7);
    for (const { record } of keys) expect(await storedCounters(`key:${record.id}`)).toEqual({});
  });

  it("a call refused by the key's own window consumes nothing of the owner's, and the other way round", async () => {
    freezeClock();
    const { user } = await createUser();
    const p = await product();
    const tight = await createKey({ ownerId: user.id, rateLimitPerMinute: 2 });
    const other = await createKey({ ownerId: user.id });
    await setLimits(user.id, { rateLimitPerMinute: 5 });

    const first = [];
    for (let i = 0; i < 4; i++) first.push((await settled(send(`${p.pathPrefix}/owner`, { key: tight.key }))).status);
    expect(first).toEqual([200, 200, 429, 429]);
    let counters = await storedCounters(`user:${user.id}`);
    expect(counters["owner:minute"]?.count).toBe(2);

    const second = [];
    for (let i = 0; i < 5; i++) second.push((await settled(send(`${p.pathPrefix}/owner`, { key: other.key }))).status);
    expect(second).toEqual([200, 200, 200, 429, 429]);
    counters = await storedCounters(`user:${user.id}`);
    expect(counters["owner:minute"]?.count).toBe(5);
    expect(counters[`lineage:${other.record.id}:minute`]?.count).toBe(3);
    expect(counters[`lineage:${tight.record.id}:minute`]?.count).toBe(2);
  });

  it("the user's own JWT counts against the owner's window too", async () => {
    freezeClock();
    const { user } = await createUser();
    const p = await product();
    const { key } = await createKey({ ownerId: user.id });
    await setLimits(user.id, { rateLimitPerDay: 3 });
    const token = { Authorization: `Bearer ${await signToken({ sub: user.id, products: ["*"] })}` };
    const statuses = [];
    for (const headers of [{ "X-API-Key": key }, token, { "X-API-Key": key }, token])
      statuses.push((await settled(send(`${p.pathPrefix}/owner`, { headers: headers }))).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect((await storedCounters(`user:${user.id}`))["owner:day"]?.count).toBe(3);
  });

  it("X-RateLimit-* report the tighter window; RateLimit-Policy lists every policy", async () => {
    freezeClock();
    const { user } = await createUser();
    const p = await product({ rateLimitPerMinute: 50, rateLimitPerDay: 500 });
    const { key } = await createKey({ ownerId: user.id });
    await setLimits(user.id, { rateLimitPerMinute: 10, rateLimitPerDay: 1000 });
    const response = await settled(send(`${p.pathPrefix}/owner`, { key: key }));
    expect(response.status).toBe(200);
    expect(response.headers.get("x-ratelimit-limit")).toBe("10");
    expect(response.headers.get("x-ratelimit-remaining")).toBe("9");
    expect(response.headers.get("x-ratelimit-daily-limit")).toBe("500");
    expect(response.headers.get("x-ratelimit-daily-remaining")).toBe("499");
    expect(response.headers.get("ratelimit-policy")).toBe('"minute";q=50;w=60, "day";q=500;w=86400, "owner-minute";q=10;w=60, "owner-day";q=1000;w=86400');
    expect(response.headers.get("ratelimit")).toMatch(/^"minute";r=49;t=\d+, "day";r=499;t=\d+, "owner-minute";r=9;t=\d+, "owner-day";r=999;t=\d+$/);
  });

  it("calls made before the limit was set count against it (the counts move with the key)", async () => {
    freezeClock();
    const { user } = await createUser();
    const p = await product();
    const { key, record } = await createKey({ ownerId: user.id });
    for (let i = 0; i < 4; i++) expect((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status).toBe(200);
    await setLimits(user.id, { rateLimitPerDay: 5 });
    expect((await storedCounters(`user:${user.id}`))[`lineage:${record.id}:day`]?.count).toBe(4);
    expect((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status).toBe(200);
    expect((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status).toBe(429);

    // Clearing the limits hands the key's counts back to its own object.
    await setLimits(user.id, { rateLimitPerDay: null });
    const own = await storedCounters(`key:${record.id}`);
    expect(own.day?.count).toBe(5);
    expect((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status).toBe(200);
    expect((await storedCounters(`key:${record.id}`)).day?.count).toBe(6);
    const stats = await api("GET", `/api/v1/usage/stats?keyId=${record.id}`, adminToken());
    expect(stats.body.keys[0].day.used).toBe(6);
  });

  it("an isolate whose cached key row predates the limit is answered 'moved' and still counts in the owner's object", async () => {
    freezeClock();
    const { user } = await createUser();
    const p = await product();
    const { key, record } = await createKey({ ownerId: user.id });
    // Cache the row as "no owner limits" in this isolate.
    expect((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status).toBe(200);
    // As another isolate's admin call would: D1 and the objects change, this isolate's cache does not.
    await env.DB.prepare("UPDATE users SET rate_limit_per_day = 3 WHERE id = ?").bind(user.id).run();
    await applyOwnerLimits(env, user.id, { limitPerMinute: null, limitPerDay: 3 }, [record.lineageId]);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    expect((await storedCounters(`user:${user.id}`))["owner:day"]?.count).toBe(3);
  });

  it("a user's new key inherits the owner's limit: creating keys does not escape it", async () => {
    freezeClock();
    const { user } = await createUser();
    const p = await product();
    await setLimits(user.id, { rateLimitPerDay: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const created = await api("POST", "/api/v1/keys", await userToken(user), { name: `fresh-${i}` });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      statuses.push((await settled(send(`${p.pathPrefix}/owner`, { key: created.body.key }))).status);
    }
    expect(statuses).toEqual([200, 200, 429]);
  });

  it("deleting a limited owner revokes their keys at once, also in an isolate whose cached row still counts them in the owner's object", async () => {
    const { user } = await createUser();
    const p = await product();
    const { key, record } = await createKey({ ownerId: user.id });
    await setLimits(user.id, { rateLimitPerDay: 100 });
    expect((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status).toBe(200);
    expect((await api("DELETE", `/api/v1/admin/users/${user.id}`, adminToken())).status).toBe(200);
    // Another isolate still holds the row as it was: active, counted in the owner's object.
    cacheKeys(record.prefix, [{ ...record, ownerLimited: true }], 60, Date.now());
    const refused = await settled(send(`${p.pathPrefix}/owner`, { key: key }));
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { code: string }).code).toBe("API_KEY_INACTIVE");
  });

  it("a key an admin gives to another owner counts where that owner's keys count, in one object call", async () => {
    freezeClock();
    const { user: limitedOwner } = await createUser();
    const { user: freeOwner } = await createUser();
    const p = await product();
    const { key, record } = await createKey({ ownerId: limitedOwner.id });
    await setLimits(limitedOwner.id, { rateLimitPerDay: 2 });
    for (let i = 0; i < 2; i++) expect((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status).toBe(200);
    expect((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status).toBe(429);

    const moved = await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { ownerId: freeOwner.id });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    // The new owner has no limits: the key counts in its own lineage object again, not redirected through the old owner's.
    expect((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status).toBe(200);
    expect((await storedCounters(`key:${record.id}`)).day?.count).toBe(1);
    expect((await env.RATE_LIMITER.getByName(`key:${record.id}`).usage()).movedToOwner).toBe(false);
    expect((await storedCounters(`user:${limitedOwner.id}`))["owner:day"]?.count).toBe(2);

    // Given to a limited owner, its calls count against that owner's window from then on.
    const { user: strictOwner } = await createUser();
    await setLimits(strictOwner.id, { rateLimitPerDay: 2 });
    expect((await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { ownerId: strictOwner.id })).status).toBe(200);
    expect((await storedCounters(`user:${strictOwner.id}`))["owner:day"]?.count).toBe(1);
    expect((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status).toBe(200);
    expect((await settled(send(`${p.pathPrefix}/owner`, { key: key }))).status).toBe(429);
  });

  it("refuses owner limits out of range and from non-admins", async () => {
    const { user } = await createUser();
    const bad = await api("PATCH", `/api/v1/admin/users/${user.id}`, adminToken(), { rateLimitPerDay: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("VALIDATION_FAILED");
    const self = await api("PATCH", `/api/v1/admin/users/${user.id}`, await userToken(user), { rateLimitPerDay: 100 });
    expect(self.status).toBe(403);
    const row = await env.DB.prepare("SELECT rate_limit_per_day FROM users WHERE id = ?").bind(user.id).first<{ rate_limit_per_day: number | null }>();
    expect(row?.rate_limit_per_day).toBeNull();
  });
});

describe("maxActiveKeys", () => {
  const keyCount = async (ownerId: string) =>
    (await env.DB.prepare("SELECT count(*) AS n FROM api_keys WHERE owner_id = ?").bind(ownerId).first<{ n: number }>())!.n;
  const createAudits = async () => (await env.DB.prepare("SELECT count(*) AS n FROM audit_log WHERE action = 'key.create'").first<{ n: number }>())!.n;

  it("concurrent creates at the cap: exactly the cap succeed, the rest 409 and write nothing", async () => {
    const { user } = await createUser();
    await setLimits(user.id, { maxActiveKeys: 3 });
    const auditsBefore = await createAudits();
    const answers = await Promise.all(Array.from({ length: 7 }, (_, i) => api("POST", "/api/v1/keys", adminToken(), { name: `cap-${i}`, ownerId: user.id })));
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses).toEqual([201, 201, 201, 409, 409, 409, 409]);
    const refusal = answers.find((answer) => answer.status === 409)!;
    expect(refusal.body).toMatchObject({ code: "CONFLICT", field: "maxActiveKeys" });
    expect(await keyCount(user.id)).toBe(3);
    expect((await createAudits()) - auditsBefore).toBe(3);
  });

  it("a revoked key frees its place; a rotation at the cap is allowed (the replacement takes the old key's place)", async () => {
    const { user } = await createUser();
    await setLimits(user.id, { maxActiveKeys: 1 });
    const first = await api("POST", "/api/v1/keys", await userToken(user), { name: "only" });
    expect(first.status).toBe(201);
    expect((await api("POST", "/api/v1/keys", await userToken(user), { name: "second" })).status).toBe(409);
    const rotated = await api("POST", `/api/v1/keys/${first.body.id}/rotate`, await userToken(user), { gracePeriodSeconds: 60 });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201);
    expect((await api("DELETE", `/api/v1/keys/${rotated.body.id}`, await userToken(user))).status).toBe(200);
    expect((await api("POST", "/api/v1/keys", await userToken(user), { name: "again" })).status).toBe(201);
  });
});
