import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { cacheKeys } from "../../src/auth/key-cache";
import { hashKey, keyPrefix } from "../../src/auth/key-format";
import { getKey, type KeyRecord } from "../../src/db/keys";
import { KeyCreatedSchema, KeyListSchema, KeyResponseSchema, KeyRotatedSchema } from "../../src/routes/schemas";
import { adminToken, api, auditRows, rowCount, userToken } from "../helpers/api";
import { expectForwarded, expectRefusal } from "../helpers/expect";
import { createKey, createProduct, send } from "../helpers/harness";
import { useOrigin } from "../helpers/origin";
import { setClock } from "../helpers/limiter";
import { createUser } from "../helpers/users";

useOrigin();

/** Puts a key row into this isolate's cache as it was before an edit, the way another isolate would still hold it. */
function cacheStale(record: KeyRecord): void {
  cacheKeys(record.prefix, [{ ...record, ownerLimited: false }], 60, Date.now());
}

describe("creating keys", () => {
  it("admin token creates a key: plaintext once, SHA-256 stored, usable at the gateway", async () => {
    const product = await createProduct();
    const created = await api("POST", "/api/v1/keys", adminToken(), { name: "ci key", products: [product.slug] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const body = KeyCreatedSchema.parse(created.body);
    expect(body.authMethod).toBe("admin_token");
    expect(created.headers.get("X-Auth-Method")).toBe("admin_token");
    expect(body.key).toMatch(/^ilal_live_[0-9a-f]{48}$/);
    expect(body.prefix).toBe(keyPrefix(body.key));
    expect(body).toMatchObject({ name: "ci key", format: "ilal", env: "live", status: "active", ownerId: null, products: [product.slug], scopes: ["*"] });
    expect(created.body.hash).toBeUndefined();

    const row = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(body.id).first<Record<string, unknown>>();
    expect(row!.hash).toBe(await hashKey(body.key));
    expect(JSON.stringify(row)).not.toContain(body.key);

    const read = await api("GET", `/api/v1/keys/${body.id}`, adminToken());
    expect(read.status).toBe(200);
    expect(KeyResponseSchema.parse(read.body).prefix).toBe(body.prefix);
    expect(read.body.key).toBeUndefined();
    expect(read.body.hash).toBeUndefined();

    await expectForwarded(await send(`${product.pathPrefix}/ping`, { key: body.key }), { keyId: body.id }, { since: "sent" });
  });

  it("creates an ila key when asked, and refuses an environment for it naming env", async () => {
    const ila = await api("POST", "/api/v1/keys", adminToken(), { name: "ila", format: "ila", products: ["summarize"] });
    expect(ila.status, JSON.stringify(ila.body)).toBe(201);
    expect(ila.body.key).toMatch(/^ila_[A-Za-z0-9]{72}$/);
    expect(ila.body.env).toBeNull();

    const before = await rowCount("api_keys");
    const refused = await api("POST", "/api/v1/keys", adminToken(), { name: "ila", format: "ila", env: "test", products: ["summarize"] });
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe("VALIDATION_FAILED");
    expect(refused.body.fields).toEqual([{ path: "env", message: expect.any(String) }]);
    expect(await rowCount("api_keys")).toBe(before);
  });

  it("the admin token must name products for a key with no owner: 400 VALIDATION_FAILED naming products, nothing written", async () => {
    const [keys, audits] = [await rowCount("api_keys"), await rowCount("audit_log")];
    for (const body of [{ name: "ci" }, { name: "ci", scopes: ["read"] }, { name: "ci", format: "ila" }]) {
      const refused = await api("POST", "/api/v1/keys", adminToken(), body);
      expect(refused.status, JSON.stringify(refused.body)).toBe(400);
      expect(refused.body.code).toBe("VALIDATION_FAILED");
      expect(refused.body.fields).toEqual([{ path: "products", message: expect.stringContaining("owner") }]);
      expect(refused.body.message).toContain("products");
    }
    expect([await rowCount("api_keys"), await rowCount("audit_log")], "no key row, no audit row").toEqual([keys, audits]);
  });

  it("an owner-less key gets exactly the products named, even none or all; its scopes may still default to *", async () => {
    for (const products of [[], ["*"], ["alpha", "beta"]]) {
      const created = await api("POST", "/api/v1/keys", adminToken(), { name: "explicit", products });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body).toMatchObject({ ownerId: null, products, scopes: ["*"] });
    }
  });

  it("a key the admin token makes for an owner still inherits the owner's products and scopes", async () => {
    const { user } = await createUser({ products: ["alpha"], scopes: ["read"] });
    const created = await api("POST", "/api/v1/keys", adminToken(), { name: "for a user", ownerId: user.id });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ ownerId: user.id, products: ["alpha"], scopes: ["read"] });
    expect((await getKey(env.DB, created.body.id))?.products).toEqual(["alpha"]);
  });

  it("a user's key is theirs and by default gets exactly their products and scopes", async () => {
    const { user } = await createUser({ products: ["alpha", "beta"], scopes: ["defi:*"] });
    const created = await api("POST", "/api/v1/keys", await userToken(user), { name: "mine", env: "test" });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ authMethod: "jwt", ownerId: user.id, env: "test", products: ["alpha", "beta"], scopes: ["defi:*"] });
    expect(created.headers.get("X-Auth-Method")).toBe("jwt");
    expect(created.body.key).toMatch(/^ilal_test_/);
  });

  it("a user may narrow a key to a subset of their own products and scopes", async () => {
    const { user } = await createUser({ products: ["alpha", "beta"], scopes: ["defi:*", "read"] });
    const created = await api("POST", "/api/v1/keys", await userToken(user), { name: "narrow", products: ["beta"], scopes: ["defi:swap", "read"] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ products: ["beta"], scopes: ["defi:swap", "read"] });
  });

  it.each([
    ["products", { products: ["gamma"] }],
    ["products", { products: ["*"] }],
    ["scopes", { scopes: ["*"] }],
    ["scopes", { scopes: ["admin:write"] }],
    ["rateLimitPerMinute", { rateLimitPerMinute: 5 }],
    ["rateLimitPerDay", { rateLimitPerDay: 5 }],
    ["ipAllowlist", { ipAllowlist: ["10.0.0.0/8"] }],
    ["ownerId", { ownerId: "someone-else" }],
  ])("a user may not set %s beyond their own (%j): 403 FORBIDDEN naming it, nothing written", async (field, extra) => {
    const { user } = await createUser({ products: ["alpha"], scopes: ["defi:*"] });
    const [keys, audits] = [await rowCount("api_keys"), await rowCount("audit_log")];
    const refused = await api("POST", "/api/v1/keys", await userToken(user), { name: "too much", ...extra });
    expect(refused.status, JSON.stringify(refused.body)).toBe(403);
    expect(refused.body).toMatchObject({ code: "FORBIDDEN", field });
    expect(refused.body.message).toContain(field);
    expect([await rowCount("api_keys"), await rowCount("audit_log")]).toEqual([keys, audits]);
  });

  it("an admin sets limits, IP allowlist, expiry and owner; an unknown owner is a 400 naming ownerId", async () => {
    const { user } = await createUser();
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const created = await api("POST", "/api/v1/keys", adminToken(), {
      name: "limited",
      ownerId: user.id,
      rateLimitPerMinute: 7,
      rateLimitPerDay: 70,
      ipAllowlist: ["10.0.0.0/8", "2001:db8::/32"],
      expiresAt,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({
      ownerId: user.id,
      rateLimitPerMinute: 7,
      rateLimitPerDay: 70,
      ipAllowlist: ["10.0.0.0/8", "2001:db8::/32"],
      expiresAt,
    });

    const unknown = await api("POST", "/api/v1/keys", adminToken(), { name: "x", ownerId: "no-such-user" });
    expect(unknown.status).toBe(400);
    expect(unknown.body.fields).toEqual([{ path: "ownerId", message: "No user has this id" }]);
  });

  it("an admin JWT user also acts as admin, and a token's admin claim means nothing when the user row says user", async () => {
    const { user: admin } = await createUser({ role: "admin" });
    const asAdmin = await api("POST", "/api/v1/keys", await userToken(admin), { name: "a", rateLimitPerMinute: 3 });
    expect(asAdmin.status, JSON.stringify(asAdmin.body)).toBe(201);
    expect(asAdmin.body.ownerId).toBe(admin.id);
    // The admin user is the owner, so the key inherits and needs no products.
    expect(asAdmin.body).toMatchObject({ products: admin.products, scopes: admin.scopes });

    const { user } = await createUser();
    const claimsAdmin = await api("POST", "/api/v1/keys", await userToken({ ...user, role: "admin" }), { name: "b", rateLimitPerMinute: 3 });
    expect(claimsAdmin.status).toBe(403);
    expect(claimsAdmin.body.field).toBe("rateLimitPerMinute");
  });
});

describe("who may call the keys API", () => {
  it("refuses no credentials (401 AUTH_MISSING), a wrong admin token (401), and an API key (403)", async () => {
    const missing = await api("GET", "/api/v1/keys", {});
    expect(missing.status).toBe(401);
    expect(missing.body.code).toBe("AUTH_MISSING");
    expect(missing.headers.get("WWW-Authenticate")).toContain("Bearer");

    const wrong = await api("GET", "/api/v1/keys", { Authorization: `Bearer ${env.ADMIN_TOKEN}x` });
    expect(wrong.status).toBe(401);
    expect(String(wrong.body.code)).toMatch(/^JWT_/);

    const { key } = await createKey();
    const withKey = await api("GET", "/api/v1/keys", { "X-API-Key": key });
    expect(withKey.status).toBe(403);
    expect(withKey.body.code).toBe("FORBIDDEN");
  });

  it("failed guesses at the management API count per client IP and end in 429 AUTH_THROTTLED", async () => {
    // Mid-minute, so the 30 guesses cannot straddle a window boundary.
    setClock("2030-01-01T00:00:05Z");
    try {
      const ip = `198.51.100.${Math.floor(Math.random() * 250) + 1}`;
      const guess = { Authorization: "Bearer wrong-admin-token-guess", "CF-Connecting-IP": ip };
      for (let i = 0; i < 30; i++) expect((await api("GET", "/api/v1/keys", guess)).status).toBe(401);
      const throttled = await api("GET", "/api/v1/keys", { ...adminToken(), "CF-Connecting-IP": ip });
      expect(throttled.status).toBe(429);
      expect(throttled.body.code).toBe("AUTH_THROTTLED");
      expect(Number(throttled.headers.get("Retry-After"))).toBeGreaterThan(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("the admin token in Authorization is ignored when X-API-Key is also sent", async () => {
    const refused = await api("GET", "/api/v1/keys", { ...adminToken(), "X-API-Key": "ilal_live_nope" });
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe("API_KEY_FORMAT_INVALID");
  });

  it("a user sees only their own keys; another's key is 404 NOT_FOUND for every verb", async () => {
    const { user: alice } = await createUser();
    const { user: bob } = await createUser();
    const { record: bobs } = await createKey({ ownerId: bob.id });
    const { record: alices } = await createKey({ ownerId: alice.id });
    const asAlice = await userToken(alice);

    const list = KeyListSchema.parse((await api("GET", "/api/v1/keys", asAlice)).body);
    expect(list.keys.map((k) => k.id)).toEqual([alices.id]);

    for (const [method, path, body] of [
      ["GET", `/api/v1/keys/${bobs.id}`, undefined],
      ["PATCH", `/api/v1/keys/${bobs.id}`, { name: "mine now" }],
      ["DELETE", `/api/v1/keys/${bobs.id}`, undefined],
      ["POST", `/api/v1/keys/${bobs.id}/rotate`, {}],
    ] as const) {
      const answer = await api(method, path, asAlice, body);
      expect(answer.status, `${method} ${path}: ${JSON.stringify(answer.body)}`).toBe(404);
      expect(answer.body.code).toBe("NOT_FOUND");
    }
    expect(await getKey(env.DB, bobs.id)).toEqual(bobs);

    const adminList = KeyListSchema.parse((await api("GET", "/api/v1/keys", adminToken())).body);
    expect(adminList.keys.map((k) => k.id)).toEqual(expect.arrayContaining([alices.id, bobs.id]));
  });
});

describe("editing, deactivating and revoking", () => {
  it("deactivation applies on the very next request even while a stale key row is cached; reactivation restores it", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    await expectForwarded(await send(`${product.pathPrefix}/ping`, { key: key }), { keyId: record.id }, { since: "sent" });

    const off = await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { status: "inactive" });
    expect(off.status, JSON.stringify(off.body)).toBe(200);
    expect(off.body.status).toBe("inactive");
    cacheStale(record);
    await expectRefusal(await send(`${product.pathPrefix}/ping`, { key: key }), 401, "API_KEY_INACTIVE", { presented: key, since: "sent" });

    const on = await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { status: "active" });
    expect(on.status).toBe(200);
    await expectForwarded(await send(`${product.pathPrefix}/ping`, { key: key }), { keyId: record.id }, { since: "sent" });
    expect((await auditRows(record.id)).map((row) => row.action)).toEqual(["key.deactivate", "key.reactivate"]);
  });

  it("a user renames their key and clears nothing else; the audit row names the user", async () => {
    const { user } = await createUser();
    const { record } = await createKey({ ownerId: user.id, rateLimitPerMinute: 9 });
    const renamed = await api("PATCH", `/api/v1/keys/${record.id}`, await userToken(user), { name: "renamed" });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect(renamed.body).toMatchObject({ name: "renamed", rateLimitPerMinute: 9 });
    expect((await getKey(env.DB, record.id))!.name).toBe("renamed");
    expect(await auditRows(record.id)).toEqual([
      expect.objectContaining({ actor: `user:${user.id}`, action: "key.update", target_type: "key", details: JSON.stringify({ name: "renamed" }) }),
    ]);
  });

  it("an admin clears a key's limit and expiry with null", async () => {
    const { record } = await createKey({ rateLimitPerMinute: 9, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    const cleared = await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { rateLimitPerMinute: null, expiresAt: null });
    expect(cleared.status, JSON.stringify(cleared.body)).toBe(200);
    const row = await getKey(env.DB, record.id);
    expect([row!.rateLimitPerMinute, row!.expiresAt]).toEqual([null, null]);
  });

  it("DELETE revokes at once (stale cache or not), twice answers the same with one audit row, and a revoked key cannot change", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    await expectForwarded(await send(`${product.pathPrefix}/ping`, { key: key }), { keyId: record.id }, { since: "sent" });

    for (let i = 0; i < 2; i++) {
      const revoked = await api("DELETE", `/api/v1/keys/${record.id}`, adminToken());
      expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
      expect(revoked.body).toEqual({ authMethod: "admin_token", id: record.id, status: "revoked" });
    }
    expect((await getKey(env.DB, record.id))!.status).toBe("revoked");
    expect((await auditRows(record.id)).map((row) => row.action)).toEqual(["key.revoke"]);
    cacheStale(record);
    await expectRefusal(await send(`${product.pathPrefix}/ping`, { key: key }), 401, "API_KEY_INACTIVE", { presented: key, since: "sent" });

    const reactivate = await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { status: "active" });
    expect(reactivate.status).toBe(409);
    expect(reactivate.body.code).toBe("CONFLICT");
    const rotate = await api("POST", `/api/v1/keys/${record.id}/rotate`, adminToken(), {});
    expect(rotate.status).toBe(409);
    expect((await getKey(env.DB, record.id))!.status).toBe("revoked");
    expect(await auditRows(record.id)).toHaveLength(1);
  });
});

describe("rotation", () => {
  it("the new key copies the old one's policy; both work during the grace period", async () => {
    const product = await createProduct();
    const { user } = await createUser();
    const expiresAt = new Date(Date.now() + 7 * 86_400_000).toISOString();
    // Everything the replacement must copy from the old key.
    const policy = {
      name: "prod",
      ownerId: user.id,
      rateLimitPerMinute: 50,
      rateLimitPerDay: 500,
      products: [product.slug],
      scopes: ["defi:read"],
      ipAllowlist: ["203.0.113.0/24", "2001:db8::/32"],
      expiresAt,
    };
    const { key: oldKey, record } = await createKey(policy);
    const started = Date.now();
    const rotated = await api("POST", `/api/v1/keys/${record.id}/rotate`, await userToken(user), { gracePeriodSeconds: 3600 });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201);
    const body = KeyRotatedSchema.parse(rotated.body);
    expect(body.rotatedFrom).toBe(record.id);
    expect(Date.parse(body.graceUntil) - started).toBeGreaterThanOrEqual(3_599_000);
    expect(body).toMatchObject({
      ...policy,
      format: "ilal",
      env: "live",
    });
    expect(body.id).not.toBe(record.id);
    expect(body.key).not.toBe(oldKey);

    const old = await getKey(env.DB, record.id);
    expect([old!.rotatedTo, old!.graceUntil, old!.status]).toEqual([body.id, body.graceUntil, "active"]);
    // From an address in the copied allowlist.
    await expectForwarded(await send(`${product.pathPrefix}/ping`, { key: oldKey, ip: "203.0.113.7" }), { keyId: record.id }, { since: "sent" });
    await expectForwarded(await send(`${product.pathPrefix}/ping`, { key: body.key, ip: "203.0.113.7" }), { keyId: body.id }, { since: "sent" });
    expect((await auditRows(record.id)).map((row) => row.action)).toEqual(["key.rotate"]);
    expect((await auditRows(body.id)).map((row) => row.action)).toEqual(["key.create"]);

    const again = await api("POST", `/api/v1/keys/${record.id}/rotate`, adminToken(), {});
    expect(again.status).toBe(409);
  });

  it("with no grace period the old key is expired at once, even from a stale cache", async () => {
    const product = await createProduct();
    const { key: oldKey, record } = await createKey();
    const rotated = await api("POST", `/api/v1/keys/${record.id}/rotate`, adminToken(), {});
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201);
    cacheStale(record);
    await expectRefusal(await send(`${product.pathPrefix}/ping`, { key: oldKey }), 401, "API_KEY_EXPIRED", { presented: oldKey, since: "sent" });
    await expectForwarded(await send(`${product.pathPrefix}/ping`, { key: rotated.body.key }), { keyId: rotated.body.id }, { since: "sent" });
  });

  it("the old key works until graceUntil and gets API_KEY_EXPIRED after it", async () => {
    const product = await createProduct();
    const { key: oldKey, record } = await createKey();
    const rotated = await api("POST", `/api/v1/keys/${record.id}/rotate`, adminToken(), { gracePeriodSeconds: 1 });
    expect(rotated.status).toBe(201);
    await expectForwarded(await send(`${product.pathPrefix}/ping`, { key: oldKey }), { keyId: record.id }, { since: "sent" });
    await new Promise((resolve) => setTimeout(resolve, Date.parse(rotated.body.graceUntil) - Date.now() + 50));
    await expectRefusal(await send(`${product.pathPrefix}/ping`, { key: oldKey }), 401, "API_KEY_EXPIRED", { presented: oldKey, since: "sent" });
  });
});
