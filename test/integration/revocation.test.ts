import { abortAllDurableObjects } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { KeyRecord } from "../../src/db/keys";
import { revokeUserTokens, syncKeyState, voidUserTokensBefore } from "../../src/limits/client";
import { limiterNames } from "../../src/limits/names";
import type { LimitCheck } from "../../src/limits/windows";
import { call, createKey, createProduct, json } from "../helpers/harness";
import { expectNoLimitHeaders, limiter, storedCounters } from "../helpers/limiter";
import { stubOrigin } from "../helpers/origin";

// SPEC section 5: revocation and deactivation take effect on the very next
// request, even while the key's row is cached in the isolate, because every
// request consults the key's Durable Object anyway.

let origin: ReturnType<typeof stubOrigin>;
afterEach(() => {
  origin?.restore();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A product and a key whose row is now cached in this isolate (one successful call). */
async function warmKey() {
  const product = await createProduct();
  const { key, record } = await createKey();
  const warm = await call(`${product.pathPrefix}/a`, { headers: { "X-API-Key": key } });
  expect(warm.status, JSON.stringify(await json(warm))).toBe(200);
  return { product, key, record };
}

/** What an admin's edit writes to D1 (the keys API does this, then tells the object). */
async function updateKeyRow(id: string, columns: { status?: KeyRecord["status"]; grace_until?: string }): Promise<void> {
  const names = Object.keys(columns);
  await env.DB.prepare(`UPDATE api_keys SET ${names.map((name) => `${name} = ?`).join(", ")} WHERE id = ?`)
    .bind(...Object.values(columns), id)
    .run();
}

/** Calls the gateway, recording every D1 statement prepared meanwhile. */
async function callCountingD1(path: string, key: string) {
  const prepare = vi.spyOn(env.DB, "prepare");
  const response = await call(path, { headers: { "X-API-Key": key } });
  const statements = prepare.mock.calls.map(([sql]) => sql);
  prepare.mockRestore();
  return { response, body: await json(response), statements };
}

describe("revocation and deactivation through the key's Durable Object", () => {
  it("refuses a revoked key with 401 API_KEY_INACTIVE on the very next request, without a D1 query", async () => {
    origin = stubOrigin();
    const { product, key, record } = await warmKey();

    await updateKeyRow(record.id, { status: "revoked" });
    await limiter(`key:${record.id}`).setKeyState(record.id, { status: "revoked", notAfter: null });

    const { response, body, statements } = await callCountingD1(`${product.pathPrefix}/a`, key);
    expect(response.status, JSON.stringify(body)).toBe(401);
    expect(body.code).toBe("API_KEY_INACTIVE");
    expect(response.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    expectNoLimitHeaders(response);
    expect(statements, "D1 statements on the refused request").toEqual([]);
    expect(origin.received, "only the warm-up call reached the origin").toHaveLength(1);
    expect((await storedCounters(`key:${record.id}`)).day?.count, "the refused call was not counted").toBe(1);
  });

  it("refuses a deactivated key at once and accepts it again at once when reactivated", async () => {
    origin = stubOrigin();
    const { product, key, record } = await warmKey();

    await updateKeyRow(record.id, { status: "inactive" });
    await syncKeyState(env, { ...record, status: "inactive" });
    const refused = await callCountingD1(`${product.pathPrefix}/a`, key);
    expect(refused.response.status, JSON.stringify(refused.body)).toBe(401);
    expect(refused.body.code).toBe("API_KEY_INACTIVE");
    expect(refused.statements).toEqual([]);

    await updateKeyRow(record.id, { status: "active" });
    await syncKeyState(env, { ...record, status: "active" });
    const accepted = await callCountingD1(`${product.pathPrefix}/a`, key);
    expect(accepted.response.status, JSON.stringify(accepted.body)).toBe(200);
    expect(accepted.statements).toEqual([]);
    expect(origin.received).toHaveLength(2);
  });

  it("refuses a rotated key with 401 API_KEY_EXPIRED once its grace has ended, without a D1 query", async () => {
    origin = stubOrigin();
    const { product, key, record } = await warmKey();
    const graceUntil = new Date(Date.now() + 10_000).toISOString();

    await updateKeyRow(record.id, { grace_until: graceUntil });
    await syncKeyState(env, { ...record, graceUntil });
    const during = await callCountingD1(`${product.pathPrefix}/a`, key);
    expect(during.response.status, `inside the grace: ${JSON.stringify(during.body)}`).toBe(200);

    // 15 s later: past the grace, still inside the 30 s key cache.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.parse(graceUntil) + 5_000);
    const after = await callCountingD1(`${product.pathPrefix}/a`, key);
    expect(after.response.status, JSON.stringify(after.body)).toBe(401);
    expect(after.body.code).toBe("API_KEY_EXPIRED");
    expect(after.statements).toEqual([]);
    expect(origin.received).toHaveLength(2);
  });

  it("refuses a key whose grace end is already past when the object is told (rotation without grace)", async () => {
    origin = stubOrigin();
    const { product, key, record } = await warmKey();
    await limiter(`key:${record.id}`).setKeyState(record.id, { status: "active", notAfter: Date.now() - 1 });
    const { response, body, statements } = await callCountingD1(`${product.pathPrefix}/a`, key);
    expect(response.status, JSON.stringify(body)).toBe(401);
    expect(body.code).toBe("API_KEY_EXPIRED");
    expect(statements).toEqual([]);
  });

  it("answers 401 API_KEY_INACTIVE rather than a 403 when a revoked key calls a product it may not use", async () => {
    origin = stubOrigin();
    const allowed = await createProduct();
    const other = await createProduct();
    const { key, record } = await createKey({ products: [allowed.slug] });
    expect((await call(`${allowed.pathPrefix}/a`, { headers: { "X-API-Key": key } })).status).toBe(200);
    await limiter(`key:${record.id}`).setKeyState(record.id, { status: "revoked", notAfter: null });
    const response = await call(`${other.pathPrefix}/a`, { headers: { "X-API-Key": key } });
    expect(response.status).toBe(401);
    expect((await json(response)).code).toBe("API_KEY_INACTIVE");
  });

  it("keeps the revocation in storage across the object's eviction", async () => {
    origin = stubOrigin();
    const { product, key, record } = await warmKey();
    await limiter(`key:${record.id}`).setKeyState(record.id, { status: "revoked", notAfter: null });

    await abortAllDurableObjects();

    expect(await limiter(`key:${record.id}`).keyState(record.id)).toMatchObject({ status: "revoked", notAfter: null });
    const response = await call(`${product.pathPrefix}/a`, { headers: { "X-API-Key": key } });
    expect(response.status).toBe(401);
    expect((await json(response)).code).toBe("API_KEY_INACTIVE");
  });

  it("derives the object's state from a key row: status, and the earlier of expiry and grace end", async () => {
    const { record } = await createKey({
      status: "inactive",
      expiresAt: "2031-01-01T00:00:00.000Z",
      graceUntil: "2030-06-01T00:00:00.000Z",
    });
    await syncKeyState(env, record);
    expect(await limiter(`key:${record.id}`).keyState(record.id)).toMatchObject({ status: "inactive", notAfter: Date.parse("2030-06-01T00:00:00.000Z") });
  });
});

describe("a user's grant version in their Durable Object", () => {
  const check = (grantVersion: number | undefined, consume = true): LimitCheck => ({
    requestId: crypto.randomUUID(),
    limitPerMinute: 10,
    limitPerDay: 100,
    consume,
    ...(grantVersion === undefined ? {} : { grantVersion }),
  });

  it("refuses a token older than the minimum as revoked, before any counting, whether it consumes or only reports", async () => {
    const name = limiterNames.user(crypto.randomUUID());
    expect((await limiter(name).check(check(1_000))).outcome).toBe("admitted");
    await voidUserTokensBefore(env, name.slice("user:".length), 2_000);

    expect(await limiter(name).check(check(1_999))).toEqual({ outcome: "revoked" });
    expect(await limiter(name).check(check(1_999, false))).toEqual({ outcome: "revoked" });
    expect((await storedCounters(name)).minute?.count, "only the first call counted").toBe(1);
    expect((await limiter(name).check(check(2_000))).outcome, "a token of the new version").toBe("admitted");
    expect((await limiter(name).check(check(undefined))).outcome, "a check without a version (an API key's)").toBe("admitted");
  });

  it("never lowers the minimum, and keeps it across the object's eviction", async () => {
    const userId = crypto.randomUUID();
    const name = limiterNames.user(userId);
    await voidUserTokensBefore(env, userId, 5_000);
    await voidUserTokensBefore(env, userId, 3_000);

    await abortAllDurableObjects();

    expect((await limiter(name).check(check(4_999))).outcome).toBe("revoked");
    expect((await limiter(name).check(check(5_000))).outcome).toBe("admitted");
  });

  it("revokes a deleted user's object whatever version the token carries", async () => {
    const userId = crypto.randomUUID();
    await revokeUserTokens(env, userId);
    expect(await limiter(limiterNames.user(userId)).check(check(Date.now()))).toEqual({ outcome: "revoked" });
  });
});
