import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Principal } from "../../src/auth/principal";
import { getConfig } from "../../src/config";
import type { KeyRecord } from "../../src/db/keys";
import type { Env } from "../../src/env";
import { limitCheck } from "../../src/limits/admission";
import type { LimitResult } from "../../src/limits/client";
import { LEASE_TTL_MS } from "../../src/limits/lease";
import { LeaseHolders, type LimiterStubs } from "../../src/limits/leased-admission";
import type { LeaseCheck } from "../../src/limits/rate-limiter";
import { adminToken, api, userToken } from "../helpers/api";
import { expectRefusal } from "../helpers/expect";
import { createKey, createProduct, send, settled } from "../helpers/harness";
import { storedCounters } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * Leased admission in workerd (issue 17): one home object (the key's
 * RateLimiter) and several holders (LeaseHolders, as several isolates), the
 * latency injected in the holders' stub wrapper, never inside the object's
 * decision. What the simulator (sim/) proves over schedules, checked here on
 * the real object: never over a limit across holders, exact end-game,
 * revocation and rotation, and few object calls per call.
 */
useOrigin();
afterEach(() => vi.restoreAllMocks());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Stubs that delay each request and its answer by up to `maxDelayMs`, and count the object calls. */
function delayedStubs(maxDelayMs: number, calls: { count: number }): LimiterStubs {
  return (bindings, name) => ({
    lease: (async (input: LeaseCheck) => {
      calls.count++;
      await sleep(Math.random() * maxDelayMs);
      const answer = await bindings.RATE_LIMITER.getByName(name).lease(input);
      await sleep(Math.random() * maxDelayMs);
      return answer;
    }) as unknown as DurableObjectStub<import("../../src/limits/rate-limiter").RateLimiter>["lease"],
  });
}

/** One call of `key` through `holders`, as the gateway makes it. */
function callThrough(holders: LeaseHolders, record: KeyRecord, limits: { rateLimitPerMinute: number; rateLimitPerDay: number }): Promise<LimitResult> {
  const principal = { method: "api_key", key: record } as Extract<Principal, { method: "api_key" }>;
  const check = limitCheck(principal, { ...limits }, getConfig(env), crypto.randomUUID(), { cost: 1, reserve: 0 });
  const background: Promise<unknown>[] = [];
  return holders.admit(env as unknown as Env, getConfig(env), principal, check, (work) => background.push(work));
}

/** Waits until a minute has at least `seconds` left, so a run stays in one minute window. */
async function roomInMinute(seconds: number): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < seconds * 1000) await sleep(left + 50);
}

describe("leased admission: never over a limit", () => {
  it("three holders with delayed requests admit at most the minute limit, and all of it while they keep calling", async () => {
    await roomInMinute(15);
    const { record } = await createKey();
    const limits = { rateLimitPerMinute: 120, rateLimitPerDay: 100_000 };
    const calls = { count: 0 };
    const holders = [0, 1, 2].map((i) => new LeaseHolders(`holder-${i}-${crypto.randomUUID()}`, delayedStubs(15, calls)));
    const results: string[] = [];
    // Waves of concurrent calls spread over the holders, until every holder is refused.
    for (let wave = 0; wave < 40; wave++) {
      const wave_ = await Promise.all(Array.from({ length: 12 }, (_, i) => callThrough(holders[i % 3]!, record, limits)));
      results.push(...wave_.map((result) => result.outcome));
      if (wave_.every((result) => result.outcome === "rate_limited")) break;
    }
    const admitted = results.filter((outcome) => outcome === "admitted").length;
    expect(admitted, "never over the limit").toBeLessThanOrEqual(120);
    // Holders that keep calling spend what they hold; the end-game decides the last calls at the object.
    expect(admitted).toBe(120);
    expect(results.filter((outcome) => outcome !== "admitted" && outcome !== "rate_limited")).toEqual([]);
    expect((await storedCounters(`key:${record.lineageId}`)).minute?.count).toBe(120);
    // Near a small limit many calls are the end-game's (exact); still at most one object call per two calls. The hot-key test below measures the steady state.
    expect(calls.count / results.length, "object calls per call").toBeLessThan(0.5);
  });

  it("a hot key over three holders: few object calls per call once grants have grown", async () => {
    await roomInMinute(15);
    const { record } = await createKey();
    const limits = { rateLimitPerMinute: 100_000, rateLimitPerDay: 1_000_000 };
    const calls = { count: 0 };
    const holders = [0, 1, 2].map((i) => new LeaseHolders(`hot-${i}-${crypto.randomUUID()}`, delayedStubs(5, calls)));
    let admitted = 0;
    for (let wave = 0; wave < 60; wave++) {
      const results = await Promise.all(Array.from({ length: 15 }, (_, i) => callThrough(holders[i % 3]!, record, limits)));
      admitted += results.filter((result) => result.outcome === "admitted").length;
    }
    expect(admitted).toBe(900);
    expect(calls.count / admitted, `${calls.count} object calls for ${admitted} calls`).toBeLessThan(0.1);
  });

  it("through the gateway: reserved calls cover every admitted one, and the headers say their counts are estimates", async () => {
    await roomInMinute(15);
    const product = await createProduct({ rateLimitPerMinute: 100_000, rateLimitPerDay: 1_000_000, rateLimitMode: "leased" });
    const { key, record } = await createKey();
    let last: Response | undefined;
    for (let i = 0; i < 300; i++) last = await settled(send(`${product.pathPrefix}/hot`, { key }));
    expect(last!.status).toBe(200);
    expect(last!.headers.get("ratelimit-policy")).toBe('"minute";q=100000;w=60;estimate, "day";q=1000000;w=86400;estimate');
    const counted = (await storedCounters(`key:${record.lineageId}`)).minute!.count;
    // Reserved at grant time: at least every call admitted, at most those plus one grant's worth still held.
    expect(counted).toBeGreaterThanOrEqual(300);
    expect(Number(last!.headers.get("x-ratelimit-remaining"))).toBeLessThanOrEqual(100_000 - 300);
  });

  it("the end-game is exact: a small limit is used to the last call and no further", async () => {
    await roomInMinute(10);
    const product = await createProduct({ rateLimitPerMinute: 9, rateLimitPerDay: 1000, rateLimitMode: "leased" });
    const { key } = await createKey();
    const statuses = [];
    for (let i = 0; i < 12; i++) statuses.push((await settled(send(`${product.pathPrefix}/end`, { key }))).status);
    expect(statuses).toEqual([...Array(9).fill(200), 429, 429, 429]);
  });
});

describe("leased admission: unused calls come back", () => {
  it("a holder's expired grant is reported with its next request and its unused calls are refunded", async () => {
    await roomInMinute(10);
    const { record } = await createKey();
    const limits = { rateLimitPerMinute: 1000, rateLimitPerDay: 100_000 };
    const holders = new LeaseHolders(`refund-${crypto.randomUUID()}`);
    // Grow the holder's rate so its grant is larger than what it spends.
    for (let i = 0; i < 40; i++) expect((await callThrough(holders, record, limits)).outcome).toBe("admitted");
    const reserved = (await storedCounters(`key:${record.lineageId}`)).minute!.count;
    const held = holders.heldFor(`key:${record.lineageId}`, record.id);
    expect(reserved - held, "reserved = admitted + held").toBe(40);
    await sleep(LEASE_TTL_MS + 50);
    expect((await callThrough(holders, record, limits)).outcome).toBe("admitted");
    const after = (await storedCounters(`key:${record.lineageId}`)).minute!.count;
    expect(after - holders.heldFor(`key:${record.lineageId}`, record.id), "the unused calls were given back").toBe(41);
  });
});

describe("leased admission: revocation, deactivation and rotation", () => {
  it("a revocation answers once every holder's grants have ended: no call starting after it is admitted anywhere", async () => {
    await roomInMinute(10);
    const { record } = await createKey();
    const limits = { rateLimitPerMinute: 10_000, rateLimitPerDay: 100_000 };
    const holders = [0, 1, 2].map((i) => new LeaseHolders(`revoke-${i}-${crypto.randomUUID()}`));
    for (let i = 0; i < 60; i++) expect((await callThrough(holders[i % 3]!, record, limits)).outcome).toBe("admitted");
    expect(
      holders.some((h) => h.heldFor(`key:${record.lineageId}`, record.id) > 0),
      "holders hold calls",
    ).toBe(true);

    const started = Date.now();
    const revoked = await api("DELETE", `/api/v1/keys/${record.id}`, adminToken());
    const took = Date.now() - started;
    expect(revoked.status).toBe(200);
    expect(took, "the admin call waits out the leases, within the bound").toBeLessThanOrEqual(LEASE_TTL_MS + 500);
    const after = await Promise.all(holders.map((h) => callThrough(h, record, limits)));
    expect(after.map((result) => result.outcome)).toEqual(["revoked", "revoked", "revoked"]);
  });

  it("a deactivated leased key is refused through the gateway on the next request", async () => {
    await roomInMinute(10);
    const product = await createProduct({ rateLimitMode: "leased", rateLimitPerMinute: 10_000 });
    const { key, record } = await createKey();
    for (let i = 0; i < 20; i++) expect((await settled(send(`${product.pathPrefix}/d`, { key }))).status).toBe(200);
    const patched = await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { status: "inactive" });
    expect(patched.status).toBe(200);
    await expectRefusal(await settled(send(`${product.pathPrefix}/d`, { key })), 401, "API_KEY_INACTIVE", { since: "sent" });
  });

  it("a rotation's keys share one count across holders; the old key's revocation leaves the new one leased", async () => {
    await roomInMinute(15);
    const { record } = await createKey({ rateLimitPerMinute: 90 });
    const rotated = await api("POST", `/api/v1/keys/${record.id}/rotate`, adminToken(), { gracePeriodSeconds: 3600 });
    expect(rotated.status).toBe(201);
    const replacement = { ...record, id: rotated.body.id, prefix: rotated.body.prefix } as KeyRecord;
    const limits = { rateLimitPerMinute: 90, rateLimitPerDay: 100_000 };
    const holders = [0, 1].map((i) => new LeaseHolders(`rotation-${i}-${crypto.randomUUID()}`));
    const outcomes = [];
    for (let i = 0; i < 150; i++) outcomes.push((await callThrough(holders[i % 2]!, i % 4 < 2 ? record : replacement, { ...limits })).outcome);
    expect(outcomes.filter((outcome) => outcome === "admitted")).toHaveLength(90);
  });
});

describe("leased admission: configuration", () => {
  it("an admin sets a key's mode (null: the product's); an owner may not; bad values are 400", async () => {
    await roomInMinute(5);
    const { user } = await createUser();
    const product = await createProduct({ rateLimitPerMinute: 1000 });
    const { key, record } = await createKey({ ownerId: user.id });
    const asOwner = await api("PATCH", `/api/v1/keys/${record.id}`, await userToken(user), { rateLimitMode: "leased" });
    expect(asOwner.status).toBe(403);
    expect(asOwner.body).toMatchObject({ code: "FORBIDDEN" });
    expect((await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { rateLimitMode: "sometimes" })).body.code).toBe("VALIDATION_FAILED");

    const exact = await settled(send(`${product.pathPrefix}/m`, { key }));
    expect(exact.headers.get("ratelimit-policy")).not.toContain("estimate");
    const leased = await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { rateLimitMode: "leased" });
    expect(leased.status).toBe(200);
    expect(leased.body.rateLimitMode).toBe("leased");
    const next = await settled(send(`${product.pathPrefix}/m`, { key }));
    expect(next.status).toBe(200);
    expect(next.headers.get("ratelimit-policy")).toContain(";estimate");
    const back = await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { rateLimitMode: null });
    expect(back.body.rateLimitMode).toBeNull();
    const created = await api("POST", "/api/v1/keys", await userToken(user), { name: "mine", rateLimitMode: "leased" });
    expect(created.status).toBe(403);
  });
});

describe("leased admission: refusals from memory", () => {
  it("over the limit, an isolate repeats the object's refusal for a lease's time instead of asking for every call", async () => {
    await roomInMinute(10);
    const { record } = await createKey();
    const limits = { rateLimitPerMinute: 20, rateLimitPerDay: 100_000 };
    const calls = { count: 0 };
    const holders = new LeaseHolders(`deny-${crypto.randomUUID()}`, delayedStubs(0, calls));
    const outcomes = [];
    for (let i = 0; i < 60; i++) outcomes.push((await callThrough(holders, record, limits)).outcome);
    expect(outcomes.filter((outcome) => outcome === "admitted")).toHaveLength(20);
    expect(outcomes.slice(20).every((outcome) => outcome === "rate_limited")).toBe(true);
    const afterFirstRefusal = calls.count;
    for (let i = 0; i < 30; i++) expect((await callThrough(holders, record, limits)).outcome).toBe("rate_limited");
    expect(calls.count, "refused from memory").toBe(afterFirstRefusal);
  });

  it("a revocation is still answered 401 after the admin call returns, though the isolate was refusing from memory", async () => {
    await roomInMinute(10);
    const { record } = await createKey();
    const limits = { rateLimitPerMinute: 5, rateLimitPerDay: 100_000 };
    const holders = new LeaseHolders(`deny-revoke-${crypto.randomUUID()}`);
    for (let i = 0; i < 8; i++) await callThrough(holders, record, limits);
    expect((await callThrough(holders, record, limits)).outcome).toBe("rate_limited");
    expect((await api("DELETE", `/api/v1/keys/${record.id}`, adminToken())).status).toBe(200);
    expect((await callThrough(holders, record, limits)).outcome).toBe("revoked");
  });
});
