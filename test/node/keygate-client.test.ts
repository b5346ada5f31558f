import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeygateClient, KeygateError, type KeygateClient } from "../../clients/keygate-client/src/index";
import { manageKeys } from "../../clients/keygate-client/examples/manage-keys";
import { startBundledKeygate } from "../../scripts/lib/bundled-keygate.mjs";

/**
 * Issue 15 item 2: keygate-client against a real keygate: the `wrangler deploy --dry-run`
 * bundle in Miniflare on 127.0.0.1, its D1 migrated, an ADMIN_TOKEN of this run
 * (scripts/lib/bundled-keygate.mjs). Every call is a real HTTP round trip, bounded.
 */

let keygate: Awaited<ReturnType<typeof startBundledKeygate>>;
let client: KeygateClient;
let calls = 0;

const MISSING_ID = "00000000-0000-4000-8000-000000000000";

beforeAll(async () => {
  keygate = await startBundledKeygate();
  client = createKeygateClient({
    baseUrl: keygate.url,
    token: keygate.adminToken,
    fetch: (request) => {
      calls += 1;
      return fetch(request, { signal: AbortSignal.timeout(10_000) });
    },
  });
}, 180_000);

afterAll(async () => {
  await keygate?.dispose();
});

/** The KeygateError a call fails with. */
async function failure(call: Promise<unknown>): Promise<KeygateError> {
  const outcome = await call.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!("error" in outcome)) throw new Error(`expected a KeygateError, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(KeygateError);
  return outcome.error as KeygateError;
}

describe("keygate-client", () => {
  it("creates, lists page by page, reads, rotates and revokes keys", { timeout: 60_000 }, async () => {
    const before = calls;
    const created = [];
    for (const name of ["client a", "client b", "client c"]) created.push(await client.createKey({ name, products: ["*"], scopes: ["reports:read"] }));
    expect(calls - before, "the custom fetch carries every call").toBe(3);
    for (const key of created) {
      expect(key.key.startsWith(key.prefix)).toBe(true);
      expect(key).toMatchObject({ status: "active", authMethod: "admin_token", scopes: ["reports:read"], rotatedTo: null });
    }

    // One page of two, then every page through nextCursor: newest first, each key once.
    const page = await client.listKeys({ limit: 2 });
    expect(page.keys).toHaveLength(2);
    expect(page.nextCursor).toEqual(expect.any(String));
    const next = await client.listKeys({ limit: 2, cursor: page.nextCursor! });
    expect(next.nextCursor).toBeNull();
    const listed = [];
    for await (const key of client.allKeys({ limit: 2 })) listed.push(key.id);
    expect(listed).toEqual([...page.keys, ...next.keys].map((key) => key.id));
    expect(listed).toEqual(created.map((key) => key.id).reverse());

    const [first] = created;
    const read = await client.getKey(first!.id);
    const { key: _plaintext, ...view } = first!;
    expect(read).toEqual(view);

    const rotated = await client.rotateKey(first!.id, { gracePeriodSeconds: 60 });
    expect(rotated).toMatchObject({ rotatedFrom: first!.id, status: "active", lineageId: first!.lineageId, name: "client a" });
    expect(Date.parse(rotated.graceUntil) - Date.now()).toBeGreaterThan(50_000);
    expect(Date.parse(rotated.graceUntil) - Date.now()).toBeLessThanOrEqual(60_000);
    expect((await client.getKey(first!.id)).rotatedTo).toBe(rotated.id);
    // No input: keygate's default grace period.
    const again = await client.rotateKey(rotated.id);
    expect(again.rotatedFrom).toBe(rotated.id);

    const revoked = await client.revokeKey(again.id);
    expect(revoked).toEqual({ authMethod: "admin_token", id: again.id, status: "revoked" });
    // Idempotent.
    expect(await client.revokeKey(again.id)).toEqual(revoked);
    expect((await client.getKey(again.id)).status).toBe("revoked");

    const usage = await client.usageStats({ keyId: created[1]!.id });
    expect(usage.keys.map((key) => key.id)).toEqual([created[1]!.id]);
    expect(usage.keys[0]!.day.used).toBe(0);
  });

  it("throws a KeygateError with code, status, message and requestId on error answers", { timeout: 30_000 }, async () => {
    const missing = await failure(client.getKey(MISSING_ID));
    expect(missing).toMatchObject({ status: 404, code: "NOT_FOUND", message: "No such key" });
    expect(missing.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(missing.body?.hint).toEqual(expect.any(String));

    const key = await client.createKey({ name: "to revoke", products: ["*"] });
    await client.revokeKey(key.id);
    const edit = await failure(client.updateKey(key.id, { name: "renamed" }));
    expect(edit).toMatchObject({ status: 409, code: "CONFLICT", message: "A revoked key cannot be changed" });
    expect(edit.requestId).toMatch(/^[0-9a-f-]{36}$/);

    // If-Match naming an old version: 412, the same code.
    const live = await client.createKey({ name: "versioned", products: ["*"] });
    await client.updateKey(live.id, { name: "versioned 2" });
    const stale = await failure(client.updateKey(live.id, { name: "versioned 3" }, { ifMatch: `"${live.version}"` }));
    expect(stale).toMatchObject({ status: 412, code: "CONFLICT" });

    const invalid = await failure(client.createKey({ name: "", products: ["*"] }));
    expect(invalid).toMatchObject({ status: 400, code: "VALIDATION_FAILED" });
    expect(invalid.body?.fields?.map((field) => field.path)).toEqual(["name"]);

    const anonymous = createKeygateClient({ baseUrl: keygate.url });
    const refused = await failure(anonymous.listKeys());
    expect(refused).toMatchObject({ status: 401, code: "AUTH_MISSING" });
  });

  it("verifies a key with a service credential: a valid key counted, a refused one an answer, a wrong credential a KeygateError", {
    timeout: 30_000,
  }, async () => {
    const issued = await client.POST("/api/v1/admin/service-tokens", { body: { name: "client test" } });
    expect(issued.response.status).toBe(201);
    const service = createKeygateClient({ baseUrl: keygate.url, token: issued.data!.token });
    const { key, id } = await client.createKey({ name: "to verify", products: ["*"], scopes: ["reports:read"], rateLimitPerMinute: 3 });

    const valid = await service.verifyKey({ key });
    expect(valid).toMatchObject({ authMethod: "service_token", valid: true, code: null, keyId: id, limits: { minute: { limit: 3, remaining: 2 } } });
    const peek = await service.verifyKey({ key, consume: false });
    expect(peek.limits?.minute?.remaining).toBe(2);
    const refused = await service.verifyKey({ key, scopes: ["admin:write"] });
    expect(refused).toMatchObject({ valid: false, code: "API_KEY_SCOPE_MISSING", requiredScope: "admin:write", keyId: id });

    const wrong = await failure(createKeygateClient({ baseUrl: keygate.url, token: keygate.adminToken }).verifyKey({ key }));
    expect(wrong).toMatchObject({ status: 401, code: "SERVICE_CREDENTIAL_INVALID" });
  });

  it("sets, tops up and reads credits, and reports usage once per requestId", { timeout: 30_000 }, async () => {
    const { key, id } = await client.createKey({ name: "credited", products: ["*"] });
    expect((await client.getKeyCredits(id)).credits).toBeNull();
    const set = await client.setKeyCredits(id, { balance: 10, refill: { amount: 10, interval: "month", dayOfMonth: 15 } });
    expect(set.credits).toMatchObject({ balance: 10, quota: 10, refill: { amount: 10, interval: "month", dayOfMonth: 15 } });
    expect((await client.topUpKeyCredits(id, 5)).credits).toMatchObject({ balance: 15 });

    const issued = await client.POST("/api/v1/admin/service-tokens", { body: { name: "metering" } });
    const service = createKeygateClient({ baseUrl: keygate.url, token: issued.data!.token });
    expect((await service.verifyKey({ key, cost: 4 })).limits?.credits).toMatchObject({ balance: 11 });
    const requestId = crypto.randomUUID();
    expect(await service.reportUsage({ keyId: id, requestId, amount: 20 })).toMatchObject({ debited: true, balance: -9 });
    expect(await service.reportUsage({ keyId: id, requestId, amount: 20 })).toMatchObject({ debited: false, balance: -9 });
    const refused = await service.verifyKey({ key });
    expect(refused).toMatchObject({ valid: false, code: "CREDITS_EXHAUSTED" });
    const noBalance = await failure(client.topUpKeyCredits((await client.createKey({ name: "plain", products: ["*"] })).id, 1));
    expect(noBalance).toMatchObject({ status: 409, code: "CONFLICT" });
  });

  it("runs the example program: create, list, rotate with and without a body, revoke", { timeout: 60_000 }, async () => {
    const report = await manageKeys({ baseUrl: keygate.url, token: keygate.adminToken });
    expect(report.created.prefix).toEqual(expect.any(String));
    expect(report.listed).toBeGreaterThanOrEqual(1);
    expect(report.rotatedWithGrace.from).toBe(report.created.id);
    expect(report.rotatedWithoutBody.from).toBe(report.rotatedWithGrace.to);
    expect(report.rotatedWithoutBody.keyLength).toBeGreaterThan(20);
    expect(report.revoked).toEqual([report.created.id, report.rotatedWithGrace.to, report.rotatedWithoutBody.to]);
    expect(report.missing).toEqual({ status: 404, code: "NOT_FOUND" });
  });
});
