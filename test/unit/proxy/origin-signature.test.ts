import { describe, expect, it } from "vitest";
import {
  IDENTITY_HEADERS,
  contentDigest,
  memoryReplayStore,
  signOriginRequest,
  signatureBase,
  verifyOriginSignature,
  type VerifyOptions,
} from "../../../src/proxy/origin-signature";

const SECRET = "unit-test-origin-signing-secret-0123456789";
const NOW = Date.parse("2026-03-01T12:00:00.000Z");
const CREATED = NOW / 1000;
const URL_SIGNED = "https://origin.test/upstream/swap?amount=1&to=x";
const BODY = '{"from":"ETH","to":"USDC","amount":"1"}';

const API_KEY_IDENTITY: Record<string, string> = {
  "X-Auth-Method": "api_key",
  "X-Auth-Key-Id": "6d1f1c9e-0000-4000-8000-000000000001",
  "X-Auth-Env": "live",
  "X-Auth-Scopes": "defi:read defi:swap",
  "X-Auth-Product": "defi",
  "X-Request-Id": "0f0e0d0c-0000-4000-8000-000000000002",
  "X-Forwarded-For": "203.0.113.7",
};

/** Every identity header at once, so each one can be shown to be covered. */
const ALL_IDENTITY: Record<string, string> = {
  ...API_KEY_IDENTITY,
  "X-Auth-Subject": "user-42",
  "X-Auth-Issuer": "https://issuer.test/",
};

interface SignedInput {
  method?: string;
  url?: string;
  body?: string | null;
  identity?: Record<string, string>;
  created?: number;
}

/** The request as the origin receives it, signed the way forward.ts signs (Content-Digest whenever there is a body). */
async function signed({ method = "POST", url = URL_SIGNED, body = BODY, identity = API_KEY_IDENTITY, created = CREATED }: SignedInput = {}) {
  const headers = new Headers({ ...identity, "Content-Type": "application/json" });
  if (body !== null) headers.set("Content-Digest", await contentDigest(new TextEncoder().encode(body)));
  await signOriginRequest(SECRET, { method, url: new URL(url), headers, created, nonce: identity["X-Request-Id"] ?? "nonce" });
  return new Request(url, { method, headers, body });
}

/** The same request with one thing changed on the way. */
async function tampered(
  request: Request,
  change: { url?: string; method?: string; headers?: Record<string, string | null>; body?: string | null },
): Promise<Request> {
  const headers = new Headers(request.headers);
  for (const [name, value] of Object.entries(change.headers ?? {})) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  const body = "body" in change ? change.body : request.body === null ? null : await request.clone().arrayBuffer();
  return new Request(change.url ?? request.url, { method: change.method ?? request.method, headers, body });
}

/** A fresh replay store per call, so that only the replay tests see a nonce twice. */
function verify(request: Request, options: VerifyOptions = {}) {
  return verifyOriginSignature(request, SECRET, { now: NOW, replayStore: memoryReplayStore(100, () => NOW), ...options });
}

async function expectRefused(request: Request, reason: RegExp, options: VerifyOptions = {}) {
  const result = await verify(request, options);
  expect(result, JSON.stringify(result)).toEqual({ ok: false, reason: expect.stringMatching(reason) });
}

async function hmacBase64(key: BufferSource, data: string): Promise<string> {
  const cryptoKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, new TextEncoder().encode(data)))));
}

/**
 * A request whose Signature-Input is written by hand and whose Signature is a
 * valid HMAC over it: shows a refusal comes from the structural checks, not
 * from a bad MAC.
 */
async function forged(request: Request, components: string[], params: string, label = "keygate"): Promise<Request> {
  const signatureParams = `(${components.map((name) => `"${name}"`).join(" ")})${params}`;
  const base = signatureBase({ method: request.method, url: new URL(request.url), headers: request.headers }, components, signatureParams);
  const mac = await hmacBase64(new TextEncoder().encode(SECRET), base);
  return tampered(request, { headers: { "Signature-Input": `${label}=${signatureParams}`, Signature: `${label}=:${mac}:` } });
}

const KEYGATE_PARAMS = `;created=${CREATED};nonce="n-1";keyid="keygate";alg="hmac-sha256"`;
const REQUIRED = ["@method", "@authority", "@path", "@query", "x-auth-method", "x-auth-product", "x-request-id"];
/** Every header of API_KEY_IDENTITY, as components. */
const API_KEY_COVERED = [...REQUIRED, "x-auth-key-id", "x-auth-env", "x-auth-scopes", "x-forwarded-for"];

describe("contentDigest", () => {
  it('matches the RFC 9530 §2 example for {"hello": "world"}', async () => {
    expect(await contentDigest(new TextEncoder().encode('{"hello": "world"}'))).toBe("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
  });

  it("gives the same value for an ArrayBuffer, a Uint8Array and a view into a larger buffer", async () => {
    const bytes = new TextEncoder().encode("xx{}yy");
    const view = bytes.subarray(2, 4);
    const expected = await contentDigest(new TextEncoder().encode("{}"));
    expect(await contentDigest(view)).toBe(expected);
    expect(await contentDigest(view.slice().buffer)).toBe(expected);
  });

  it("digests an empty body as SHA-256 of nothing", async () => {
    expect(await contentDigest(new Uint8Array())).toBe("sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
  });
});

describe("signatureBase", () => {
  it("reproduces RFC 9421 Appendix B.2.5 (hmac-sha256) byte for byte, MAC included", async () => {
    const headers = new Headers({
      Date: "Tue, 20 Apr 2021 02:07:55 GMT",
      "Content-Type": "application/json",
    });
    const params = '("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"';
    const base = signatureBase(
      { method: "POST", url: new URL("https://example.com/foo?param=Value&Pet=dog"), headers },
      ["date", "@authority", "content-type"],
      params,
    );
    expect(base).toBe(
      [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@authority": example.com',
        '"content-type": application/json',
        '"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"',
      ].join("\n"),
    );
    // The RFC's shared secret (Appendix B.1.5) and signature.
    const key = Uint8Array.from(atob("uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ=="), (c) => c.charCodeAt(0));
    expect(await hmacBase64(key, base)).toBe("pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=");
  });

  it("derives @authority, @path and @query from the target URL as sent", () => {
    const headers = new Headers();
    const base = (url: string) => signatureBase({ method: "GET", url: new URL(url), headers }, ["@authority", "@path", "@query"], "()");
    expect(base("https://Origin.TEST:8443/a%2Fb/c%20d")).toBe('"@authority": origin.test:8443\n"@path": /a%2Fb/c%20d\n"@query": ?\n"@signature-params": ()');
    expect(base("https://origin.test:443/x?")).toBe('"@authority": origin.test\n"@path": /x\n"@query": ?\n"@signature-params": ()');
    expect(base("http://origin.test:80/?a=%20b&c")).toBe('"@authority": origin.test\n"@path": /\n"@query": ?a=%20b&c\n"@signature-params": ()');
  });
});

describe("signOriginRequest", () => {
  it("writes the golden Signature-Input, and a Signature that is the HMAC of the hand-written RFC 9421 base", async () => {
    const request = await signed();
    const params =
      '("@method" "@authority" "@path" "@query" "content-digest" "x-auth-method" "x-auth-key-id" "x-auth-env" "x-auth-scopes" "x-auth-product" "x-request-id" "x-forwarded-for")' +
      ';created=1772366400;nonce="0f0e0d0c-0000-4000-8000-000000000002";keyid="keygate";alg="hmac-sha256"';
    expect(request.headers.get("Signature-Input")).toBe(`keygate=${params}`);
    const base = [
      '"@method": POST',
      '"@authority": origin.test',
      '"@path": /upstream/swap',
      '"@query": ?amount=1&to=x',
      '"content-digest": sha-256=:kaQd7ThstK5701qynIi4twKK9DdxB0aoFYRQvlXxLTA=:',
      '"x-auth-method": api_key',
      '"x-auth-key-id": 6d1f1c9e-0000-4000-8000-000000000001',
      '"x-auth-env": live',
      '"x-auth-scopes": defi:read defi:swap',
      '"x-auth-product": defi',
      '"x-request-id": 0f0e0d0c-0000-4000-8000-000000000002',
      '"x-forwarded-for": 203.0.113.7',
      `"@signature-params": ${params}`,
    ].join("\n");
    expect(request.headers.get("Content-Digest")).toBe(await contentDigest(new TextEncoder().encode(BODY)));
    expect(request.headers.get("Signature")).toBe(`keygate=:${await hmacBase64(new TextEncoder().encode(SECRET), base)}:`);
  });

  it("covers content-digest only when present and only the identity headers present, in IDENTITY_HEADERS order", async () => {
    const request = await signed({ method: "GET", body: null, identity: ALL_IDENTITY });
    const components = /^keygate=\(([^)]*)\)/.exec(request.headers.get("Signature-Input") ?? "")?.[1]?.split(" ");
    expect(components).toEqual(["@method", "@authority", "@path", "@query", ...IDENTITY_HEADERS].map((name) => `"${name}"`));
  });

  it("replaces a Signature or Signature-Input that was already on the headers", async () => {
    const headers = new Headers({ ...API_KEY_IDENTITY, Signature: "keygate=:AAAA:", "Signature-Input": 'keygate=();alg="none"' });
    await signOriginRequest(SECRET, { method: "GET", url: new URL(URL_SIGNED), headers, created: CREATED, nonce: "n" });
    expect(headers.get("Signature-Input")).toMatch(/^keygate=\("@method" .*;alg="hmac-sha256"$/);
    expect(headers.get("Signature")).toMatch(/^keygate=:[A-Za-z0-9+/]{43}=:$/);
  });

  it("takes another keyid when given one", async () => {
    const headers = new Headers(API_KEY_IDENTITY);
    await signOriginRequest(SECRET, { method: "GET", url: new URL(URL_SIGNED), headers, created: CREATED, nonce: "n" }, "keygate-2027");
    expect(headers.get("Signature-Input")).toMatch(/;keyid="keygate-2027";alg="hmac-sha256"$/);
  });

  it.each([
    ["a fractional created", { created: CREATED + 0.5 }],
    ["a negative created", { created: -1 }],
    ["a nonce with a control character", { nonce: "a\u0001b" }],
    ["a non-ASCII nonce", { nonce: "é" }],
  ])("throws on %s instead of signing something unparsable", async (_label, change) => {
    const request = { method: "GET", url: new URL(URL_SIGNED), headers: new Headers(), created: CREATED, nonce: "n", ...change };
    await expect(signOriginRequest(SECRET, request)).rejects.toThrow(TypeError);
  });

  it("escapes a quote and a backslash in the nonce", async () => {
    const headers = new Headers(API_KEY_IDENTITY);
    await signOriginRequest(SECRET, { method: "GET", url: new URL(URL_SIGNED), headers, created: CREATED, nonce: 'a"b\\c' });
    expect(headers.get("Signature-Input")).toContain(';nonce="a\\"b\\\\c";');
    expect(await verify(new Request(URL_SIGNED, { headers }))).toMatchObject({ ok: true });
  });
});

describe("verifyOriginSignature accepts", () => {
  it("a POST exactly as signed, and returns the covered identity headers", async () => {
    const result = await verify(await signed());
    expect(result).toEqual({
      ok: true,
      identity: Object.fromEntries(Object.entries(API_KEY_IDENTITY).map(([name, value]) => [name.toLowerCase(), value])),
    });
  });

  it("a GET without a body, with a JWT identity", async () => {
    const { "X-Auth-Key-Id": _keyId, ...rest } = ALL_IDENTITY;
    const identity = { ...rest, "X-Auth-Method": "jwt" };
    const result = await verify(await signed({ method: "GET", body: null, identity }));
    expect(result).toMatchObject({ ok: true, identity: { "x-auth-method": "jwt", "x-auth-subject": "user-42", "x-auth-issuer": "https://issuer.test/" } });
  });

  it("a created time up to maxAgeSeconds on either side of now", async () => {
    const request = await signed();
    expect(await verify(request, { now: NOW + 60_000 })).toMatchObject({ ok: true });
    expect(await verify(request, { now: NOW - 60_000 })).toMatchObject({ ok: true });
    expect(await verify(request, { now: NOW + 300_000, maxAgeSeconds: 300 })).toMatchObject({ ok: true });
  });

  it("headers outside the identity set that were not signed", async () => {
    const request = await tampered(await signed(), { headers: { "Content-Type": "text/plain", "X-Other": "1", "X-Authorization-Hint": "1" } });
    expect(await verify(request)).toMatchObject({ ok: true });
  });

  it("a signature in a dictionary with another label next to it", async () => {
    const request = await signed();
    const other = await tampered(request, {
      headers: {
        "Signature-Input": `proxy=("@method");created=1, ${request.headers.get("Signature-Input")}`,
        Signature: `proxy=:AAAA:, ${request.headers.get("Signature")}`,
      },
    });
    expect(await verify(other)).toMatchObject({ ok: true });
  });

  it("a body without Content-Digest when requireBodyDigest is false", async () => {
    const request = await tampered(await signed({ body: null }), { body: BODY });
    expect(await verify(request, { requireBodyDigest: false })).toMatchObject({ ok: true });
  });
});

describe("verifyOriginSignature refuses a captured signature replayed with", () => {
  it("another body (same length): the digest no longer matches", async () => {
    await expectRefused(await tampered(await signed(), { body: BODY.replace('"1"', '"9"') }), /content-digest does not match/);
  });

  it("another body and a Content-Digest recomputed for it: the MAC no longer matches", async () => {
    const body = BODY.replace('"1"', '"9"');
    const digest = await contentDigest(new TextEncoder().encode(body));
    await expectRefused(await tampered(await signed(), { body, headers: { "Content-Digest": digest } }), /signature does not verify/);
  });

  it("a body added where none was signed", async () => {
    await expectRefused(await tampered(await signed({ body: null }), { body: BODY }), /body is not covered/);
  });

  it("a body swapped in for a signed empty one, even with requireBodyDigest: false", async () => {
    // A covered Content-Digest is always checked: the option only waives the requirement to have one.
    const request = await signed({ body: "" });
    await expectRefused(await tampered(request, { body: BODY }), /content-digest does not match/, { requireBodyDigest: false });
  });

  it("Content-Digest removed", async () => {
    await expectRefused(await tampered(await signed(), { headers: { "Content-Digest": null } }), /covered header content-digest is missing/);
  });

  it("Content-Digest changed", async () => {
    await expectRefused(await tampered(await signed(), { headers: { "Content-Digest": "sha-256=:AAAA:" } }), /signature does not verify/);
  });

  it.each([
    ["host", { url: "https://other.test/upstream/swap?amount=1&to=x" }],
    ["port", { url: "https://origin.test:8443/upstream/swap?amount=1&to=x" }],
    ["path", { url: "https://origin.test/upstream/admin?amount=1&to=x" }],
    ["path encoding", { url: "https://origin.test/upstream/sw%61p?amount=1&to=x" }],
    ["query", { url: "https://origin.test/upstream/swap?amount=1000&to=x" }],
    ["query removed", { url: "https://origin.test/upstream/swap" }],
    ["method", { method: "PUT" }],
  ])("another %s", async (_label, change) => {
    await expectRefused(await tampered(await signed(), change), /signature does not verify/);
  });

  it.each(IDENTITY_HEADERS.map((name) => [name]))("%s changed", async (name) => {
    const request = await signed({ identity: ALL_IDENTITY });
    await expectRefused(await tampered(request, { headers: { [name]: `${request.headers.get(name)}x` } }), /signature does not verify/);
  });

  it.each(IDENTITY_HEADERS.map((name) => [name]))("%s removed", async (name) => {
    await expectRefused(await tampered(await signed({ identity: ALL_IDENTITY }), { headers: { [name]: null } }), /missing|not covered/);
  });

  it.each([
    ["x-auth-subject"],
    ["X-Auth-Subject"],
    ["X_Auth_Subject"],
    ["x.auth.subject"],
    ["X-Auth_Issuer"],
    ["x-auth-admin"],
    ["X-Forwarded-For"],
    ["x_forwarded_for"],
  ])("an added uncovered %s header", async (name) => {
    const { "X-Forwarded-For": _xff, ...identity } = API_KEY_IDENTITY;
    await expectRefused(await tampered(await signed({ identity }), { headers: { [name]: "admin" } }), /is not covered/);
  });

  it("an uncovered X_Auth_Subject next to a covered x-auth-subject", async () => {
    const request = await signed({ identity: ALL_IDENTITY });
    await expectRefused(await tampered(request, { headers: { X_Auth_Subject: "admin" } }), /x_auth_subject is not covered/);
  });

  it("a stale created", async () => {
    await expectRefused(await signed(), /too old/, { now: NOW + 61_000 });
    await expectRefused(await signed(), /too old/, { now: NOW + 31_000, maxAgeSeconds: 30 });
  });

  it("a created in the future", async () => {
    await expectRefused(await signed(), /in the future/, { now: NOW - 61_000 });
  });

  it("the exact same request a second time (replay)", async () => {
    const request = await signed();
    const replayStore = memoryReplayStore(100, () => NOW);
    expect(await verify(request, { replayStore })).toMatchObject({ ok: true });
    await expectRefused(request, /replayed nonce/, { replayStore });
  });

  it("the exact same request a second time, with the default replay store", async () => {
    // The default store runs on the real clock, so the signature must be fresh.
    const created = Math.floor(Date.now() / 1000);
    const request = await signed({ created, identity: { ...API_KEY_IDENTITY, "X-Request-Id": crypto.randomUUID() } });
    expect(await verifyOriginSignature(request, SECRET)).toMatchObject({ ok: true });
    expect(await verifyOriginSignature(request, SECRET)).toEqual({ ok: false, reason: "replayed nonce" });
  });

  it("another secret", async () => {
    const result = await verifyOriginSignature(await signed(), `${SECRET}x`, { now: NOW, replayStore: memoryReplayStore() });
    expect(result).toEqual({ ok: false, reason: "signature does not verify" });
  });
});

describe("verifyOriginSignature does not burn a nonce on a refused request", () => {
  it("so the genuine request still passes after a tampered copy raced it", async () => {
    const request = await signed();
    const replayStore = memoryReplayStore(100, () => NOW);
    expect(await verify(await tampered(request, { body: "{}" }), { replayStore })).toMatchObject({ ok: false });
    expect(await verify(request, { replayStore })).toMatchObject({ ok: true });
  });
});

describe("verifyOriginSignature refuses a signature whose shape is wrong, even with a valid MAC", () => {
  it("accepts the forged helper's own baseline, so each refusal below is about the shape", async () => {
    const request = await signed({ method: "GET", body: null });
    expect(await verify(await forged(request, API_KEY_COVERED, KEYGATE_PARAMS))).toMatchObject({ ok: true });
  });

  it.each(REQUIRED.map((name) => [name]))("a covered set without %s", async (name) => {
    const request = await signed({ method: "GET", body: null, identity: { "X-Auth-Method": "api_key", "X-Auth-Product": "defi", "X-Request-Id": "r" } });
    await expectRefused(
      await forged(
        request,
        REQUIRED.filter((component) => component !== name),
        KEYGATE_PARAMS,
      ),
      /not covered/,
    );
  });

  it.each([
    ["alg missing", `;created=${CREATED};nonce="n";keyid="keygate"`, /alg/],
    ["another alg", `;created=${CREATED};nonce="n";keyid="keygate";alg="hmac-sha512"`, /alg/],
    ["alg as a token", `;created=${CREATED};nonce="n";keyid="keygate";alg=hmac-sha256`, /alg/],
    ["created missing", ';nonce="n";keyid="keygate";alg="hmac-sha256"', /created/],
    ["created as a string", `;created="${CREATED}";nonce="n";keyid="keygate";alg="hmac-sha256"`, /created/],
    ["nonce missing", `;created=${CREATED};keyid="keygate";alg="hmac-sha256"`, /nonce/],
    ["an empty nonce", `;created=${CREATED};nonce="";keyid="keygate";alg="hmac-sha256"`, /nonce/],
    ["another keyid", `;created=${CREATED};nonce="n";keyid="other";alg="hmac-sha256"`, /keyid/],
    ["an unknown parameter", `;created=${CREATED};nonce="n";keyid="keygate";alg="hmac-sha256";tag="x"`, /unexpected signature parameter tag/],
    ["expired", `;created=${CREATED};expires=${CREATED - 1};nonce="n";keyid="keygate";alg="hmac-sha256"`, /expired/],
  ])("%s", async (_label, params, reason) => {
    await expectRefused(await forged(await signed({ method: "GET", body: null }), REQUIRED, params), reason);
  });

  it.each([
    ["@method twice", "@method", /duplicate component @method/],
    ["an uppercase field name", "X-Auth-Env", /unsupported component X-Auth-Env/],
  ])("a covered set with %s", async (_label, component, reason) => {
    await expectRefused(await forged(await signed({ method: "GET", body: null }), [...REQUIRED, component], KEYGATE_PARAMS), reason);
  });

  it.each([["@target-uri"], ["@request-target"], ["@scheme"], ["@signature-params"]])("a covered %s (no base can be built for it)", async (component) => {
    const covered = [...REQUIRED, component].map((name) => `"${name}"`).join(" ");
    const request = await tampered(await signed({ method: "GET", body: null }), {
      headers: { "Signature-Input": `keygate=(${covered})${KEYGATE_PARAMS}`, Signature: "keygate=:AAAA:" },
    });
    await expectRefused(request, new RegExp(`unsupported component ${component}`));
  });

  it.each([
    ["only another algorithm", "sha-512=:AAAA:"],
    ["not a dictionary", "sha-256"],
    ["a sha-256 that is not a byte sequence", 'sha-256="abc"'],
  ])("a covered Content-Digest with %s", async (_label, digest) => {
    const request = await tampered(await signed({ method: "GET", body: null }), { headers: { "Content-Digest": digest } });
    await expectRefused(await forged(request, [...API_KEY_COVERED, "content-digest"], KEYGATE_PARAMS), /content-digest/);
  });

  it("a label other than keygate", async () => {
    await expectRefused(await forged(await signed({ method: "GET", body: null }), REQUIRED, KEYGATE_PARAMS, "sig"), /no keygate signature/);
  });

  it("no signature at all", async () => {
    await expectRefused(new Request(URL_SIGNED, { headers: API_KEY_IDENTITY }), /no keygate signature/);
  });

  it.each([
    ["a duplicate label", (input: string) => `${input}, ${input}`, null],
    ["trailing garbage", (input: string) => `${input} x`, null],
    ["a trailing comma", (input: string) => `${input},`, null],
    ["a component parameter", (input: string) => input.replace('"x-auth-method"', '"x-auth-method";sf'), null],
    ["a decimal created", (input: string) => input.replace(/created=\d+/, "created=1.5"), null],
    ["an unterminated string", (input: string) => input.replace(/alg="hmac-sha256"$/, 'alg="hmac-sha256'), null],
    ["a signature that is a string", null, 'keygate="AAAA"'],
    ["a signature with bad base64", null, "keygate=:A*A=:"],
    ["a signature with parameters", null, "keygate=:AAAA:;x=1"],
  ])("a malformed Signature-Input or Signature: %s", async (_label, editInput, signature) => {
    const request = await signed();
    const headers: Record<string, string> = {};
    if (editInput) headers["Signature-Input"] = editInput(request.headers.get("Signature-Input")!);
    if (signature) headers.Signature = signature;
    await expectRefused(await tampered(request, { headers }), /^(malformed|unsupported component parameter)/);
  });
});
