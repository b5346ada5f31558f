import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../../src/env";
import { limiterNames } from "../../src/limits/names";
import type { RateLimiter } from "../../src/limits/rate-limiter";
import { createKey, createProduct, json, send } from "../helpers/harness";
import { signToken, uniqueSubject } from "../helpers/jwt";
import { expectLimitHeaders, expectNoLimitHeaders, limiter, setClock, storedCounters } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";

// SPEC section 5. Clocks are set in the future so the objects' usage-flush
// alarms (now + 30 s) never fire while a test runs.
const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

const origin = useOrigin();
afterEach(() => {
  vi.useRealTimers();
});

function windowsOf(now: number) {
  return { minute: now - (now % MINUTE_MS), day: now - (now % DAY_MS) };
}

describe("counters: one Durable Object per credential, both windows together", () => {
  it("counts an admitted call in the minute and day rows of the key's own object", async () => {
    const now = setClock("2031-05-06T07:08:09.250Z");
    const product = await createProduct();
    const { key, record } = await createKey();
    const { record: other } = await createKey();

    const response = await send(`${product.pathPrefix}/a`, { key: key });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(200);

    const { minute, day } = windowsOf(now);
    expect(await storedCounters(`key:${record.id}`)).toEqual({
      minute: { windowStart: minute, count: 1 },
      day: { windowStart: day, count: 1 },
      credits: { windowStart: day, count: 1 }, // credits used today: the call's cost, counted for usage stats with or without a balance
    });
    expect(await storedCounters(`key:${other.id}`), "another key's object").toEqual({});
  });

  it("refuses with DAILY_QUOTA_EXCEEDED when the day is full though the minute has room, consuming neither", async () => {
    setClock("2031-05-06T10:20:30.000Z");
    const product = await createProduct();
    const { key, record } = await createKey({ rateLimitPerMinute: 10, rateLimitPerDay: 3 });
    for (let i = 0; i < 3; i++) expect((await send(`${product.pathPrefix}/a`, { key: key })).status).toBe(200);

    const response = await send(`${product.pathPrefix}/a`, { key: key });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(429);
    expect(body.code).toBe("DAILY_QUOTA_EXCEEDED");
    // 10:20:30 → 13 h 39 min 30 s to midnight UTC.
    expect(response.headers.get("Retry-After")).toBe("49170");
    expectLimitHeaders(response, { limit: 10, remaining: 7, reset: 30, dailyLimit: 3, dailyRemaining: 0, dailyReset: 49170 });

    const counters = await storedCounters(`key:${record.id}`);
    expect([counters.minute?.count, counters.day?.count], "minute and day counts").toEqual([3, 3]);
    expect(origin.received).toHaveLength(3);
  });

  it("refuses with RATE_LIMIT_EXCEEDED when the minute is full though the day has room, consuming neither", async () => {
    setClock("2031-05-06T10:20:09.000Z");
    const product = await createProduct();
    const { key, record } = await createKey({ rateLimitPerMinute: 2, rateLimitPerDay: 100 });
    for (let i = 0; i < 2; i++) expect((await send(`${product.pathPrefix}/a`, { key: key })).status).toBe(200);

    const response = await send(`${product.pathPrefix}/a`, { key: key });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(429);
    expect(body.code).toBe("RATE_LIMIT_EXCEEDED");
    expect(response.headers.get("Retry-After")).toBe("51");
    expectLimitHeaders(response, { limit: 2, remaining: 0, reset: 51, dailyLimit: 100, dailyRemaining: 98, dailyReset: 49191 });

    const counters = await storedCounters(`key:${record.id}`);
    expect([counters.minute?.count, counters.day?.count], "minute and day counts").toEqual([2, 2]);
    expect(origin.received).toHaveLength(2);
  });

  it("answers DAILY_QUOTA_EXCEEDED with the wait until midnight UTC when both windows are exhausted", async () => {
    setClock("2031-05-06T10:20:30.000Z");
    const product = await createProduct();
    const { key } = await createKey({ rateLimitPerMinute: 2, rateLimitPerDay: 2 });
    for (let i = 0; i < 2; i++) expect((await send(`${product.pathPrefix}/a`, { key: key })).status).toBe(200);

    const response = await send(`${product.pathPrefix}/a`, { key: key });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(429);
    expect(body.code).toBe("DAILY_QUOTA_EXCEEDED");
    expect(response.headers.get("Retry-After")).toBe("49170");
    expect(response.headers.get("X-RateLimit-Remaining")).toBe("0");
    expect(response.headers.get("X-RateLimit-Daily-Remaining")).toBe("0");
  });

  it("uses the product's limits when the key has none", async () => {
    setClock("2031-05-06T10:20:30.000Z");
    const product = await createProduct({ rateLimitPerMinute: 1, rateLimitPerDay: 50 });
    const { key } = await createKey();
    expect((await send(`${product.pathPrefix}/a`, { key: key })).status).toBe(200);
    const response = await send(`${product.pathPrefix}/a`, { key: key });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(429);
    expectLimitHeaders(response, { limit: 1, remaining: 0, reset: 30, dailyLimit: 50, dailyRemaining: 49, dailyReset: 49170 });
  });

  it("counts a JWT caller in its subject's own object, with the product's limits", async () => {
    const product = await createProduct({ rateLimitPerMinute: 2, rateLimitPerDay: 20 });
    const subject = uniqueSubject();
    const headers = { Authorization: `Bearer ${await signToken({ sub: subject, products: [product.slug] })}` };
    for (let i = 0; i < 2; i++) {
      const response = await send(`${product.pathPrefix}/a`, { headers });
      expect(response.status, JSON.stringify(await json(response))).toBe(200);
    }
    const refused = await send(`${product.pathPrefix}/a`, { headers });
    expect(refused.status).toBe(429);
    expect((await json(refused)).code).toBe("RATE_LIMIT_EXCEEDED");
    const counters = await storedCounters(limiterNames.user(subject));
    expect([counters.minute?.count, counters.day?.count]).toEqual([2, 2]);
  });

  it("keeps the counts when the object is evicted and restarted", async () => {
    setClock("2031-05-06T10:20:30.000Z");
    const product = await createProduct();
    const { key, record } = await createKey({ rateLimitPerMinute: 5, rateLimitPerDay: 100 });
    for (let i = 0; i < 3; i++) expect((await send(`${product.pathPrefix}/a`, { key: key })).status).toBe(200);
    const before = await runInDurableObject(limiter(`key:${record.id}`), (instance) => instance);

    await abortAllDurableObjects();

    const response = await send(`${product.pathPrefix}/a`, { key: key });
    expect(response.status).toBe(200);
    // A stub from before the abort stays broken; a fresh one reaches the restarted object.
    expect(await runInDurableObject(limiter(`key:${record.id}`), (instance) => instance), "a new instance").not.toBe(before);
    expect(response.headers.get("X-RateLimit-Remaining")).toBe("1");
    expect(response.headers.get("X-RateLimit-Daily-Remaining")).toBe("96");
    expect((await storedCounters(`key:${record.id}`)).minute?.count).toBe(4);
  });
});

describe("usage copied to D1 by the object's alarm", () => {
  it("writes today's count to usage_daily and the key's last_used_at when the flush alarm runs", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    for (let i = 0; i < 2; i++) expect((await send(`${product.pathPrefix}/a`, { key: key })).status).toBe(200);
    const lastCall = Date.now();

    expect(await runDurableObjectAlarm(limiter(`key:${record.id}`)), "an alarm was scheduled").toBe(true);

    const today = new Date().toISOString().slice(0, 10);
    const usage = await env.DB.prepare("SELECT day, count FROM usage_daily WHERE key_id = ?").bind(record.id).all();
    expect(usage.results).toEqual([{ day: today, count: 2 }]);
    const row = await env.DB.prepare("SELECT last_used_at FROM api_keys WHERE id = ?").bind(record.id).first<{ last_used_at: string }>();
    expect(Math.abs(Date.parse(row!.last_used_at) - lastCall), row!.last_used_at).toBeLessThan(5_000);
  });

  it("files a keygate user's usage under their limiter name and writes nothing to api_keys for it", async () => {
    const product = await createProduct();
    const subject = uniqueSubject();
    const headers = { Authorization: `Bearer ${await signToken({ sub: subject, products: ["*"] })}` };
    for (let i = 0; i < 2; i++) expect((await send(`${product.pathPrefix}/a`, { headers })).status).toBe(200);
    const name = limiterNames.user(subject);

    const statements = await runInDurableObject(limiter(name), async (instance, state) => {
      const prepare = vi.spyOn((instance as unknown as { env: Env }).env.DB, "prepare");
      await state.storage.deleteAlarm(); // run the flush now, and only once
      await (instance as RateLimiter).alarm();
      const sql = prepare.mock.calls.map(([statement]) => statement);
      prepare.mockRestore();
      return sql;
    });

    expect(statements.filter((sql) => /api_keys/.test(sql))).toEqual([]);
    const today = new Date().toISOString().slice(0, 10);
    const usage = await env.DB.prepare("SELECT day, count FROM usage_daily WHERE key_id = ?").bind(name).all();
    expect(usage.results).toEqual([{ day: today, count: 2 }]);
  });
});

describe("exactness under concurrency", () => {
  it("admits exactly 37 of 200 concurrent calls through the gateway, and the origin sees exactly 37", async () => {
    // A frozen clock: all 200 calls fall in one minute window.
    setClock("2031-05-07T08:00:20.000Z");
    const product = await createProduct();
    const { key, record } = await createKey({ rateLimitPerMinute: 37, rateLimitPerDay: 1000 });

    const responses = await Promise.all(Array.from({ length: 200 }, () => send(`${product.pathPrefix}/burst`, { key })));
    const results = await Promise.all(responses.map(async (response) => ({ response, body: await json(response) })));

    const admitted = results.filter(({ response }) => response.status === 200);
    const refused = results.filter(({ response }) => response.status === 429);
    expect(admitted).toHaveLength(37);
    expect(refused).toHaveLength(163);
    expect(new Set(refused.map(({ body }) => body.code))).toEqual(new Set(["RATE_LIMIT_EXCEEDED"]));
    // Each admitted call saw a distinct count: the object serialized them.
    const remaining = admitted.map(({ response }) => Number(response.headers.get("X-RateLimit-Remaining"))).sort((a, b) => a - b);
    expect(remaining).toEqual(Array.from({ length: 37 }, (_, i) => i));
    expect(origin.received).toHaveLength(37);
    const counters = await storedCounters(`key:${record.id}`);
    expect([counters.minute?.count, counters.day?.count]).toEqual([37, 37]);
  });

  it("admits exactly the limit of concurrent check() calls made straight to the object", async () => {
    const name = `key:${crypto.randomUUID()}`;
    const stub = limiter(name);
    const decisions = await Promise.all(
      Array.from({ length: 120 }, () => stub.check({ requestId: crypto.randomUUID(), limitPerMinute: 1_000, limitPerDay: 45, consume: true })),
    );
    const outcomes = decisions.map((decision) => decision.outcome);
    expect(outcomes.filter((outcome) => outcome === "admitted")).toHaveLength(45);
    expect(outcomes.filter((outcome) => outcome === "daily_quota_exceeded")).toHaveLength(75);
    expect((await storedCounters(name)).day?.count).toBe(45);
  });
});

describe("headers on every authenticated response", () => {
  it("puts the X-RateLimit-* headers and the IETF RateLimit-Policy / RateLimit pair on a success", async () => {
    setClock("2031-05-06T12:34:59.500Z");
    const product = await createProduct();
    const { key } = await createKey({ rateLimitPerMinute: 7, rateLimitPerDay: 70 });
    const response = await send(`${product.pathPrefix}/a`, { key: key });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(200);
    // 12:34:59.500: half a second left in the minute rounds up to 1; 11 h 25 min 0.5 s left today.
    expectLimitHeaders(response, { limit: 7, remaining: 6, reset: 1, dailyLimit: 70, dailyRemaining: 69, dailyReset: 41101 });
  });

  it("puts the headers on a 403 after authentication, which consumes nothing", async () => {
    setClock("2031-05-06T12:00:15.000Z");
    const product = await createProduct();
    const forbidden = await createProduct();
    const { key, record } = await createKey({ products: [product.slug], rateLimitPerMinute: 5, rateLimitPerDay: 50 });
    expect((await send(`${product.pathPrefix}/a`, { key: key })).status).toBe(200);

    const response = await send(`${forbidden.pathPrefix}/a`, { key: key });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(403);
    expect(body.code).toBe("API_KEY_PRODUCT_FORBIDDEN");
    expectLimitHeaders(response, { limit: 5, remaining: 4, reset: 45, dailyLimit: 50, dailyRemaining: 49, dailyReset: 43185 });
    const counters = await storedCounters(`key:${record.id}`);
    expect([counters.minute?.count, counters.day?.count]).toEqual([1, 1]);
    expect(origin.received).toHaveLength(1);
  });

  it("puts no limit headers on a 401 before authentication", async () => {
    const product = await createProduct();
    const response = await send(`${product.pathPrefix}/a`);
    expect(response.status).toBe(401);
    expectNoLimitHeaders(response);
  });
});

describe("UTC window boundaries under a controlled clock", () => {
  it("reaches Date.now() inside the object with the faked clock", async () => {
    const now = setClock("2032-02-03T04:05:06.789Z");
    expect(await runInDurableObject(limiter(`key:${crypto.randomUUID()}`), () => Date.now())).toBe(now);
  });

  it("resets the minute at :00 — Reset 1 at 12:34:59.500, a fresh window at 12:35:00", async () => {
    setClock("2031-06-01T12:34:59.500Z");
    const product = await createProduct();
    const { key, record } = await createKey({ rateLimitPerMinute: 1, rateLimitPerDay: 100 });
    expect((await send(`${product.pathPrefix}/a`, { key: key })).headers.get("X-RateLimit-Reset")).toBe("1");

    const refused = await send(`${product.pathPrefix}/a`, { key: key });
    const refusedBody = await json(refused);
    expect(refused.status, JSON.stringify(refusedBody)).toBe(429);
    expect(refused.headers.get("Retry-After")).toBe("1");

    vi.setSystemTime(new Date("2031-06-01T12:35:00.000Z"));
    const next = await send(`${product.pathPrefix}/a`, { key: key });
    const nextBody = await json(next);
    expect(next.status, JSON.stringify(nextBody)).toBe(200);
    expect(next.headers.get("X-RateLimit-Reset")).toBe("60");
    expect(next.headers.get("X-RateLimit-Remaining")).toBe("0");
    expect(next.headers.get("X-RateLimit-Daily-Remaining")).toBe("98");
    expect((await storedCounters(`key:${record.id}`)).minute).toEqual({ windowStart: Date.parse("2031-06-01T12:35:00.000Z"), count: 1 });
  });

  it("resets the day at 00:00 UTC — Retry-After 30 at 23:59:30, admitted again at midnight", async () => {
    setClock("2031-06-01T23:59:30.000Z");
    const product = await createProduct();
    const { key, record } = await createKey({ rateLimitPerMinute: 100, rateLimitPerDay: 1 });
    expect((await send(`${product.pathPrefix}/a`, { key: key })).status).toBe(200);

    const refused = await send(`${product.pathPrefix}/a`, { key: key });
    const refusedBody = await json(refused);
    expect(refused.status, JSON.stringify(refusedBody)).toBe(429);
    expect(refusedBody.code).toBe("DAILY_QUOTA_EXCEEDED");
    expect(refused.headers.get("Retry-After")).toBe("30");
    expectLimitHeaders(refused, { limit: 100, remaining: 99, reset: 30, dailyLimit: 1, dailyRemaining: 0, dailyReset: 30 });

    vi.setSystemTime(new Date("2031-06-02T00:00:00.000Z"));
    const next = await send(`${product.pathPrefix}/a`, { key: key });
    const nextBody = await json(next);
    expect(next.status, JSON.stringify(nextBody)).toBe(200);
    expectLimitHeaders(next, { limit: 100, remaining: 99, reset: 60, dailyLimit: 1, dailyRemaining: 0, dailyReset: 86400 });
    expect((await storedCounters(`key:${record.id}`)).day).toEqual({ windowStart: Date.parse("2031-06-02T00:00:00.000Z"), count: 1 });
  });
});
