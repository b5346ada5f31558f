import { env } from "cloudflare:workers";
import { errors, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWK, type JWTPayload } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { claimedScopes, gatewayKeys, jwtFailure, MAX_TOKEN_BYTES, publicJwks, signUserToken, verifyJwt } from "../../../src/auth/jwt";
import { principalIssuer } from "../../../src/auth/principal";
import { parseConfig, type Config } from "../../../src/config";
import type { UserRecord } from "../../../src/db/users";
import { b64url, hsSecret, nowSeconds, OWN_KID, signingJwk, signRaw, signToken } from "../../helpers/jwt";
import { stubOrigin } from "../../helpers/origin";

const config = parseConfig(env as unknown as Record<string, unknown>);
const configWith = (vars: Record<string, string>): Config => parseConfig({ ...(env as unknown as Record<string, unknown>), ...vars });

/** The GatewayError code verifyJwt refuses a token with (fails the test if it accepts it). */
async function refusal(token: string, cfg: Config = config, now = Date.now()): Promise<{ code: string; status: number; message: string }> {
  try {
    await verifyJwt(token, cfg, now);
  } catch (error) {
    const { code, status, message } = error as { code: string; status: number; message: string };
    return { code, status, message };
  }
  throw new Error("expected the token to be refused");
}

function replaceSegment(token: string, index: number, segment: string): string {
  const parts = token.split(".");
  parts[index] = segment;
  return parts.join(".");
}

describe("verifyJwt: tokens keygate accepts", () => {
  it("accepts a keygate ES256 token and reads the user's identity and grants from it", async () => {
    const token = await signToken({ sub: "user-1", email: "a@example.com", role: "admin", scope: "read write:*", products: ["alpha", "beta"] });
    expect(await verifyJwt(token, config, Date.now())).toEqual({
      method: "jwt",
      issuer: "keygate",
      subject: "user-1",
      scopes: ["read", "write:*"],
      userId: "user-1",
      role: "admin",
      email: "a@example.com",
      products: ["alpha", "beta"],
      grantVersion: 0,
    });
  });

  it("accepts a keygate ES256 token without a kid as signed by the gateway's own key", async () => {
    const principal = await verifyJwt(await signToken({ sub: "no-kid", products: ["alpha"] }, { header: { kid: undefined } }), config, Date.now());
    expect(principal).toMatchObject({ subject: "no-kid", userId: "no-kid", products: ["alpha"] });
  });

  it("gives a keygate token without a products claim no product at all", async () => {
    const principal = await verifyJwt(await signToken({ sub: "bare" }), config, Date.now());
    expect(principal).toMatchObject({ userId: "bare", role: "user", products: [], scopes: [] });
  });

  it("treats an HS256 token as a third party's: all products, never a keygate user or admin", async () => {
    const token = await signToken({ sub: "svc-1", role: "admin", email: "x@example.com", products: ["alpha"], scope: "read" }, { alg: "HS256" });
    expect(await verifyJwt(token, config, Date.now())).toEqual({
      method: "jwt",
      issuer: "hs256",
      subject: "svc-1",
      scopes: ["read"],
      userId: null,
      role: null,
      email: null,
      products: ["*"],
      grantVersion: 0,
    });
  });

  it("accepts a token expired by less than the clock tolerance", async () => {
    const token = await signToken({ exp: nowSeconds() - 10 });
    await expect(verifyJwt(token, config, Date.now())).resolves.toMatchObject({ method: "jwt" });
  });

  it("skips the iss and aud checks when JWT_ISSUER and JWT_AUDIENCE are empty", async () => {
    const token = await signToken({ iss: "someone-else", aud: "another-api" });
    await expect(verifyJwt(token, configWith({ JWT_ISSUER: "", JWT_AUDIENCE: "" }), Date.now())).resolves.toMatchObject({ method: "jwt" });
    expect((await refusal(token)).code).toBe("JWT_CLAIM_INVALID");
  });

  it("accepts a token of (almost exactly) 8 KiB", async () => {
    const token = await tokenOfLength(MAX_TOKEN_BYTES);
    expect(token.length).toBeGreaterThanOrEqual(MAX_TOKEN_BYTES - 1);
    await expect(verifyJwt(token, config, Date.now())).resolves.toMatchObject({ method: "jwt" });
  });
});

describe("verifyJwt: scopes from the scope, scp and scopes claims", () => {
  it.each([
    [{ scope: "a  b c" }, ["a", "b", "c"]],
    [{ scp: ["a", "b"] }, ["a", "b"]],
    [{ scp: "a b" }, ["a", "b"]],
    [{ scopes: ["orders:*", "x.y_z-1"] }, ["orders:*", "x.y_z-1"]],
    [{ scope: "first", scp: ["second"] }, ["first"]],
    [{ scope: null, scp: ["second"] }, ["second"]],
    [{ scope: "" }, []],
    [{}, []],
    [{ scp: Array.from({ length: 100 }, (_, i) => `s${i}`) }, Array.from({ length: 100 }, (_, i) => `s${i}`)],
  ])("reads %j as scopes %j", (claims, expected) => {
    expect(claimedScopes(claims as JWTPayload)).toEqual(expected);
  });

  // F8: a scope the origin would split differently from keygate, or that no header can carry.
  it.each<[string, Record<string, unknown>, string]>([
    ["an scp entry holding a space", { scp: ["defi:read defi:swap"] }, "scp"],
    ["an scp entry holding CR LF", { scp: ["a\r\nX-Injected: 1"] }, "scp"],
    ["a scope string holding a tab", { scope: "a\tb" }, "scope"],
    ["a scope string holding a newline", { scope: "read\nwrite" }, "scope"],
    ["a non-ASCII scope", { scope: "lecture:écrire" }, "scope"],
    ["a scope of 101 characters", { scopes: ["s".repeat(101)] }, "scopes"],
    ["an empty scope in an array", { scopes: ["a", ""] }, "scopes"],
    ["a number in an array", { scopes: ["a", 7] }, "scopes"],
    ["a claim that is neither a string nor an array", { scp: { read: true } }, "scp"],
    ["101 scopes", { scope: Array.from({ length: 101 }, (_, i) => `s${i}`).join(" ") }, "scope"],
  ])("refuses %s as JWT_CLAIM_INVALID naming the claim", (_label, claims, claim) => {
    let thrown: { code?: string; status?: number; message?: string } | undefined;
    try {
      claimedScopes(claims as JWTPayload);
    } catch (error) {
      thrown = error as typeof thrown;
    }
    expect(thrown).toMatchObject({ code: "JWT_CLAIM_INVALID", status: 401 });
    expect(thrown!.message).toContain(`"${claim}"`);
  });
});

describe("verifyJwt: subjects every header and limiter name can carry (F8)", () => {
  it.each<[string, string]>([
    ["a newline", "x\ny"],
    ["a space", "alice smith"],
    ["a DEL character", "x\u007f"],
    ["non-ASCII", "jérôme"],
    ["256 characters", "s".repeat(256)],
    ["nothing", ""],
  ])("refuses a sub with %s as JWT_CLAIM_INVALID naming sub, for HS256 and keygate tokens alike", async (_label, sub) => {
    for (const options of [{ alg: "HS256" }, {}]) {
      const result = await refusal(await signToken({ sub }, options));
      expect(result).toMatchObject({ code: "JWT_CLAIM_INVALID", status: 401 });
      expect(result.message).toContain('"sub"');
    }
  });

  it("accepts a sub of 255 printable characters", async () => {
    const sub = `${"!~".repeat(127)}x`;
    await expect(verifyJwt(await signToken({ sub }, { alg: "HS256" }), config, Date.now())).resolves.toMatchObject({ subject: sub });
  });
});

describe("verifyJwt: who signed the token (F7)", () => {
  it('names keygate\'s own tokens "keygate" and JWT_SECRET tokens "hs256", whatever their iss', async () => {
    const own = await verifyJwt(await signToken({ sub: "u" }), config, Date.now());
    const hs = await verifyJwt(await signToken({ sub: "u" }, { alg: "HS256" }), config, Date.now());
    expect([own.issuer, hs.issuer]).toEqual(["keygate", "hs256"]);
    expect([principalIssuer(own), principalIssuer(hs)]).toEqual(["keygate", "hs256"]);
  });

  it("reads the grant version of keygate's own tokens from gv, 0 when absent, and never from a third party's", async () => {
    const gv = Date.parse("2031-01-02T03:04:05.678Z");
    expect((await verifyJwt(await signToken({ gv }), config, Date.now())).grantVersion).toBe(gv);
    expect((await verifyJwt(await signToken({}), config, Date.now())).grantVersion).toBe(0);
    expect((await verifyJwt(await signToken({ gv }, { alg: "HS256" }), config, Date.now())).grantVersion).toBe(0);
  });

  it.each([
    ["a string", "1700000000000"],
    ["a fraction", 1.5],
    ["a negative number", -1],
  ])("refuses a keygate token whose gv is %s", async (_label, gv) => {
    const result = await refusal(await signToken({ gv }));
    expect(result).toMatchObject({ code: "JWT_CLAIM_INVALID" });
    expect(result.message).toContain('"gv"');
  });

  it("signs a user's token with gv = the user's updatedAt in epoch ms", async () => {
    const user: UserRecord = {
      id: crypto.randomUUID(),
      email: "gv@example.com",
      passwordHash: "unused",
      role: "user",
      products: ["alpha"],
      scopes: ["read"],
      createdAt: "2031-01-01T00:00:00.000Z",
      updatedAt: "2031-01-02T03:04:05.678Z",
      rateLimitPerMinute: null,
      rateLimitPerDay: null,
      maxActiveKeys: null,
    };
    const principal = await verifyJwt(await signUserToken(user, config, Date.now()), config, Date.now());
    expect(principal).toMatchObject({ issuer: "keygate", userId: user.id, grantVersion: Date.parse(user.updatedAt) });
  });
});

describe("verifyJwt: attacks and bad tokens", () => {
  it('refuses alg "none" as JWT_ALG_NOT_ALLOWED', async () => {
    const token = new UnsecuredJWT({ sub: "x", iss: "keygate", aud: "keygate", exp: nowSeconds() + 60 }).encode();
    expect(await refusal(token)).toMatchObject({ code: "JWT_ALG_NOT_ALLOWED", status: 401 });
  });

  it("refuses an RS256 token when JWT_ALGORITHMS does not allow RS256", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    const token = await signToken({}, { alg: "RS256", key: privateKey, header: { kid: OWN_KID } });
    expect((await refusal(token)).code).toBe("JWT_ALG_NOT_ALLOWED");
  });

  it("never verifies an RS256 token with the gateway's ES256 key, even when RS256 is allowed and the kid is ours", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    const token = await signToken({}, { alg: "RS256", key: privateKey, header: { kid: OWN_KID } });
    expect((await refusal(token, configWith({ JWT_ALGORITHMS: "ES256,RS256" }))).code).toBe("JWT_KEY_NOT_FOUND");
  });

  const { d: _private, ...publicJwk } = signingJwk;
  const publicKeyForms: [string, Uint8Array][] = [
    ["the public JWK as JSON", new TextEncoder().encode(JSON.stringify(publicJwk))],
    ["the public point x||y", new Uint8Array([4, ...base64UrlBytes(publicJwk.x!), ...base64UrlBytes(publicJwk.y!)])],
  ];

  it.each(publicKeyForms)("refuses an HS256 token signed with %s as the secret (key confusion)", async (_form, secret) => {
    const token = await signToken({}, { alg: "HS256", key: secret });
    expect(await refusal(token)).toMatchObject({ code: "JWT_SIGNATURE_INVALID", status: 401 });
    const withoutSecret = configWith({ JWT_SECRET: "" });
    expect(withoutSecret.jwtSecret).toBeUndefined();
    expect(await refusal(token, withoutSecret)).toMatchObject({ code: "JWT_KEY_NOT_FOUND", status: 401 });
  });

  it("refuses an ES256 token whose kid names no known key", async () => {
    const token = await signToken({}, { header: { kid: "someone-elses-key" } });
    expect(await refusal(token)).toMatchObject({ code: "JWT_KEY_NOT_FOUND", status: 401 });
  });

  it("refuses a token with an unrecognised crit header as JWT_MALFORMED", async () => {
    const header = { alg: "ES256", kid: OWN_KID, crit: ["x-custom"], "x-custom": true };
    const token = await signRaw(header, { sub: "x", iss: "keygate", aud: "keygate", exp: nowSeconds() + 300 });
    expect(await refusal(token)).toMatchObject({ code: "JWT_MALFORMED", status: 401 });
  });

  it("refuses a token whose payload was altered after signing", async () => {
    const token = await signToken({ sub: "alice", role: "user" });
    const forged = replaceSegment(token, 1, b64url({ sub: "alice", role: "admin", iss: "keygate", aud: "keygate", exp: nowSeconds() + 300 }));
    expect(await refusal(forged)).toMatchObject({ code: "JWT_SIGNATURE_INVALID", status: 401 });
  });

  it("refuses an ES256 token with an all-zero signature", async () => {
    const token = replaceSegment(await signToken(), 2, b64url(new Uint8Array(64)));
    expect((await refusal(token)).code).toBe("JWT_SIGNATURE_INVALID");
  });

  it("refuses an HS256 token signed with another secret", async () => {
    const token = await signToken({}, { alg: "HS256", key: new TextEncoder().encode("not-the-configured-secret-0123456789") });
    expect((await refusal(token)).code).toBe("JWT_SIGNATURE_INVALID");
  });

  it("refuses a token expired beyond the clock tolerance as JWT_EXPIRED", async () => {
    expect(await refusal(await signToken({ exp: nowSeconds() - 31 }))).toMatchObject({ code: "JWT_EXPIRED", status: 401 });
  });

  it("applies JWT_CLOCK_TOLERANCE_SECONDS to exp", async () => {
    const token = await signToken({ exp: nowSeconds() - 5 });
    expect((await refusal(token, configWith({ JWT_CLOCK_TOLERANCE_SECONDS: "0" }))).code).toBe("JWT_EXPIRED");
  });

  it("refuses a token whose nbf is beyond the clock tolerance as JWT_NOT_YET_VALID", async () => {
    expect(await refusal(await signToken({ nbf: nowSeconds() + 120 }))).toMatchObject({ code: "JWT_NOT_YET_VALID", status: 401 });
  });

  it("judges time by the clock it is given, not the wall clock", async () => {
    const token = await signToken({ exp: nowSeconds() + 60 });
    expect((await refusal(token, config, Date.now() + 3_600_000)).code).toBe("JWT_EXPIRED");
  });

  it.each([
    ["a wrong iss", { iss: "https://evil.example" }, "iss"],
    ["a wrong aud", { aud: "another-api" }, "aud"],
    ["no iss", { iss: undefined }, "iss"],
    ["no exp", { exp: undefined }, "exp"],
    ["no sub", { sub: undefined }, "sub"],
    ["a non-numeric exp", { exp: "tomorrow" }, "exp"],
  ])("refuses a token with %s as JWT_CLAIM_INVALID naming the claim", async (_label, claims, claim) => {
    const result = await refusal(await signToken(claims as JWTPayload));
    expect(result).toMatchObject({ code: "JWT_CLAIM_INVALID", status: 401 });
    expect(result.message).toContain(`"${claim}"`);
  });

  it("refuses a token whose sub is not a string", async () => {
    expect(await refusal(await signToken({ sub: 42 as unknown as string }))).toMatchObject({ code: "JWT_CLAIM_INVALID", status: 401 });
  });

  it("refuses a token over 8 KiB before parsing it", async () => {
    const huge = await signToken({ pad: "x".repeat(MAX_TOKEN_BYTES) });
    expect(await refusal(huge)).toMatchObject({ code: "JWT_MALFORMED", message: "The token is larger than 8 KiB" });
    expect((await refusal("a".repeat(MAX_TOKEN_BYTES + 1))).message).toBe("The token is larger than 8 KiB");
  });

  it.each([
    ["garbage", "not-a-jwt"],
    ["two parts", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0"],
    ["four parts", "a.b.c.d"],
    ["a header that is not JSON", `${b64url(new TextEncoder().encode("{oops"))}.${b64url({ sub: "x" })}.c2ln`],
    ["no alg", `${b64url({ kid: OWN_KID })}.${b64url({ sub: "x" })}.c2ln`],
  ])("refuses %s as JWT_MALFORMED", async (_label, token) => {
    expect(await refusal(token)).toMatchObject({ code: "JWT_MALFORMED", status: 401 });
  });

  it.each([
    ["a payload that is not JSON", new TextEncoder().encode("[1,")],
    ["a payload that is a JSON array", ["sub", "x"]],
  ])("refuses a correctly signed token with %s as JWT_MALFORMED", async (_label, payload) => {
    expect(await refusal(await signRaw({ alg: "ES256", kid: OWN_KID }, payload))).toMatchObject({ code: "JWT_MALFORMED", status: 401 });
  });
});

describe("jwtFailure: every jose failure as a SPEC code", () => {
  const claimFailure = (claim: string, reason: string) => new errors.JWTClaimValidationFailed("failed", {}, claim, reason);

  it.each<[string, unknown, string, number]>([
    ["ERR_JWT_EXPIRED", new errors.JWTExpired("expired", {}, "exp", "check_failed"), "JWT_EXPIRED", 401],
    ["nbf in the future", claimFailure("nbf", "check_failed"), "JWT_NOT_YET_VALID", 401],
    ["nbf that is no number", claimFailure("nbf", "invalid"), "JWT_CLAIM_INVALID", 401],
    ["iat in the future", claimFailure("iat", "check_failed"), "JWT_NOT_YET_VALID", 401],
    ["a malformed iat", claimFailure("iat", "invalid"), "JWT_CLAIM_INVALID", 401],
    ["a wrong iss", claimFailure("iss", "check_failed"), "JWT_CLAIM_INVALID", 401],
    ["ERR_JWS_SIGNATURE_VERIFICATION_FAILED", new errors.JWSSignatureVerificationFailed(), "JWT_SIGNATURE_INVALID", 401],
    ["ERR_JOSE_ALG_NOT_ALLOWED", new errors.JOSEAlgNotAllowed("no"), "JWT_ALG_NOT_ALLOWED", 401],
    ["ERR_JWKS_NO_MATCHING_KEY", new errors.JWKSNoMatchingKey(), "JWT_KEY_NOT_FOUND", 401],
    ["ERR_JWKS_MULTIPLE_MATCHING_KEYS", new errors.JWKSMultipleMatchingKeys(), "JWT_KEY_NOT_FOUND", 401],
    ["ERR_JOSE_NOT_SUPPORTED", new errors.JOSENotSupported("no"), "JWT_MALFORMED", 401],
    ["ERR_JWK_INVALID", new errors.JWKInvalid("no"), "JWT_KEY_NOT_FOUND", 401],
    ["ERR_JWS_INVALID", new errors.JWSInvalid("no"), "JWT_MALFORMED", 401],
    ["ERR_JWT_INVALID", new errors.JWTInvalid("no"), "JWT_MALFORMED", 401],
    ["ERR_JWKS_TIMEOUT", new errors.JWKSTimeout(), "AUTH_BACKEND_UNAVAILABLE", 503],
    ["ERR_JWKS_INVALID", new errors.JWKSInvalid("no"), "AUTH_BACKEND_UNAVAILABLE", 503],
    ["an unreadable JWKS response", new errors.JOSEError("Failed to parse the JSON Web Key Set HTTP response as JSON"), "AUTH_BACKEND_UNAVAILABLE", 503],
    ["a TypeError from a key/alg mismatch", new TypeError("CryptoKey does not support this operation"), "JWT_KEY_NOT_FOUND", 401],
    ["a DOMException from a bad JWKS member", new DOMException("bad point", "DataError"), "JWT_KEY_NOT_FOUND", 401],
    ["a thrown string", "weird", "JWT_KEY_NOT_FOUND", 401],
  ])("maps %s", (_label, error, code, status) => {
    expect(jwtFailure(error)).toMatchObject({ code, status });
  });
});

describe("gateway keys", () => {
  it("imports the keys once per configuration", async () => {
    expect(gatewayKeys(config)).toBe(gatewayKeys(config));
    const keys = await gatewayKeys(config);
    expect(keys.kid).toBe(OWN_KID);
    expect(keys.secret).toBeDefined();
  });

  it("publishes only the public members of the signing key", async () => {
    const { keys } = await publicJwks(config);
    expect(keys).toEqual([{ kty: "EC", crv: "P-256", x: signingJwk.x, y: signingJwk.y, kid: OWN_KID, alg: "ES256", use: "sig" }]);
  });

  it("names a signing key without a kid by its JWK thumbprint", async () => {
    const { kid: _kid, ...withoutKid } = signingJwk;
    const keys = await gatewayKeys(configWith({ JWT_SIGNING_KEY: JSON.stringify(withoutKid) }));
    expect(keys.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe("verifyJwt: remote JWKS", () => {
  let origin: ReturnType<typeof stubOrigin> | undefined;
  afterEach(() => {
    origin?.restore();
    origin = undefined;
    vi.useRealTimers();
  });

  async function remoteIssuer(kid = `remote-${crypto.randomUUID().slice(0, 8)}`) {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
    const url = `https://jwks-${crypto.randomUUID().slice(0, 8)}.test/.well-known/jwks.json`;
    const sign = (claims: JWTPayload = {}, header: Record<string, unknown> = {}) =>
      new SignJWT({ sub: "third-party-user", iss: "keygate", aud: "keygate", exp: nowSeconds() + 300, ...claims })
        .setProtectedHeader({ alg: "ES256", kid, ...header })
        .sign(privateKey);
    return { jwk, url, sign, config: configWith({ JWKS_URL: url }) };
  }

  /** Answers the JWKS URL with `answer()`; counts the calls that reached it. */
  function serveJwks(url: string, answer: () => Response | Promise<Response>) {
    origin = stubOrigin((request) => (request.url === url ? answer() : new Response("unexpected", { status: 599 })));
    return origin;
  }

  it("verifies a third-party token with a key from JWKS_URL and fetches the set once per isolate", async () => {
    const issuer = await remoteIssuer();
    const server = serveJwks(issuer.url, () => Response.json({ keys: [issuer.jwk] }));
    const principal = await verifyJwt(await issuer.sign({ scp: ["read"] }), issuer.config, Date.now());
    expect(principal).toEqual({
      method: "jwt",
      issuer: "jwks:keygate",
      subject: "third-party-user",
      scopes: ["read"],
      userId: null,
      role: null,
      email: null,
      products: ["*"],
      grantVersion: 0,
    });
    await verifyJwt(await issuer.sign(), issuer.config, Date.now());
    expect(server.received.map((request) => request.url)).toEqual([issuer.url]);
  });

  it("refuses a third-party token signed by a key the JWKS does not hold", async () => {
    const issuer = await remoteIssuer();
    const impostor = await remoteIssuer(issuer.jwk.kid);
    serveJwks(issuer.url, () => Response.json({ keys: [issuer.jwk] }));
    expect(await refusal(await impostor.sign(), issuer.config)).toMatchObject({ code: "JWT_SIGNATURE_INVALID", status: 401 });
  });

  it("refuses a token whose kid the freshly fetched JWKS does not hold as JWT_KEY_NOT_FOUND", async () => {
    const issuer = await remoteIssuer();
    serveJwks(issuer.url, () => Response.json({ keys: [issuer.jwk] }));
    const token = await issuer.sign({}, { kid: "rotated-away" });
    expect(await refusal(token, issuer.config)).toMatchObject({ code: "JWT_KEY_NOT_FOUND", status: 401 });
  });

  it.each<[string, () => Response]>([
    ["answers 500", () => new Response("down", { status: 500 })],
    [
      "cannot be reached",
      () => {
        throw new TypeError("Network connection lost.");
      },
    ],
    ["answers something that is not JSON", () => new Response("<html>", { status: 200 })],
    ["answers JSON that is not a key set", () => Response.json({ nope: true })],
  ])("answers 503 AUTH_BACKEND_UNAVAILABLE, never a 401, when the JWKS %s and no key is cached", async (_label, answer) => {
    const issuer = await remoteIssuer();
    const server = serveJwks(issuer.url, answer);
    expect(await refusal(await issuer.sign(), issuer.config)).toMatchObject({ code: "AUTH_BACKEND_UNAVAILABLE", status: 503 });
    expect(server.received).toHaveLength(1);
  });

  it("keeps verifying with a cached key when a refresh of the JWKS fails, and answers 503 for a key it never saw", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const issuer = await remoteIssuer();
    let up = true;
    const server = serveJwks(issuer.url, () => (up ? Response.json({ keys: [issuer.jwk] }) : new Response("down", { status: 502 })));
    await verifyJwt(await issuer.sign(), issuer.config, Date.now());

    up = false;
    vi.setSystemTime(Date.now() + 11 * 60_000); // past jose's 10-minute cache: the next call refreshes, and fails
    const token = await issuer.sign();
    await expect(verifyJwt(token, issuer.config, Date.now())).resolves.toMatchObject({ subject: "third-party-user" });
    expect(await refusal(await issuer.sign({}, { kid: "never-published" }), issuer.config)).toMatchObject({ code: "AUTH_BACKEND_UNAVAILABLE", status: 503 });
    expect(server.received.length).toBeGreaterThanOrEqual(2);
  });

  it('names a remote token\'s issuer "jwks:<iss>", or "jwks" without iss, and refuses an iss no header can carry', async () => {
    const issuer = await remoteIssuer();
    serveJwks(issuer.url, () => Response.json({ keys: [issuer.jwk] }));
    const anyIssuer = configWith({ JWKS_URL: issuer.url, JWT_ISSUER: "" });
    expect((await verifyJwt(await issuer.sign({ iss: "https://idp.example" }), anyIssuer, Date.now())).issuer).toBe("jwks:https://idp.example");
    expect((await verifyJwt(await issuer.sign({ iss: undefined }), anyIssuer, Date.now())).issuer).toBe("jwks");
    const result = await refusal(await issuer.sign({ iss: "idp\r\nX-Injected: 1" }), anyIssuer);
    expect(result).toMatchObject({ code: "JWT_CLAIM_INVALID" });
    expect(result.message).toContain('"iss"');
  });

  it("still uses the gateway's own key and JWT_SECRET without fetching the JWKS", async () => {
    const issuer = await remoteIssuer();
    const server = serveJwks(issuer.url, () => new Response("down", { status: 500 }));
    await expect(verifyJwt(await signToken({ sub: "own" }), issuer.config, Date.now())).resolves.toMatchObject({ userId: "own" });
    await expect(verifyJwt(await signToken({ sub: "hs" }, { alg: "HS256", key: hsSecret() }), issuer.config, Date.now())).resolves.toMatchObject({
      subject: "hs",
    });
    expect(server.received).toHaveLength(0);
  });
});

/** A valid token of `target` characters, or one less (base64url grows in steps of one or two). */
async function tokenOfLength(target: number): Promise<string> {
  let pad = 0;
  for (;;) {
    const token = await signToken({ pad: "x".repeat(pad) });
    if (token.length >= target - 1 && token.length <= target) return token;
    if (token.length > target) throw new Error(`overshot: ${token.length}`);
    pad += Math.max(1, Math.floor(((target - token.length) * 3) / 4));
  }
}

function base64UrlBytes(text: string): Uint8Array {
  return Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (char) => char.charCodeAt(0));
}
