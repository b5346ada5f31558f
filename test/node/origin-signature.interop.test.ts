import { createHash, randomUUID } from "node:crypto";
import { createSigner, createVerifier, httpbis, type Request as LibraryRequest } from "http-message-signatures";
import { describe, expect, it } from "vitest";
import { contentDigest, memoryReplayStore, signOriginRequest, signatureBase, verifyOriginSignature } from "../../src/proxy/origin-signature";

/**
 * keygate's RFC 9421 code against an independent implementation
 * (http-message-signatures, which uses node:crypto and structured-headers),
 * in both directions. The library checks the signature base and parameters;
 * keygate's own policy (required components, uncovered x-auth-*, body digest,
 * replay) is not the library's business.
 */

const SECRET = "interop-origin-signing-secret-0123456789";
const URL_SIGNED = "https://origin.test:8443/upstream/swap%20now?amount=1&to=x";
const BODY = '{"from":"ETH","to":"USDC","amount":"1"}';
const KEYGATE_COMPONENTS = [
  "@method",
  "@authority",
  "@path",
  "@query",
  "content-digest",
  "x-auth-method",
  "x-auth-key-id",
  "x-auth-env",
  "x-auth-scopes",
  "x-auth-product",
  "x-request-id",
  "x-forwarded-for",
];

function identity(requestId: string = randomUUID()): Record<string, string> {
  return {
    "x-auth-method": "api_key",
    "x-auth-key-id": "6d1f1c9e-0000-4000-8000-000000000001",
    "x-auth-env": "live",
    "x-auth-scopes": "defi:read defi:swap",
    "x-auth-product": "defi",
    "x-request-id": requestId,
    "x-forwarded-for": "203.0.113.7",
  };
}

/** Not after now: the library refuses a created time later than its clock. */
const nowSeconds = () => Math.floor(Date.now() / 1000);

async function keygateSigned(method: string, body: string | null) {
  const headers = new Headers({ ...identity(), "content-type": "application/json" });
  if (body !== null) headers.set("content-digest", await contentDigest(new TextEncoder().encode(body)));
  await signOriginRequest(SECRET, { method, url: new URL(URL_SIGNED), headers, created: nowSeconds(), nonce: headers.get("x-request-id")! });
  return { method, url: URL_SIGNED, headers: Object.fromEntries(headers) };
}

function libraryVerify(request: LibraryRequest) {
  return httpbis.verifyMessage(
    {
      keyLookup: async (params) =>
        params.keyid === "keygate" ? { id: "keygate", algs: ["hmac-sha256"], verify: createVerifier(SECRET, "hmac-sha256") } : null,
      requiredFields: ["@method", "@authority", "@path", "@query", "x-auth-method", "x-auth-product", "x-request-id"],
      requiredParams: ["created", "nonce", "keyid", "alg"],
      maxAge: 60,
    },
    request,
  );
}

async function librarySigned(fields: string[], params: string[], headers: Record<string, string>) {
  return httpbis.signMessage(
    {
      key: createSigner(SECRET, "hmac-sha256", "keygate"),
      name: "keygate",
      fields,
      params,
      paramValues: { created: new Date(nowSeconds() * 1000), expires: new Date((nowSeconds() + 30) * 1000), nonce: headers["x-request-id"] },
    },
    { method: "POST", url: URL_SIGNED, headers },
  );
}

function asFetchRequest(signed: LibraryRequest, body: string | null): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(signed.headers)) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  return new Request(signed.url, { method: signed.method, headers, body });
}

describe("keygate signs, http-message-signatures verifies", () => {
  it("a POST with Content-Digest and the API-key identity headers", async () => {
    expect(await libraryVerify(await keygateSigned("POST", BODY))).toBe(true);
  });

  it("a GET without a body", async () => {
    const signed = await keygateSigned("GET", null);
    expect(signed.headers["signature-input"]).not.toContain("content-digest");
    expect(await libraryVerify(signed)).toBe(true);
  });

  it("and the library refuses it once the path, the digest or an identity header changed", async () => {
    const signed = await keygateSigned("POST", BODY);
    expect(await libraryVerify({ ...signed, url: URL_SIGNED.replace("swap", "admin") })).toBe(false);
    expect(await libraryVerify({ ...signed, headers: { ...signed.headers, "content-digest": "sha-256=:AAAA:" } })).toBe(false);
    expect(await libraryVerify({ ...signed, headers: { ...signed.headers, "x-auth-scopes": "*" } })).toBe(false);
  });

  it("builds the same signature base as the library, line for line", async () => {
    const signed = await keygateSigned("POST", BODY);
    const params = signed.headers["signature-input"]!.replace(/^keygate=/, "");
    const library = httpbis.formatSignatureBase([...httpbis.createSignatureBase({ fields: KEYGATE_COMPONENTS }, signed), ['"@signature-params"', [params]]]);
    const ours = signatureBase({ method: "POST", url: new URL(URL_SIGNED), headers: new Headers(signed.headers) }, KEYGATE_COMPONENTS, params);
    expect(ours).toBe(library);
  });
});

describe("http-message-signatures signs, keygate verifies", () => {
  it("keygate's components and parameters", async () => {
    const headers: Record<string, string> = {
      ...identity(),
      "content-type": "application/json",
      "content-digest": await contentDigest(new TextEncoder().encode(BODY)),
    };
    const signed = await librarySigned(KEYGATE_COMPONENTS, ["created", "nonce", "keyid", "alg"], headers);
    const result = await verifyOriginSignature(asFetchRequest(signed, BODY), SECRET, { replayStore: memoryReplayStore() });
    expect(result, JSON.stringify(result)).toEqual({ ok: true, identity: identity(headers["x-request-id"]) });
  });

  it("parameters in another order, with expires", async () => {
    const headers: Record<string, string> = { ...identity(), "content-digest": await contentDigest(new TextEncoder().encode(BODY)) };
    const signed = await librarySigned(KEYGATE_COMPONENTS, ["keyid", "alg", "created", "expires", "nonce"], headers);
    expect(signed.headers["Signature-Input"]).toMatch(/^keygate=\(.*\);keyid="keygate";alg="hmac-sha256";created=\d+;expires=\d+;nonce="/);
    expect(await verifyOriginSignature(asFetchRequest(signed, BODY), SECRET, { replayStore: memoryReplayStore() })).toMatchObject({ ok: true });
  });

  it("but keygate refuses what its policy refuses: an uncovered identity header, a body that does not match", async () => {
    const headers: Record<string, string> = { ...identity(), "content-digest": await contentDigest(new TextEncoder().encode(BODY)) };
    const withoutKeyId = await librarySigned(
      KEYGATE_COMPONENTS.filter((name) => name !== "x-auth-key-id"),
      ["created", "nonce", "keyid", "alg"],
      headers,
    );
    expect(await verifyOriginSignature(asFetchRequest(withoutKeyId, BODY), SECRET, { replayStore: memoryReplayStore() })).toEqual({
      ok: false,
      reason: "header x-auth-key-id is not covered",
    });
    const signed = await librarySigned(KEYGATE_COMPONENTS, ["created", "nonce", "keyid", "alg"], headers);
    expect(await verifyOriginSignature(asFetchRequest(signed, "{}"), SECRET, { replayStore: memoryReplayStore() })).toEqual({
      ok: false,
      reason: "content-digest does not match the body",
    });
  });
});

describe("contentDigest", () => {
  it("equals node:crypto's SHA-256, base64, as an RFC 9530 sha-256 member", async () => {
    for (const body of ["", BODY, "é€😀", "x".repeat(100_000)]) {
      const bytes = new TextEncoder().encode(body);
      expect(await contentDigest(bytes)).toBe(`sha-256=:${createHash("sha256").update(bytes).digest("base64")}:`);
    }
  });
});
