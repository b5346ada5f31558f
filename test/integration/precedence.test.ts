import { afterEach, describe, expect, it, vi } from "vitest";
import { expectForwarded, expectRefusal } from "../helpers/expect";
import { createKey, createProduct, send } from "../helpers/harness";
import { signToken, uniqueSubject } from "../helpers/jwt";
import { storedCounters } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";

/**
 * SPEC section 1: X-API-Key, when present, decides alone — a failing key is
 * never rescued by a valid JWT — and a Bearer token is a key when it starts
 * with a key prefix, a JWT otherwise.
 */

useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
});

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
    const product = await createProduct();
    const jwt = await validJwt();
    const key = await badKey();
    await expectRefusal(await send(`${product.pathPrefix}/x`, { key, jwt: jwt.token }), 401, code, { presented: key });
    expect(await storedCounters(`user:${jwt.subject}`), "the JWT was never used").toEqual({});
  });

  it("refuses an empty X-API-Key as AUTH_HEADER_MALFORMED even when a valid JWT is also sent", async () => {
    const product = await createProduct();
    const response = await send(`${product.pathPrefix}/x`, { key: " ", jwt: (await validJwt()).token });
    await expectRefusal(response, 401, "AUTH_HEADER_MALFORMED");
  });

  it("uses the key when both a valid key and a valid JWT are sent", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    const jwt = await validJwt();
    await expectForwarded(await send(`${product.pathPrefix}/x`, { key, jwt: jwt.token }), { keyId: record.id });
    expect((await storedCounters(`key:${record.id}`)).minute?.count).toBe(1);
    expect(await storedCounters(`user:${jwt.subject}`)).toEqual({});
  });

  it("uses the key and ignores an unusable Authorization header", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    const response = await send(`${product.pathPrefix}/x`, { key, headers: { Authorization: "Basic dXNlcjpwYXNz" } });
    await expectForwarded(response, { keyId: record.id });
  });

  it("refuses a valid key on a JWT-only product rather than falling back to the valid JWT", async () => {
    const product = await createProduct({ authMethods: ["jwt"] });
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/x`, { key, jwt: (await validJwt()).token });
    await expectRefusal(response, 403, "AUTH_METHOD_NOT_ALLOWED", { presented: key });
  });
});

describe("Authorization: Bearer carries a key or a JWT", () => {
  it("treats a Bearer token with a key prefix as an API key", async () => {
    const product = await createProduct();
    const { key, record } = await createKey({ format: "ila" });
    await expectForwarded(await send(`${product.pathPrefix}/x`, { key, keyAs: "bearer" }), { keyId: record.id });
  });

  it("treats any other Bearer token as a JWT", async () => {
    const product = await createProduct();
    const jwt = await validJwt();
    await expectForwarded(await send(`${product.pathPrefix}/x`, { jwt: jwt.token }), { subject: jwt.subject });
  });

  it("judges a malformed Bearer token with a key prefix as a key, never as a JWT", async () => {
    const product = await createProduct();
    const response = await send(`${product.pathPrefix}/x`, { key: "ilal_live_not-hex", keyAs: "bearer" });
    await expectRefusal(response, 401, "API_KEY_FORMAT_INVALID", { presented: "ilal_live_not-hex" });
  });

  it("judges a Bearer token without a key prefix as a JWT", async () => {
    const product = await createProduct();
    const response = await send(`${product.pathPrefix}/x`, { jwt: "live_0123456789abcdef" });
    await expectRefusal(response, 401, "JWT_MALFORMED", { presented: "live_0123456789abcdef" });
  });
});
