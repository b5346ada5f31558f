import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { verifyPassword } from "../../src/auth/password";
import { getKey } from "../../src/db/keys";
import { getProduct } from "../../src/db/products";
import { getUser } from "../../src/db/users";
import { ProductListSchema, ProductResponseSchema, UserListSchema, UserResponseSchema } from "../../src/routes/schemas";
import { adminToken, api, rowCount, userToken } from "../helpers/api";
import { call, createKey, createProduct, json, ORIGIN, uniqueSlug } from "../helpers/harness";
import { stubOrigin } from "../helpers/origin";
import { createUser } from "../helpers/users";

let origin: ReturnType<typeof stubOrigin> | undefined;
afterEach(() => {
  origin?.restore();
  origin = undefined;
});

function productBody(overrides: Record<string, unknown> = {}) {
  const slug = uniqueSlug("api");
  return { slug, name: `Product ${slug}`, pathPrefix: `/api/${slug}`, originUrl: `${ORIGIN}/one`, ...overrides };
}

describe("admin products", () => {
  it("creates a product (201) that routes traffic at once, with defaults filled in", async () => {
    origin = stubOrigin();
    const body = productBody({ scopeRules: [{ method: "post", path: "/swap", scope: "defi:swap" }] });
    const created = await api("POST", "/api/v1/admin/products", adminToken(), body);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const product = ProductResponseSchema.parse(created.body);
    expect(product).toMatchObject({
      authMethod: "admin_token",
      slug: body.slug,
      pathPrefix: body.pathPrefix,
      stripPrefix: false,
      authMethods: ["api_key", "jwt"],
      errorFormat: "detailed",
      injectAuthMethod: true,
      testOriginUrl: null,
      scopeRules: [{ method: "POST", path: "/swap", scope: "defi:swap" }],
    });
    expect(await getProduct(env.DB, body.slug)).toMatchObject({ id: product.id, originUrl: `${ORIGIN}/one` });

    const { key } = await createKey();
    const response = await call(`${body.pathPrefix}/hello`, { headers: { "X-API-Key": key } });
    expect(response.status, JSON.stringify(await json(response.clone()))).toBe(200);
    expect(origin.received.map((r) => r.url)).toEqual([`${ORIGIN}/one${body.pathPrefix}/hello`]);
  });

  it("reads a product by id or slug, lists it, edits it (routing follows) and deletes it (routing stops)", async () => {
    origin = stubOrigin();
    const product = await createProduct();
    for (const idOrSlug of [product.id, product.slug]) {
      const read = await api("GET", `/api/v1/admin/products/${idOrSlug}`, adminToken());
      expect(read.status).toBe(200);
      expect(read.body.id).toBe(product.id);
    }
    const list = ProductListSchema.parse((await api("GET", "/api/v1/admin/products", adminToken())).body);
    expect(list.products.map((p) => p.slug)).toContain(product.slug);

    const edited = await api("PATCH", `/api/v1/admin/products/${product.slug}`, adminToken(), { originUrl: `${ORIGIN}/two`, stripPrefix: true });
    expect(edited.status, JSON.stringify(edited.body)).toBe(200);
    expect(edited.body).toMatchObject({ originUrl: `${ORIGIN}/two`, stripPrefix: true, slug: product.slug });
    const { key } = await createKey();
    expect((await call(`${product.pathPrefix}/x`, { headers: { "X-API-Key": key } })).status).toBe(200);
    expect(origin.received.at(-1)!.url).toBe(`${ORIGIN}/two/x`);

    const deleted = await api("DELETE", `/api/v1/admin/products/${product.id}`, adminToken());
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ authMethod: "admin_token", id: product.id, slug: product.slug, deleted: true });
    expect(await getProduct(env.DB, product.id)).toBeUndefined();
    expect((await api("GET", `/api/v1/admin/products/${product.id}`, adminToken())).status).toBe(404);
    const gone = await call(`${product.pathPrefix}/x`, { headers: { "X-API-Key": key } });
    expect((await json(gone)).code).toBe("ROUTE_NOT_FOUND");
  });

  it("a duplicate slug or path prefix is 409 CONFLICT naming the field, and nothing is written", async () => {
    const existing = await createProduct();
    const [products, audits] = [await rowCount("products"), await rowCount("audit_log")];
    const sameSlug = await api("POST", "/api/v1/admin/products", adminToken(), productBody({ slug: existing.slug }));
    expect(sameSlug.status).toBe(409);
    expect(sameSlug.body).toMatchObject({ code: "CONFLICT", field: "slug" });
    const samePrefix = await api("POST", "/api/v1/admin/products", adminToken(), productBody({ pathPrefix: `${existing.pathPrefix}/` }));
    expect(samePrefix.status).toBe(409);
    expect(samePrefix.body).toMatchObject({ code: "CONFLICT", field: "pathPrefix" });

    const other = await createProduct();
    const patched = await api("PATCH", `/api/v1/admin/products/${other.id}`, adminToken(), { pathPrefix: existing.pathPrefix });
    expect(patched.status).toBe(409);
    expect(await rowCount("products")).toBe(products + 1);
    expect(await rowCount("audit_log")).toBe(audits);
    expect((await getProduct(env.DB, other.id))!.pathPrefix).toBe(other.pathPrefix);
  });
});

describe("admin users", () => {
  it("creates a user (201) without ever returning the password; it is stored as PBKDF2 and can log in", async () => {
    const email = `new-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const created = await api("POST", "/api/v1/admin/users", adminToken(), { email, password: "correct horse", products: ["alpha"], scopes: ["read"] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual([
      "authMethod",
      "createdAt",
      "email",
      "id",
      "maxActiveKeys",
      "products",
      "rateLimitPerDay",
      "rateLimitPerMinute",
      "role",
      "scopes",
      "updatedAt",
    ]);
    expect(created.body).toMatchObject({ rateLimitPerMinute: null, rateLimitPerDay: null, maxActiveKeys: null });
    expect(UserResponseSchema.parse(created.body)).toMatchObject({ email, role: "user", products: ["alpha"], scopes: ["read"] });
    expect(JSON.stringify(created.body)).not.toContain("correct horse");

    const stored = await getUser(env.DB, created.body.id);
    expect(stored!.passwordHash).toMatch(/^pbkdf2-sha256\$100000\$[\w-]{22}\$[\w-]{43}$/);
    expect(await verifyPassword("correct horse", stored!.passwordHash)).toBe(true);

    const login = await api("POST", "/auth/login", {}, { email, password: "correct horse" });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    expect(login.body.tokenType).toBe("Bearer");
  });

  it("a duplicate email, in any case, is 409 CONFLICT naming email", async () => {
    const { user } = await createUser();
    const before = await rowCount("users");
    const duplicate = await api("POST", "/api/v1/admin/users", adminToken(), { email: user.email.toUpperCase(), password: "another password" });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body).toMatchObject({ code: "CONFLICT", field: "email" });
    expect(await rowCount("users")).toBe(before);
  });

  it("lists and reads users without password hashes; edits role and password", async () => {
    const { user } = await createUser();
    const list = await api("GET", "/api/v1/admin/users", adminToken());
    expect(UserListSchema.parse(list.body).users.map((u) => u.id)).toContain(user.id);
    expect(JSON.stringify(list.body)).not.toContain("pbkdf2");
    const read = await api("GET", `/api/v1/admin/users/${user.id}`, adminToken());
    expect(read.body).toMatchObject({ id: user.id, email: user.email, role: "user" });
    expect(read.body.passwordHash).toBeUndefined();

    const edited = await api("PATCH", `/api/v1/admin/users/${user.id}`, adminToken(), { role: "admin", password: "brand new password" });
    expect(edited.status, JSON.stringify(edited.body)).toBe(200);
    expect(edited.body.role).toBe("admin");
    const stored = await getUser(env.DB, user.id);
    expect(await verifyPassword("brand new password", stored!.passwordHash)).toBe(true);
    // The new role applies to the user's existing tokens at once: roles are read from the row.
    expect((await api("GET", "/api/v1/admin/users", await userToken(user))).status).toBe(200);
  });

  it("deleting a user revokes and detaches their keys, which stop working at once", async () => {
    origin = stubOrigin();
    const product = await createProduct();
    const { user } = await createUser();
    const { key, record } = await createKey({ ownerId: user.id });
    expect((await call(`${product.pathPrefix}/x`, { headers: { "X-API-Key": key } })).status).toBe(200);

    const deleted = await api("DELETE", `/api/v1/admin/users/${user.id}`, adminToken());
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    expect(deleted.body).toEqual({ authMethod: "admin_token", id: user.id, deleted: true, revokedKeys: [record.id] });
    expect(await getUser(env.DB, user.id)).toBeUndefined();
    expect(await getKey(env.DB, record.id)).toMatchObject({ status: "revoked", ownerId: null });
    const refused = await call(`${product.pathPrefix}/x`, { headers: { "X-API-Key": key } });
    expect((await json(refused)).code).toBe("API_KEY_INACTIVE");
    // A token of the deleted user no longer opens anything.
    const stale = await api("GET", "/api/v1/keys", await userToken(user));
    expect(stale.status).toBe(401);
    expect((await api("DELETE", `/api/v1/admin/users/${user.id}`, adminToken())).status).toBe(404);
  });
});

describe("admin endpoints refuse non-admins", () => {
  const routes: [string, string, unknown?][] = [
    ["GET", "/api/v1/admin/products"],
    ["POST", "/api/v1/admin/products", productBody()],
    ["GET", "/api/v1/admin/products/any"],
    ["PATCH", "/api/v1/admin/products/any", { name: "x" }],
    ["DELETE", "/api/v1/admin/products/any"],
    ["GET", "/api/v1/admin/users"],
    ["POST", "/api/v1/admin/users", { email: "x@example.com", password: "long enough" }],
    ["GET", "/api/v1/admin/users/any"],
    ["PATCH", "/api/v1/admin/users/any", { role: "admin" }],
    ["DELETE", "/api/v1/admin/users/any"],
    ["GET", "/api/v1/admin/audit"],
  ];

  it.each(routes)("%s %s: 401 without credentials, 401 with a wrong token, 403 FORBIDDEN for a user JWT and an API key", async (method, path, body) => {
    const [products, users, audits] = [await rowCount("products"), await rowCount("users"), await rowCount("audit_log")];
    const none = await api(method, path, {}, body);
    expect(none.status).toBe(401);
    expect(none.body.code).toBe("AUTH_MISSING");
    const wrong = await api(method, path, { Authorization: "Bearer not-the-admin-token" }, body);
    expect(wrong.status).toBe(401);

    const { user } = await createUser();
    const asUser = await api(method, path, await userToken(user), body);
    expect(asUser.status, JSON.stringify(asUser.body)).toBe(403);
    expect(asUser.body.code).toBe("FORBIDDEN");
    const { key } = await createKey();
    const asKey = await api(method, path, { "X-API-Key": key }, body);
    expect(asKey.status).toBe(403);
    expect([await rowCount("products"), (await rowCount("users")) - 1, await rowCount("audit_log")]).toEqual([products, users, audits]);
  });
});
