import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { app } from "../../src/app";
import { generateKey } from "../../src/auth/key-format";
import { setCredentialState } from "../../src/limits/client";
import { GATEWAY, createKey, createProduct, json } from "../helpers/harness";
import { limiter, setClock, storedCounters } from "../helpers/limiter";
import { stubOrigin } from "../helpers/origin";

// SPEC section 5: failed authentications are counted per CF-Connecting-IP;
// past AUTH_FAILURE_LIMIT_PER_MINUTE (3 here) the address gets 429
// AUTH_THROTTLED without a storage lookup.
const LIMIT = 3;
const throttledEnv = { ...env, AUTH_FAILURE_LIMIT_PER_MINUTE: String(LIMIT) };

let origin: ReturnType<typeof stubOrigin>;
afterEach(() => {
  origin?.restore();
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** An address no other test uses: the throttle memory is per isolate, shared by this file. */
function freshIp(): string {
  const [a, b, c] = crypto.getRandomValues(new Uint8Array(3));
  return `10.${a}.${b}.${c}`;
}

async function callFrom(ip: string, path: string, headers: Record<string, string> = {}) {
  const request = new Request(`${GATEWAY}${path}`, { headers: { "CF-Connecting-IP": ip, ...headers } });
  const response = await app.fetch(request, throttledEnv, createExecutionContext());
  return { response, body: await json(response) };
}

/** A key of valid format that was never issued: 401 API_KEY_PREFIX_NOT_FOUND after a D1 lookup. */
const unknownKey = () => ({ "X-API-Key": generateKey("ilal", "live") });

async function failTimes(ip: string, path: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const { response, body } = await callFrom(ip, path, unknownKey());
    expect(response.status, JSON.stringify(body)).toBe(401);
    expect(body.code).toBe("API_KEY_PREFIX_NOT_FOUND");
  }
}

describe("failed-authentication throttling per client address", () => {
  it("answers 429 AUTH_THROTTLED with Retry-After past the limit, without a D1 lookup, even for a valid key", async () => {
    origin = stubOrigin();
    setClock("2031-07-08T09:15:40.000Z");
    const product = await createProduct();
    const { key } = await createKey();
    const ip = freshIp();
    await failTimes(ip, `${product.pathPrefix}/a`, LIMIT);

    const prepare = vi.spyOn(env.DB, "prepare");
    const { response, body } = await callFrom(ip, `${product.pathPrefix}/a`, { "X-API-Key": key });
    expect(response.status, JSON.stringify(body)).toBe(429);
    expect(body).toMatchObject({ error: "Too Many Requests", code: "AUTH_THROTTLED" });
    expect(response.headers.get("Content-Type")).toBe("application/json");
    expect(response.headers.get("Retry-After")).toBe("20");
    expect(
      prepare.mock.calls.map(([sql]) => sql),
      "D1 statements while throttled",
    ).toEqual([]);
    expect(origin.received).toHaveLength(0);
    expect(await storedCounters(`ip:${ip}`)).toEqual({
      auth_failures: { windowStart: Date.parse("2031-07-08T09:15:00.000Z"), count: LIMIT },
    });
  });

  it("does not throttle another address", async () => {
    origin = stubOrigin();
    setClock("2031-07-08T09:16:10.000Z");
    const product = await createProduct();
    const { key } = await createKey();
    await failTimes(freshIp(), `${product.pathPrefix}/a`, LIMIT);

    const { response, body } = await callFrom(freshIp(), `${product.pathPrefix}/a`, { "X-API-Key": key });
    expect(response.status, JSON.stringify(body)).toBe(200);
  });

  it("lifts the throttle when the calendar minute ends", async () => {
    origin = stubOrigin();
    setClock("2031-07-08T09:17:50.000Z");
    const product = await createProduct();
    const { key } = await createKey();
    const ip = freshIp();
    await failTimes(ip, `${product.pathPrefix}/a`, LIMIT);
    expect((await callFrom(ip, `${product.pathPrefix}/a`, { "X-API-Key": key })).response.status).toBe(429);

    vi.setSystemTime(new Date("2031-07-08T09:18:00.000Z"));
    const { response, body } = await callFrom(ip, `${product.pathPrefix}/a`, { "X-API-Key": key });
    expect(response.status, JSON.stringify(body)).toBe(200);
  });

  it("counts neither missing credentials nor 403 refusals after authentication", async () => {
    origin = stubOrigin();
    setClock("2031-07-08T09:19:05.000Z");
    const product = await createProduct();
    const forbidden = await createProduct();
    const { key } = await createKey({ products: [product.slug] });
    const ip = freshIp();
    for (let i = 0; i < LIMIT + 1; i++) {
      expect((await callFrom(ip, `${product.pathPrefix}/a`)).body.code).toBe("AUTH_MISSING");
      expect((await callFrom(ip, `${forbidden.pathPrefix}/a`, { "X-API-Key": key })).body.code).toBe("API_KEY_PRODUCT_FORBIDDEN");
    }

    const { response, body } = await callFrom(ip, `${product.pathPrefix}/a`, { "X-API-Key": key });
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(await storedCounters(`ip:${ip}`), "no failure was counted").toEqual({});
  });

  it("counts a revoked key's 401 as a failed authentication", async () => {
    origin = stubOrigin();
    setClock("2031-07-08T09:20:05.000Z");
    const product = await createProduct();
    const { key: revoked, record } = await createKey();
    const { key: good } = await createKey();
    await setCredentialState(env, `key:${record.id}`, { status: "revoked", notAfter: null });
    const ip = freshIp();
    for (let i = 0; i < LIMIT; i++) {
      expect((await callFrom(ip, `${product.pathPrefix}/a`, { "X-API-Key": revoked })).body.code).toBe("API_KEY_INACTIVE");
    }
    expect((await callFrom(ip, `${product.pathPrefix}/a`, { "X-API-Key": good })).body.code).toBe("AUTH_THROTTLED");
  });

  it("throttles an IPv6 client by its /64, whichever address in it is used", async () => {
    origin = stubOrigin();
    setClock("2031-07-08T09:21:05.000Z");
    const product = await createProduct();
    const { key } = await createKey();
    const [a, b] = crypto.getRandomValues(new Uint16Array(2));
    const net = `2001:db8:${a!.toString(16)}:${b!.toString(16)}`;
    for (let i = 1; i <= LIMIT; i++) {
      expect((await callFrom(`${net}::${i}`, `${product.pathPrefix}/a`, unknownKey())).response.status).toBe(401);
    }
    const { response, body } = await callFrom(`${net}:ffff:ffff:ffff:ffff`, `${product.pathPrefix}/a`, { "X-API-Key": key });
    expect(response.status, JSON.stringify(body)).toBe(429);
    expect(body.code).toBe("AUTH_THROTTLED");
  });

  it("learns a throttle recorded by another isolate on this isolate's next failure from that address", async () => {
    origin = stubOrigin();
    setClock("2031-07-08T09:22:05.000Z");
    const product = await createProduct();
    const { key } = await createKey();
    const ip = freshIp();
    // Another isolate's failures reach the same object, not this isolate's memory.
    for (let i = 0; i < LIMIT; i++) await limiter(`ip:${ip}`).recordAuthFailure(LIMIT);

    expect((await callFrom(ip, `${product.pathPrefix}/a`, { "X-API-Key": key })).response.status, "not known here yet").toBe(200);
    expect((await callFrom(ip, `${product.pathPrefix}/a`, unknownKey())).response.status).toBe(401);
    const { response, body } = await callFrom(ip, `${product.pathPrefix}/a`, { "X-API-Key": key });
    expect(response.status, JSON.stringify(body)).toBe(429);
    expect((await storedCounters(`ip:${ip}`)).auth_failures?.count).toBe(LIMIT + 1);
  });
});
