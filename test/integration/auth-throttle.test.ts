import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateKey } from "../../src/auth/key-format";
import { setCredentialState } from "../../src/limits/client";
import { expectForwarded, expectRefusal } from "../helpers/expect";
import { createKey, createProduct, randomClientIp, send } from "../helpers/harness";
import { limiter, setClock, storedCounters } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";

// SPEC section 5: failed authentications are counted per CF-Connecting-IP;
// past AUTH_FAILURE_LIMIT_PER_MINUTE (3 here) the address gets 429
// AUTH_THROTTLED without a storage lookup.
const LIMIT = 3;
/** One env for every call of this file, as one deployment (send's `env`; the throttle memory is per isolate, shared by the file). */
const throttled = { AUTH_FAILURE_LIMIT_PER_MINUTE: String(LIMIT) };

useOrigin();
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A key of valid format that was never issued: 401 API_KEY_PREFIX_NOT_FOUND after a D1 lookup. */
const unknownKey = () => generateKey("ilal", "live");

async function failTimes(ip: string, path: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const key = unknownKey();
    await expectRefusal(await send(path, { key, ip, env: throttled }), 401, "API_KEY_PREFIX_NOT_FOUND", { presented: key });
  }
}

describe("failed-authentication throttling per client address", () => {
  it("answers 429 AUTH_THROTTLED with Retry-After past the limit, without a D1 lookup, even for a valid key", async () => {
    setClock("2031-07-08T09:15:40.000Z");
    const product = await createProduct();
    const { key } = await createKey();
    const ip = randomClientIp();
    await failTimes(ip, `${product.pathPrefix}/a`, LIMIT);

    const prepare = vi.spyOn(env.DB, "prepare");
    const response = await send(`${product.pathPrefix}/a`, { key, ip, env: throttled });
    const body = await expectRefusal(response, 429, "AUTH_THROTTLED", { presented: key });
    expect(body.error).toBe("Too Many Requests");
    expect(response.headers.get("Content-Type")).toBe("application/json");
    expect(response.headers.get("Retry-After")).toBe("20");
    expect(
      prepare.mock.calls.map(([sql]) => sql),
      "D1 statements while throttled",
    ).toEqual([]);
    expect(await storedCounters(`ip:${ip}`)).toEqual({
      auth_failures: { windowStart: Date.parse("2031-07-08T09:15:00.000Z"), count: LIMIT },
    });
  });

  it("does not throttle another address", async () => {
    setClock("2031-07-08T09:16:10.000Z");
    const product = await createProduct();
    const { key, record } = await createKey();
    await failTimes(randomClientIp(), `${product.pathPrefix}/a`, LIMIT);

    await expectForwarded(await send(`${product.pathPrefix}/a`, { key, ip: randomClientIp(), env: throttled }), { keyId: record.id });
  });

  it("lifts the throttle when the calendar minute ends", async () => {
    setClock("2031-07-08T09:17:50.000Z");
    const product = await createProduct();
    const { key, record } = await createKey();
    const ip = randomClientIp();
    await failTimes(ip, `${product.pathPrefix}/a`, LIMIT);
    await expectRefusal(await send(`${product.pathPrefix}/a`, { key, ip, env: throttled }), 429, "AUTH_THROTTLED", { presented: key });

    vi.setSystemTime(new Date("2031-07-08T09:18:00.000Z"));
    await expectForwarded(await send(`${product.pathPrefix}/a`, { key, ip, env: throttled }), { keyId: record.id });
  });

  it("counts neither missing credentials nor 403 refusals after authentication", async () => {
    setClock("2031-07-08T09:19:05.000Z");
    const product = await createProduct();
    const forbidden = await createProduct();
    const { key, record } = await createKey({ products: [product.slug] });
    const ip = randomClientIp();
    for (let i = 0; i < LIMIT + 1; i++) {
      await expectRefusal(await send(`${product.pathPrefix}/a`, { ip, env: throttled }), 401, "AUTH_MISSING");
      await expectRefusal(await send(`${forbidden.pathPrefix}/a`, { key, ip, env: throttled }), 403, "API_KEY_PRODUCT_FORBIDDEN", { presented: key });
    }

    await expectForwarded(await send(`${product.pathPrefix}/a`, { key, ip, env: throttled }), { keyId: record.id });
    expect(await storedCounters(`ip:${ip}`), "no failure was counted").toEqual({});
  });

  it("counts a revoked key's 401 as a failed authentication", async () => {
    setClock("2031-07-08T09:20:05.000Z");
    const product = await createProduct();
    const { key: revoked, record } = await createKey();
    const { key: good } = await createKey();
    await setCredentialState(env, `key:${record.id}`, { status: "revoked", notAfter: null });
    const ip = randomClientIp();
    for (let i = 0; i < LIMIT; i++) {
      await expectRefusal(await send(`${product.pathPrefix}/a`, { key: revoked, ip, env: throttled }), 401, "API_KEY_INACTIVE", { presented: revoked });
    }
    await expectRefusal(await send(`${product.pathPrefix}/a`, { key: good, ip, env: throttled }), 429, "AUTH_THROTTLED", { presented: good });
  });

  it("throttles an IPv6 client by its /64, whichever address in it is used", async () => {
    setClock("2031-07-08T09:21:05.000Z");
    const product = await createProduct();
    const { key } = await createKey();
    const [a, b] = crypto.getRandomValues(new Uint16Array(2));
    const net = `2001:db8:${a!.toString(16)}:${b!.toString(16)}`;
    for (let i = 1; i <= LIMIT; i++) {
      expect((await send(`${product.pathPrefix}/a`, { key: unknownKey(), ip: `${net}::${i}`, env: throttled })).status).toBe(401);
    }
    const response = await send(`${product.pathPrefix}/a`, { key, ip: `${net}:ffff:ffff:ffff:ffff`, env: throttled });
    await expectRefusal(response, 429, "AUTH_THROTTLED", { presented: key });
  });

  it("learns a throttle recorded by another isolate on this isolate's next failure from that address", async () => {
    setClock("2031-07-08T09:22:05.000Z");
    const product = await createProduct();
    const { key, record } = await createKey();
    const ip = randomClientIp();
    // Another isolate's failures reach the same object, not this isolate's memory.
    for (let i = 0; i < LIMIT; i++) await limiter(`ip:${ip}`).recordAuthFailure(LIMIT);

    await expectForwarded(await send(`${product.pathPrefix}/a`, { key, ip, env: throttled }), { keyId: record.id }, { label: "not known here yet" });
    expect((await send(`${product.pathPrefix}/a`, { key: unknownKey(), ip, env: throttled })).status).toBe(401);
    await expectRefusal(await send(`${product.pathPrefix}/a`, { key, ip, env: throttled }), 429, "AUTH_THROTTLED", { presented: key, since: "sent" });
    expect((await storedCounters(`ip:${ip}`)).auth_failures?.count).toBe(LIMIT + 1);
  });
});
