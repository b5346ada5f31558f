import { describe, expect, it } from "vitest";
import { adminToken, api, rowCount } from "../helpers/api";
import { createKey, createProduct, ORIGIN, uniqueSlug } from "../helpers/harness";

/**
 * Bad request bodies and queries: 400 VALIDATION_FAILED naming the field in
 * `fields`, and nothing written (row counts and the audit log unchanged).
 */
const TABLES = ["api_keys", "users", "products", "audit_log"] as const;
const counts = () => Promise.all(TABLES.map(rowCount));

const past = new Date(Date.now() - 60_000).toISOString();
const product = (overrides: Record<string, unknown>) => {
  const slug = uniqueSlug("v");
  return { slug, name: "V", pathPrefix: `/api/${slug}`, originUrl: `${ORIGIN}/v`, ...overrides };
};

async function expectRefused(method: string, path: string, body: unknown, field: string): Promise<void> {
  const before = await counts();
  const answer = await api(method, path, adminToken(), body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(400);
  expect(answer.body.code).toBe("VALIDATION_FAILED");
  expect(
    answer.body.fields.map((f: { path: string }) => f.path),
    JSON.stringify(answer.body),
  ).toContain(field);
  expect(answer.body.message).toContain(field || "body");
  expect(await counts()).toEqual(before);
}

describe("POST /api/v1/keys bodies", () => {
  it.each([
    ["name", { name: 5 }],
    ["name", { name: "" }],
    ["name", {}],
    ["colour", { name: "k", colour: "blue" }],
    ["format", { name: "k", format: "ilax" }],
    ["env", { name: "k", env: "prod" }],
    ["products", { name: "k", products: "alpha" }],
    ["scopes.0", { name: "k", scopes: ["has space"] }],
    ["ipAllowlist.0", { name: "k", ipAllowlist: ["10.0.0.0/33"] }],
    ["ipAllowlist.1", { name: "k", ipAllowlist: ["10.0.0.1", "not-an-ip"] }],
    ["expiresAt", { name: "k", expiresAt: "tomorrow" }],
    ["expiresAt", { name: "k", expiresAt: past }],
    ["expiresAt", { name: "k", expiresAt: 1893456000 }],
    ["rateLimitPerMinute", { name: "k", rateLimitPerMinute: 0 }],
    ["rateLimitPerMinute", { name: "k", rateLimitPerMinute: -5 }],
    ["rateLimitPerMinute", { name: "k", rateLimitPerMinute: 1.5 }],
    ["rateLimitPerDay", { name: "k", rateLimitPerDay: "100" }],
  ])("refuses %s in %j", async (field, body) => {
    await expectRefused("POST", "/api/v1/keys", body, field);
  });

  it("refuses a body that is not JSON", async () => {
    const before = await counts();
    const answer = await api("POST", "/api/v1/keys", adminToken(), "{name:");
    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe("VALIDATION_FAILED");
    expect(await counts()).toEqual(before);
  });
});

describe("PATCH and rotate bodies", () => {
  it.each([
    ["", {}],
    ["status", { status: "revoked" }],
    ["format", { format: "ila" }],
    ["env", { env: "test" }],
    ["expiresAt", { expiresAt: past }],
    ["rateLimitPerDay", { rateLimitPerDay: 0 }],
  ])("PATCH refuses %j", async (field, body) => {
    const { record } = await createKey();
    await expectRefused("PATCH", `/api/v1/keys/${record.id}`, body, field);
  });

  it.each([
    ["gracePeriodSeconds", { gracePeriodSeconds: -1 }],
    ["gracePeriodSeconds", { gracePeriodSeconds: "60" }],
    ["gracePeriodSeconds", { gracePeriodSeconds: 31 * 86_400 }],
    ["keep", { keep: true }],
  ])("rotate refuses %s in %j", async (field, body) => {
    const { record } = await createKey();
    await expectRefused("POST", `/api/v1/keys/${record.id}/rotate`, body, field);
  });
});

describe("product bodies", () => {
  it.each([
    ["pathPrefix", { pathPrefix: "api/no-slash" }],
    ["pathPrefix", { pathPrefix: "/api/has space" }],
    ["pathPrefix", { pathPrefix: "/api/v1/keys" }],
    ["pathPrefix", { pathPrefix: "/api/v1/admin/things" }],
    ["pathPrefix", { pathPrefix: "/api/v1/usage" }],
    ["pathPrefix", { pathPrefix: "/auth" }],
    ["pathPrefix", { pathPrefix: "/.well-known/x" }],
    ["pathPrefix", { pathPrefix: "/openapi.json" }],
    ["pathPrefix", { pathPrefix: "/dashboard/app" }],
    ["pathPrefix", { pathPrefix: "/healthz" }],
    ["originUrl", { originUrl: "ftp://origin.test" }],
    ["originUrl", { originUrl: "not a url" }],
    ["testOriginUrl", { testOriginUrl: "javascript:alert(1)" }],
    ["slug", { slug: "Bad Slug" }],
    ["rateLimitPerDay", { rateLimitPerDay: 0 }],
    ["errorFormat", { errorFormat: "html" }],
    ["authMethods", { authMethods: [] }],
    ["authMethods.0", { authMethods: ["password"] }],
    ["stripPrefix", { stripPrefix: "yes" }],
    ["scopeRules.0.scope", { scopeRules: [{ path: "/x" }] }],
    ["scopeRules.0.extra", { scopeRules: [{ scope: "s", extra: 1 }] }],
  ])("POST refuses %s in %j", async (field, overrides) => {
    await expectRefused("POST", "/api/v1/admin/products", product(overrides), field);
  });

  it.each([
    ["slug", { slug: "renamed" }],
    ["pathPrefix", { pathPrefix: "/auth/login" }],
    ["", {}],
  ])("PATCH refuses %s in %j", async (field, body) => {
    const existing = await createProduct();
    await expectRefused("PATCH", `/api/v1/admin/products/${existing.id}`, body, field);
  });
});

describe("user bodies and the audit query", () => {
  it.each([
    ["email", { email: "not-an-email", password: "long enough" }],
    ["password", { email: "a@example.com", password: "short" }],
    ["password", { email: "a@example.com" }],
    ["role", { email: "a@example.com", password: "long enough", role: "root" }],
    ["isAdmin", { email: "a@example.com", password: "long enough", isAdmin: true }],
  ])("POST /api/v1/admin/users refuses %s in %j", async (field, body) => {
    await expectRefused("POST", "/api/v1/admin/users", body, field);
  });

  it.each([
    ["limit", "limit=0"],
    ["limit", "limit=abc"],
    ["limit", "limit=501"],
    ["targetType", "targetType=robot"],
    ["sort", "sort=asc"],
  ])("GET /api/v1/admin/audit refuses %s in ?%s", async (field, query) => {
    const answer = await api("GET", `/api/v1/admin/audit?${query}`, adminToken());
    expect(answer.status, JSON.stringify(answer.body)).toBe(400);
    expect(answer.body.code).toBe("VALIDATION_FAILED");
    expect(answer.body.fields.map((f: { path: string }) => f.path)).toContain(field);
  });
});
