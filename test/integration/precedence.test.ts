import { afterEach, describe, expect, it, vi } from "vitest";
import { call, createKey, createProduct, json, randomClientIp } from "../helpers/harness";
import { signToken, uniqueSubject } from "../helpers/jwt";
import { storedCounters } from "../helpers/limiter";
import { stubOrigin } from "../helpers/origin";

/**
 * SPEC section 1: X-API-Key, when present, decides alone — a failing key is
 * never rescued by a valid JWT — and a Bearer token is a key when it starts
 * with a key prefix, a JWT otherwise.
 */

let origin: ReturnType<typeof stubOrigin>;
afterEach(() => {
  vi.restoreAllMocks();
});

function send(path: string, headers: Record<string, string>): Promise<Response> {
  return call(path, { headers: { "CF-Connecting-IP": randomClientIp(), ...headers } });
}

/** A valid keygate JWT for a fresh subject, and that subject. */
async function validJwt(): Promise<{ token: string; subject: string }> {
  const subject = uniqueSubject();
  return { token: await signToken({ sub: subject, products: ["*"] }), subject };
}

describe("X-API-Key is used exclusively", () => {
  it.each<[string, () => Promise<string>, string]>([
    ["an unknown key", async () => `ilal_live_${"0".repeat(48)}`, "API_KEY_PREFIX_NOT_FOUND"],
    ["a key of a known prefix but the wrong format", async () => "ilal_live_tooshort", "API_KEY_FORMAT_INVALID"],
    ["a key with one character changed", async () => (await createKey()).key.replace(/.$/, (last) => (last === "a" ? "b" : "a")), "API_KEY_HASH_MISMATCH"],
    ["a revoked key", async () => (await createKey({ status: "revoked" })).key, "API_KEY_INACTIVE"],
    ["an expired key", async () => (await createKey({ expiresAt: "2000-01-01T00:00:00.000Z" })).key, "API_KEY_EXPIRED"],
  ])("refuses %s even when a valid JWT is also sent", async (_label, badKey, code) => {
    origin = stubOrigin();
    const product = await createProduct();
    const jwt = await validJwt();
    const response = await send(`${product.pathPrefix}/x`, { "X-API-Key": await badKey(), Authorization: `Bearer ${jwt.token}` });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(401);
    expect(body.code).toBe(code);
    expect(origin.received).toHaveLength(0);
    expect(await storedCounters(`user:${jwt.subject}`), "the JWT was never used").toEqual({});
  });

  it("refuses an empty X-API-Key as AUTH_HEADER_MALFORMED even when a valid JWT is also sent", async () => {
    origin = stubOrigin();
    const product = await createProduct();
    const response = await send(`${product.pathPrefix}/x`, { "X-API-Key": " ", Authorization: `Bearer ${(await validJwt()).token}` });
    expect(response.status).toBe(401);
    expect((await json(response)).code).toBe("AUTH_HEADER_MALFORMED");
    expect(origin.received).toHaveLength(0);
  });

  it("uses the key when both a valid key and a valid JWT are sent", async () => {
    origin = stubOrigin();
    const product = await createProduct();
    const { key, record } = await createKey();
    const jwt = await validJwt();
    const response = await send(`${product.pathPrefix}/x`, { "X-API-Key": key, Authorization: `Bearer ${jwt.token}` });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(response.headers.get("X-Auth-Method")).toBe("api_key");
    expect(body.authMethod).toBe("api_key");
    expect(origin.received[0]!.headers.get("x-auth-key-id")).toBe(record.id);
    expect(origin.received[0]!.headers.get("x-auth-subject")).toBeNull();
    expect((await storedCounters(`key:${record.id}`)).minute?.count).toBe(1);
    expect(await storedCounters(`user:${jwt.subject}`)).toEqual({});
  });

  it("uses the key and ignores an unusable Authorization header", async () => {
    origin = stubOrigin();
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/x`, { "X-API-Key": key, Authorization: "Basic dXNlcjpwYXNz" });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(response.headers.get("X-Auth-Method")).toBe("api_key");
  });

  it("refuses a valid key on a JWT-only product rather than falling back to the valid JWT", async () => {
    origin = stubOrigin();
    const product = await createProduct({ authMethods: ["jwt"] });
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/x`, { "X-API-Key": key, Authorization: `Bearer ${(await validJwt()).token}` });
    expect(response.status).toBe(403);
    expect((await json(response)).code).toBe("AUTH_METHOD_NOT_ALLOWED");
    expect(origin.received).toHaveLength(0);
  });
});

describe("Authorization: Bearer carries a key or a JWT", () => {
  it("treats a Bearer token with a key prefix as an API key", async () => {
    origin = stubOrigin();
    const product = await createProduct();
    const { key, record } = await createKey({ format: "ila" });
    const response = await send(`${product.pathPrefix}/x`, { Authorization: `Bearer ${key}` });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(response.headers.get("X-Auth-Method")).toBe("api_key");
    expect(origin.received[0]!.headers.get("x-auth-key-id")).toBe(record.id);
  });

  it("treats any other Bearer token as a JWT", async () => {
    origin = stubOrigin();
    const product = await createProduct();
    const jwt = await validJwt();
    const response = await send(`${product.pathPrefix}/x`, { Authorization: `Bearer ${jwt.token}` });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(response.headers.get("X-Auth-Method")).toBe("jwt");
    expect(origin.received[0]!.headers.get("x-auth-subject")).toBe(jwt.subject);
  });

  it("judges a malformed Bearer token with a key prefix as a key, never as a JWT", async () => {
    origin = stubOrigin();
    const product = await createProduct();
    const response = await send(`${product.pathPrefix}/x`, { Authorization: "Bearer ilal_live_not-hex" });
    expect(response.status).toBe(401);
    expect((await json(response)).code).toBe("API_KEY_FORMAT_INVALID");
  });

  it("judges a Bearer token without a key prefix as a JWT", async () => {
    origin = stubOrigin();
    const product = await createProduct();
    const response = await send(`${product.pathPrefix}/x`, { Authorization: "Bearer live_0123456789abcdef" });
    expect(response.status).toBe(401);
    expect((await json(response)).code).toBe("JWT_MALFORMED");
  });
});
