import { env } from "cloudflare:workers";
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWK, type JWTPayload } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { throttleName } from "../../src/limits/auth-throttle";
import { limiterNames } from "../../src/limits/names";
import { expectForwarded, expectRefusal } from "../helpers/expect";
import { createKey, createProduct, json, randomClientIp, send } from "../helpers/harness";
import { b64url, nowSeconds, signToken, uniqueSubject } from "../helpers/jwt";
import { storedCounters } from "../helpers/limiter";
import { echo, useOrigin } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * SPEC sections 1, 3, 5 and 6 for JWTs through the gateway: JWT principals
 * reach products the way keys do (auth methods, products, scope rules,
 * per-subject limits, identity headers), and every refused token is a 401
 * that reaches no origin and counts nothing.
 */

const origin = useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
});

/** Calls that reached the product's origin (the stub may also answer a JWKS URL). */
const originCalls = () => origin.calls();

describe("JWT principals on product calls", () => {
  it("forwards a call with a keygate JWT, naming the subject and scopes to the origin and injecting authMethod jwt", async () => {
    const product = await createProduct();
    const subject = uniqueSubject();
    const response = await send(`${product.pathPrefix}/hello`, { jwt: await signToken({ sub: subject, scope: "read write", products: [product.slug] }) });
    const { upstream } = await expectForwarded(response, { subject });
    expect(response.headers.get("X-RateLimit-Limit")).toBe("60");
    expect(response.headers.get("X-RateLimit-Remaining")).toBe("59");
    const sent = upstream.headers;
    expect(sent.get("x-auth-scopes")).toBe("read write");
    expect(sent.get("x-auth-product")).toBe(product.slug);
    expect(sent.get("x-auth-key-id")).toBeNull();
    expect(sent.get("authorization"), "the token stays at the edge").toBeNull();
  });

  it("accepts a third party's HS256 token on every product that allows JWTs", async () => {
    const product = await createProduct();
    const subject = uniqueSubject("third-party");
    const response = await send(`${product.pathPrefix}/x`, { jwt: await signToken({ sub: subject, scp: ["read"] }, { alg: "HS256" }) });
    const { upstream } = await expectForwarded(response, { subject });
    expect(upstream.headers.get("x-auth-scopes")).toBe("read");
  });

  it("refuses a JWT with 403 AUTH_METHOD_NOT_ALLOWED on a product that accepts only API keys, which still accepts a key", async () => {
    const product = await createProduct({ authMethods: ["api_key"] });
    const token = await signToken({ products: ["*"] });
    await expectRefusal(await send(`${product.pathPrefix}/x`, { jwt: token }), 403, "AUTH_METHOD_NOT_ALLOWED", { presented: token });
    const { key, record } = await createKey();
    await expectForwarded(await send(`${product.pathPrefix}/x`, { key }), { keyId: record.id });
  });

  it("refuses a keygate token whose products claim lacks the product with 403, consuming no quota", async () => {
    const product = await createProduct();
    const subject = uniqueSubject();
    const token = await signToken({ sub: subject, products: ["some-other-product"] });
    const response = await send(`${product.pathPrefix}/x`, { jwt: token });
    await expectRefusal(response, 403, "API_KEY_PRODUCT_FORBIDDEN", { presented: token });
    expect(response.headers.get("X-RateLimit-Remaining")).toBe("60");
    expect((await storedCounters(limiterNames.user(subject))).minute?.count ?? 0).toBe(0);
  });

  describe("scope rules", () => {
    const rules = [{ method: "POST", path: "/orders/**", scope: "orders:write" }];

    it("refuses a token without the scope a rule requires with 403 JWT_SCOPE_MISSING naming it", async () => {
      const product = await createProduct({ scopeRules: rules });
      const token = await signToken({ scope: "orders:read", products: ["*"] });
      const refused = await send(`${product.pathPrefix}/orders/7`, { jwt: token, method: "POST", body: "{}" });
      const body = await expectRefusal(refused, 403, "JWT_SCOPE_MISSING", { presented: token });
      expect(body.requiredScope).toBe("orders:write");
      expect((await send(`${product.pathPrefix}/orders/7`, { jwt: token })).status, "GET needs no scope").toBe(200);
    });

    it.each<[string, JWTPayload]>([
      ["a space-separated scope claim", { scope: "orders:read orders:write" }],
      ["an scp array with a wildcard", { scp: ["orders:*"] }],
      ["a scopes array", { scopes: ["orders:write"] }],
    ])("admits a token whose %s grants the required scope", async (_label, claims) => {
      const product = await createProduct({ scopeRules: rules });
      const response = await send(`${product.pathPrefix}/orders/7`, { jwt: await signToken({ ...claims, products: ["*"] }), method: "POST", body: "{}" });
      expect(response.status, await response.clone().text()).toBe(200);
    });

    it("narrows a third party's token, which reaches all products, by the scope rules", async () => {
      const product = await createProduct({ scopeRules: rules });
      const response = await send(`${product.pathPrefix}/orders/7`, { jwt: await signToken({}, { alg: "HS256" }), method: "POST", body: "{}" });
      await expectRefusal(response, 403, "JWT_SCOPE_MISSING");
    });
  });

  it("counts a subject's calls in its own object across tokens, and refuses the call past the minute limit", async () => {
    const product = await createProduct({ rateLimitPerMinute: 2 });
    const subject = uniqueSubject();
    for (const expectedRemaining of ["1", "0"]) {
      const response = await send(`${product.pathPrefix}/x`, { jwt: await signToken({ sub: subject, products: ["*"] }) });
      expect(response.status, await response.clone().text()).toBe(200);
      expect(response.headers.get("X-RateLimit-Remaining")).toBe(expectedRemaining);
    }
    const limited = await send(`${product.pathPrefix}/x`, { jwt: await signToken({ sub: subject, products: ["*"] }) });
    const body = await json(limited);
    expect(limited.status, JSON.stringify(body)).toBe(429);
    expect(body.code).toBe("RATE_LIMIT_EXCEEDED");
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await storedCounters(limiterNames.user(subject))).minute?.count).toBe(2);

    const other = await send(`${product.pathPrefix}/x`, { jwt: await signToken({ products: ["*"] }) });
    expect(other.status, "another subject has its own limits").toBe(200);
    expect(originCalls()).toHaveLength(3);
  });
});

describe("refused tokens through the gateway", () => {
  const subject = "attacker-subject";
  const valid = { sub: subject, products: ["*"] };

  it.each<[string, () => Promise<string>, string]>([
    ['alg "none"', async () => new UnsecuredJWT({ ...valid, iss: "keygate", aud: "keygate", exp: nowSeconds() + 60 }).encode(), "JWT_ALG_NOT_ALLOWED"],
    ["an expired token", () => signToken({ ...valid, exp: nowSeconds() - 120 }), "JWT_EXPIRED"],
    ["a token not yet valid", () => signToken({ ...valid, nbf: nowSeconds() + 600 }), "JWT_NOT_YET_VALID"],
    ["a wrong issuer", () => signToken({ ...valid, iss: "https://evil.example" }), "JWT_CLAIM_INVALID"],
    ["a wrong audience", () => signToken({ ...valid, aud: "elsewhere" }), "JWT_CLAIM_INVALID"],
    ["a token without exp", () => signToken({ ...valid, exp: undefined }), "JWT_CLAIM_INVALID"],
    ["an unknown kid", () => signToken(valid, { header: { kid: "unknown-key" } }), "JWT_KEY_NOT_FOUND"],
    [
      "a tampered payload",
      async () => {
        const [header, , signature] = (await signToken(valid)).split(".");
        return `${header}.${b64url({ ...valid, role: "admin", iss: "keygate", aud: "keygate", exp: nowSeconds() + 60 })}.${signature}`;
      },
      "JWT_SIGNATURE_INVALID",
    ],
    ["a token over 8 KiB", () => signToken({ ...valid, pad: "x".repeat(8192) }), "JWT_MALFORMED"],
    ["a two-part token", async () => (await signToken(valid)).split(".").slice(0, 2).join("."), "JWT_MALFORMED"],
    ["garbage", async () => "definitely-not-a-jwt", "JWT_MALFORMED"],
  ])("answers %s with 401 %s, reaching no origin and counting nothing", async (_label, mint, code) => {
    const product = await createProduct();
    const token = await mint();
    const response = await send(`${product.pathPrefix}/x`, { jwt: token });
    const body = await expectRefusal(response, 401, code, { presented: token });
    expect(body.error).toBe("Unauthorized");
    expect(response.headers.get("X-RateLimit-Limit"), "no principal, no limits").toBeNull();
    expect(await storedCounters(limiterNames.user(subject))).toEqual({});
  });

  it("counts a refused JWT as a failed authentication of the client address", async () => {
    const product = await createProduct();
    const ip = randomClientIp();
    await send(`${product.pathPrefix}/x`, { jwt: await signToken({ exp: nowSeconds() - 120 }), ip });
    expect((await storedCounters(throttleName(ip)!)).auth_failures?.count).toBe(1);
  });
});

describe("third parties' claims and subjects (F7, F8)", () => {
  /** Names of the limiter objects the Worker asks for while `run` runs (the Worker shares this env). */
  async function objectsAskedFor(run: () => Promise<void>): Promise<string[]> {
    const getByName = vi.spyOn(env.RATE_LIMITER, "getByName");
    await run();
    const names = getByName.mock.calls.map(([name]) => name);
    getByName.mockRestore();
    return names;
  }

  it.each<[string, JWTPayload, string]>([
    ["a sub holding a newline", { sub: "x\ny" }, "sub"],
    ["a sub holding a space", { sub: "alice smith" }, "sub"],
    ["an scp entry holding CR LF", { scp: ["a\r\nX-Injected: 1"] }, "scp"],
    ["an scp entry holding two scopes", { scp: ["defi:read defi:swap"] }, "scp"],
  ])("refuses an HS256 token with %s as 401 JWT_CLAIM_INVALID before any counting, reaching no origin", async (_label, claims, claim) => {
    // No scope rules: before the fix the GET reached the origin with the unsplit scope (or failed with 500 after counting).
    const product = await createProduct();
    const sub = typeof claims.sub === "string" ? claims.sub : uniqueSubject("svc");
    const token = await signToken({ ...claims, sub }, { alg: "HS256" });
    let response: Response | undefined;
    const asked = await objectsAskedFor(async () => {
      response = await send(`${product.pathPrefix}/pools`, { jwt: token });
    });
    const body = await expectRefusal(response!, 401, "JWT_CLAIM_INVALID", { presented: token });
    expect(body.message).toContain(`"${claim}"`);
    expect(response!.headers.get("X-RateLimit-Remaining"), "no principal, no limits").toBeNull();
    expect(
      asked.filter((name) => !name.startsWith("ip:")),
      "no credential's limiter was asked",
    ).toEqual([]);
    for (const name of [limiterNames.subject("hs256", sub), `sub:${sub}`]) expect(await storedCounters(name), name).toEqual({});
  });

  it("still splits a scope string on spaces, as the standard format says", async () => {
    const product = await createProduct({ scopeRules: [{ method: "POST", path: "/swap", scope: "defi:swap" }] });
    const subject = uniqueSubject("svc");
    const token = await signToken({ sub: subject, scope: "defi:read defi:swap" }, { alg: "HS256" });
    const response = await send(`${product.pathPrefix}/swap`, { jwt: token, method: "POST", body: "{}" });
    const { upstream } = await expectForwarded(response, { subject });
    expect(upstream.headers.get("x-auth-scopes")).toBe("defi:read defi:swap");
  });

  it("counts an HS256 token whose sub is a keygate user's id apart from that user, who keeps their whole quota", async () => {
    const product = await createProduct({ rateLimitPerMinute: 3 });
    const { user, password } = await createUser();
    const login = await send("/auth/login", { method: "POST", body: { email: user.email, password } });
    const ownToken = (await json(login)).token as string;
    const thirdParty = await signToken({ sub: user.id, scope: "*" }, { alg: "HS256" });

    const remaining = async (token: string) => {
      const response = await send(`${product.pathPrefix}/x`, { jwt: token });
      expect(response.status, await response.clone().text()).toBe(200);
      return response.headers.get("X-RateLimit-Remaining");
    };
    expect(await remaining(ownToken)).toBe("2");
    expect(await remaining(thirdParty), "the third party's own counter").toBe("2");
    expect(await remaining(thirdParty)).toBe("1");
    expect(await remaining(thirdParty)).toBe("0");
    expect(await remaining(ownToken), "the user's quota is untouched by the third party").toBe("1");
    expect((await send(`${product.pathPrefix}/x`, { jwt: thirdParty })).status, "the third party is limited alone").toBe(429);

    expect((await storedCounters(limiterNames.user(user.id))).minute?.count).toBe(2);
    expect((await storedCounters(limiterNames.subject("hs256", user.id))).minute?.count).toBe(3);
    expect(originCalls()).toHaveLength(5);
  });
});

describe("third-party tokens from a remote JWKS", () => {
  async function issuer() {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const kid = `idp-${crypto.randomUUID().slice(0, 8)}`;
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
    const url = `https://idp-${crypto.randomUUID().slice(0, 8)}.test/jwks.json`;
    const sub = uniqueSubject("idp");
    const token = await new SignJWT({ sub, scope: "read", iss: "keygate", aud: "keygate", exp: nowSeconds() + 300 })
      .setProtectedHeader({ alg: "ES256", kid })
      .sign(privateKey);
    return { jwk, url, token, sub };
  }

  it("forwards a call with a token signed by a key from JWKS_URL", async () => {
    const idp = await issuer();
    origin.reply((request) => (request.url === idp.url ? Response.json({ keys: [idp.jwk] }) : echo(request)));
    const product = await createProduct();
    const response = await send(`${product.pathPrefix}/x`, { jwt: idp.token, env: { JWKS_URL: idp.url } });
    const { upstream } = await expectForwarded(response, { subject: idp.sub }, { fetched: [idp.url] });
    expect(upstream.headers.get("x-auth-scopes")).toBe("read");
    expect((await storedCounters(limiterNames.subject("jwks:keygate", idp.sub))).minute?.count, "counted under its issuer").toBe(1);
  });

  it("answers 503 AUTH_BACKEND_UNAVAILABLE without WWW-Authenticate when the JWKS cannot be fetched", async () => {
    const idp = await issuer();
    origin.reply((request) => (request.url === idp.url ? new Response("maintenance", { status: 503 }) : echo(request)));
    const product = await createProduct();
    const ip = randomClientIp();
    const response = await send(`${product.pathPrefix}/x`, { jwt: idp.token, ip, env: { JWKS_URL: idp.url } });
    await expectRefusal(response, 503, "AUTH_BACKEND_UNAVAILABLE", { presented: idp.token, fetched: [idp.url] });
    expect(await storedCounters(throttleName(ip)!), "an unjudged token is not a failed authentication").toEqual({});
  });
});
