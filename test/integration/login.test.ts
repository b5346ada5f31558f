import { env } from "cloudflare:workers";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { verifyJwt } from "../../src/auth/jwt";
import { PBKDF2_ITERATIONS } from "../../src/auth/password";
import { getConfig } from "../../src/config";
import { call, createProduct, json, randomClientIp } from "../helpers/harness";
import { OWN_KID, signingJwk } from "../helpers/jwt";
import { setClock, storedCounters } from "../helpers/limiter";
import { stubOrigin } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * SPEC section 6: POST /auth/login issues an ES256 token for a user row, the
 * same 401 for an unknown email and a wrong password, throttled per address
 * and per account; GET /.well-known/jwks.json publishes only the public key.
 */

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

function login(body: unknown, ip: string = randomClientIp(), contentType = "application/json"): Promise<Response> {
  return call("/auth/login", {
    method: "POST",
    headers: { "Content-Type": contentType, "CF-Connecting-IP": ip },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function publishedKeys(): Promise<JSONWebKeySet> {
  const response = await call("/.well-known/jwks.json");
  expect(response.status).toBe(200);
  return (await json(response)) as JSONWebKeySet;
}

describe("POST /auth/login", () => {
  it("returns a Bearer ES256 token carrying the user's id, email, role, scopes and products", async () => {
    const { user, password } = await createUser({ products: ["alpha", "beta"], scopes: ["read", "write:*"] });
    const before = Math.floor(Date.now() / 1000);
    const response = await login({ email: user.email, password });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(Object.keys(body).sort()).toEqual(["expiresIn", "token", "tokenType"]);
    expect(body).toMatchObject({ tokenType: "Bearer", expiresIn: 3600 });
    expect(response.headers.get("Cache-Control")).toBe("no-store");
    expect(response.headers.get("X-Auth-Method"), "login is unauthenticated").toBeNull();

    expect(decodeProtectedHeader(body.token)).toEqual({ alg: "ES256", kid: OWN_KID, typ: "JWT" });
    const { payload } = await jwtVerify(body.token, createLocalJWKSet(await publishedKeys()), { issuer: "keygate", audience: "keygate" });
    expect(payload).toMatchObject({ sub: user.id, email: user.email, role: "user", scope: "read write:*", products: ["alpha", "beta"] });
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(payload.exp! - payload.iat!).toBe(3600);
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("gives every token its own jti", async () => {
    const { user, password } = await createUser();
    const first = await json(await login({ email: user.email, password }));
    const second = await json(await login({ email: user.email, password }));
    const jti = (token: string) => JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))).jti;
    expect(jti(first.token)).not.toBe(jti(second.token));
  });

  it("finds the user whatever the case of the email", async () => {
    const { user, password } = await createUser({ email: `Mixed.Case-${crypto.randomUUID().slice(0, 6)}@Example.com` });
    const response = await login({ email: `  ${user.email.toUpperCase()} `, password });
    expect(response.status, await response.clone().text()).toBe(200);
  });

  it("issues a token the gateway reads back as the user, with an admin's role", async () => {
    const { user, password } = await createUser({ role: "admin", products: ["*"], scopes: ["*"] });
    const { token } = await json(await login({ email: user.email, password }));
    expect(await verifyJwt(token, getConfig(env), Date.now())).toEqual({
      method: "jwt",
      issuer: "keygate",
      subject: user.id,
      scopes: ["*"],
      userId: user.id,
      role: "admin",
      email: user.email,
      products: ["*"],
      grantVersion: Date.parse(user.updatedAt),
    });
  });

  it("opens the products the user may use, and no others", async () => {
    const origin = stubOrigin();
    const allowed = await createProduct();
    const other = await createProduct();
    const { user, password } = await createUser({ products: [allowed.slug] });
    const { token } = await json(await login({ email: user.email, password }));
    const ok = await call(`${allowed.pathPrefix}/x`, { headers: { Authorization: `Bearer ${token}` } });
    expect(ok.status, await ok.clone().text()).toBe(200);
    expect(origin.received[0]!.headers.get("x-auth-subject")).toBe(user.id);
    const refused = await call(`${other.pathPrefix}/x`, { headers: { Authorization: `Bearer ${token}` } });
    expect(refused.status).toBe(403);
    expect(origin.received).toHaveLength(1);
  });

  it("answers a wrong password and an unknown email with the same 401 INVALID_CREDENTIALS", async () => {
    const { user } = await createUser();
    const wrongPassword = await login({ email: user.email, password: "not-the-password" });
    const unknownEmail = await login({ email: `nobody-${crypto.randomUUID()}@example.com`, password: "not-the-password" });
    const bodies = [];
    for (const response of [wrongPassword, unknownEmail]) {
      const body = await json(response);
      expect(response.status, JSON.stringify(body)).toBe(401);
      expect(body.code).toBe("INVALID_CREDENTIALS");
      expect(response.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
      expect(body.token).toBeUndefined();
      const { requestId: _requestId, ...rest } = body;
      bodies.push(rest);
    }
    expect(bodies[0]).toEqual(bodies[1]);
  });

  it("runs PBKDF2 at full strength for an unknown email, as for a wrong password", async () => {
    const { user } = await createUser();
    const deriveBits = vi.spyOn(crypto.subtle, "deriveBits");
    await login({ email: `nobody-${crypto.randomUUID()}@example.com`, password: "guess" });
    await login({ email: user.email, password: "guess" });
    const iterations = deriveBits.mock.calls.map(([algorithm]) => (algorithm as { iterations: number }).iterations);
    expect(iterations).toEqual([PBKDF2_ITERATIONS, PBKDF2_ITERATIONS]);
  });

  describe("body validation", () => {
    it.each<[string, unknown, { path: string; message: string }[]]>([
      ["a missing password", { email: "a@example.com" }, [{ path: "password", message: expect.any(String) }]],
      ["an email that is not a string", { email: 42, password: "x" }, [{ path: "email", message: expect.stringMatching(/string/) }]],
      ["an empty password", { email: "a@example.com", password: "" }, [{ path: "password", message: expect.any(String) }]],
      ["an unknown field", { email: "a@example.com", password: "x", remember: true }, [{ path: "remember", message: "Unknown field" }]],
      ["a body that is an array", [], [{ path: "", message: expect.any(String) }]],
      [
        "an empty object",
        {},
        [
          { path: "email", message: expect.any(String) },
          { path: "password", message: expect.any(String) },
        ],
      ],
    ])("refuses %s with 400 VALIDATION_FAILED naming the field", async (_label, body, fields) => {
      const response = await login(body);
      const answer = await json(response);
      expect(response.status, JSON.stringify(answer)).toBe(400);
      expect(answer).toMatchObject({ code: "VALIDATION_FAILED", fields });
      expect(answer.fields).toHaveLength(fields.length);
      for (const field of fields) if (field.path) expect(answer.message).toContain(field.path);
    });

    it("refuses malformed JSON with 400 VALIDATION_FAILED", async () => {
      const response = await login('{"email": "a@example.com", ');
      expect(response.status).toBe(400);
      expect((await json(response)).code).toBe("VALIDATION_FAILED");
    });

    it("refuses a body that is not sent as JSON, naming the missing fields", async () => {
      const response = await login("email=a@example.com&password=x", randomClientIp(), "application/x-www-form-urlencoded");
      const body = await json(response);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(body.fields.map((field: { path: string }) => field.path)).toEqual(["email", "password"]);
    });
  });

  describe("throttling failures", () => {
    const LIMIT = 30; // AUTH_FAILURE_LIMIT_PER_MINUTE in wrangler.toml

    it("throttles an account after too many failures from many addresses, even for the right password", async () => {
      setClock(new Date().toISOString()); // one calendar minute for the whole test
      const { user, password } = await createUser();
      for (let attempt = 0; attempt < LIMIT; attempt++) {
        expect((await login({ email: user.email, password: `guess-${attempt}` })).status).toBe(401);
      }
      expect((await storedCounters(`email:${user.email.toLowerCase()}`)).auth_failures?.count).toBe(LIMIT);
      const throttled = await login({ email: user.email.toUpperCase(), password });
      const body = await json(throttled);
      expect(throttled.status, JSON.stringify(body)).toBe(429);
      expect(body.code).toBe("AUTH_THROTTLED");
      expect(Number(throttled.headers.get("Retry-After"))).toBeGreaterThan(0);
      expect(body.token).toBeUndefined();

      const other = await createUser();
      expect((await login({ email: other.user.email, password: other.password })).status, "other accounts are not affected").toBe(200);
    });

    it("throttles an address after too many failures across accounts", async () => {
      setClock(new Date().toISOString());
      const ip = randomClientIp();
      for (let attempt = 0; attempt < LIMIT; attempt++) {
        expect((await login({ email: `nobody-${attempt}-${crypto.randomUUID()}@example.com`, password: "guess" }, ip)).status).toBe(401);
      }
      const { user, password } = await createUser();
      const throttled = await login({ email: user.email, password }, ip);
      expect(throttled.status).toBe(429);
      expect((await json(throttled)).code).toBe("AUTH_THROTTLED");
      expect((await login({ email: user.email, password }, randomClientIp())).status, "other addresses are not affected").toBe(200);
    });

    it("keeps no per-email state for unknown emails: their failures count under the address only", async () => {
      setClock(new Date().toISOString());
      const ip = randomClientIp();
      const emails = Array.from({ length: 20 }, (_, i) => `Nobody-${i}-${crypto.randomUUID()}@Example.com`);
      // Every object name the Worker asks for (it receives this very env).
      const named: string[] = [];
      const getByName = env.RATE_LIMITER.getByName.bind(env.RATE_LIMITER);
      vi.spyOn(env.RATE_LIMITER, "getByName").mockImplementation((name, options) => (named.push(name), getByName(name, options)));
      for (const email of emails) {
        const response = await login({ email, password: "guess" }, ip);
        expect(response.status, await response.clone().text()).toBe(401);
      }
      vi.restoreAllMocks();
      expect(
        named.filter((name) => name.startsWith("email:")),
        "no per-email object is even addressed",
      ).toEqual([]);
      // Reading creates the object, but an object that was never written holds no rows.
      for (const email of emails.slice(0, 3)) expect(await storedCounters(`email:${email.toLowerCase()}`), email).toEqual({});
      expect((await storedCounters(`ip:${ip}`)).auth_failures?.count, "the address counted every one").toBe(emails.length);
    });

    it("still counts a known email's failures per account, alongside the address", async () => {
      setClock(new Date().toISOString());
      const { user } = await createUser();
      const ip = randomClientIp();
      for (let attempt = 0; attempt < 3; attempt++) expect((await login({ email: user.email, password: `guess-${attempt}` }, ip)).status).toBe(401);
      expect((await storedCounters(`email:${user.email.toLowerCase()}`)).auth_failures?.count).toBe(3);
      expect((await storedCounters(`ip:${ip}`)).auth_failures?.count).toBe(3);
    });

    it("does not count a successful login as a failure", async () => {
      const { user, password } = await createUser();
      const ip = randomClientIp();
      expect((await login({ email: user.email, password }, ip)).status).toBe(200);
      expect(await storedCounters(`email:${user.email.toLowerCase()}`)).toEqual({});
    });
  });
});

describe("methods", () => {
  it.each([
    ["GET", "/auth/login", "POST"],
    ["PUT", "/auth/login", "POST"],
    ["POST", "/.well-known/jwks.json", "GET, HEAD"],
  ])("answers %s %s with 405 METHOD_NOT_ALLOWED and Allow: %s", async (method, path, allow) => {
    const response = await call(path, { method });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(405);
    expect(body.code).toBe("METHOD_NOT_ALLOWED");
    expect(response.headers.get("Allow")).toBe(allow);
  });
});

describe("GET /.well-known/jwks.json", () => {
  it("publishes the gateway's public key with its kid, alg and use", async () => {
    const { keys } = await publishedKeys();
    expect(keys).toEqual([{ kty: "EC", crv: "P-256", x: signingJwk.x, y: signingJwk.y, kid: OWN_KID, alg: "ES256", use: "sig" }]);
  });

  it("never publishes a private key member", async () => {
    const response = await call("/.well-known/jwks.json");
    const text = await response.text();
    for (const key of (JSON.parse(text) as { keys: Record<string, unknown>[] }).keys) {
      for (const member of ["d", "p", "q", "dp", "dq", "qi", "k"]) expect(key, member).not.toHaveProperty(member);
    }
    expect(text).not.toContain(signingJwk.d!);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  });
});
