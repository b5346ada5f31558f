import { env, exports } from "cloudflare:workers";
import { exportJWK, generateKeyPair, UnsecuredJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { KeyRecord } from "../../src/db/keys";
import type { Product } from "../../src/db/products";
import type { ErrorCode } from "../../src/errors";
import { throttleName } from "../../src/limits/auth-throttle";
import { memoryReplayStore, verifyOriginSignature } from "../../src/proxy/origin-signature";
import { rowCount, userToken } from "../helpers/api";
import { createKey, createProduct, GATEWAY, ORIGIN, uniqueSlug, type KeyOptions } from "../helpers/harness";
import { b64url, nowSeconds, OWN_KID, ownPrivateKey, signingJwk, signRaw, signToken } from "../helpers/jwt";
import { setClock, storedCounters } from "../helpers/limiter";
import { stubOrigin, type OriginHandler, type ReceivedRequest } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * The bad-input catalogue (issue #8): one row per hostile or malformed
 * request, each with the answer a client must get. The runner at the end
 * checks every row the same way: status and code (or the exact compact body),
 * JSON, X-Request-Id, what reached the origin (nothing, or for the rows
 * marked ACCEPTED keygate's own identity headers instead of the client's),
 * that no D1 row and no rate-limit counter moved, and that exactly the 401s
 * that judge a credential count as a failed authentication of the client IP.
 *
 * Every row has its own product, key, JWT subject and client address
 * (198.51.100.n or 2001:db8:n::1, one /64 each), so the failed-auth throttle
 * only shows up in the brute-force rows, which trip it on purpose.
 *
 * Header values are byte strings. workerd accepts a non-ASCII character in a
 * header value by sending its UTF-8 bytes (and logs a warning about it), so
 * the look-alike rows show what a client gets when it sends the UTF-8 of a
 * Cyrillic or full-width character: keygate sees those bytes, never the
 * character. NUL, CR and LF cannot be put in a header at all (the Request
 * constructor throws), so no row can send them. Requests are made in-process:
 * the 1 MB header rows reach keygate, while on Cloudflare's edge a request
 * with headers that large is refused before any Worker runs.
 */

// ---------------------------------------------------------------------------
// Row vocabulary

interface World {
  product: Product;
  /** A valid, active key for every product (`*`), unless the row's key options say otherwise. */
  key: string;
  record: KeyRecord;
  /** This row's CF-Connecting-IP. */
  ip: string;
  /** A fresh JWT subject; signToken() rows use it, so its counters are checked too. */
  subject: string;
}

type HeaderList = [name: string, value: string][];

interface Probe {
  method?: string;
  /** Defaults to a path under the row's product. */
  path?: string;
  headers?: HeaderList;
  body?: BodyInit;
}

type Expectation =
  | { kind: "refused"; status: number; code: ErrorCode; fields?: string[] }
  | { kind: "compact"; status: number; body: { error: string } }
  | { kind: "accepted"; by: "api_key" | "jwt"; check?: (seen: ReceivedRequest, world: World) => void | Promise<void> }
  | { kind: "own"; check?: (body: Record<string, any>) => void };

interface Row {
  name: string;
  product?: Partial<Product>;
  key?: KeyOptions;
  /** How the origin answers (default: the echo stub). */
  originReply?: OriginHandler;
  /** Runs before the snapshot (brute-force attempts, conflicting rows). */
  before?: (world: World) => Promise<void>;
  request: (world: World) => Probe | Promise<Probe>;
  expect: Expectation;
  /** This row's CF-Connecting-IP instead of its own 198.51.100.n / 2001:db8:n::1 (allowlist rows). */
  ip?: string;
  /** The limiter object the row's JWT subject counts in (default `user:<subject>`, keygate's own tokens). */
  subjectLimiter?: (world: World) => string;
  /** More checks after the runner's, e.g. on storage that must not have been written. */
  after?: (world: World, body: Record<string, any>) => void | Promise<void>;
}

const refused = (status: number, code: ErrorCode, fields?: string[]): Expectation => ({ kind: "refused", status, code, fields });
const compact = (status: number, error: string): Expectation => ({ kind: "compact", status, body: { error } });
/** keygate's own 200 answer (JWKS, OpenAPI, health): nothing reaches an origin, nothing is written. */
const ownAnswer = (check?: (body: Record<string, any>) => void): Expectation => ({ kind: "own", check });
/** ACCEPTED: the call is legitimate despite the noise and reaches the origin once, carrying keygate's values. */
const accepted = (check?: (seen: ReceivedRequest, world: World) => void | Promise<void>, by: "api_key" | "jwt" = "api_key"): Expectation => ({
  kind: "accepted",
  by,
  check,
});

const apiKey = (value: string): HeaderList => [["X-API-Key", value]];
const bearer = (value: string): HeaderList => [["Authorization", `Bearer ${value}`]];
const asAdmin = (): HeaderList => bearer(env.ADMIN_TOKEN);
const jsonBody = (value: unknown): Pick<Probe, "body" | "headers"> => ({
  body: typeof value === "string" ? value : JSON.stringify(value),
  headers: [["Content-Type", "application/json"]],
});
const adminPost = (path: string, body: unknown): Probe => {
  const json = jsonBody(body);
  return { method: "POST", path, body: json.body, headers: [...asAdmin(), ...json.headers!] };
};

const HEX48 = "0123456789abcdef".repeat(3);
const ALNUM72 = "Ab3".repeat(24);
const MIB = 1_048_576;
const utf8AsBytes = (text: string) => String.fromCharCode(...new TextEncoder().encode(text));
/** Replaces the character at `index` (negative: from the end). */
const swapAt = (text: string, index: number, replacement: string) => {
  const at = index < 0 ? text.length + index : index;
  return text.slice(0, at) + replacement + text.slice(at + 1);
};
const validProduct = (overrides: Record<string, unknown> = {}) => {
  const slug = uniqueSlug("cat");
  return { slug, name: "Catalogue", pathPrefix: `/api/${slug}`, originUrl: `${ORIGIN}/cat`, ...overrides };
};
/** A key pair that is not keygate's. */
const attacker = generateKeyPair("ES256", { extractable: true });

/** Failed authentications from the row's address, enough to reach AUTH_FAILURE_LIMIT_PER_MINUTE (30). */
async function failAuthFrom(w: World, times = 30): Promise<void> {
  for (let i = 0; i < times; i++) {
    const response = await exports.default.fetch(
      new Request(`${GATEWAY}${w.product.pathPrefix}/guess`, { headers: { "X-API-Key": `not-a-key-${i}`, "CF-Connecting-IP": w.ip } }),
    );
    await response.arrayBuffer();
  }
}

async function failLogin(email: string, ips: (i: number) => string, times = 30): Promise<void> {
  for (let i = 0; i < times; i++) {
    const response = await exports.default.fetch(
      new Request(`${GATEWAY}/auth/login`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "CF-Connecting-IP": ips(i) },
        body: JSON.stringify({ email, password: `wrong-${i}` }),
      }),
    );
    await response.arrayBuffer();
  }
}

/** Freezes the clock mid-minute, so a brute-force burst never straddles a window. */
function midMinute(): void {
  setClock(new Date(Math.floor(Date.now() / 60_000) * 60_000 + 20_000).toISOString());
}

// ---------------------------------------------------------------------------
// The catalogue

const SCOPED = { scopeRules: [{ path: "/admin/**", scope: "admin" }] } satisfies Partial<Product>;

const CATALOGUE: Row[] = [
  // --- missing and malformed credential headers ---
  { name: "no credential header at all", request: () => ({}), expect: refused(401, "AUTH_MISSING") },
  { name: "an empty X-API-Key", request: () => ({ headers: apiKey("") }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "an X-API-Key of spaces and tabs only", request: () => ({ headers: apiKey(" \t  ") }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "two keys separated by a space", request: (w) => ({ headers: apiKey(`${w.key} ${w.key}`) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "two keys separated by a comma", request: (w) => ({ headers: apiKey(`${w.key},${w.key}`) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "a tab inside the key", request: (w) => ({ headers: apiKey(swapAt(w.key, 20, "\t")) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "a trailing \\x01 control character", request: (w) => ({ headers: apiKey(`${w.key}\x01`) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "a trailing DEL (\\x7f)", request: (w) => ({ headers: apiKey(`${w.key}\x7f`) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "a leading \\x1b escape", request: (w) => ({ headers: apiKey(`\x1b${w.key}`) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  {
    name: "ACCEPTED: spaces and tabs around the key (SPEC 1.3: surrounding whitespace is ignored)",
    request: (w) => ({ headers: apiKey(`  \t${w.key} \t `) }),
    expect: accepted(),
  },

  // --- duplicate and conflicting headers ---
  {
    name: "the same X-API-Key header twice",
    request: (w) => ({ headers: [...apiKey(w.key), ...apiKey(w.key)] }),
    expect: refused(401, "AUTH_HEADER_MALFORMED"),
  },
  {
    name: "two X-API-Key headers, valid then junk",
    request: (w) => ({ headers: [...apiKey(w.key), ...apiKey("junk")] }),
    expect: refused(401, "AUTH_HEADER_MALFORMED"),
  },
  {
    name: "two Authorization headers with the same key",
    request: (w) => ({ headers: [...bearer(w.key), ...bearer(w.key)] }),
    expect: refused(401, "AUTH_HEADER_MALFORMED"),
  },
  {
    name: "a bad X-API-Key beside a valid JWT (no fallback)",
    request: async (w) => ({ headers: [...apiKey("ilal_live_nope"), ...bearer(await signToken({ sub: w.subject, products: ["*"] }))] }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  {
    name: "a bad X-API-Key beside a valid key as Bearer (no fallback)",
    request: (w) => ({ headers: [...apiKey(swapAt(w.key, -1, "g")), ...bearer(w.key)] }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  {
    name: "an empty X-API-Key beside a valid key as Bearer (present means exclusive)",
    request: (w) => ({ headers: [...apiKey(""), ...bearer(w.key)] }),
    expect: refused(401, "AUTH_HEADER_MALFORMED"),
  },
  {
    name: "ACCEPTED: a valid X-API-Key beside a garbage Authorization (X-API-Key is used exclusively)",
    request: (w) => ({ headers: [...apiKey(w.key), ["Authorization", "Basic Zm9vOmJhcg=="]] }),
    expect: accepted(),
  },
  {
    name: "a valid key only in Proxy-Authorization",
    request: (w) => ({ headers: [["Proxy-Authorization", `Bearer ${w.key}`]] }),
    expect: refused(401, "AUTH_MISSING"),
  },
  {
    name: "a JWT sent in X-API-Key",
    request: async (w) => ({ headers: apiKey(await signToken({ sub: w.subject })) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },

  // --- near-miss keys (format decided without storage) ---
  {
    name: "the key's prefix upper-cased (ILAL_)",
    request: (w) => ({ headers: apiKey(w.key.replace("ilal_", "ILAL_")) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  { name: "the whole key upper-cased", request: (w) => ({ headers: apiKey(w.key.toUpperCase()) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  {
    name: "capital I for the l of ilal",
    request: (w) => ({ headers: apiKey(w.key.replace("ilal_", "iIal_")) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  { name: "digit 1 for the i of ilal", request: (w) => ({ headers: apiKey(w.key.replace("ilal_", "1lal_")) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "an environment other than live/test", request: () => ({ headers: apiKey(`ilal_prod_${HEX48}`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "one hex character too many", request: (w) => ({ headers: apiKey(`${w.key}0`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "one hex character too few", request: (w) => ({ headers: apiKey(w.key.slice(0, -1)) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a trailing = (base64 padding)", request: (w) => ({ headers: apiKey(`${w.key}=`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  {
    name: "a non-hex letter in the random part",
    request: (w) => ({ headers: apiKey(swapAt(w.key, -5, "g")) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  { name: "a dash in an ila key", request: () => ({ headers: apiKey(`ila_${swapAt(ALNUM72, 10, "-")}`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "an ila key of 71 characters", request: () => ({ headers: apiKey(`ila_${ALNUM72.slice(1)}`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "an ila key of 73 characters", request: () => ({ headers: apiKey(`ila_${ALNUM72}x`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a key of an unknown format (sk_live_)", request: () => ({ headers: apiKey(`sk_live_${HEX48}`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a well-formed key never issued", request: () => ({ headers: apiKey(`ilal_live_${HEX48}`) }), expect: refused(401, "API_KEY_PREFIX_NOT_FOUND") },
  {
    name: "the right prefix with a wrong tail",
    request: (w) => ({ headers: apiKey(swapAt(w.key, -1, w.key.endsWith("0") ? "1" : "0")) }),
    expect: refused(401, "API_KEY_HASH_MISMATCH"),
  },
  {
    name: "a live key spelled as test",
    request: (w) => ({ headers: apiKey(w.key.replace("_live_", "_test_")) }),
    expect: refused(401, "API_KEY_PREFIX_NOT_FOUND"),
  },
  { name: "a deactivated key", key: { status: "inactive" }, request: (w) => ({ headers: apiKey(w.key) }), expect: refused(401, "API_KEY_INACTIVE") },
  {
    name: "an expired key",
    key: { expiresAt: new Date(Date.now() - 1000).toISOString() },
    request: (w) => ({ headers: apiKey(w.key) }),
    expect: refused(401, "API_KEY_EXPIRED"),
  },

  // --- look-alikes (UTF-8 bytes, see the header comment) ---
  {
    name: "Cyrillic а (UTF-8) for the a of ilal",
    request: (w) => ({ headers: apiKey(w.key.replace("ilal_", `il${utf8AsBytes("а")}l_`)) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  {
    name: "full-width ０ (UTF-8) in the random part",
    request: (w) => ({ headers: apiKey(swapAt(w.key, -3, utf8AsBytes("０"))) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  { name: "Latin-1 à in the random part", request: (w) => ({ headers: apiKey(swapAt(w.key, -3, "à")) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  {
    name: "a soft hyphen (U+00AD) inside the key",
    request: (w) => ({ headers: apiKey(swapAt(w.key, 12, `${w.key[12]}\u00ad`)) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  {
    name: "a zero-width space (UTF-8) after the key",
    request: (w) => ({ headers: apiKey(`${w.key}${utf8AsBytes("\u200b")}`) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  { name: "a no-break space (U+00A0) after the key", request: (w) => ({ headers: apiKey(`${w.key}\u00a0`) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  {
    name: "a Bearer key with a Cyrillic а (UTF-8) prefix is judged as a JWT",
    request: (w) => ({ headers: bearer(w.key.replace("ilal_", `il${utf8AsBytes("а")}l_`)) }),
    expect: refused(401, "JWT_MALFORMED"),
  },

  // --- SQL metacharacters (storage is only ever reached with bound parameters) ---
  { name: "' OR '1'='1 as the key", request: () => ({ headers: apiKey("' OR '1'='1") }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  {
    name: "a quote-and-comment key without spaces",
    request: () => ({ headers: apiKey("ilal_live_'OR'1'='1'--") }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  {
    name: "a stacked DROP TABLE after a real prefix",
    request: (w) => ({ headers: apiKey(`${w.record.prefix}';DROP/**/TABLE/**/api_keys;--`) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  { name: "a LIKE wildcard as the key", request: () => ({ headers: apiKey("ilal_live_%") }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a SQL comment as a Bearer key", request: () => ({ headers: bearer("ilal_live_--") }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  {
    name: "a JWT whose kid is a SQL injection",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject }, { header: { kid: "x' OR '1'='1" } })) }),
    expect: refused(401, "JWT_KEY_NOT_FOUND"),
  },
  {
    name: "a login whose email is a SQL injection",
    request: () => ({ method: "POST", path: "/auth/login", ...jsonBody({ email: "' OR 1=1 --", password: "whatever-password" }) }),
    expect: refused(401, "INVALID_CREDENTIALS"),
  },

  // --- oversized headers and bodies ---
  { name: "a 1 MB X-API-Key of junk", request: () => ({ headers: apiKey("a".repeat(MIB)) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  {
    name: "a 1 MB X-API-Key with a real format prefix",
    request: () => ({ headers: apiKey(`ilal_live_${"f".repeat(MIB)}`) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  { name: "a 1 MB Bearer token", request: () => ({ headers: bearer("e".repeat(MIB)) }), expect: refused(401, "JWT_MALFORMED") },
  {
    name: "a 1 MB Bearer key with a real format prefix",
    request: () => ({ headers: bearer(`ila_${"A".repeat(MIB)}`) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  {
    name: "ACCEPTED: a valid key with a 1 MB junk header (forwarded as is; the edge caps header size)",
    request: (w) => ({ headers: [...apiKey(w.key), ["X-Junk", "j".repeat(MIB)]] }),
    expect: accepted((seen) => expect(seen.headers.get("x-junk")?.length).toBe(MIB)),
  },
  {
    name: "a body of MAX_BODY_BYTES + 1 with Content-Length and a valid key",
    request: (w) => ({ method: "POST", headers: apiKey(w.key), body: new Uint8Array(MIB + 1) }),
    expect: refused(413, "PAYLOAD_TOO_LARGE"),
  },
  {
    name: "a chunked body of MAX_BODY_BYTES + 1 and a valid key (refused after reading, before counting)",
    request: (w) => ({ method: "POST", headers: apiKey(w.key), body: chunkedBody(MIB + 1) }),
    expect: refused(413, "PAYLOAD_TOO_LARGE"),
  },
  {
    name: "a declared oversized body without credentials (size is judged before authentication)",
    request: () => ({ method: "POST", body: new Uint8Array(MIB + 1) }),
    expect: refused(413, "PAYLOAD_TOO_LARGE"),
  },
  {
    name: "a declared oversized body with a bad key (no credential judged, no failure counted)",
    request: () => ({ method: "POST", headers: apiKey("ilal_live_nope"), body: new Uint8Array(MIB + 1) }),
    expect: refused(413, "PAYLOAD_TOO_LARGE"),
  },
  {
    name: "ACCEPTED: a body of exactly MAX_BODY_BYTES",
    // A short reply: the echo of a 1 MiB body would be too large to get authMethod injected.
    originReply: async (request) => Response.json({ received: (await request.arrayBuffer()).byteLength }),
    request: (w) => ({ method: "POST", headers: apiKey(w.key), body: new Uint8Array(MIB).fill(97) }),
    expect: accepted((seen) => expect(seen.body.length).toBe(MIB)),
  },

  // --- spoofed identity headers: accepted, the origin sees keygate's values ---
  {
    name: "ACCEPTED: spoofed X-Auth-Key-Id, X-Auth-Method, X-Auth-Scopes, X-Auth-Env and X-Auth-Product",
    key: { scopes: ["read"] },
    request: (w) => ({
      headers: [
        ...apiKey(w.key),
        ["X-Auth-Key-Id", "forged-key"],
        ["X-Auth-Method", "jwt"],
        ["X-Auth-Scopes", "admin:*"],
        ["X-Auth-Env", "test"],
        ["X-Auth-Product", "other"],
      ],
    }),
    expect: accepted((seen, w) => {
      expect(seen.headers.get("x-auth-scopes")).toBe("read");
      expect(seen.headers.get("x-auth-env")).toBe("live");
      expect(seen.headers.get("x-auth-product")).toBe(w.product.slug);
    }),
  },
  {
    name: "ACCEPTED: a forged Signature, Signature-Input, Content-Digest and old X-Auth-Signature",
    request: (w) => ({
      headers: [
        ...apiKey(w.key),
        ["Signature", "keygate=:AAAA:"],
        ["Signature-Input", 'keygate=("@method");created=1;nonce="x";keyid="keygate";alg="hmac-sha256"'],
        ["Content-Digest", "sha-256=:AAAA:"],
        ["X-Auth-Signature", `v1=${"0".repeat(64)}`],
        ["X-Auth-Timestamp", "1"],
      ],
    }),
    expect: accepted((seen) => {
      expect(seen.headers.get("x-auth-timestamp")).toBeNull();
      expect(seen.headers.get("x-auth-signature")).toBeNull();
      expect(seen.headers.get("content-digest")).toBeNull();
      expect(seen.headers.get("signature")).not.toBe("keygate=:AAAA:");
    }),
  },
  {
    name: "ACCEPTED: a spoofed X-Forwarded-For",
    request: (w) => ({ headers: [...apiKey(w.key), ["X-Forwarded-For", "1.2.3.4, 5.6.7.8"]] }),
    expect: accepted(),
  },
  {
    name: "ACCEPTED: a client-chosen X-Request-Id (replaced by keygate's)",
    request: (w) => ({ headers: [...apiKey(w.key), ["X-Request-Id", "client-chosen-id"]] }),
    expect: accepted(),
  },
  {
    name: "ACCEPTED: a spoofed X-Auth-Subject on an API-key call",
    request: (w) => ({ headers: [...apiKey(w.key), ["X-Auth-Subject", "admin"]] }),
    expect: accepted((seen) => expect(seen.headers.get("x-auth-subject")).toBeNull()),
  },
  {
    name: "ACCEPTED: a spoofed X-Auth-Key-Id and X-Auth-Subject on a JWT call",
    request: async (w) => ({
      headers: [...bearer(await signToken({ sub: w.subject, products: ["*"] })), ["X-Auth-Key-Id", "forged-key"], ["X-Auth-Subject", "admin"]],
    }),
    expect: accepted((seen, w) => {
      expect(seen.headers.get("x-auth-key-id")).toBeNull();
      expect(seen.headers.get("x-auth-subject")).toBe(w.subject);
    }, "jwt"),
  },
  {
    name: "a spoofed X-Forwarded-For naming the allowlisted address",
    key: { ipAllowlist: ["203.0.113.7"] },
    request: (w) => ({ headers: [...apiKey(w.key), ["X-Forwarded-For", "203.0.113.7"]] }),
    expect: refused(403, "IP_NOT_ALLOWED"),
  },
  {
    name: "spoofed X-Real-IP and True-Client-IP naming the allowlisted address",
    key: { ipAllowlist: ["203.0.113.0/24"] },
    request: (w) => ({ headers: [...apiKey(w.key), ["X-Real-IP", "203.0.113.7"], ["True-Client-IP", "203.0.113.7"]] }),
    expect: refused(403, "IP_NOT_ALLOWED"),
  },
  {
    name: "a key without this product",
    key: { products: ["another-product"] },
    request: (w) => ({ headers: apiKey(w.key) }),
    expect: refused(403, "API_KEY_PRODUCT_FORBIDDEN"),
  },

  // --- hop-by-hop abuse ---
  {
    name: "ACCEPTED: Connection: X-API-Key (the key still authenticates; it never reaches the origin)",
    request: (w) => ({ headers: [...apiKey(w.key), ["Connection", "X-API-Key"]] }),
    expect: accepted((seen) => expect(seen.headers.get("connection")).toBeNull()),
  },
  {
    name: "ACCEPTED: Connection naming keygate's identity headers (they are set after hop-by-hop stripping)",
    request: (w) => ({ headers: [...apiKey(w.key), ["Connection", "X-Auth-Signature, X-Request-Id, X-Auth-Key-Id, X-Forwarded-For"]] }),
    expect: accepted(),
  },
  {
    name: "ACCEPTED: Connection: Authorization with a Bearer key",
    request: (w) => ({ headers: [...bearer(w.key), ["Connection", "Authorization"]] }),
    expect: accepted(),
  },
  {
    name: "ACCEPTED: Upgrade, Keep-Alive, TE, Trailer and Proxy-Authorization are not forwarded",
    request: (w) => ({
      headers: [
        ...apiKey(w.key),
        ["Connection", "upgrade, keep-alive"],
        ["Upgrade", "websocket"],
        ["Keep-Alive", "timeout=600"],
        ["TE", "trailers"],
        ["Trailer", "X-Late"],
        ["Proxy-Authorization", "Basic Zm9vOmJhcg=="],
      ],
    }),
    expect: accepted((seen) => {
      for (const name of ["connection", "upgrade", "keep-alive", "te", "trailer", "proxy-authorization"]) expect(seen.headers.get(name), name).toBeNull();
    }),
  },
  {
    name: "ACCEPTED: Connection naming an ordinary header drops it",
    request: (w) => ({ headers: [...apiKey(w.key), ["Connection", "X-Secret-Hint"], ["X-Secret-Hint", "x"]] }),
    expect: accepted((seen) => expect(seen.headers.get("x-secret-hint")).toBeNull()),
  },

  // --- Authorization scheme tricks ---
  {
    name: "Authorization: Basic with the key as user",
    request: (w) => ({ headers: [["Authorization", `Basic ${btoa(`${w.key}:`)}`]] }),
    expect: refused(401, "AUTH_HEADER_MALFORMED"),
  },
  { name: "Authorization: Bearer with no token", request: () => ({ headers: [["Authorization", "Bearer"]] }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  {
    name: "Authorization: Bearer followed by spaces only",
    request: () => ({ headers: [["Authorization", "Bearer    "]] }),
    expect: refused(401, "AUTH_HEADER_MALFORMED"),
  },
  { name: "Authorization: Token <key>", request: (w) => ({ headers: [["Authorization", `Token ${w.key}`]] }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  {
    name: "Authorization: Bearer<TAB><key>",
    request: (w) => ({ headers: [["Authorization", `Bearer\t${w.key}`]] }),
    expect: refused(401, "AUTH_HEADER_MALFORMED"),
  },
  { name: "Authorization: Bearer with two tokens", request: (w) => ({ headers: bearer(`${w.key} ${w.key}`) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  {
    name: "Authorization: the bare key without a scheme",
    request: (w) => ({ headers: [["Authorization", w.key]] }),
    expect: refused(401, "AUTH_HEADER_MALFORMED"),
  },
  {
    name: "a Bearer key with an upper-cased prefix is judged as a JWT",
    request: (w) => ({ headers: bearer(w.key.toUpperCase()) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  { name: "a Bearer key that is too short", request: (w) => ({ headers: bearer(w.key.slice(0, 20)) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  {
    name: "ACCEPTED: a lower-case bearer scheme (schemes are case-insensitive)",
    request: (w) => ({ headers: [["Authorization", `bearer ${w.key}`]] }),
    expect: accepted(),
  },
  { name: "ACCEPTED: several spaces after Bearer", request: (w) => ({ headers: [["Authorization", `Bearer   ${w.key}`]] }), expect: accepted() },

  // --- path tricks ---
  {
    name: "a prefix look-alike /api/<slug>X",
    request: (w) => ({ path: `${w.product.pathPrefix}X/r`, headers: apiKey(w.key) }),
    expect: refused(404, "ROUTE_NOT_FOUND"),
  },
  {
    name: "an upper-cased /API/ segment",
    request: (w) => ({ path: `${w.product.pathPrefix.replace("/api/", "/API/")}/r`, headers: apiKey(w.key) }),
    expect: refused(404, "ROUTE_NOT_FOUND"),
  },
  {
    name: "an upper-cased slug",
    request: (w) => ({ path: `/api/${w.product.slug.toUpperCase()}/r`, headers: apiKey(w.key) }),
    expect: refused(404, "ROUTE_NOT_FOUND"),
  },
  {
    name: "an encoded slash after the slug (%2F)",
    request: (w) => ({ path: `${w.product.pathPrefix}%2Fr`, headers: apiKey(w.key) }),
    expect: refused(400, "PATH_INVALID"),
  },
  {
    name: "an encoded slash in lower case (%2f)",
    request: (w) => ({ path: `/api%2f${w.product.slug}/r`, headers: apiKey(w.key) }),
    expect: refused(400, "PATH_INVALID"),
  },
  {
    name: "ACCEPTED: a double slash before the slug is routed and forwarded as its canonical path",
    request: (w) => ({ path: `/api//${w.product.slug}/r`, headers: apiKey(w.key) }),
    expect: accepted((seen, w) => expect(new URL(seen.url).pathname).toBe(`${new URL(w.product.originUrl).pathname}${w.product.pathPrefix}/r`)),
  },
  {
    name: "ACCEPTED: an encoded letter in the prefix (/%61pi/) is routed and forwarded decoded",
    request: (w) => ({ path: `/%61pi/${w.product.slug}/r`, headers: apiKey(w.key) }),
    expect: accepted((seen, w) => expect(new URL(seen.url).pathname).toBe(`${new URL(w.product.originUrl).pathname}${w.product.pathPrefix}/r`)),
  },
  {
    name: "an encoded NUL after the slug",
    request: (w) => ({ path: `${w.product.pathPrefix}%00/r`, headers: apiKey(w.key) }),
    expect: refused(400, "PATH_INVALID"),
  },
  {
    name: "/api/<slug>/../other (resolved by the URL parser to /api/other)",
    request: (w) => ({ path: `${w.product.pathPrefix}/../other`, headers: apiKey(w.key) }),
    expect: refused(404, "ROUTE_NOT_FOUND"),
  },
  {
    name: "backslashes as dot segments (/api/<slug>\\..\\other)",
    request: (w) => ({ path: `${w.product.pathPrefix}\\..\\other`, headers: apiKey(w.key) }),
    expect: refused(404, "ROUTE_NOT_FOUND"),
  },
  {
    name: "..%2F from one product into another (checked by one, served by the other)",
    before: async (w) => void (await createProduct({ slug: `${w.product.slug}-b`, pathPrefix: `${w.product.pathPrefix}-b` })),
    request: (w) => ({ path: `${w.product.pathPrefix}/..%2F${w.product.slug}-b/r`, headers: apiKey(w.key) }),
    expect: refused(400, "PATH_INVALID"),
  },
  {
    name: "%2e%2e into a product the key may not use (judged as that product)",
    key: { products: [] },
    before: async (w) => {
      await createProduct({ slug: `${w.product.slug}-c`, pathPrefix: `${w.product.pathPrefix}-c` });
    },
    request: (w) => ({ path: `${w.product.pathPrefix}/%2e%2e/${w.product.slug}-c/r`, headers: apiKey(w.key) }),
    expect: refused(403, "API_KEY_PRODUCT_FORBIDDEN"),
  },
  {
    name: "an encoded a in a scoped path (/%61dmin)",
    product: SCOPED,
    key: { scopes: ["read"] },
    request: (w) => ({ path: `${w.product.pathPrefix}/%61dmin/users`, headers: apiKey(w.key) }),
    expect: refused(403, "API_KEY_SCOPE_MISSING"),
  },
  {
    name: "a double slash before a scoped path",
    product: SCOPED,
    key: { scopes: ["read"] },
    request: (w) => ({ path: `${w.product.pathPrefix}//admin/users`, headers: apiKey(w.key) }),
    expect: refused(403, "API_KEY_SCOPE_MISSING"),
  },
  {
    name: "..%2F into a scoped path",
    product: SCOPED,
    key: { scopes: ["read"] },
    request: (w) => ({ path: `${w.product.pathPrefix}/x/..%2Fadmin/users`, headers: apiKey(w.key) }),
    expect: refused(400, "PATH_INVALID"),
  },
  {
    name: "an encoded slash inside a scoped path (admin%2Fusers)",
    product: SCOPED,
    key: { scopes: ["read"] },
    request: (w) => ({ path: `${w.product.pathPrefix}/admin%2Fusers`, headers: apiKey(w.key) }),
    expect: refused(400, "PATH_INVALID"),
  },
  {
    name: "a ./ segment before a scoped path",
    product: SCOPED,
    key: { scopes: ["read"] },
    request: (w) => ({ path: `${w.product.pathPrefix}/./admin/users`, headers: apiKey(w.key) }),
    expect: refused(403, "API_KEY_SCOPE_MISSING"),
  },
  {
    name: "keygate's own path upper-cased (/API/V1/KEYS) is no own endpoint",
    request: () => ({ path: "/API/V1/KEYS", headers: asAdmin() }),
    expect: refused(404, "ROUTE_NOT_FOUND"),
  },
  {
    name: "a dot segment into the admin API without credentials",
    request: () => ({ path: "/healthz/../api/v1/admin/users" }),
    expect: refused(401, "AUTH_MISSING"),
  },

  // --- the JWT attack list ---
  {
    name: 'alg "none"',
    request: async (w) => ({ headers: bearer(new UnsecuredJWT({ sub: w.subject, iss: "keygate", aud: "keygate", exp: nowSeconds() + 60 }).encode()) }),
    expect: refused(401, "JWT_ALG_NOT_ALLOWED"),
  },
  {
    name: 'alg "None" with an empty signature',
    request: (w) => ({ headers: bearer(unsigned({ alg: "None" }, w)) }),
    expect: refused(401, "JWT_ALG_NOT_ALLOWED"),
  },
  {
    name: 'alg "NONE" with an empty signature',
    request: (w) => ({ headers: bearer(unsigned({ alg: "NONE" }, w)) }),
    expect: refused(401, "JWT_ALG_NOT_ALLOWED"),
  },
  {
    name: 'alg "hs256" (lower case)',
    request: (w) => ({ headers: bearer(unsigned({ alg: "hs256" }, w, "c2ln")) }),
    expect: refused(401, "JWT_ALG_NOT_ALLOWED"),
  },
  {
    name: "HS/RS confusion: HS256 signed with the gateway's public JWK as the secret",
    request: async (w) => {
      const { d: _d, ...publicJwk } = signingJwk;
      return {
        headers: bearer(
          await signToken({ sub: w.subject }, { alg: "HS256", key: new TextEncoder().encode(JSON.stringify(publicJwk)), header: { kid: OWN_KID } }),
        ),
      };
    },
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  {
    name: "HS/EC confusion: HS256 signed with the public key's x coordinate",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject }, { alg: "HS256", key: new TextEncoder().encode(signingJwk.x!) })) }),
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  {
    name: "RS256 naming the gateway's kid",
    request: (w) => ({ headers: bearer(unsigned({ alg: "RS256", kid: OWN_KID }, w, "c2ln")) }),
    expect: refused(401, "JWT_ALG_NOT_ALLOWED"),
  },
  {
    name: "ES384 (not in JWT_ALGORITHMS)",
    request: (w) => ({ headers: bearer(unsigned({ alg: "ES384", kid: OWN_KID }, w, "c2ln")) }),
    expect: refused(401, "JWT_ALG_NOT_ALLOWED"),
  },
  {
    name: "ES256 signed by another key under the gateway's kid",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject }, { key: (await attacker).privateKey })) }),
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  {
    name: "an embedded jwk header carrying the attacker's own key",
    request: async (w) => {
      const { privateKey, publicKey } = await attacker;
      return { headers: bearer(await signToken({ sub: w.subject }, { key: privateKey, header: { kid: undefined, jwk: await exportJWK(publicKey) } })) };
    },
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  {
    name: "a jku header pointing at the attacker's JWKS (never fetched)",
    request: async (w) => ({
      headers: bearer(await signToken({ sub: w.subject }, { key: (await attacker).privateKey, header: { kid: "evil", jku: `${ORIGIN}/evil-jwks.json` } })),
    }),
    expect: refused(401, "JWT_KEY_NOT_FOUND"),
  },
  {
    name: "an x5u header pointing at the attacker's certificate (never fetched)",
    request: async (w) => ({
      headers: bearer(await signToken({ sub: w.subject }, { key: (await attacker).privateKey, header: { x5u: `${ORIGIN}/evil.pem` } })),
    }),
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  {
    name: "an unknown kid",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject }, { header: { kid: "rotated-away" } })) }),
    expect: refused(401, "JWT_KEY_NOT_FOUND"),
  },
  {
    name: "a path-traversal kid",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject }, { header: { kid: "../../../../dev/null" } })) }),
    expect: refused(401, "JWT_KEY_NOT_FOUND"),
  },
  {
    name: "crit naming an unsupported extension",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID, crit: ["x-custom"], "x-custom": 1 }, claims(w))) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  {
    name: "crit naming a parameter the header lacks",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID, crit: ["exp"] }, claims(w))) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  {
    name: "an empty crit list",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID, crit: [] }, claims(w))) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  {
    name: "a tampered payload (role: admin)",
    request: async (w) => {
      const [header, , signature] = (await signToken({ sub: w.subject })).split(".");
      return { headers: bearer(`${header}.${b64url({ ...claims(w), role: "admin" })}.${signature}`) };
    },
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  {
    name: "a tampered header (kid removed)",
    request: async (w) => {
      const [, payload, signature] = (await signToken({ sub: w.subject })).split(".");
      return { headers: bearer(`${b64url({ alg: "ES256" })}.${payload}.${signature}`) };
    },
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  {
    name: "a stripped signature",
    request: async (w) => ({ headers: bearer(`${(await signToken({ sub: w.subject })).split(".").slice(0, 2).join(".")}.`) }),
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  {
    name: "an expired token",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, exp: nowSeconds() - 120 })) }),
    expect: refused(401, "JWT_EXPIRED"),
  },
  {
    name: "a token not valid before ten minutes from now",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, nbf: nowSeconds() + 600 })) }),
    expect: refused(401, "JWT_NOT_YET_VALID"),
  },
  {
    // RFC 7519 makes only nbf and exp validity bounds; jose checks iat only when a maximum token age is set.
    name: "ACCEPTED: a token whose iat is an hour in the future (iat is not a validity bound)",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, products: ["*"], iat: nowSeconds() + 3600, exp: nowSeconds() + 7200 })) }),
    expect: accepted((seen, w) => expect(seen.headers.get("x-auth-subject")).toBe(w.subject), "jwt"),
  },
  {
    name: "exp as a string",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID }, { ...claims(w), exp: String(nowSeconds() + 60) })) }),
    expect: refused(401, "JWT_CLAIM_INVALID"),
  },
  {
    name: "no exp claim",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, exp: undefined })) }),
    expect: refused(401, "JWT_CLAIM_INVALID"),
  },
  { name: "no sub claim", request: async () => ({ headers: bearer(await signToken({ sub: undefined })) }), expect: refused(401, "JWT_CLAIM_INVALID") },
  { name: "an empty sub claim", request: async () => ({ headers: bearer(await signToken({ sub: "" })) }), expect: refused(401, "JWT_CLAIM_INVALID") },
  {
    name: "a wrong issuer",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, iss: "https://evil.example" })) }),
    expect: refused(401, "JWT_CLAIM_INVALID"),
  },
  {
    name: "an audience list without keygate",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, aud: ["a", "b"] })) }),
    expect: refused(401, "JWT_CLAIM_INVALID"),
  },
  {
    name: "a payload that is not JSON",
    request: async () => ({ headers: bearer(await signRawText({ alg: "ES256", kid: OWN_KID }, "not json")) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  {
    name: "a payload that is a JSON array",
    request: async () => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID }, ["sub", "x"])) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  { name: "a header that is not base64url", request: () => ({ headers: bearer("!!!.e30.c2ln") }), expect: refused(401, "JWT_MALFORMED") },
  {
    name: "a four-part token",
    request: async (w) => ({ headers: bearer(`${await signToken({ sub: w.subject })}.extra`) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  {
    name: "a five-part (JWE-shaped) token",
    request: () => ({ headers: bearer(`${b64url({ alg: "dir", enc: "A256GCM" })}..aXY.Y2lwaGVy.dGFn`) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  {
    name: "a token over 8 KiB",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, pad: "x".repeat(8200) })) }),
    expect: refused(401, "JWT_MALFORMED"),
  },

  // --- compact error format: exact bodies ---
  { name: "compact: no credentials", product: { errorFormat: "compact" }, request: () => ({}), expect: compact(401, "No API key provided") },
  {
    name: "compact: a malformed key",
    product: { errorFormat: "compact" },
    request: (w) => ({ headers: apiKey(`${w.key}0`) }),
    expect: compact(401, "Invalid or inactive API key"),
  },
  {
    name: "compact: a key never issued",
    product: { errorFormat: "compact" },
    request: () => ({ headers: apiKey(`ilal_live_${HEX48}`) }),
    expect: compact(401, "Invalid or inactive API key"),
  },
  {
    name: "compact: a wrong tail",
    product: { errorFormat: "compact" },
    request: (w) => ({ headers: apiKey(swapAt(w.key, -1, w.key.endsWith("0") ? "1" : "0")) }),
    expect: compact(401, "Invalid or inactive API key"),
  },
  {
    name: "compact: two keys in one header",
    product: { errorFormat: "compact" },
    request: (w) => ({ headers: apiKey(`${w.key},${w.key}`) }),
    expect: compact(401, "Invalid or inactive API key"),
  },
  {
    name: "compact: a key without the product",
    product: { errorFormat: "compact" },
    key: { products: [] },
    request: (w) => ({ headers: apiKey(w.key) }),
    expect: compact(403, "Your API key does not have access to this product"),
  },

  // --- malformed management bodies (as admin) ---
  { name: "POST /api/v1/keys: name as a number", request: () => adminPost("/api/v1/keys", { name: 42 }), expect: refused(400, "VALIDATION_FAILED", ["name"]) },
  {
    name: "POST /api/v1/keys: an unknown field isAdmin",
    request: () => adminPost("/api/v1/keys", { name: "k", isAdmin: true }),
    expect: refused(400, "VALIDATION_FAILED", ["isAdmin"]),
  },
  {
    name: "POST /api/v1/keys: a __proto__ member",
    request: () => adminPost("/api/v1/keys", '{"name":"k","__proto__":{"status":"active","isAdmin":true}}'),
    expect: refused(400, "VALIDATION_FAILED", ["__proto__"]),
  },
  {
    name: "POST /api/v1/keys: a CIDR with two lengths",
    request: () => adminPost("/api/v1/keys", { name: "k", ipAllowlist: ["10.0.0.0/8/16"] }),
    expect: refused(400, "VALIDATION_FAILED", ["ipAllowlist.0"]),
  },
  {
    name: "POST /api/v1/keys: an IPv6 /129",
    request: () => adminPost("/api/v1/keys", { name: "k", ipAllowlist: ["2001:db8::/129"] }),
    expect: refused(400, "VALIDATION_FAILED", ["ipAllowlist.0"]),
  },
  {
    name: "POST /api/v1/keys: an octet with a leading zero",
    request: () => adminPost("/api/v1/keys", { name: "k", ipAllowlist: ["10.0.0.010"] }),
    expect: refused(400, "VALIDATION_FAILED", ["ipAllowlist.0"]),
  },
  {
    name: "POST /api/v1/keys: ipAllowlist as a string",
    request: () => adminPost("/api/v1/keys", { name: "k", ipAllowlist: "10.0.0.1" }),
    expect: refused(400, "VALIDATION_FAILED", ["ipAllowlist"]),
  },
  {
    name: "POST /api/v1/keys: month 13",
    request: () => adminPost("/api/v1/keys", { name: "k", expiresAt: "2031-13-01T00:00:00Z" }),
    expect: refused(400, "VALIDATION_FAILED", ["expiresAt"]),
  },
  {
    name: "POST /api/v1/keys: a date without a time",
    request: () => adminPost("/api/v1/keys", { name: "k", expiresAt: "2031-01-01" }),
    expect: refused(400, "VALIDATION_FAILED", ["expiresAt"]),
  },
  {
    name: "POST /api/v1/keys: a negative per-minute limit",
    request: () => adminPost("/api/v1/keys", { name: "k", rateLimitPerMinute: -1 }),
    expect: refused(400, "VALIDATION_FAILED", ["rateLimitPerMinute"]),
  },
  {
    name: "POST /api/v1/keys: a per-day limit over the maximum",
    request: () => adminPost("/api/v1/keys", { name: "k", rateLimitPerDay: 1e12 }),
    expect: refused(400, "VALIDATION_FAILED", ["rateLimitPerDay"]),
  },
  {
    name: "POST /api/v1/keys: an infinite limit (1e999)",
    request: () => adminPost("/api/v1/keys", '{"name":"k","rateLimitPerMinute":1e999}'),
    expect: refused(400, "VALIDATION_FAILED", ["rateLimitPerMinute"]),
  },
  {
    name: "POST /api/v1/keys: a product slug with ../",
    request: () => adminPost("/api/v1/keys", { name: "k", products: ["../admin"] }),
    expect: refused(400, "VALIDATION_FAILED", ["products.0"]),
  },
  {
    name: "POST /api/v1/keys: an env for an ila key",
    request: () => adminPost("/api/v1/keys", { name: "k", format: "ila", env: "test" }),
    expect: refused(400, "VALIDATION_FAILED", ["env"]),
  },
  {
    name: "POST /api/v1/keys: an owner that does not exist",
    request: () => adminPost("/api/v1/keys", { name: "k", ownerId: "no-such-user" }),
    expect: refused(400, "VALIDATION_FAILED", ["ownerId"]),
  },
  { name: "POST /api/v1/keys: a JSON array body", request: () => adminPost("/api/v1/keys", "[]"), expect: refused(400, "VALIDATION_FAILED", [""]) },
  { name: "POST /api/v1/keys: a JSON null body", request: () => adminPost("/api/v1/keys", "null"), expect: refused(400, "VALIDATION_FAILED", [""]) },
  { name: "POST /api/v1/keys: a truncated JSON body", request: () => adminPost("/api/v1/keys", '{"name":'), expect: refused(400, "VALIDATION_FAILED") },
  {
    name: "POST /api/v1/admin/products: an upper-case slug",
    request: () => adminPost("/api/v1/admin/products", validProduct({ slug: "Bad_Slug" })),
    expect: refused(400, "VALIDATION_FAILED", ["slug"]),
  },
  {
    name: "POST /api/v1/admin/products: keygate's own path as prefix",
    request: () => adminPost("/api/v1/admin/products", validProduct({ pathPrefix: "/api/v1/keys" })),
    expect: refused(400, "VALIDATION_FAILED", ["pathPrefix"]),
  },
  {
    name: "POST /api/v1/admin/products: a dot segment in the prefix",
    request: () => adminPost("/api/v1/admin/products", validProduct({ pathPrefix: "/x/../api/v1/keys" })),
    expect: refused(400, "VALIDATION_FAILED", ["pathPrefix"]),
  },
  {
    name: "POST /api/v1/admin/products: a javascript: origin",
    request: () => adminPost("/api/v1/admin/products", validProduct({ originUrl: "javascript:alert(1)" })),
    expect: refused(400, "VALIDATION_FAILED", ["originUrl"]),
  },
  {
    name: "POST /api/v1/admin/products: a file: origin",
    request: () => adminPost("/api/v1/admin/products", validProduct({ originUrl: "file:///etc/passwd" })),
    expect: refused(400, "VALIDATION_FAILED", ["originUrl"]),
  },
  {
    name: "POST /api/v1/admin/products: a negative limit",
    request: () => adminPost("/api/v1/admin/products", validProduct({ rateLimitPerMinute: -5 })),
    expect: refused(400, "VALIDATION_FAILED", ["rateLimitPerMinute"]),
  },
  {
    name: "POST /api/v1/admin/products: no auth methods",
    request: () => adminPost("/api/v1/admin/products", validProduct({ authMethods: [] })),
    expect: refused(400, "VALIDATION_FAILED", ["authMethods"]),
  },
  {
    name: "POST /api/v1/admin/products: an unknown auth method",
    request: () => adminPost("/api/v1/admin/products", validProduct({ authMethods: ["password"] })),
    expect: refused(400, "VALIDATION_FAILED", ["authMethods.0"]),
  },
  {
    name: "POST /api/v1/admin/products: errorFormat html",
    request: () => adminPost("/api/v1/admin/products", validProduct({ errorFormat: "html" })),
    expect: refused(400, "VALIDATION_FAILED", ["errorFormat"]),
  },
  {
    name: "POST /api/v1/admin/products: stripPrefix as a string",
    request: () => adminPost("/api/v1/admin/products", validProduct({ stripPrefix: "yes" })),
    expect: refused(400, "VALIDATION_FAILED", ["stripPrefix"]),
  },
  {
    name: "POST /api/v1/admin/products: a scope rule with a space in the scope",
    request: () => adminPost("/api/v1/admin/products", validProduct({ scopeRules: [{ scope: "a b" }] })),
    expect: refused(400, "VALIDATION_FAILED", ["scopeRules.0.scope"]),
  },
  {
    name: "POST /api/v1/admin/products: a scope rule method with a path in it",
    request: () => adminPost("/api/v1/admin/products", validProduct({ scopeRules: [{ method: "GET /", scope: "x" }] })),
    expect: refused(400, "VALIDATION_FAILED", ["scopeRules.0.method"]),
  },
  {
    name: "POST /api/v1/admin/products: an id chosen by the client",
    request: () => adminPost("/api/v1/admin/products", validProduct({ id: "chosen" })),
    expect: refused(400, "VALIDATION_FAILED", ["id"]),
  },
  {
    name: "POST /api/v1/admin/products: a slug that exists",
    request: (w) => adminPost("/api/v1/admin/products", validProduct({ slug: w.product.slug })),
    expect: refused(409, "CONFLICT"),
  },
  {
    name: "POST /api/v1/admin/products: a path prefix that exists",
    request: (w) => adminPost("/api/v1/admin/products", validProduct({ pathPrefix: w.product.pathPrefix })),
    expect: refused(409, "CONFLICT"),
  },
  {
    name: "POST /api/v1/admin/users: an invalid email",
    request: () => adminPost("/api/v1/admin/users", { email: "not-an-email", password: "long-enough-1" }),
    expect: refused(400, "VALIDATION_FAILED", ["email"]),
  },
  {
    name: "POST /api/v1/admin/users: a header injection in the email",
    request: () => adminPost("/api/v1/admin/users", { email: "a@example.com\r\nBcc: x@example.com", password: "long-enough-1" }),
    expect: refused(400, "VALIDATION_FAILED", ["email"]),
  },
  {
    name: "POST /api/v1/admin/users: a 7-character password",
    request: () => adminPost("/api/v1/admin/users", { email: `${uniqueSlug("u")}@example.com`, password: "short77" }),
    expect: refused(400, "VALIDATION_FAILED", ["password"]),
  },
  {
    name: "POST /api/v1/admin/users: a 1025-character password",
    request: () => adminPost("/api/v1/admin/users", { email: `${uniqueSlug("u")}@example.com`, password: "p".repeat(1025) }),
    expect: refused(400, "VALIDATION_FAILED", ["password"]),
  },
  {
    name: "POST /api/v1/admin/users: role root",
    request: () => adminPost("/api/v1/admin/users", { email: `${uniqueSlug("u")}@example.com`, password: "long-enough-1", role: "root" }),
    expect: refused(400, "VALIDATION_FAILED", ["role"]),
  },
  {
    name: "POST /api/v1/admin/users: a passwordHash field",
    request: () =>
      adminPost("/api/v1/admin/users", { email: `${uniqueSlug("u")}@example.com`, password: "long-enough-1", passwordHash: "pbkdf2-sha256$1$AA$AA" }),
    expect: refused(400, "VALIDATION_FAILED", ["passwordHash"]),
  },
  {
    name: "POST /api/v1/admin/users: an email that exists, in other case",
    before: async (w) => void (await createUser({ email: `${w.product.slug}@example.com` })),
    request: (w) => adminPost("/api/v1/admin/users", { email: `${w.product.slug.toUpperCase()}@example.com`, password: "long-enough-1" }),
    expect: refused(409, "CONFLICT"),
  },
  {
    name: "PATCH /api/v1/keys/:id: status revoked (only DELETE revokes)",
    request: (w) => ({ ...adminPost(`/api/v1/keys/${w.record.id}`, { status: "revoked" }), method: "PATCH" }),
    expect: refused(400, "VALIDATION_FAILED", ["status"]),
  },
  {
    name: "PATCH /api/v1/keys/:id: an empty body",
    request: (w) => ({ ...adminPost(`/api/v1/keys/${w.record.id}`, {}), method: "PATCH" }),
    expect: refused(400, "VALIDATION_FAILED", [""]),
  },
  {
    name: "POST /api/v1/keys/:id/rotate: a negative grace period",
    request: (w) => adminPost(`/api/v1/keys/${w.record.id}/rotate`, { gracePeriodSeconds: -1 }),
    expect: refused(400, "VALIDATION_FAILED", ["gracePeriodSeconds"]),
  },

  // --- management calls by the wrong caller ---
  {
    name: "a plain user's JWT creating a product",
    request: async () => ({
      ...adminPost("/api/v1/admin/products", validProduct()),
      headers: [...Object.entries(await userToken((await createUser()).user)), ["Content-Type", "application/json"]],
    }),
    expect: refused(403, "FORBIDDEN"),
  },
  {
    name: "a plain user's JWT giving their key a rate limit",
    request: async () => ({
      ...adminPost("/api/v1/keys", { name: "k", rateLimitPerMinute: 1_000_000 }),
      headers: [...Object.entries(await userToken((await createUser()).user)), ["Content-Type", "application/json"]],
    }),
    expect: refused(403, "FORBIDDEN"),
  },
  {
    name: "an API key creating keys",
    request: (w) => ({ ...adminPost("/api/v1/keys", { name: "k" }), headers: [...apiKey(w.key), ["Content-Type", "application/json"]] }),
    expect: refused(403, "FORBIDDEN"),
  },
  {
    name: "a wrong admin token",
    request: () => ({ ...adminPost("/api/v1/admin/users", {}), headers: [...bearer(`${env.ADMIN_TOKEN}x`), ["Content-Type", "application/json"]] }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  {
    name: "the admin token in X-API-Key",
    request: () => ({ path: "/api/v1/admin/users", headers: apiKey(env.ADMIN_TOKEN) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  {
    name: "the admin token beside a junk X-API-Key (X-API-Key is exclusive)",
    request: () => ({ path: "/api/v1/admin/users", headers: [...asAdmin(), ...apiKey("junk")] }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },

  // --- login: malformed bodies and brute force ---
  {
    name: "POST /auth/login without a password",
    request: () => ({ method: "POST", path: "/auth/login", ...jsonBody({ email: "a@example.com" }) }),
    expect: refused(400, "VALIDATION_FAILED", ["password"]),
  },
  {
    name: "POST /auth/login with a numeric email",
    request: () => ({ method: "POST", path: "/auth/login", ...jsonBody({ email: 7, password: "x" }) }),
    expect: refused(400, "VALIDATION_FAILED", ["email"]),
  },
  {
    name: "POST /auth/login with a 2 KB password",
    request: () => ({ method: "POST", path: "/auth/login", ...jsonBody({ email: "a@example.com", password: "p".repeat(2048) }) }),
    expect: refused(400, "VALIDATION_FAILED", ["password"]),
  },
  {
    name: "POST /auth/login with a wrong password",
    request: async () => ({ method: "POST", path: "/auth/login", ...jsonBody({ email: (await createUser()).user.email, password: "wrong-password" }) }),
    expect: refused(401, "INVALID_CREDENTIALS"),
  },
  {
    name: "brute force: the right password after 30 wrong ones from this address",
    before: async (w) => {
      midMinute();
      const { user, password } = await createUser({ email: `${w.product.slug}@example.com`, password: `right-${w.product.slug}` });
      expect(password).toBe(`right-${w.product.slug}`);
      await failLogin(`other-${user.email}`, () => w.ip);
    },
    request: (w) => ({ method: "POST", path: "/auth/login", ...jsonBody({ email: `${w.product.slug}@example.com`, password: `right-${w.product.slug}` }) }),
    expect: refused(429, "AUTH_THROTTLED"),
  },
  {
    name: "brute force: the right password after 30 wrong ones for this account from 30 addresses",
    before: async (w) => {
      midMinute();
      await createUser({ email: `${w.product.slug}@example.com`, password: `right-${w.product.slug}` });
      await failLogin(`${w.product.slug}@example.com`, (i) => `192.0.2.${i + 1}`);
    },
    request: (w) => ({ method: "POST", path: "/auth/login", ...jsonBody({ email: `${w.product.slug}@example.com`, password: `right-${w.product.slug}` }) }),
    expect: refused(429, "AUTH_THROTTLED"),
  },
  {
    name: "brute force: a valid key after 30 bad ones from this address",
    before: async (w) => {
      midMinute();
      await failAuthFrom(w);
    },
    request: (w) => ({ headers: apiKey(w.key) }),
    expect: refused(429, "AUTH_THROTTLED"),
  },
  {
    name: "brute force: a valid JWT after 30 bad credentials from this address",
    before: async (w) => {
      midMinute();
      await failAuthFrom(w);
    },
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, products: ["*"] })) }),
    expect: refused(429, "AUTH_THROTTLED"),
  },
  {
    name: "brute force: the admin token after 30 bad credentials from this address",
    before: async (w) => {
      midMinute();
      await failAuthFrom(w);
    },
    request: () => ({ path: "/api/v1/admin/users", headers: asAdmin() }),
    expect: refused(429, "AUTH_THROTTLED"),
  },
];

// ---------------------------------------------------------------------------
// security review 2026-12
//
// /work/shared/reviews/security-2026-12.md, "What held (coverage)": every area
// of that table re-run as rows, every row held. Per area: the review's count
// of distinct inputs, the rows above that already send such an input
// (counted, not repeated), the rows below, and the total.
//
//  §  area                                                  review  above  below  total
//  1  scope rules: path encodings, dots, //, case, ;, \ …       54     10     69     79
//  2  scope rules: methods, overrides, DELETE path variants     16      0     24     24
//  3  product routing across prefixes                            6      9      0      9
//  4  credential header parsing                                 23     63      9     72
//  5  client X-Auth-*, X-Request-Id, signature, XFF, Connection 10     11      0     11
//  6  identity smuggling under other names (F2)                  8      1     13     14
//  7  IP allowlist parsing                                      25      5     35     40
//  8  JWT attacks                                               53     34     24     58
//  9  JWT, third-party HS256 (F7, F8)                            8      2     16     18
// 10  management API: mass assignment, escalation, IDOR …       33     13     22     35
// 11  management API: concurrency and policy                     4      0      2      2  cut, see §11
// 12  revocation on the next request, deleted user               8      2      9     11
// 13  rate limits                                                5      0      4      4  cut, see §13
// 14  HMAC: what the origin signature binds (F3)                10      0     12     12
// 15  info leaks                                                16      4     14     18
// 16  body and size limits                                      12     11      3     14
// 17  DoS: glob matching (F6), login storage (F13)               8      0     13     13
// 18  dashboard                                                  6      0      4      4  cut, see §18
// 19  CLI / start script                                         5      0      0      0  cut, see §19
//
// "above" assigns each row of the catalogue above to at most one area (row
// numbers as the runner prints them): §1 #89–93 (encodings after the slug)
// and #98–102 (scoped paths); §3 #86–88, #94–97, #103–104; §4 #0–34, #37–48,
// #75–85, #140–144; §5 #61–66, #70–74; §6 #68; §7 #67, #149–152; §8 #49,
// #105–108, #111–139; §9 #109–110; §10 #147–148, #160, #176, #183–184, #186,
// #189–194; §12 #35–36; §15 #50, #161–163; §16 #51–60, #197. The other
// body-validation, login and brute-force rows fall in no area of the table.
// The runner also verifies keygate's signature on every ACCEPTED row (§14).
//
// Not expressible in-process, so cut where the area is: a header value with
// CR, LF or NUL (the Request constructor throws), a method outside workerd's
// fixed list (a made-up FROB throws; TRACE and PURGE are sent below), a GET
// or HEAD with a body (the Request constructor throws), races between
// requests, and anything outside the Worker (CLI, npm start, the browser).

const REVIEW_SWAP = { stripPrefix: true, scopeRules: [{ method: "POST", path: "/swap", scope: "defi:swap" }] } satisfies Partial<Product>;
const REVIEW_ADMIN = {
  stripPrefix: true,
  scopeRules: [
    { method: "GET", path: "/admin", scope: "adm:admin" },
    { method: "GET", path: "/admin/**", scope: "adm:admin" },
    { method: "DELETE", path: "/items/*", scope: "adm:delete" },
    { path: "/private/**", scope: "adm:private" },
  ],
} satisfies Partial<Product>;
const REVIEW_GLOBS = {
  stripPrefix: true,
  scopeRules: [
    { path: "/**/projects/**/members/**/remove", scope: "globp:remove" },
    { path: "/stars/*a*a*a*a*a*b", scope: "globp:stars" },
  ],
} satisfies Partial<Product>;
const DEFI_READ = { scopes: ["defi:read"] } satisfies KeyOptions;
const ADM_READ = { scopes: ["adm:read"] } satisfies KeyOptions;

const scopeMissing = refused(403, "API_KEY_SCOPE_MISSING");
const pathInvalid = refused(400, "PATH_INVALID");
/** Where a stripPrefix product's origin (ORIGIN/upstream) is sent a relative path. */
const atOrigin = (seen: ReceivedRequest) => new URL(seen.url).pathname.replace(/^\/upstream/, "");
/** ACCEPTED: a path no rule covers, forwarded in exactly this canonical spelling. */
const forwardedAs = (relative: string, method?: string) =>
  accepted((seen) => {
    expect(atOrigin(seen)).toBe(relative);
    if (method) expect(seen.method).toBe(method);
  });
/** Control characters shown escaped in row names. */
const shown = (text: string) => text.replace(/[\x00-\x1f]/g, (c) => JSON.stringify(c).slice(1, -1));

function pathRow(product: Partial<Product>, key: KeyOptions, method: string, path: string, expected: Expectation, note?: string): Row {
  return {
    name: `${method} ${shown(path)} (${note ?? "rule path, key without its scope"})`,
    product,
    key,
    request: (w) => ({ method, path: `${w.product.pathPrefix}${path}`, headers: apiKey(w.key), body: method === "POST" ? '{"amount":"1"}' : undefined }),
    expect: expected,
  };
}
const swap = (path: string, expected: Expectation, note?: string) => pathRow(REVIEW_SWAP, DEFI_READ, "POST", path, expected, note);
const admin = (path: string, expected: Expectation, note?: string, method = "GET") => pathRow(REVIEW_ADMIN, ADM_READ, method, path, expected, note);

/** Client values no header at the origin may carry (§6). */
const SPOOF = "spoofed-by-client";
const SPOOF_IP = "6.6.6.6";
/** The origin saw none of the client's values, and every identity-like header in keygate's own spelling only. */
function noClientIdentity(seen: ReceivedRequest, dropped: string[] = []): void {
  for (const [name, value] of seen.headers) {
    expect(value.includes(SPOOF) || value.includes(SPOOF_IP), `${name}: ${value}`).toBe(false);
    const canonical = name.replace(/[_.]/g, "-");
    if (/^(x-auth-|x-forwarded-|x-request-id$)/.test(canonical)) expect(name, "only keygate's own spelling reaches the origin").toBe(canonical);
  }
  for (const name of dropped) expect(seen.headers.get(name), name).toBeNull();
}
const smuggled = (name: string, headers: HeaderList, by: "api_key" | "jwt" = "api_key"): Row => ({
  name: `ACCEPTED: ${name} never reach the origin`,
  request: async (w) => ({ headers: [...(by === "api_key" ? apiKey(w.key) : bearer(await signToken({ sub: w.subject, products: ["*"] }))), ...headers] }),
  expect: accepted(
    (seen) =>
      noClientIdentity(
        seen,
        headers.map(([header]) => header),
      ),
    by,
  ),
});

/** A key whose allowlist is `allowlist`, called from `ip` (its CF-Connecting-IP). */
const fromIp = (ip: string, allowlist: string[], expected: Expectation, note: string): Row => ({
  name: `allowlist ${JSON.stringify(allowlist)}, client ${ip} (${note})`,
  ip,
  key: { ipAllowlist: allowlist },
  request: (w) => ({ headers: apiKey(w.key) }),
  expect: expected,
});
const ipNotAllowed = refused(403, "IP_NOT_ALLOWED");
const allowlistBody = (entry: unknown, note: string): Row => ({
  name: `POST /api/v1/keys: ipAllowlist entry ${JSON.stringify(entry)} (${note})`,
  request: () => adminPost("/api/v1/keys", { name: "k", products: ["*"], ipAllowlist: [entry] }),
  expect: refused(400, "VALIDATION_FAILED", ["ipAllowlist.0"]),
});

/** An HS256 token (JWT_SECRET): a third party's. */
const hs256 = (claims: Record<string, unknown>) => signToken({ products: ["*"], ...claims }, { alg: "HS256" });
const claimInvalid = refused(401, "JWT_CLAIM_INVALID");
/** The limiter object a JWT_SECRET token's subject is counted in (limits/names.ts). */
const hsLimiter = (sub: string) => `sub:hs256:${sub}`;

/** A raw 64-byte ES256 signature as DER (what OpenSSL emits; JWS wants the raw form). */
function derSignature(raw: Uint8Array): Uint8Array {
  const integer = (bytes: Uint8Array) => {
    let start = 0;
    while (start < bytes.length - 1 && bytes[start] === 0) start++;
    const value = [...bytes.slice(start)];
    if (value[0]! & 0x80) value.unshift(0);
    return [0x02, value.length, ...value];
  };
  const body = [...integer(raw.slice(0, 32)), ...integer(raw.slice(32))];
  return Uint8Array.from([0x30, body.length, ...body]);
}
const base64urlDecode = (text: string) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

/** A keygate user with the given grants, a key of their own and their JWT's headers. */
async function reviewUser(grants: { products?: string[]; scopes?: string[]; role?: "user" | "admin" } = {}) {
  const { user } = await createUser({ products: ["*"], scopes: ["read"], ...grants });
  const own = await createKey({ ownerId: user.id, products: user.products, scopes: user.scopes });
  return { user, own, auth: Object.entries(await userToken(user)) as HeaderList };
}
function withAuth(auth: HeaderList, method: string, path: string, body?: unknown): Probe {
  if (body === undefined) return { method, path, headers: auth };
  return { method, path, headers: [...auth, ["Content-Type", "application/json"]], body: typeof body === "string" ? body : JSON.stringify(body) };
}
/** An admin call a row makes while setting up (before the snapshot); it must succeed. */
async function adminCall(method: string, path: string, body?: unknown): Promise<Record<string, any>> {
  const response = await exports.default.fetch(new Request(`${GATEWAY}${path}`, withAuthInit(asAdmin(), method, body)));
  const text = await response.text();
  expect(response.status, text.slice(0, 300)).toBeLessThan(300);
  return JSON.parse(text) as Record<string, any>;
}
function withAuthInit(auth: HeaderList, method: string, body?: unknown): RequestInit {
  const probe = withAuth(auth, method, "", body);
  return { method, headers: probe.headers, body: probe.body };
}
/** One call through the gateway while setting up; answers its status. */
async function gatewayCall(w: World, headers: HeaderList, path = `${w.product.pathPrefix}/resource`): Promise<number> {
  const response = await exports.default.fetch(new Request(`${GATEWAY}${path}`, { headers: [...headers, ["CF-Connecting-IP", w.ip]] }));
  await response.arrayBuffer();
  return response.status;
}

/** What the origin received, with one part changed, verified as an origin would (a fresh replay store unless given). */
async function reverify(
  seen: ReceivedRequest,
  change: { url?: (url: URL) => void; method?: string; body?: string; headers?: (headers: Headers) => void } = {},
  replayStore = memoryReplayStore(),
  now?: number,
) {
  const url = new URL(seen.url);
  change.url?.(url);
  const headers = new Headers(seen.headers);
  change.headers?.(headers);
  const method = change.method ?? seen.method;
  const body = method === "GET" || method === "HEAD" ? null : (change.body ?? seen.body);
  return verifyOriginSignature(new Request(url, { method, headers, body }), env.ORIGIN_SIGNING_SECRET, { replayStore, ...(now ? { now } : {}) });
}
/** ACCEPTED POST with a body; the origin's copy, changed as `change` says, must no longer verify. */
const signatureRow = (what: string, change: Parameters<typeof reverify>[1], reason: RegExp, now?: () => number): Row => ({
  name: `ACCEPTED: the origin signature binds ${what}`,
  request: (w) => ({
    method: "POST",
    path: `${w.product.pathPrefix}/swap?pair=ETH-USDC`,
    headers: [...apiKey(w.key), ["Content-Type", "application/json"]],
    body: '{"amount":"1"}',
  }),
  expect: accepted(async (seen) => {
    expect(await reverify(seen), "unchanged, it verifies").toMatchObject({ ok: true });
    expect(await reverify(seen, change, memoryReplayStore(), now?.())).toEqual({ ok: false, reason: expect.stringMatching(reason) });
  }),
});

const notFound = refused(404, "NOT_FOUND");
const forbidden = refused(403, "FORBIDDEN");
const SECRETS = () => [env.ADMIN_TOKEN, env.ORIGIN_SIGNING_SECRET, env.JWT_SECRET, signingJwk.d!];
/** Every character of an id percent-encoded. */
const encodeAll = (text: string) => [...text].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join("");

const SECURITY_REVIEW_2026_12: Row[] = [
  // --- §1 scope rules: path spellings (F1). Product rule POST /swap → defi:swap, key with defi:read only. ---
  swap("/swap", scopeMissing, "the rule's own spelling"),
  swap("/swap/", scopeMissing, "one trailing slash is ignored"),
  swap("/SWAP", scopeMissing, "rules ignore case"),
  swap("/Swap", scopeMissing, "rules ignore case"),
  swap("/SWAP/", scopeMissing, "case and a trailing slash"),
  swap("/swap/.", scopeMissing, "the URL parser leaves /swap/"),
  swap("/swap//", scopeMissing, "// collapses"),
  swap("//swap", scopeMissing, "// collapses"),
  swap("/./swap", scopeMissing, "resolved by the URL parser"),
  swap("/x/../swap", scopeMissing, "resolved by the URL parser"),
  swap("/%2e/swap", scopeMissing, "%2e resolves"),
  swap("/x/%2e%2e/swap", scopeMissing, "%2e%2e resolves"),
  swap("/swap/%2e", scopeMissing, "a final %2e leaves /swap/"),
  swap("/%73wap", scopeMissing, "unreserved escapes are decoded"),
  swap("/SW%41P", scopeMissing, "decoded, then case-folded"),
  swap("/swap\\", scopeMissing, "the URL parser turns \\ into /"),
  swap("/sw\tap", scopeMissing, "the URL parser drops a literal tab"),
  swap("/sw\nap", scopeMissing, "the URL parser drops a literal newline"),
  swap("/swap?x=1", scopeMissing, "a query is not part of the path"),
  swap("/swap#x", scopeMissing, "a fragment is never sent"),
  swap("/swap/x/..", scopeMissing, "the URL parser leaves /swap/"),
  swap("/swap%2F", pathInvalid, "an encoded slash"),
  swap("/swap%2f", pathInvalid, "an encoded slash, lower-case hex"),
  swap("/swap;x", pathInvalid, "a matrix parameter"),
  swap("/swap%3B", pathInvalid, "an encoded semicolon"),
  swap("/swap%00", pathInvalid, "an encoded NUL"),
  swap("/swap%09", pathInvalid, "an encoded tab"),
  swap("/swap%0d%0aX-Injected:%201", pathInvalid, "an encoded CRLF"),
  swap("/swap%7F", pathInvalid, "an encoded DEL"),
  swap("/swap%252F", pathInvalid, "a double-encoded slash"),
  swap("/swap/..;/swap", pathInvalid, "Tomcat's ..;"),
  swap("/swap%3F", pathInvalid, "an encoded question mark"),
  swap("/swap%23", pathInvalid, "an encoded number sign"),
  swap("/swap%5C", pathInvalid, "an encoded backslash"),
  swap("/swap%", pathInvalid, "a stray %"),
  swap("/swap%zz", pathInvalid, "a % without hex digits"),
  swap("/swap%c0%ae", pathInvalid, "overlong UTF-8 for ."),
  swap("/swap%ff", pathInvalid, "a byte that is never UTF-8"),
  swap("/swap%ed%a0%80", pathInvalid, "an encoded UTF-16 surrogate"),
  swap("/swap%e2%82", pathInvalid, "truncated UTF-8"),
  swap("/%2e%2e/%2e%2e/%2e%2e/swap", refused(404, "ROUTE_NOT_FOUND"), "the URL parser resolves %2e%2e, stopping at the root: /swap is no product"),
  swap("/swap%20", forwardedAs("/swap%20"), "another path, forwarded as written"),
  swap("/swap.", forwardedAs("/swap."), "another path, forwarded as written"),
  swap("/swap.json", forwardedAs("/swap.json"), "another path, forwarded as written"),
  swap("/swap%2e", forwardedAs("/swap."), "another path, the escape decoded"),
  swap("/swap..", forwardedAs("/swap.."), "not a dot segment"),
  swap("/swap%25", forwardedAs("/swap%25"), "a literal percent sign, not double encoding"),
  swap("/swap%c3%a9", forwardedAs("/swap%C3%A9"), "valid UTF-8, hex upper-cased"),
  swap("/swäp", forwardedAs("/sw%C3%A4p"), "non-ASCII, encoded by the URL parser"),
  swap("/swap x", forwardedAs("/swap%20x"), "a space, encoded by the URL parser"),
  {
    name: "ACCEPTED: POST /SWAP on a product with caseSensitiveRules is another path, forwarded as written",
    product: { ...REVIEW_SWAP, caseSensitiveRules: true },
    key: DEFI_READ,
    request: (w) => ({ method: "POST", path: `${w.product.pathPrefix}/SWAP`, headers: apiKey(w.key), body: "{}" }),
    expect: forwardedAs("/SWAP"),
  },
  {
    name: "ACCEPTED: POST /swap/ on a product with strictTrailingSlash is another path, forwarded as written",
    product: { ...REVIEW_SWAP, strictTrailingSlash: true },
    key: DEFI_READ,
    request: (w) => ({ method: "POST", path: `${w.product.pathPrefix}/swap/`, headers: apiKey(w.key), body: "{}" }),
    expect: forwardedAs("/swap/"),
  },
  {
    name: "POST /SWAP/ with a JWT holding only defi:read",
    product: REVIEW_SWAP,
    request: async (w) => ({
      method: "POST",
      path: `${w.product.pathPrefix}/SWAP/`,
      headers: bearer(await signToken({ sub: w.subject, products: ["*"], scope: "defi:read" })),
      body: "{}",
    }),
    expect: refused(403, "JWT_SCOPE_MISSING"),
  },
  // Rules GET /admin and GET /admin/** → adm:admin, key with adm:read.
  admin("/admin", scopeMissing, "the rule's own spelling"),
  admin("/Admin", scopeMissing, "rules ignore case"),
  admin("/ADMIN/x", scopeMissing, "rules ignore case"),
  admin("/admin/", scopeMissing, "one trailing slash is ignored"),
  admin("/%41dmin", scopeMissing, "decoded, then case-folded"),
  admin("/ad%6Din/x", scopeMissing, "unreserved escapes are decoded"),
  admin("/admin\\x", scopeMissing, "the URL parser turns \\ into /"),
  admin("/ADMIN/%2e", scopeMissing, "a final %2e leaves /ADMIN/"),
  admin("/admin;jsessionid=1", pathInvalid, "a session id as matrix parameter"),
  admin("/.;/admin", pathInvalid, "Tomcat's /.;/"),
  admin("/admin%5Cx", pathInvalid, "an encoded backslash"),
  admin("/%2561dmin", pathInvalid, "a double-encoded a"),
  admin("/%c0%ae%c0%ae/admin", pathInvalid, "overlong UTF-8 dot segment"),
  admin("/admin%00", pathInvalid, "an encoded NUL"),
  admin("/admin%23x", pathInvalid, "an encoded number sign"),
  admin("/admin/.%2e/x", forwardedAs("/x"), ".%2e resolves out of /admin: the origin is sent /x"),

  // --- §2 scope rules: methods. Rules as above, plus DELETE /items/* → adm:delete and /private/** (any method) → adm:private. ---
  // HEAD answers carry no body: the runner checks their status, JSON type and request id (code unreadable).
  admin("/admin", scopeMissing, "a GET rule covers HEAD", "HEAD"),
  admin("/Admin/x", scopeMissing, "a GET rule covers HEAD, case ignored", "HEAD"),
  admin("/public", forwardedAs("/public", "HEAD"), "no rule: forwarded as HEAD", "HEAD"),
  admin("/private/x", scopeMissing, "a method-less rule covers OPTIONS", "OPTIONS"),
  admin("/private/x", scopeMissing, "a method-less rule covers PROPFIND", "PROPFIND"),
  admin("/private/x", scopeMissing, "a method-less rule covers TRACE", "TRACE"),
  admin("/private/x", scopeMissing, "a method-less rule covers PURGE", "PURGE"),
  admin("/private/x", scopeMissing, "a lower-case method", "patch"),
  admin("/items/1", scopeMissing, "lower-case delete is normalised to DELETE", "delete"),
  admin("/admin", forwardedAs("/admin", "PROPFIND"), "a GET rule does not cover PROPFIND: forwarded as PROPFIND", "PROPFIND"),
  admin("/admin", forwardedAs("/admin", "OPTIONS"), "a GET rule does not cover OPTIONS: forwarded as OPTIONS", "OPTIONS"),
  admin("/items/1", scopeMissing, "the DELETE rule's own spelling", "DELETE"),
  admin("/items/1/", scopeMissing, "one trailing slash is ignored", "DELETE"),
  admin("/ITEMS/1", scopeMissing, "rules ignore case", "DELETE"),
  admin("/items//1", scopeMissing, "// collapses", "DELETE"),
  admin("/items/%31", scopeMissing, "unreserved escapes are decoded", "DELETE"),
  admin("/items/1;x", pathInvalid, "a matrix parameter", "DELETE"),
  admin("/items/1%2F2", pathInvalid, "an encoded slash", "DELETE"),
  admin("/items/1/2", forwardedAs("/items/1/2", "DELETE"), "* is one segment: another resource, forwarded", "DELETE"),
  ...["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X_HTTP_Method_Override"].map(
    (header): Row => ({
      name: `ACCEPTED: POST /items/1 with ${header}: DELETE reaches the origin as POST, without the override`,
      product: REVIEW_ADMIN,
      key: ADM_READ,
      request: (w) => ({ method: "POST", path: `${w.product.pathPrefix}/items/1`, headers: [...apiKey(w.key), [header, "DELETE"]], body: "{}" }),
      expect: accepted((seen) => {
        expect(seen.method).toBe("POST");
        for (const name of [header, "x-http-method-override", "x-http-method", "x-method-override"]) expect(seen.headers.get(name), name).toBeNull();
      }),
    }),
  ),
  {
    // README "What the origin can trust": a ?_method= parameter is passed on as data; an origin that honours it must not.
    name: "ACCEPTED: POST /items/1?_method=DELETE reaches the origin as POST, the query as data",
    product: REVIEW_ADMIN,
    key: ADM_READ,
    request: (w) => ({ method: "POST", path: `${w.product.pathPrefix}/items/1?_method=DELETE`, headers: apiKey(w.key), body: "{}" }),
    expect: accepted((seen) => {
      expect(seen.method).toBe("POST");
      expect(new URL(seen.url).search).toBe("?_method=DELETE");
    }),
  },

  // --- §3 product routing across prefixes: the nine rows above cover it. ---

  // --- §4 credential header parsing: what the rows above do not yet send ---
  { name: "a no-break space (U+00A0) before the key", request: (w) => ({ headers: apiKey(`\u00a0${w.key}`) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  {
    name: "a zero-width space (UTF-8) inside the key",
    request: (w) => ({ headers: apiKey(swapAt(w.key, 15, `${w.key[15]}${utf8AsBytes("\u200b")}`)) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  {
    name: "a byte-order mark (UTF-8) before the key",
    request: (w) => ({ headers: apiKey(`${utf8AsBytes("\ufeff")}${w.key}`) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  {
    name: "an ideographic space (U+3000, UTF-8) after the key",
    request: (w) => ({ headers: apiKey(`${w.key}${utf8AsBytes("\u3000")}`) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  {
    name: "a no-break space between Bearer and the key",
    request: (w) => ({ headers: [["Authorization", `Bearer\u00a0${w.key}`]] }),
    expect: refused(401, "AUTH_HEADER_MALFORMED"),
  },
  {
    name: "a zero-width joiner (UTF-8) inside a Bearer key",
    request: (w) => ({ headers: bearer(swapAt(w.key, 15, `${w.key[15]}${utf8AsBytes("\u200d")}`)) }),
    expect: refused(401, "API_KEY_FORMAT_INVALID"),
  },
  { name: "the Bearer scheme inside X-API-Key", request: (w) => ({ headers: apiKey(`Bearer ${w.key}`) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "the key only in X_API_Key (another header, not read)", request: (w) => ({ headers: [["X_API_Key", w.key]] }), expect: refused(401, "AUTH_MISSING") },
  {
    name: "ACCEPTED: a Bearer key beside an X_API_Key naming another key (the Bearer key is used; X_API_Key is dropped)",
    request: async (w) => ({ headers: [...bearer(w.key), ["X_API_Key", (await createKey()).key]] }),
    expect: accepted((seen) => expect(seen.headers.get("x_api_key")).toBeNull()),
  },

  // --- §5 client X-Auth-*, X-Request-Id, signature, XFF, Connection: the twelve rows above cover it. ---

  // --- §6 identity smuggling under other names (F2): names are canonicalised (_ and . as -) before dropping ---
  smuggled("X_Auth_Subject, X_Auth_Scopes and X_Auth_Product on an API-key call", [
    ["X_Auth_Subject", SPOOF],
    ["X_Auth_Scopes", `* ${SPOOF}`],
    ["X_Auth_Product", SPOOF],
  ]),
  smuggled(
    "X_Auth_Key_Id and X_Auth_Env on a JWT call",
    [
      ["X_Auth_Key_Id", SPOOF],
      ["X_Auth_Env", SPOOF],
    ],
    "jwt",
  ),
  smuggled("x.auth.subject and x.auth.scopes", [
    ["x.auth.subject", SPOOF],
    ["x.auth.scopes", SPOOF],
  ]),
  smuggled(
    "x-auth_method and X-Auth.Issuer",
    [
      ["x-auth_method", SPOOF],
      ["X-Auth.Issuer", SPOOF],
    ],
    "jwt",
  ),
  smuggled("Forwarded", [["Forwarded", `for=${SPOOF_IP};host=${SPOOF}.example;proto=http`]]),
  smuggled("X-Real-IP and True-Client-IP", [
    ["X-Real-IP", SPOOF_IP],
    ["True-Client-IP", SPOOF_IP],
  ]),
  smuggled("X-Client-IP and X-Cluster-Client-IP", [
    ["X-Client-IP", SPOOF_IP],
    ["X-Cluster-Client-IP", SPOOF_IP],
  ]),
  smuggled("CF-Connecting-IPv6 and X_Real_IP", [
    ["CF-Connecting-IPv6", "2001:db8:6666::6"],
    ["X_Real_IP", SPOOF_IP],
  ]),
  smuggled("X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Prefix and X_Forwarded_For", [
    ["X-Forwarded-Host", `${SPOOF}.example`],
    ["X-Forwarded-Proto", SPOOF],
    ["X-Forwarded-Prefix", `/${SPOOF}`],
    ["X_Forwarded_For", SPOOF_IP],
  ]),
  smuggled("X-Original-URL and X-Rewrite-URL", [
    ["X-Original-URL", `/admin?${SPOOF}`],
    ["X-Rewrite-URL", `/admin?${SPOOF}`],
  ]),
  smuggled("X_Request_Id and x.request.id", [
    ["X_Request_Id", SPOOF],
    ["x.request.id", SPOOF],
  ]),
  smuggled("Expect, Signature_Input and Content.Digest", [
    ["Expect", "100-continue"],
    ["Signature_Input", `keygate=();nonce="${SPOOF}"`],
    ["Content.Digest", `sha-256=:${btoa(SPOOF)}:`],
  ]),
  {
    name: "ACCEPTED: CF-Connecting-IP itself never reaches the origin; it is re-set as X-Forwarded-For",
    request: (w) => ({ headers: apiKey(w.key) }),
    expect: accepted((seen, w) => {
      expect(seen.headers.get("cf-connecting-ip")).toBeNull();
      expect(seen.headers.get("x-forwarded-for")).toBe(w.ip);
    }),
  },

  // --- §7 IP allowlist parsing: matching (the row's own CF-Connecting-IP), then admin bodies ---
  fromIp("::ffff:203.0.113.7", ["203.0.113.7"], accepted(), "IPv4-mapped IPv6 is the same address"),
  fromIp("::ffff:cb00:7107", ["203.0.113.7"], accepted(), "IPv4-mapped, in hex"),
  fromIp("2002:cb00:7107::1", ["203.0.113.7"], ipNotAllowed, "6to4 embeds the address but is another host"),
  fromIp("64:ff9b::cb00:7107", ["203.0.113.7"], ipNotAllowed, "NAT64 is another host"),
  fromIp("64:ff9b::203.0.113.7", ["203.0.113.7"], ipNotAllowed, "NAT64 with a dotted tail"),
  fromIp("::203.0.113.7", ["203.0.113.7"], ipNotAllowed, "IPv4-compatible IPv6 is not IPv4-mapped"),
  fromIp("2001:0:4136:e378:8000:63bf:34ff:8ef8", ["203.0.113.7"], ipNotAllowed, "Teredo hides the address, XORed"),
  fromIp("0203.0.113.7", ["203.0.113.7"], ipNotAllowed, "a leading zero (octal to inet_aton) is no address"),
  fromIp("3405803783", ["203.0.113.7"], ipNotAllowed, "the address as one integer is no address"),
  fromIp("0xcb.0.0x71.7", ["203.0.113.7"], ipNotAllowed, "hex octets are no address"),
  fromIp("203.0.113.7.", ["203.0.113.7"], ipNotAllowed, "a trailing dot"),
  fromIp("203.0.113.7, 198.51.100.1", ["203.0.113.7"], ipNotAllowed, "a list is no address"),
  fromIp("[2001:db8:c0de::1]", ["2001:db8:c0de::/48"], ipNotAllowed, "brackets are no address"),
  fromIp("2001:DB8:C0DE::1", ["2001:db8:c0de::/48"], accepted(), "hex case does not matter"),
  fromIp("2001:0db8:c0de:0000:0000:0000:0000:0001", ["2001:db8:c0de::/48"], accepted(), "the uncompressed form"),
  fromIp("2001:db8:c0de::1", ["2001:db8:c0de::1%eth0"], accepted(), "a zone id in the entry is ignored"),
  fromIp("2001:db8:c0df::1", ["2001:db8:c0de::/48"], ipNotAllowed, "the next /48"),
  fromIp("203.0.113.255", ["203.0.113.0/24"], accepted(), "the last address of the range"),
  fromIp("203.0.114.0", ["203.0.113.0/24"], ipNotAllowed, "the first address past the range"),
  fromIp("203.0.113.9", ["::ffff:203.0.113.0/120"], accepted(), "an IPv4-mapped CIDR entry holds IPv4 clients"),
  fromIp("2001:db8:c0de::2", ["0.0.0.0/0"], ipNotAllowed, "an IPv4 /0 is not every address"),
  fromIp("203.0.113.1", ["203.0.113.77/24"], accepted(), "host bits in the entry are masked"),
  allowlistBody("0x7f.0.0.1", "hex octets"),
  allowlistBody("2130706433", "an integer"),
  allowlistBody("127.1", "the short inet_aton form"),
  allowlistBody("10.0.0.0/33", "an IPv4 prefix over 32"),
  allowlistBody("10.0.0.0/08", "a prefix with a leading zero"),
  allowlistBody("10.0.0.0/", "an empty prefix"),
  allowlistBody("10.0.0.1, 10.0.0.2", "a list in one entry"),
  allowlistBody("[2001:db8::1]", "brackets"),
  allowlistBody("2001:db8::1::2", "two ::"),
  allowlistBody("::ffff:1.2.3.256", "a mapped tail out of range"),
  allowlistBody("", "empty"),
  allowlistBody("localhost", "a host name"),
  {
    name: "POST /api/v1/keys: 101 ipAllowlist entries",
    request: () => adminPost("/api/v1/keys", { name: "k", products: ["*"], ipAllowlist: Array.from({ length: 101 }, (_, i) => `10.0.${i}.0/24`) }),
    expect: refused(400, "VALIDATION_FAILED", ["ipAllowlist"]),
  },

  // --- §8 JWT attacks: what the rows above do not yet send ---
  {
    name: 'alg "" (empty)',
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "", kid: OWN_KID }, claims(w))) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  { name: "no alg member", request: async (w) => ({ headers: bearer(await signRaw({ kid: OWN_KID }, claims(w))) }), expect: refused(401, "JWT_MALFORMED") },
  {
    name: "alg as an array",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: ["ES256"], kid: OWN_KID }, claims(w))) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  {
    name: "kid as a number",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: 1 }, claims(w))) }),
    expect: refused(401, "JWT_KEY_NOT_FOUND"),
  },
  {
    name: "kid null",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: null }, claims(w))) }),
    expect: refused(401, "JWT_KEY_NOT_FOUND"),
  },
  {
    name: "an unencoded payload (b64: false, crit b64)",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID, b64: false, crit: ["b64"] }, claims(w))) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  {
    name: "an ES256 signature in DER form (OpenSSL's, not JWS's)",
    request: async (w) => {
      const [header, payload, signature] = (await signToken({ sub: w.subject })).split(".");
      return { headers: bearer(`${header}.${payload}.${b64url(derSignature(base64urlDecode(signature!)))}`) };
    },
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  {
    name: "an all-zero ES256 signature (r = s = 0, CVE-2022-21449)",
    request: async (w) => ({ headers: bearer(`${(await signToken({ sub: w.subject })).split(".").slice(0, 2).join(".")}.${b64url(new Uint8Array(64))}`) }),
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  {
    // Informational in the review: keygate keys nothing by the token's text, so a second spelling of one signature is harmless.
    name: "ACCEPTED: a valid token with == padding after its signature",
    request: async (w) => ({ headers: bearer(`${await signToken({ sub: w.subject, products: ["*"] })}==`) }),
    expect: accepted((seen, w) => expect(seen.headers.get("x-auth-subject")).toBe(w.subject), "jwt"),
  },
  {
    // The review saw this accepted; jose now decodes base64url strictly.
    name: "a valid token whose signature uses + and / for - and _",
    request: async (w) => {
      let token = "";
      for (let i = 0; i < 20 && !/[-_]/.test(token.split(".")[2] ?? ""); i++) token = await signToken({ sub: w.subject, products: ["*"] });
      const [header, payload, signature] = token.split(".");
      return { headers: bearer(`${header}.${payload}.${signature!.replace(/-/g, "+").replace(/_/g, "/")}`) };
    },
    expect: refused(401, "JWT_MALFORMED"),
  },
  {
    name: "ACCEPTED: exp 10 s ago, within JWT_CLOCK_TOLERANCE_SECONDS (30)",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, products: ["*"], exp: nowSeconds() - 10 })) }),
    expect: accepted(undefined, "jwt"),
  },
  {
    name: "exp 40 s ago, past the clock tolerance",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, exp: nowSeconds() - 40 })) }),
    expect: refused(401, "JWT_EXPIRED"),
  },
  {
    name: "nbf 40 s ahead, past the clock tolerance",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, nbf: nowSeconds() + 40 })) }),
    expect: refused(401, "JWT_NOT_YET_VALID"),
  },
  {
    name: "a negative exp",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID }, { ...claims(w), exp: -1 })) }),
    expect: refused(401, "JWT_EXPIRED"),
  },
  // Fails today: jwtFailure (src/auth/jwt.ts) maps every jose "nbf" failure to JWT_NOT_YET_VALID, so a
  // malformed nbf reads "not valid yet, check your clock"; a malformed exp or iat is JWT_CLAIM_INVALID.
  {
    name: "nbf as a string",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID }, { ...claims(w), nbf: "0" })) }),
    expect: claimInvalid,
  },
  {
    name: "iat as a string",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID }, { ...claims(w), iat: "0" })) }),
    expect: claimInvalid,
  },
  { name: "no aud claim", request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, aud: undefined })) }), expect: claimInvalid },
  { name: "no iss claim", request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, iss: undefined })) }), expect: claimInvalid },
  {
    name: "sub as a number",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID }, { ...claims(w), sub: 42 })) }),
    expect: claimInvalid,
  },
  {
    name: "aud as a number",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID }, { ...claims(w), aud: 1 })) }),
    expect: claimInvalid,
  },
  {
    name: "ACCEPTED: a payload naming sub twice is read once, as JSON.parse does (the last wins)",
    request: async (w) => {
      const { sub: _sub, ...rest } = claims(w);
      return {
        headers: bearer(
          await signRawText(
            { alg: "ES256", kid: OWN_KID },
            `{"sub":"${SPOOF}",${JSON.stringify({ ...rest, products: ["*"] }).slice(1, -1)},"sub":"${w.subject}"}`,
          ),
        ),
      };
    },
    expect: accepted((seen, w) => expect(seen.headers.get("x-auth-subject")).toBe(w.subject), "jwt"),
  },
  {
    name: "ACCEPTED: a claim nested 1500 arrays deep (parsed, ignored)",
    request: async (w) => ({
      headers: bearer(
        await signRawText(
          { alg: "ES256", kid: OWN_KID },
          `${JSON.stringify({ ...claims(w), products: ["*"] }).slice(0, -1)},"deep":${"[".repeat(1500)}${"]".repeat(1500)}}`,
        ),
      ),
    }),
    expect: accepted(undefined, "jwt"),
  },
  {
    name: "a JWS in JSON serialization as the Bearer token",
    request: () => ({ headers: bearer(JSON.stringify({ protected: b64url({ alg: "ES256" }), payload: "e30", signature: "c2ln" })) }),
    expect: refused(401, "AUTH_HEADER_MALFORMED"),
  },
  {
    name: "an empty payload segment (the signature is checked first)",
    request: async (w) => {
      const [header, , signature] = (await signToken({ sub: w.subject })).split(".");
      return { headers: bearer(`${header}..${signature}`) };
    },
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },

  // --- §9 JWT, third-party HS256 (F7, F8) ---
  // Written for the JWT work on third-party tokens (src/auth/jwt.ts claimedSubject / claimedScopes,
  // X-Auth-Issuer, limits/names.ts); they hold from commit 1837b08 on. The refused rows also check that
  // nothing was counted in the token's sub:hs256: object.
  {
    name: 'HS256: sub "x y" (a space)',
    subjectLimiter: (w) => hsLimiter(`${w.subject} y`),
    request: async (w) => ({ headers: bearer(await hs256({ sub: `${w.subject} y` })) }),
    expect: claimInvalid,
  },
  {
    name: "HS256: sub with a \\x01 control character",
    subjectLimiter: (w) => hsLimiter(`${w.subject}\x01`),
    request: async (w) => ({ headers: bearer(await hs256({ sub: `${w.subject}\x01` })) }),
    expect: claimInvalid,
  },
  {
    name: "HS256: sub with a newline",
    subjectLimiter: (w) => hsLimiter(`x\n${w.subject}`),
    request: async (w) => ({ headers: bearer(await hs256({ sub: `x\n${w.subject}` })) }),
    expect: claimInvalid,
  },
  {
    name: "HS256: sub of 256 characters",
    subjectLimiter: (w) => hsLimiter(w.subject.padEnd(256, "x")),
    request: async (w) => ({ headers: bearer(await hs256({ sub: w.subject.padEnd(256, "x") })) }),
    expect: claimInvalid,
  },
  {
    name: 'HS256: scp ["defi:read defi:swap"] (one scope holding a space)',
    subjectLimiter: (w) => hsLimiter(w.subject),
    request: async (w) => ({ headers: bearer(await hs256({ sub: w.subject, scp: ["defi:read defi:swap"] })) }),
    expect: claimInvalid,
  },
  {
    name: 'HS256: scp ["a\\r\\nX-Injected: 1"]',
    subjectLimiter: (w) => hsLimiter(w.subject),
    request: async (w) => ({ headers: bearer(await hs256({ sub: w.subject, scp: ["a\r\nX-Injected: 1"] })) }),
    expect: claimInvalid,
  },
  {
    name: "HS256: a scope with a double quote",
    subjectLimiter: (w) => hsLimiter(w.subject),
    request: async (w) => ({ headers: bearer(await hs256({ sub: w.subject, scp: ['defi:"read'] })) }),
    expect: claimInvalid,
  },
  {
    name: "HS256: a scope with a comma",
    subjectLimiter: (w) => hsLimiter(w.subject),
    request: async (w) => ({ headers: bearer(await hs256({ sub: w.subject, scp: ["defi:read,defi:swap"] })) }),
    expect: claimInvalid,
  },
  {
    name: 'HS256: scope "defi:read,defi:swap" (a comma in the space-separated string)',
    subjectLimiter: (w) => hsLimiter(w.subject),
    request: async (w) => ({ headers: bearer(await hs256({ sub: w.subject, scope: "defi:read,defi:swap" })) }),
    expect: claimInvalid,
  },
  {
    name: "HS256: 101 scopes",
    subjectLimiter: (w) => hsLimiter(w.subject),
    request: async (w) => ({ headers: bearer(await hs256({ sub: w.subject, scp: Array.from({ length: 101 }, (_, i) => `s${i}`) })) }),
    expect: claimInvalid,
  },
  {
    name: "keygate's own token with a space inside one scp entry (the same check)",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, products: ["*"], scp: ["defi:read defi:swap"] })) }),
    expect: claimInvalid,
  },
  {
    name: 'ACCEPTED: HS256 with scope "defi:read defi:swap" is two scopes (RFC 8693), forwarded space-separated',
    subjectLimiter: (w) => hsLimiter(w.subject),
    request: async (w) => ({ headers: bearer(await hs256({ sub: w.subject, scope: "defi:read defi:swap" })) }),
    expect: accepted((seen) => expect(seen.headers.get("x-auth-scopes")).toBe("defi:read defi:swap"), "jwt"),
  },
  {
    name: "ACCEPTED: HS256 whose sub is a keygate user's id is that issuer's subject, not the user (own counter, X-Auth-Issuer hs256)",
    subjectLimiter: (w) => hsLimiter(w.subject),
    request: async (w) => {
      await createUser({ id: w.subject, role: "admin" });
      return { headers: bearer(await hs256({ sub: w.subject, role: "admin" })) };
    },
    expect: accepted(async (seen, w) => {
      expect(seen.headers.get("x-auth-subject")).toBe(w.subject);
      expect(seen.headers.get("x-auth-issuer")).toBe("hs256");
      expect(await storedCounters(`user:${w.subject}`), "the keygate user's counters").toEqual({});
    }, "jwt"),
  },
  {
    name: "ACCEPTED: HS256 naming keygate's own kid is still a third party's token",
    subjectLimiter: (w) => hsLimiter(w.subject),
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, products: ["*"] }, { alg: "HS256", header: { kid: OWN_KID } })) }),
    expect: accepted((seen) => expect(seen.headers.get("x-auth-issuer")).toBe("hs256"), "jwt"),
  },
  {
    name: "HS256 whose sub is an admin's id, with role admin, on the admin API",
    request: async () => ({ path: "/api/v1/admin/users", headers: bearer(await hs256({ sub: (await createUser({ role: "admin" })).user.id, role: "admin" })) }),
    expect: forbidden,
  },
  {
    name: "HS256 whose sub is a user's id on GET /api/v1/keys (not a keygate user)",
    request: async () => ({ path: "/api/v1/keys", headers: bearer(await hs256({ sub: (await createUser()).user.id })) }),
    expect: forbidden,
  },

  // --- §10 management API: escalation, mass assignment, IDOR, wrong callers ---
  // The target is the row's own key, which no user owns: to each user below it is someone else's.
  {
    name: "IDOR: a user's GET of another's key",
    request: async (w) => withAuth((await reviewUser()).auth, "GET", `/api/v1/keys/${w.record.id}`),
    expect: notFound,
  },
  {
    name: "IDOR: a user's PATCH of another's key",
    request: async (w) => withAuth((await reviewUser()).auth, "PATCH", `/api/v1/keys/${w.record.id}`, { name: "mine" }),
    expect: notFound,
  },
  {
    name: "IDOR: a user's DELETE of another's key",
    request: async (w) => withAuth((await reviewUser()).auth, "DELETE", `/api/v1/keys/${w.record.id}`),
    expect: notFound,
  },
  {
    name: "IDOR: a user's rotation of another's key",
    request: async (w) => withAuth((await reviewUser()).auth, "POST", `/api/v1/keys/${w.record.id}/rotate`, {}),
    expect: notFound,
  },
  {
    name: "IDOR: a user's usage stats of another's key",
    request: async (w) => withAuth((await reviewUser()).auth, "GET", `/api/v1/usage/stats?keyId=${w.record.id}`),
    expect: notFound,
  },
  {
    name: "IDOR: another's key id upper-cased",
    request: async (w) => withAuth((await reviewUser()).auth, "GET", `/api/v1/keys/${w.record.id.toUpperCase()}`),
    expect: notFound,
  },
  {
    name: "IDOR: another's key id with an encoded space after it",
    request: async (w) => withAuth((await reviewUser()).auth, "GET", `/api/v1/keys/${w.record.id}%20`),
    expect: notFound,
  },
  {
    name: "IDOR: another's key id with an encoded NUL after it",
    request: async (w) => withAuth((await reviewUser()).auth, "PATCH", `/api/v1/keys/${w.record.id}%00`, { name: "mine" }),
    expect: notFound,
  },
  {
    name: "IDOR: another's key id, every character percent-encoded",
    request: async (w) => withAuth((await reviewUser()).auth, "DELETE", `/api/v1/keys/${encodeAll(w.record.id)}`),
    expect: notFound,
  },
  {
    name: "IDOR: a key id of ..%2F..%2Fadmin%2Fusers",
    request: async () => withAuth((await reviewUser()).auth, "GET", "/api/v1/keys/..%2F..%2Fadmin%2Fusers"),
    expect: notFound,
  },
  {
    name: "a user widening their own key's scopes",
    request: async () => {
      const u = await reviewUser({ scopes: ["read"] });
      return withAuth(u.auth, "PATCH", `/api/v1/keys/${u.own.record.id}`, { scopes: ["*"] });
    },
    expect: forbidden,
  },
  {
    name: "a user widening their own key's products",
    request: async (w) => {
      const u = await reviewUser({ products: [w.product.slug] });
      return withAuth(u.auth, "PATCH", `/api/v1/keys/${u.own.record.id}`, { products: ["*"] });
    },
    expect: forbidden,
  },
  {
    name: "a user clearing their own key's IP allowlist",
    request: async () => {
      const u = await reviewUser();
      return withAuth(u.auth, "PATCH", `/api/v1/keys/${u.own.record.id}`, { ipAllowlist: [] });
    },
    expect: forbidden,
  },
  {
    name: "a user raising their own key's daily limit",
    request: async () => {
      const u = await reviewUser();
      return withAuth(u.auth, "PATCH", `/api/v1/keys/${u.own.record.id}`, { rateLimitPerDay: 1_000_000 });
    },
    expect: forbidden,
  },
  {
    name: "a user giving their key to another user",
    request: async () => {
      const u = await reviewUser();
      return withAuth(u.auth, "PATCH", `/api/v1/keys/${u.own.record.id}`, { ownerId: (await createUser()).user.id });
    },
    expect: forbidden,
  },
  {
    name: "a user creating a key owned by another user",
    request: async () => withAuth((await reviewUser()).auth, "POST", "/api/v1/keys", { name: "k", ownerId: (await createUser()).user.id }),
    expect: forbidden,
  },
  {
    name: "a user creating a key with a scope they lack",
    request: async () => withAuth((await reviewUser({ scopes: ["read"] })).auth, "POST", "/api/v1/keys", { name: "k", scopes: ["admin:*"] }),
    expect: forbidden,
  },
  {
    name: "a user promoting themselves through PATCH /api/v1/admin/users/:id",
    request: async () => {
      const u = await reviewUser();
      return withAuth(u.auth, "PATCH", `/api/v1/admin/users/${u.user.id}`, { role: "admin" });
    },
    expect: forbidden,
  },
  {
    name: "a keygate-signed token claiming role admin for a user whose row says user (the row decides)",
    request: async () => {
      const { user } = await createUser();
      return { path: "/api/v1/admin/users", headers: bearer(await signToken({ sub: user.id, role: "admin", email: user.email })) };
    },
    expect: forbidden,
  },
  { name: "an API key on GET /api/v1/admin/audit", request: (w) => ({ path: "/api/v1/admin/audit", headers: apiKey(w.key) }), expect: forbidden },
  {
    name: "PATCH /api/v1/keys/:id: a __proto__ member",
    request: (w) => ({ ...adminPost(`/api/v1/keys/${w.record.id}`, '{"__proto__":{"status":"active"},"name":"k"}'), method: "PATCH" }),
    expect: refused(400, "VALIDATION_FAILED", ["__proto__"]),
  },
  {
    name: "POST /api/v1/admin/users: a __proto__ member carrying role admin",
    request: () => adminPost("/api/v1/admin/users", `{"email":"${uniqueSlug("u")}@example.com","password":"long-enough-1","__proto__":{"role":"admin"}}`),
    expect: refused(400, "VALIDATION_FAILED", ["__proto__"]),
  },

  // --- §11 management API: concurrency and policy ---
  // Cut: the lost update (F4) and the rotation race are races between requests, not one request
  // (rotation-race.test.ts covers the race); a user lifting an admin's deactivation or expiry (F9)
  // is still allowed by src/auth/key-permissions.ts, so there is no refusal to pin.
  {
    name: "POST /api/v1/keys/:id/rotate on a key already rotated",
    before: async (w) => void (await adminCall("POST", `/api/v1/keys/${w.record.id}/rotate`, { gracePeriodSeconds: 60 })),
    request: (w) => adminPost(`/api/v1/keys/${w.record.id}/rotate`, {}),
    expect: refused(409, "CONFLICT"),
  },
  {
    name: "POST /api/v1/keys/:id/rotate on an inactive key",
    key: { status: "inactive" },
    request: (w) => adminPost(`/api/v1/keys/${w.record.id}/rotate`, {}),
    expect: refused(409, "CONFLICT"),
  },

  // --- §12 revocation on the next request ---
  { name: "a revoked key (GET)", key: { status: "revoked" }, request: (w) => ({ headers: apiKey(w.key) }), expect: refused(401, "API_KEY_INACTIVE") },
  {
    name: "a revoked key (HEAD)",
    key: { status: "revoked" },
    request: (w) => ({ method: "HEAD", headers: apiKey(w.key) }),
    expect: refused(401, "API_KEY_INACTIVE"),
  },
  {
    name: "a revoked key (OPTIONS)",
    key: { status: "revoked" },
    request: (w) => ({ method: "OPTIONS", headers: apiKey(w.key) }),
    expect: refused(401, "API_KEY_INACTIVE"),
  },
  { name: "a revoked key as Bearer", key: { status: "revoked" }, request: (w) => ({ headers: bearer(w.key) }), expect: refused(401, "API_KEY_INACTIVE") },
  {
    name: "a revoked key on GET /api/v1/usage/stats",
    key: { status: "revoked" },
    request: (w) => ({ path: "/api/v1/usage/stats", headers: apiKey(w.key) }),
    expect: refused(401, "API_KEY_INACTIVE"),
  },
  {
    name: "PATCH of a revoked key",
    key: { status: "revoked" },
    request: (w) => ({ ...adminPost(`/api/v1/keys/${w.record.id}`, { name: "back" }), method: "PATCH" }),
    expect: refused(409, "CONFLICT"),
  },
  {
    name: "a key revoked through the API right after a call that cached it",
    before: async (w) => {
      expect(await gatewayCall(w, apiKey(w.key))).toBe(200);
      await adminCall("DELETE", `/api/v1/keys/${w.record.id}`);
    },
    request: (w) => ({ headers: apiKey(w.key) }),
    expect: refused(401, "API_KEY_INACTIVE"),
  },
  {
    name: "a deleted user's JWT, which had just reached the product",
    request: async (w) => {
      const { user } = await createUser();
      const headers = bearer(await signToken({ sub: user.id, role: "user", email: user.email, products: ["*"] }));
      expect(await gatewayCall(w, headers)).toBe(200);
      await adminCall("DELETE", `/api/v1/admin/users/${user.id}`);
      return { headers };
    },
    expect: claimInvalid,
  },
  {
    name: "a JWT signed before its user's products were narrowed",
    request: async (w) => {
      const { user } = await createUser();
      const headers = bearer(await signToken({ sub: user.id, role: "user", email: user.email, products: ["*"], gv: Date.parse(user.updatedAt) }));
      expect(await gatewayCall(w, headers)).toBe(200);
      await adminCall("PATCH", `/api/v1/admin/users/${user.id}`, { products: [] });
      return { headers };
    },
    expect: claimInvalid,
  },

  // --- §13 rate limits ---
  // Cut: 60 concurrent calls are not one request (rate-limits.test.ts); rotation and new keys
  // resetting a quota (F5) are still open: a replacement key gets a fresh limiter, so there is no
  // refusal to pin. The subject-sharing half of F7 is pinned here.
  {
    name: "a key at its per-minute limit (1)",
    key: { rateLimitPerMinute: 1 },
    before: async (w) => {
      midMinute();
      expect(await gatewayCall(w, apiKey(w.key))).toBe(200);
    },
    request: (w) => ({ headers: apiKey(w.key) }),
    expect: refused(429, "RATE_LIMIT_EXCEEDED"),
  },
  {
    name: "a key at its daily quota (1)",
    key: { rateLimitPerDay: 1 },
    before: async (w) => {
      midMinute();
      expect(await gatewayCall(w, apiKey(w.key))).toBe(200);
    },
    request: (w) => ({ headers: apiKey(w.key) }),
    expect: refused(429, "DAILY_QUOTA_EXCEEDED"),
  },
  {
    name: "a keygate user's JWT at the product's per-minute limit (1)",
    product: { rateLimitPerMinute: 1 },
    before: async (w) => {
      midMinute();
      expect(await gatewayCall(w, bearer(await signToken({ sub: w.subject, products: ["*"] })))).toBe(200);
    },
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, products: ["*"] })) }),
    expect: refused(429, "RATE_LIMIT_EXCEEDED"),
  },
  {
    name: "ACCEPTED: an HS256 token with the same sub as that exhausted user has its own counter (F7)",
    product: { rateLimitPerMinute: 1 },
    subjectLimiter: (w) => hsLimiter(w.subject),
    before: async (w) => {
      midMinute();
      expect(await gatewayCall(w, bearer(await signToken({ sub: w.subject, products: ["*"] })))).toBe(200);
    },
    request: async (w) => ({ headers: bearer(await hs256({ sub: w.subject })) }),
    expect: accepted(async (seen, w) => {
      expect(seen.headers.get("x-auth-issuer")).toBe("hs256");
      expect((await storedCounters(`user:${w.subject}`)).minute?.count, "the user's own count").toBe(1);
    }, "jwt"),
  },

  // --- §14 HMAC: what the origin signature binds (F3). The runner verifies every ACCEPTED row; here one part changes. ---
  signatureRow("the body", { body: '{"amount":"1000000"}' }, /content-digest does not match/),
  signatureRow("the host", { url: (url) => void (url.host = "other-origin.internal") }, /does not verify/),
  signatureRow("the path", { url: (url) => void (url.pathname += "/other") }, /does not verify/),
  signatureRow("the method", { method: "PUT" }, /does not verify/),
  signatureRow("the query", { url: (url) => void (url.search = "?pair=ETH-BTC") }, /does not verify/),
  signatureRow("the scopes", { headers: (headers) => headers.set("x-auth-scopes", "* admin:*") }, /does not verify/),
  signatureRow("X-Forwarded-For", { headers: (headers) => headers.set("x-forwarded-for", SPOOF_IP) }, /does not verify/),
  signatureRow("the request id (its nonce)", { headers: (headers) => headers.set("x-request-id", crypto.randomUUID()) }, /does not verify/),
  signatureRow("the body's digest (removed)", { headers: (headers) => headers.delete("content-digest") }, /content-digest is missing/),
  signatureRow("the identity headers (an X_Auth_Subject added)", { headers: (headers) => headers.set("X_Auth_Subject", SPOOF) }, /not covered/),
  signatureRow("its time (verified 2 minutes later)", {}, /too old/, () => Date.now() + 120_000),
  {
    name: "ACCEPTED: the origin signature is good once: the same request verified twice with one store",
    request: (w) => ({ method: "POST", headers: [...apiKey(w.key), ["Content-Type", "application/json"]], body: '{"amount":"1"}' }),
    expect: accepted(async (seen) => {
      const store = memoryReplayStore();
      expect(await reverify(seen, {}, store)).toMatchObject({ ok: true });
      expect(await reverify(seen, { body: '{"amount":"1000000"}' }, store), "a changed copy").toMatchObject({ ok: false });
      expect(await reverify(seen, {}, store)).toEqual({ ok: false, reason: "replayed nonce" });
    }),
  },

  // --- §15 info leaks: every answer is JSON with no stack (the runner); these send what the rows above do not ---
  // Cut: login timing and scanning logs for keys are not requests (login.test.ts measures the dummy hash).
  {
    name: "POST /api/v1/keys with Content-Type text/plain",
    request: () => ({ ...adminPost("/api/v1/keys", { name: "k", products: ["*"] }), headers: [...asAdmin(), ["Content-Type", "text/plain"]] }),
    expect: refused(400, "VALIDATION_FAILED"),
  },
  {
    name: "POST /api/v1/keys without a Content-Type",
    request: () => ({ method: "POST", path: "/api/v1/keys", headers: asAdmin(), body: '{"name":"k","products":["*"]}' }),
    expect: refused(400, "VALIDATION_FAILED"),
  },
  {
    name: "POST /api/v1/keys as a form",
    request: () => ({
      method: "POST",
      path: "/api/v1/keys",
      headers: [...asAdmin(), ["Content-Type", "application/x-www-form-urlencoded"]],
      body: "name=k&products=*",
    }),
    expect: refused(400, "VALIDATION_FAILED"),
  },
  {
    name: "POST /auth/login as text/plain",
    request: () => ({ method: "POST", path: "/auth/login", headers: [["Content-Type", "text/plain"]], body: '{"email":"a@example.com","password":"x"}' }),
    expect: refused(400, "VALIDATION_FAILED"),
  },
  {
    name: "GET /api/v1/usage/stats with keyId twice",
    request: (w) => ({ path: `/api/v1/usage/stats?keyId=${w.record.id}&keyId=x`, headers: asAdmin() }),
    expect: refused(400, "VALIDATION_FAILED", ["keyId"]),
  },
  {
    name: "GET /api/v1/admin/audit with limit twice",
    request: () => ({ path: "/api/v1/admin/audit?limit=1&limit=500", headers: asAdmin() }),
    expect: refused(400, "VALIDATION_FAILED", ["limit"]),
  },
  {
    name: "GET /api/v1/usage/stats with an unknown parameter",
    request: () => ({ path: "/api/v1/usage/stats?debug=1", headers: asAdmin() }),
    expect: refused(400, "VALIDATION_FAILED", ["debug"]),
  },
  { name: "GET /api/v1/keys/:id with an id that is no UUID", request: () => ({ path: "/api/v1/keys/not-a-uuid", headers: asAdmin() }), expect: notFound },
  {
    name: "GET /api/v1/keys/:id with a SQL-ish id",
    request: () => ({ path: `/api/v1/keys/${encodeURIComponent("' OR '1'='1")}`, headers: asAdmin() }),
    expect: notFound,
  },
  {
    name: "DELETE /api/v1/admin/users/:id with a SQL-ish id",
    request: () => ({ method: "DELETE", path: `/api/v1/admin/users/${encodeURIComponent("x' OR 1=1--")}`, headers: asAdmin() }),
    expect: notFound,
  },
  {
    name: "a path no product serves: the 404 names no product",
    request: (w) => ({ path: "/nothing/x", headers: apiKey(w.key) }),
    expect: refused(404, "ROUTE_NOT_FOUND"),
    after: (w, body) => expect(JSON.stringify(body)).not.toContain(w.product.slug),
  },
  {
    name: "GET /.well-known/jwks.json: the public key only",
    request: () => ({ path: "/.well-known/jwks.json" }),
    expect: ownAnswer((body) => {
      expect(body.keys).toHaveLength(1);
      expect(Object.keys(body.keys[0]).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x", "y"]);
    }),
  },
  {
    name: "GET /openapi.json: no secret in it",
    request: () => ({ path: "/openapi.json" }),
    expect: ownAnswer((body) => {
      for (const secret of SECRETS()) expect(JSON.stringify(body).includes(secret)).toBe(false);
    }),
  },
  { name: "GET /healthz: nothing but ok", request: () => ({ path: "/healthz" }), expect: ownAnswer((body) => expect(body).toEqual({ status: "ok" })) },

  // --- §16 body and size limits: own endpoints. Cut: a GET or HEAD with a body (the Request constructor throws). ---
  {
    name: "POST /api/v1/keys with a declared body of MAX_BODY_BYTES + 1",
    request: () => ({ method: "POST", path: "/api/v1/keys", headers: [...asAdmin(), ["Content-Type", "application/json"]], body: new Uint8Array(MIB + 1) }),
    expect: refused(413, "PAYLOAD_TOO_LARGE"),
  },
  {
    name: "POST /auth/login with a chunked body of MAX_BODY_BYTES + 1, no credentials",
    request: () => ({ method: "POST", path: "/auth/login", headers: [["Content-Type", "application/json"]], body: chunkedBody(MIB + 1) }),
    expect: refused(413, "PAYLOAD_TOO_LARGE"),
  },
  {
    name: "a chunked body of MAX_BODY_BYTES + 1 to a product without credentials",
    request: () => ({ method: "POST", body: chunkedBody(MIB + 1) }),
    expect: refused(401, "AUTH_MISSING"),
  },

  // --- §17 DoS: glob matching (F6) and login storage (F13) ---
  {
    name: "a 15 KB path (projects/ ×900, members/ ×900) against /**/projects/**/members/**/remove",
    product: REVIEW_GLOBS,
    key: { scopes: ["globp:read"] },
    request: (w) => ({ path: `${w.product.pathPrefix}/${"projects/".repeat(900)}${"members/".repeat(900)}x`, headers: apiKey(w.key) }),
    expect: pathInvalid,
  },
  {
    name: "a 3 KB path that the three-** rule matches answers at once",
    product: REVIEW_GLOBS,
    key: { scopes: ["globp:read"] },
    request: (w) => ({ path: `${w.product.pathPrefix}/${"projects/".repeat(170)}${"members/".repeat(170)}remove`, headers: apiKey(w.key) }),
    expect: scopeMissing,
  },
  {
    name: "ACCEPTED: a 3 KB path that the three-** rule does not match answers at once",
    product: REVIEW_GLOBS,
    key: { scopes: ["globp:read"] },
    request: (w) => ({ path: `${w.product.pathPrefix}/${"projects/".repeat(170)}${"members/".repeat(170)}x`, headers: apiKey(w.key) }),
    expect: accepted((seen) => expect(atOrigin(seen)).toMatch(/\/x$/)),
  },
  {
    name: "ACCEPTED: a 3 KB segment against /stars/*a*a*a*a*a*b (no b: no match) answers at once",
    product: REVIEW_GLOBS,
    key: { scopes: ["globp:read"] },
    request: (w) => ({ path: `${w.product.pathPrefix}/stars/${"a".repeat(3000)}`, headers: apiKey(w.key) }),
    expect: accepted(),
  },
  {
    name: "ACCEPTED: a path of exactly 4096 bytes",
    request: (w) => ({ path: `${w.product.pathPrefix}/`.padEnd(4096, "p"), headers: apiKey(w.key) }),
    expect: accepted((seen, w) => expect(new URL(seen.url).pathname).toBe(`/upstream${w.product.pathPrefix}/`.padEnd(4096 + "/upstream".length, "p"))),
  },
  { name: "a path of 4097 bytes", request: (w) => ({ path: `${w.product.pathPrefix}/`.padEnd(4097, "p"), headers: apiKey(w.key) }), expect: pathInvalid },
  ...(
    [
      ["four ** segments", "/**/a/**/b/**/c/**"],
      ["** inside a segment (/a**b)", "/a**b"],
      ["** inside segments (/**-**-**-**-**-x)", "/**-**-**-**-**-x"],
      ["a glob over 500 characters", `/${"a".repeat(500)}`],
      ["a glob not in canonical form (/%61dmin)", "/%61dmin"],
      ["an encoded * (%2A)", "/admin/%2A"],
    ] as const
  ).map(
    ([what, path]): Row => ({
      name: `POST /api/v1/admin/products: a scope rule with ${what}`,
      request: () => adminPost("/api/v1/admin/products", validProduct({ scopeRules: [{ path, scope: "x" }] })),
      expect: refused(400, "VALIDATION_FAILED", ["scopeRules.0.path"]),
    }),
  ),
  {
    name: "POST /auth/login with an unknown email leaves no per-email object (F13)",
    request: (w) => ({ method: "POST", path: "/auth/login", ...jsonBody({ email: `Nobody-${w.product.slug}@Example.com`, password: "guess-password" }) }),
    expect: refused(401, "INVALID_CREDENTIALS"),
    // Reading creates the object, but one that was never written holds no rows.
    after: async (w) => expect(await storedCounters(`email:nobody-${w.product.slug}@example.com`)).toEqual({}),
  },

  // --- §18 dashboard: traversal out of /dashboard (JSON answers). ---
  // Cut: the CSP, nosniff, X-Frame-Options and Referrer-Policy headers, DOM sinks and token storage are
  // HTML and browser matters (dashboard.test.ts, test/browser).
  {
    name: "GET /dashboard/../api/v1/admin/users (resolved by the URL parser) without credentials",
    request: () => ({ path: "/dashboard/../api/v1/admin/users" }),
    expect: refused(401, "AUTH_MISSING"),
  },
  { name: "GET /dashboard/%2e%2e/wrangler.toml", request: () => ({ path: "/dashboard/%2e%2e/wrangler.toml" }), expect: refused(404, "ROUTE_NOT_FOUND") },
  { name: "GET /dashboard/..%2f..%2f.dev.vars", request: () => ({ path: "/dashboard/..%2f..%2f.dev.vars" }), expect: refused(404, "ROUTE_NOT_FOUND") },
  { name: "GET /dashboard/%2e%2e%5csrc%5cindex.ts", request: () => ({ path: "/dashboard/%2e%2e%5csrc%5cindex.ts" }), expect: refused(404, "ROUTE_NOT_FOUND") },

  // --- §19 CLI / start script: cut. .dev.vars modes, the seed file, the banner and CLI errors are
  // outside the Worker (test/node, test/e2e). ---
];

// ---------------------------------------------------------------------------
// Helpers the rows use

function claims(w: World) {
  return { sub: w.subject, iss: "keygate", aud: "keygate", exp: nowSeconds() + 300 };
}

/** A token with any header and an unverifiable signature part. */
function unsigned(header: Record<string, unknown>, w: World, signature = ""): string {
  return `${b64url(header)}.${b64url(claims(w))}.${signature}`;
}

/** A signed token whose payload is arbitrary text. */
async function signRawText(header: Record<string, unknown>, payload: string): Promise<string> {
  const input = `${b64url(header)}.${b64url(new TextEncoder().encode(payload))}`;
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, await ownPrivateKey(), new TextEncoder().encode(input));
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

/** A request body with no Content-Length: a stream, as a chunked upload arrives. */
function chunkedBody(bytes: number): ReadableStream<Uint8Array> {
  const chunk = 64 * 1024;
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      const size = Math.min(chunk, bytes - sent);
      sent += size;
      controller.enqueue(new Uint8Array(size));
    },
  });
}

// ---------------------------------------------------------------------------
// The runner

const TABLES = ["api_keys", "products", "users", "audit_log"] as const;
/** The brute-force rows run 30 PBKDF2 logins first; every other row takes well under a second. */
const ROW_TIMEOUT_MS = 30_000;

/** 198.51.100.n and 2001:db8:n::1 alternate; each IPv6 address has its own /64, the throttle's unit. */
function clientIp(index: number): string {
  // Past 250 IPv4 rows, the next /24: 198.51.101.n.
  const n = index / 2;
  return index % 2 === 0 ? `198.51.${100 + Math.floor(n / 250)}.${(n % 250) + 1}` : `2001:db8:${index.toString(16)}::1`;
}

async function buildWorld(row: Row, index: number): Promise<World> {
  const product = await createProduct(row.product);
  const { key, record } = await createKey(row.key);
  return { product, key, record, ip: row.ip ?? clientIp(index), subject: `catalogue-${crypto.randomUUID()}` };
}

async function snapshot(world: World, row: Row) {
  // An address that is no address (allowlist rows) has no throttle object.
  const throttle = throttleName(world.ip);
  return {
    rows: Object.fromEntries(await Promise.all(TABLES.map(async (table) => [table, await rowCount(table)] as const))),
    key: await storedCounters(`key:${world.record.id}`),
    subject: await storedCounters(row.subjectLimiter?.(world) ?? `user:${world.subject}`),
    ip: throttle ? await storedCounters(throttle) : {},
  };
}

function toRequest(probe: Probe, world: World): Request {
  const headers = new Headers();
  for (const [name, value] of probe.headers ?? []) headers.append(name, value);
  if (!headers.has("cf-connecting-ip")) headers.set("CF-Connecting-IP", world.ip);
  return new Request(`${GATEWAY}${probe.path ?? `${world.product.pathPrefix}/resource`}`, { method: probe.method ?? "GET", headers, body: probe.body });
}

/** The credentials a probe presents, as they would have to appear to be echoed. */
function presentedCredentials(probe: Probe): string[] {
  return (probe.headers ?? [])
    .filter(([name]) => /^(x-api-key|authorization)$/i.test(name))
    .map(([, value]) => value.replace(/^[ \t]*(bearer|basic|token) +/i, "").trim())
    .filter((value) => value.length >= 12);
}

function isFailedAuthentication(expected: Expectation): boolean {
  if (expected.kind === "accepted" || expected.kind === "own") return false;
  if (expected.kind === "compact") return expected.status === 401 && expected.body.error !== "No API key provided";
  return expected.status === 401 && expected.code !== "AUTH_MISSING";
}

const POST_AUTH_REFUSALS: ErrorCode[] = ["IP_NOT_ALLOWED", "API_KEY_PRODUCT_FORBIDDEN", "API_KEY_SCOPE_MISSING"];

let origin: ReturnType<typeof stubOrigin> | undefined;
afterEach(() => {
  origin?.restore();
  origin = undefined;
  vi.useRealTimers();
});

describe("the bad-input catalogue", () => {
  it("holds at least 100 rows with unique names", () => {
    const rows = [...CATALOGUE, ...SECURITY_REVIEW_2026_12];
    expect(CATALOGUE.length).toBeGreaterThanOrEqual(100);
    expect(new Set(rows.map((row) => row.name)).size).toBe(rows.length);
  });

  // The security review 2026-12 rows run after the catalogue's own, numbered on from them.
  it.each([...CATALOGUE, ...SECURITY_REVIEW_2026_12].map((row, index) => ({ ...row, index })))(
    "#$index $name",
    async (row) => {
      origin = stubOrigin(row.originReply);
      const world = await buildWorld(row, row.index);
      await row.before?.(world);
      const probe = await row.request(world);
      const before = await snapshot(world, row);
      origin.received.length = 0;

      const response = await exports.default.fetch(toRequest(probe, world));
      const text = await response.text();
      // A HEAD answer has no body: its status, type and request id are all a client can read.
      const head = (probe.method ?? "GET").toUpperCase() === "HEAD";
      if (head) expect(text, "a HEAD answer has no body").toBe("");
      const body = (head ? {} : JSON.parse(text)) as Record<string, any>;
      const expected = row.expect;
      const requestId = response.headers.get("x-request-id");

      // What the client sees.
      expect(response.headers.get("content-type"), text.slice(0, 300)).toMatch(/^application\/json\b/);
      expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      for (const credential of presentedCredentials(probe)) expect(text.includes(credential), "the body repeats the credential").toBe(false);
      if (head) {
        expect(response.status).toBe(expected.kind === "accepted" || expected.kind === "own" ? 200 : expected.status);
        if (expected.kind === "accepted") expect(response.headers.get("x-auth-method")).toBe(expected.by);
      } else if (expected.kind === "refused") {
        expect({ status: response.status, code: body.code }, text.slice(0, 500)).toEqual({ status: expected.status, code: expected.code });
        expect(body.requestId).toBe(requestId);
        if (expected.fields)
          expect(
            body.fields.map((field: { path: string }) => field.path),
            text,
          ).toEqual(expect.arrayContaining(expected.fields));
      } else if (expected.kind === "compact") {
        expect(response.status, text).toBe(expected.status);
        expect(body).toEqual(expected.body);
      } else if (expected.kind === "own") {
        expect(response.status, text.slice(0, 500)).toBe(200);
        expected.check?.(body);
      } else {
        expect(response.status, text.slice(0, 500)).toBe(200);
        expect(response.headers.get("x-auth-method")).toBe(expected.by);
        expect(body.authMethod).toBe(expected.by);
      }
      if (response.status === 401) {
        expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
        expect(response.headers.get("x-ratelimit-limit"), "no principal, no limit headers").toBeNull();
      }
      if (expected.kind === "refused" && POST_AUTH_REFUSALS.includes(expected.code)) {
        expect(response.headers.get("x-ratelimit-remaining"), "an authenticated refusal reports the limits").not.toBeNull();
      }

      // What reached the origin.
      if (expected.kind === "accepted") {
        expect(origin.received).toHaveLength(1);
        const seen = origin.received[0]!;
        expect(seen.headers.get("x-api-key")).toBeNull();
        expect(seen.headers.get("authorization")).toBeNull();
        expect(seen.headers.get("x-request-id")).toBe(requestId);
        expect(seen.headers.get("x-forwarded-for")).toBe(world.ip);
        expect(seen.headers.get("x-auth-method")).toBe(expected.by);
        if (expected.by === "api_key") expect(seen.headers.get("x-auth-key-id")).toBe(world.record.id);
        const body = seen.method === "GET" || seen.method === "HEAD" ? null : seen.body;
        const verdict = await verifyOriginSignature(new Request(seen.url, { method: seen.method, headers: seen.headers, body }), env.ORIGIN_SIGNING_SECRET, {
          replayStore: memoryReplayStore(),
        });
        expect(verdict, "keygate's signature").toEqual({ ok: true, identity: expect.any(Object) });
        await expected.check?.(seen, world);
      } else {
        expect(
          origin.received.map((request) => request.url),
          "requests that reached the origin",
        ).toEqual([]);
      }

      // What storage holds afterwards.
      const after = await snapshot(world, row);
      expect(after.rows, "D1 row counts").toEqual(before.rows);
      const admittedBy = expected.kind === "accepted" ? expected.by : undefined;
      const plusOne = (counters: Record<string, { count: number }>) => (counters.minute?.count ?? 0) + 1;
      if (admittedBy === "api_key") expect(after.key.minute?.count).toBe(plusOne(before.key));
      else expect(after.key, "the key's counters").toEqual(before.key);
      if (admittedBy === "jwt") expect(after.subject.minute?.count).toBe(plusOne(before.subject));
      else expect(after.subject, "the subject's counters").toEqual(before.subject);
      const failures = (counters: Record<string, { count: number }>) => counters.auth_failures?.count ?? 0;
      expect(failures(after.ip), "failed authentications counted for the client address").toBe(
        failures(before.ip) + (isFailedAuthentication(expected) && throttleName(world.ip) ? 1 : 0),
      );
      await row.after?.(world, body);
    },
    ROW_TIMEOUT_MS,
  );
});
