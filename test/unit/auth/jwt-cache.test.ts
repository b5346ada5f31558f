import { env } from "cloudflare:workers";
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { verifyJwt } from "../../../src/auth/jwt";
import { forgetVerification, JWT_CACHE_MAX_ENTRIES, jwtCacheSize } from "../../../src/auth/jwt-cache";
import { parseConfig, type Config } from "../../../src/config";
import { nowSeconds, signToken } from "../../helpers/jwt";
import { stubOrigin } from "../../helpers/origin";

/**
 * Issue 14: successful verifications are cached per isolate, keyed by the
 * token's SHA-256, never past `exp`, never for another configuration, never
 * across a rotation of the signer's key. Counted by the signature checks that
 * reach WebCrypto (crypto.subtle.verify), not timed.
 */
const config = parseConfig(env as unknown as Record<string, unknown>);
const configWith = (vars: Record<string, string>): Config => parseConfig({ ...(env as unknown as Record<string, unknown>), ...vars });

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
  forgetVerification();
});

function countVerifications() {
  return vi.spyOn(crypto.subtle, "verify");
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as { code: string }).code;
  }
  throw new Error("expected a refusal");
}

describe("JWT verification cache", () => {
  it("verifies a token's signature once; the same token again is served from the cache with the same principal", async () => {
    const token = await signToken({ sub: "cached-user", scope: "read", products: ["*"] });
    const verify = countVerifications();
    const first = await verifyJwt(token, config, Date.now());
    const second = await verifyJwt(token, config, Date.now());
    expect(second).toEqual(first);
    expect(verify).toHaveBeenCalledTimes(1);
    // One changed byte of the signature is another token: verified, and refused.
    const tampered = token.slice(0, -2) + (token.endsWith("AA") ? "BB" : "AA");
    expect(await codeOf(verifyJwt(tampered, config, Date.now()))).toMatch(/^JWT_(SIGNATURE_INVALID|MALFORMED)$/);
    expect(verify).toHaveBeenCalledTimes(2);
  });

  it("never serves a token at or past its exp: from then on every call is a full verification (with its clock tolerance)", async () => {
    const exp = nowSeconds() + 5;
    const token = await signToken({ sub: "short-lived", exp });
    const verify = countVerifications();
    await verifyJwt(token, config, Date.now());
    await verifyJwt(token, config, exp * 1000 - 1);
    expect(verify).toHaveBeenCalledTimes(1);
    await verifyJwt(token, config, exp * 1000); // within JWT_CLOCK_TOLERANCE_SECONDS: accepted, but verified again
    expect(verify).toHaveBeenCalledTimes(2);
    const beyond = (exp + config.jwtClockToleranceSeconds + 1) * 1000;
    expect(await codeOf(verifyJwt(token, config, beyond))).toBe("JWT_EXPIRED");
  });

  it("verifies again under another configuration (another issuer, audience or key set)", async () => {
    const token = await signToken({ sub: "other-config" });
    const verify = countVerifications();
    await verifyJwt(token, config, Date.now());
    expect(await codeOf(verifyJwt(token, configWith({ JWT_AUDIENCE: "someone-else" }), Date.now()))).toBe("JWT_CLAIM_INVALID");
    expect(verify).toHaveBeenCalledTimes(2);
  });

  it("never across a JWKS rotation: once the refreshed set no longer holds the key, the cached token is refused", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const kid = `rotating-${crypto.randomUUID().slice(0, 8)}`;
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
    const url = `https://jwks-${crypto.randomUUID().slice(0, 8)}.test/.well-known/jwks.json`;
    let published: JWK[] = [jwk];
    stubOrigin((request) => (request.url === url ? Response.json({ keys: published }) : new Response("unexpected", { status: 599 })));
    const remote = configWith({ JWKS_URL: url });
    const claims: JWTPayload = { sub: "third-party", iss: "keygate", aud: "keygate", exp: nowSeconds() + 3600 };
    const token = await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid }).sign(privateKey);

    const verify = countVerifications();
    await verifyJwt(token, remote, Date.now());
    await verifyJwt(token, remote, Date.now());
    expect(verify, "the second call is served from the cache").toHaveBeenCalledTimes(1);

    published = [{ ...jwk, kid: "the-next-key" }];
    vi.setSystemTime(Date.now() + 11 * 60_000); // past jose's 10-minute JWKS cache: the set is fetched again
    expect(await codeOf(verifyJwt(token, remote, Date.now()))).toBe("JWT_KEY_NOT_FOUND");
  });

  it(`holds at most ${JWT_CACHE_MAX_ENTRIES} tokens, dropping the least recently used`, async () => {
    const secret = new TextEncoder().encode(env.JWT_SECRET);
    const exp = nowSeconds() + 600;
    const first = await new SignJWT({ sub: "hs-0", iss: "keygate", aud: "keygate", exp }).setProtectedHeader({ alg: "HS256" }).sign(secret);
    await verifyJwt(first, config, Date.now());
    for (let i = 1; i <= JWT_CACHE_MAX_ENTRIES; i++) {
      const token = await new SignJWT({ sub: `hs-${i}`, iss: "keygate", aud: "keygate", exp }).setProtectedHeader({ alg: "HS256" }).sign(secret);
      await verifyJwt(token, config, Date.now());
    }
    expect(jwtCacheSize()).toBe(JWT_CACHE_MAX_ENTRIES);
    const verify = countVerifications();
    await verifyJwt(first, config, Date.now());
    expect(verify, "the oldest entry was dropped").toHaveBeenCalledTimes(1);
  }, 60_000);
});
