import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { adminToken, api, auditRows, userToken } from "../helpers/api";
import { createKey, createProduct, randomClientIp, send } from "../helpers/harness";
import { useOrigin } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * POST /api/v1/keys/verify and the KeygateService RPC entrypoint: a key
 * checked as a product call would check it, with the same codes and the same
 * counting, for a service that is not behind the proxy.
 */

async function serviceToken(name = "billing"): Promise<{ id: string; token: string; prefix: string }> {
  const created = await api("POST", "/api/v1/admin/service-tokens", adminToken(), { name });
  expect(created.status).toBe(201);
  return created.body as { id: string; token: string; prefix: string };
}

async function verify(token: string, body: unknown) {
  return api("POST", "/api/v1/keys/verify", { Authorization: `Bearer ${token}` }, body);
}

const origin = useOrigin();

describe("service credentials", () => {
  it("are issued by an admin with the token shown once, listed without it, and revoked for good, each change audited", async () => {
    const issued = await serviceToken("search-service");
    expect(issued.token).toMatch(/^kgsvc_[A-Za-z0-9]{12}_[A-Za-z0-9]{40}$/);
    expect(issued.token.startsWith(issued.prefix)).toBe(true);
    const row = await env.DB.prepare("SELECT * FROM service_tokens WHERE id = ?").bind(issued.id).first<Record<string, string>>();
    expect(row!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(issued.token);

    const listed = await api("GET", "/api/v1/admin/service-tokens", adminToken());
    expect(listed.status).toBe(200);
    const entry = listed.body.tokens.find((token: { id: string }) => token.id === issued.id);
    expect(entry).toMatchObject({ name: "search-service", prefix: issued.prefix, revokedAt: null, createdBy: "admin_token" });
    expect(JSON.stringify(listed.body)).not.toContain(issued.token);

    const { key } = await createKey({ products: ["*"] });
    expect((await verify(issued.token, { key })).body.valid).toBe(true);

    const revoked = await api("DELETE", `/api/v1/admin/service-tokens/${issued.id}`, adminToken());
    expect(revoked).toMatchObject({ status: 200, body: { id: issued.id, revoked: true } });
    expect((await api("DELETE", `/api/v1/admin/service-tokens/${issued.id}`, adminToken())).status).toBe(200);
    const refused = await verify(issued.token, { key });
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe("SERVICE_CREDENTIAL_INVALID");
    expect((await auditRows(issued.id)).map((row) => row.action)).toEqual(["service_token.create", "service_token.revoke"]);
  });

  it("are for admins to issue, and only a service credential may verify", async () => {
    const { user } = await createUser();
    const token = await userToken(user);
    const asUser = await api("POST", "/api/v1/admin/service-tokens", token, { name: "mine" });
    expect(asUser.status).toBe(403);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM service_tokens WHERE created_by = ?").bind(`user:${user.id}`).first("n")).toBe(0);
    expect((await api("DELETE", "/api/v1/admin/service-tokens/nope", adminToken())).body.code).toBe("NOT_FOUND");

    const { key } = await createKey({ products: ["*"] });
    const cases: [Record<string, string>, number, string][] = [
      [{}, 401, "AUTH_MISSING"],
      // Parsed as every credential header is.
      [{ Authorization: "Basic a2V5Z2F0ZQ==" }, 401, "AUTH_HEADER_MALFORMED"],
      [adminToken(), 401, "SERVICE_CREDENTIAL_INVALID"],
      [token, 401, "SERVICE_CREDENTIAL_INVALID"],
      [{ Authorization: `Bearer kgsvc_${"a".repeat(12)}_${"b".repeat(40)}` }, 401, "SERVICE_CREDENTIAL_INVALID"],
    ];
    for (const [headers, status, code] of cases) {
      const answer = await api("POST", "/api/v1/keys/verify", headers, { key });
      expect(answer.status, JSON.stringify(headers)).toBe(status);
      expect(answer.body.code).toBe(code);
      expect(answer.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    }
    // Nothing was counted for any of those.
    const stats = await api("GET", "/api/v1/usage/stats", { "X-API-Key": key });
    expect(stats.body.keys[0].day.used).toBe(0);
  });
});

describe("POST /api/v1/keys/verify", () => {
  it("answers a valid key with its identity and limits, and counts the call in the key's own windows", async () => {
    const { token } = await serviceToken();
    const { user } = await createUser();
    const { key, record } = await createKey({ ownerId: user.id, products: ["*"], scopes: ["read"], rateLimitPerMinute: 5, rateLimitPerDay: 50 });
    const first = await verify(token, { key });
    expect(first.status).toBe(200);
    expect(first.headers.get("X-Auth-Method")).toBe("service_token");
    expect(first.body).toMatchObject({
      authMethod: "service_token",
      valid: true,
      code: null,
      keyId: record.id,
      ownerId: user.id,
      env: "live",
      products: ["*"],
      scopes: ["read"],
      limits: { enforced: true, minute: { limit: 5, remaining: 4 }, day: { limit: 50, remaining: 49 } },
    });
    const second = await verify(token, { key });
    expect(second.body.limits.minute.remaining).toBe(3);
    // A product call shares those windows: it is the same count.
    const product = await createProduct();
    const proxied = await send(`${product.pathPrefix}/x`, { key });
    expect(proxied.status).toBe(200);
    expect(proxied.headers.get("X-RateLimit-Remaining")).toBe("2");
    expect(origin.calls()).toHaveLength(1);
  });

  it("with consume: false reports the limits without counting", async () => {
    const { token } = await serviceToken();
    const { key } = await createKey({ products: ["*"], rateLimitPerMinute: 3 });
    for (let i = 0; i < 3; i++) expect((await verify(token, { key, consume: false })).body.limits.minute.remaining).toBe(3);
    expect((await verify(token, { key })).body.limits.minute.remaining).toBe(2);
  });

  it("gives every refusal the code a product call gets for the same key, and counts neither (a differential check)", async () => {
    const { token } = await serviceToken();
    const product = await createProduct({ scopeRules: [{ path: "/**", scope: "write" }] });
    const other = await createProduct();
    const jwtOnly = await createProduct({ authMethods: ["jwt"] });
    const past = new Date(Date.now() - 60_000).toISOString();
    const cases: { label: string; key: () => Promise<string>; target?: typeof product; ip?: string }[] = [
      { label: "format", key: async () => "ilal_live_nothex" },
      { label: "unknown prefix", key: async () => `ilal_live_${"0".repeat(48)}` },
      {
        label: "hash mismatch",
        key: async () => {
          const { key } = await createKey({ products: ["*"] });
          return `${key.slice(0, -1)}${key.endsWith("0") ? "1" : "0"}`;
        },
      },
      { label: "inactive", key: async () => (await createKey({ products: ["*"], status: "inactive" })).key },
      { label: "expired", key: async () => (await createKey({ products: ["*"], expiresAt: past })).key },
      { label: "no such product access", key: async () => (await createKey({ products: [other.slug] })).key },
      { label: "scope missing", key: async () => (await createKey({ products: ["*"], scopes: ["read"] })).key },
      {
        label: "ip not allowed",
        key: async () => (await createKey({ products: ["*"], scopes: ["write"], ipAllowlist: ["192.0.2.0/24"] })).key,
        ip: "198.51.100.7",
      },
      { label: "auth method", key: async () => (await createKey({ products: ["*"] })).key, target: jwtOnly },
    ];
    for (const { label, key: makeKey, target = product, ip = randomClientIp() } of cases) {
      const key = await makeKey();
      const proxied = await send(`${target.pathPrefix}/x`, { key, ip });
      const proxiedCode = ((await proxied.json()) as { code: string }).code;
      const verified = await verify(token, { key, product: target.slug, scopes: target === product ? ["write"] : [], ip });
      expect(verified.status, label).toBe(200);
      expect(verified.body.valid, label).toBe(false);
      expect(verified.body.code, label).toBe(proxiedCode);
      if (proxied.status === 401) expect(verified.body.keyId, `${label}: an unauthenticated key has no identity`).toBeNull();
      else expect(verified.body.keyId, label).not.toBeNull();
      if (label === "scope missing") expect(verified.body.requiredScope).toBe("write");
    }
    expect(origin.calls()).toEqual([]);
  });

  it("refuses an exhausted key with the product call's code and Retry-After, and counts a revocation at once", async () => {
    const { token } = await serviceToken();
    const { key, record } = await createKey({ products: ["*"], rateLimitPerMinute: 1 });
    expect((await verify(token, { key })).body.valid).toBe(true);
    const limited = await verify(token, { key });
    expect(limited.body).toMatchObject({ valid: false, code: "RATE_LIMIT_EXCEEDED", keyId: record.id, limits: { minute: { remaining: 0 } } });
    expect(limited.body.retryAfter).toBeGreaterThan(0);
    expect(limited.body.retryAfter).toBeLessThanOrEqual(60);

    const fresh = await createKey({ products: ["*"] });
    expect((await verify(token, { key: fresh.key })).body.valid).toBe(true); // its row is now cached in this isolate
    expect((await api("DELETE", `/api/v1/keys/${fresh.record.id}`, adminToken())).status).toBe(200);
    const afterRevoke = await verify(token, { key: fresh.key });
    expect(afterRevoke.body).toMatchObject({ valid: false, code: "API_KEY_INACTIVE", keyId: null });
  });

  it("admits exactly the limit under concurrency", async () => {
    const { token } = await serviceToken();
    const { key } = await createKey({ products: ["*"], rateLimitPerMinute: 7 });
    const answers = await Promise.all(Array.from({ length: 20 }, () => verify(token, { key })));
    const valid = answers.filter((answer) => answer.body.valid);
    expect(valid).toHaveLength(7);
    expect(answers.filter((answer) => answer.body.code === "RATE_LIMIT_EXCEEDED")).toHaveLength(13);
  });

  it("throttles a client address after its failures when the service passes it on, as the proxy does", async () => {
    const { token } = await serviceToken();
    const ip = randomClientIp();
    const bad = `ilal_live_${"0".repeat(48)}`;
    let last: Record<string, any> = {};
    for (let i = 0; i < 31; i++) last = (await verify(token, { key: bad, ip })).body;
    expect(last).toMatchObject({ valid: false, code: "AUTH_THROTTLED" });
    expect(last.retryAfter).toBeGreaterThan(0);
    // The service itself is not throttled: another client's key still verifies.
    const { key } = await createKey({ products: ["*"] });
    expect((await verify(token, { key, ip: randomClientIp() })).body.valid).toBe(true);
  });

  it("refuses a request it cannot judge: a bad body (400), an unknown product (404)", async () => {
    const { token } = await serviceToken();
    const { key } = await createKey({ products: ["*"] });
    for (const body of [{}, { key: "" }, { key, extra: 1 }, { key, consume: "yes" }, { key, ip: "not-an-ip" }, { key, scopes: ["bad scope"] }]) {
      const answer = await verify(token, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.code).toBe("VALIDATION_FAILED");
    }
    const unknown = await verify(token, { key, product: "no-such-product" });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe("NOT_FOUND");
  });
});

describe("the KeygateService RPC entrypoint", () => {
  it("verifies and counts as the HTTP API does, without a credential", async () => {
    const { key, record } = await createKey({ products: ["*"], rateLimitPerMinute: 2 });
    const service = exports.KeygateService as unknown as { verify(input: unknown): Promise<Record<string, any>> };
    expect(await service.verify({ key })).toMatchObject({ valid: true, keyId: record.id, limits: { minute: { remaining: 1 } } });
    expect(await service.verify({ key })).toMatchObject({ valid: true, limits: { minute: { remaining: 0 } } });
    expect(await service.verify({ key })).toMatchObject({ valid: false, code: "RATE_LIMIT_EXCEEDED" });
    // Its refusals of the request itself (a thrown error) are tested from a second Worker, test/node/service-binding.test.ts:
    // here the callee shares the test's isolate, which reports an RPC method's throw as unhandled.
  });
});
