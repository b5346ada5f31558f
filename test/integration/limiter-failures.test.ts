import { afterEach, describe, expect, it, vi } from "vitest";
import { RateLimiter } from "../../src/limits/rate-limiter";
import type { LimitCheck } from "../../src/limits/windows";
import { expectRefusal } from "../helpers/expect";
import { createKey, createProduct, json, send } from "../helpers/harness";
import { expectNoLimitHeaders, limiter, storedCounters } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";

// RATE_LIMIT_FAILURE_MODE (SPEC sections 5 and 9). Failures are injected in
// the object itself: errors thrown there reach the Worker through RPC with
// workerd's `retryable` / `overloaded` flags kept, as real platform errors do.

const origin = useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
});

const realCheck = RateLimiter.prototype.check;

function platformError(flags: { retryable?: boolean; overloaded?: boolean }): Error {
  return Object.assign(new Error("Durable Object reset because its code was updated."), flags);
}

function failingCheck(flags: { retryable?: boolean; overloaded?: boolean }) {
  return vi.spyOn(RateLimiter.prototype, "check").mockImplementation(() => {
    throw platformError(flags);
  });
}

async function setup() {
  const product = await createProduct();
  const { key, record } = await createKey({ rateLimitPerMinute: 10, rateLimitPerDay: 100 });
  return { path: `${product.pathPrefix}/a`, key, record };
}

const OPEN = { RATE_LIMIT_FAILURE_MODE: "open" };
const CLOSED = { RATE_LIMIT_FAILURE_MODE: "closed" };

describe("when the limiter object fails", () => {
  it("answers 503 AUTH_BACKEND_UNAVAILABLE in closed mode (the default) and forwards nothing", async () => {
    const { path, key } = await setup();
    const check = failingCheck({});
    await expectRefusal(await send(path, { key }), 503, "AUTH_BACKEND_UNAVAILABLE", { presented: key });
    expect(check, "an error not marked retryable is not retried").toHaveBeenCalledTimes(1);
  });

  it("forwards in open mode with X-RateLimit-Enforced: false and no counts", async () => {
    const { path, key, record } = await setup();
    failingCheck({ overloaded: true });
    const response = await send(path, { key, env: OPEN });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(response.headers.get("X-RateLimit-Enforced")).toBe("false");
    expectNoLimitHeaders(response);
    expect(origin.received).toHaveLength(1);
    expect(await storedCounters(`key:${record.id}`)).toEqual({});
  });

  it("still refuses in open mode a call refused after authentication, marking limits unenforced", async () => {
    const product = await createProduct();
    const { key } = await createKey({ products: [] });
    failingCheck({});
    const response = await send(`${product.pathPrefix}/a`, { key, env: OPEN });
    await expectRefusal(response, 403, "API_KEY_PRODUCT_FORBIDDEN", { presented: key });
    expect(response.headers.get("X-RateLimit-Enforced")).toBe("false");
  });

  it("never retries an overloaded object, even when the error is also marked retryable", async () => {
    const { path, key } = await setup();
    const check = failingCheck({ retryable: true, overloaded: true });
    const response = await send(path, { key, env: CLOSED });
    expect(response.status).toBe(503);
    expect(check).toHaveBeenCalledTimes(1);
  });

  it("retries a retryable error once, and gives up with 503 when the retry fails too", async () => {
    const { path, key } = await setup();
    const check = failingCheck({ retryable: true });
    const response = await send(path, { key, env: CLOSED });
    expect(response.status).toBe(503);
    expect(check).toHaveBeenCalledTimes(2);
  });

  it("admits after one retry of a retryable error, counting the call once", async () => {
    const { path, key, record } = await setup();
    const check = vi.spyOn(RateLimiter.prototype, "check").mockImplementationOnce(() => {
      throw platformError({ retryable: true });
    });
    const response = await send(path, { key });
    expect(response.status, JSON.stringify(await json(response))).toBe(200);
    expect(check).toHaveBeenCalledTimes(2);
    expect(response.headers.get("X-RateLimit-Remaining")).toBe("9");
    expect((await storedCounters(`key:${record.id}`)).minute?.count).toBe(1);
  });

  it("does not count twice when the object admitted the call but its answer was lost", async () => {
    const { path, key, record } = await setup();
    const check = vi.spyOn(RateLimiter.prototype, "check").mockImplementationOnce(function (this: RateLimiter, input: LimitCheck) {
      realCheck.call(this, input);
      throw platformError({ retryable: true });
    });
    const response = await send(path, { key });
    expect(response.status, JSON.stringify(await json(response))).toBe(200);
    expect(check).toHaveBeenCalledTimes(2);
    expect(response.headers.get("X-RateLimit-Remaining")).toBe("9");
    const counters = await storedCounters(`key:${record.id}`);
    expect([counters.minute?.count, counters.day?.count]).toEqual([1, 1]);
    expect(origin.received).toHaveLength(1);
  });
});

describe("check() is idempotent on the request id", () => {
  it("counts a retried check() with the same request id once, and a new id again", async () => {
    const name = `key:${crypto.randomUUID()}`;
    const stub = limiter(name);
    const input: LimitCheck = { requestId: crypto.randomUUID(), limitPerMinute: 5, limitPerDay: 50, consume: true };
    const first = await stub.check(input);
    const repeat = await stub.check({ ...input, retry: true });
    expect(first).toMatchObject({ outcome: "admitted", minute: { used: 1, remaining: 4 } });
    expect(repeat).toMatchObject({ outcome: "admitted", minute: { used: 1, remaining: 4 } });
    expect((await storedCounters(name)).minute?.count).toBe(1);

    expect(await stub.check({ ...input, requestId: crypto.randomUUID() })).toMatchObject({ outcome: "admitted", minute: { used: 2 } });
  });

  it("admits a retried admission even when the window has filled since", async () => {
    const stub = limiter(`key:${crypto.randomUUID()}`);
    const first: LimitCheck = { requestId: crypto.randomUUID(), limitPerMinute: 1, limitPerDay: 50, consume: true };
    expect((await stub.check(first)).outcome).toBe("admitted");
    expect((await stub.check({ ...first, requestId: crypto.randomUUID() })).outcome).toBe("rate_limited");
    expect((await stub.check({ ...first, retry: true })).outcome, "the retry of the admitted call").toBe("admitted");
  });

  it("counts nothing for a report-only check (consume: false)", async () => {
    const name = `key:${crypto.randomUUID()}`;
    const decision = await limiter(name).check({ requestId: crypto.randomUUID(), limitPerMinute: 5, limitPerDay: 50, consume: false });
    expect(decision).toMatchObject({ outcome: "peek", minute: { used: 0, remaining: 5 }, day: { used: 0, remaining: 50 } });
    expect(await storedCounters(name)).toEqual({});
  });
});
