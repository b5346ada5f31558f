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
  | { kind: "accepted"; by: "api_key" | "jwt"; check?: (seen: ReceivedRequest, world: World) => void | Promise<void> };

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
}

const refused = (status: number, code: ErrorCode, fields?: string[]): Expectation => ({ kind: "refused", status, code, fields });
const compact = (status: number, error: string): Expectation => ({ kind: "compact", status, body: { error } });
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
  { name: "the same X-API-Key header twice", request: (w) => ({ headers: [...apiKey(w.key), ...apiKey(w.key)] }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "two X-API-Key headers, valid then junk", request: (w) => ({ headers: [...apiKey(w.key), ...apiKey("junk")] }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
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
  { name: "a JWT sent in X-API-Key", request: async (w) => ({ headers: apiKey(await signToken({ sub: w.subject })) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },

  // --- near-miss keys (format decided without storage) ---
  { name: "the key's prefix upper-cased (ILAL_)", request: (w) => ({ headers: apiKey(w.key.replace("ilal_", "ILAL_")) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "the whole key upper-cased", request: (w) => ({ headers: apiKey(w.key.toUpperCase()) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "capital I for the l of ilal", request: (w) => ({ headers: apiKey(w.key.replace("ilal_", "iIal_")) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "digit 1 for the i of ilal", request: (w) => ({ headers: apiKey(w.key.replace("ilal_", "1lal_")) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "an environment other than live/test", request: () => ({ headers: apiKey(`ilal_prod_${HEX48}`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "one hex character too many", request: (w) => ({ headers: apiKey(`${w.key}0`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "one hex character too few", request: (w) => ({ headers: apiKey(w.key.slice(0, -1)) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a trailing = (base64 padding)", request: (w) => ({ headers: apiKey(`${w.key}=`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a non-hex letter in the random part", request: (w) => ({ headers: apiKey(swapAt(w.key, -5, "g")) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a dash in an ila key", request: () => ({ headers: apiKey(`ila_${swapAt(ALNUM72, 10, "-")}`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "an ila key of 71 characters", request: () => ({ headers: apiKey(`ila_${ALNUM72.slice(1)}`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "an ila key of 73 characters", request: () => ({ headers: apiKey(`ila_${ALNUM72}x`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a key of an unknown format (sk_live_)", request: () => ({ headers: apiKey(`sk_live_${HEX48}`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a well-formed key never issued", request: () => ({ headers: apiKey(`ilal_live_${HEX48}`) }), expect: refused(401, "API_KEY_PREFIX_NOT_FOUND") },
  { name: "the right prefix with a wrong tail", request: (w) => ({ headers: apiKey(swapAt(w.key, -1, w.key.endsWith("0") ? "1" : "0")) }), expect: refused(401, "API_KEY_HASH_MISMATCH") },
  { name: "a live key spelled as test", request: (w) => ({ headers: apiKey(w.key.replace("_live_", "_test_")) }), expect: refused(401, "API_KEY_PREFIX_NOT_FOUND") },
  { name: "a deactivated key", key: { status: "inactive" }, request: (w) => ({ headers: apiKey(w.key) }), expect: refused(401, "API_KEY_INACTIVE") },
  { name: "an expired key", key: { expiresAt: new Date(Date.now() - 1000).toISOString() }, request: (w) => ({ headers: apiKey(w.key) }), expect: refused(401, "API_KEY_EXPIRED") },

  // --- look-alikes (UTF-8 bytes, see the header comment) ---
  { name: "Cyrillic а (UTF-8) for the a of ilal", request: (w) => ({ headers: apiKey(w.key.replace("ilal_", `il${utf8AsBytes("а")}l_`)) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "full-width ０ (UTF-8) in the random part", request: (w) => ({ headers: apiKey(swapAt(w.key, -3, utf8AsBytes("０"))) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "Latin-1 à in the random part", request: (w) => ({ headers: apiKey(swapAt(w.key, -3, "à")) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a soft hyphen (U+00AD) inside the key", request: (w) => ({ headers: apiKey(swapAt(w.key, 12, `${w.key[12]}\u00ad`)) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a zero-width space (UTF-8) after the key", request: (w) => ({ headers: apiKey(`${w.key}${utf8AsBytes("\u200b")}`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a no-break space (U+00A0) after the key", request: (w) => ({ headers: apiKey(`${w.key}\u00a0`) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "a Bearer key with a Cyrillic а (UTF-8) prefix is judged as a JWT", request: (w) => ({ headers: bearer(w.key.replace("ilal_", `il${utf8AsBytes("а")}l_`)) }), expect: refused(401, "JWT_MALFORMED") },

  // --- SQL metacharacters (storage is only ever reached with bound parameters) ---
  { name: "' OR '1'='1 as the key", request: () => ({ headers: apiKey("' OR '1'='1") }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "a quote-and-comment key without spaces", request: () => ({ headers: apiKey("ilal_live_'OR'1'='1'--") }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a stacked DROP TABLE after a real prefix", request: (w) => ({ headers: apiKey(`${w.record.prefix}';DROP/**/TABLE/**/api_keys;--`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
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
  { name: "a 1 MB X-API-Key with a real format prefix", request: () => ({ headers: apiKey(`ilal_live_${"f".repeat(MIB)}`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "a 1 MB Bearer token", request: () => ({ headers: bearer("e".repeat(MIB)) }), expect: refused(401, "JWT_MALFORMED") },
  { name: "a 1 MB Bearer key with a real format prefix", request: () => ({ headers: bearer(`ila_${"A".repeat(MIB)}`) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
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
  { name: "a key without this product", key: { products: ["another-product"] }, request: (w) => ({ headers: apiKey(w.key) }), expect: refused(403, "API_KEY_PRODUCT_FORBIDDEN") },

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
  { name: "Authorization: Basic with the key as user", request: (w) => ({ headers: [["Authorization", `Basic ${btoa(`${w.key}:`)}`]] }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "Authorization: Bearer with no token", request: () => ({ headers: [["Authorization", "Bearer"]] }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "Authorization: Bearer followed by spaces only", request: () => ({ headers: [["Authorization", "Bearer    "]] }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "Authorization: Token <key>", request: (w) => ({ headers: [["Authorization", `Token ${w.key}`]] }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "Authorization: Bearer<TAB><key>", request: (w) => ({ headers: [["Authorization", `Bearer\t${w.key}`]] }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "Authorization: Bearer with two tokens", request: (w) => ({ headers: bearer(`${w.key} ${w.key}`) }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "Authorization: the bare key without a scheme", request: (w) => ({ headers: [["Authorization", w.key]] }), expect: refused(401, "AUTH_HEADER_MALFORMED") },
  { name: "a Bearer key with an upper-cased prefix is judged as a JWT", request: (w) => ({ headers: bearer(w.key.toUpperCase()) }), expect: refused(401, "JWT_MALFORMED") },
  { name: "a Bearer key that is too short", request: (w) => ({ headers: bearer(w.key.slice(0, 20)) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "ACCEPTED: a lower-case bearer scheme (schemes are case-insensitive)", request: (w) => ({ headers: [["Authorization", `bearer ${w.key}`]] }), expect: accepted() },
  { name: "ACCEPTED: several spaces after Bearer", request: (w) => ({ headers: [["Authorization", `Bearer   ${w.key}`]] }), expect: accepted() },

  // --- path tricks ---
  { name: "a prefix look-alike /api/<slug>X", request: (w) => ({ path: `${w.product.pathPrefix}X/r`, headers: apiKey(w.key) }), expect: refused(404, "ROUTE_NOT_FOUND") },
  { name: "an upper-cased /API/ segment", request: (w) => ({ path: `${w.product.pathPrefix.replace("/api/", "/API/")}/r`, headers: apiKey(w.key) }), expect: refused(404, "ROUTE_NOT_FOUND") },
  { name: "an upper-cased slug", request: (w) => ({ path: `/api/${w.product.slug.toUpperCase()}/r`, headers: apiKey(w.key) }), expect: refused(404, "ROUTE_NOT_FOUND") },
  { name: "an encoded slash after the slug (%2F)", request: (w) => ({ path: `${w.product.pathPrefix}%2Fr`, headers: apiKey(w.key) }), expect: refused(400, "PATH_INVALID") },
  { name: "an encoded slash in lower case (%2f)", request: (w) => ({ path: `/api%2f${w.product.slug}/r`, headers: apiKey(w.key) }), expect: refused(400, "PATH_INVALID") },
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
  { name: "an encoded NUL after the slug", request: (w) => ({ path: `${w.product.pathPrefix}%00/r`, headers: apiKey(w.key) }), expect: refused(400, "PATH_INVALID") },
  { name: "/api/<slug>/../other (resolved by the URL parser to /api/other)", request: (w) => ({ path: `${w.product.pathPrefix}/../other`, headers: apiKey(w.key) }), expect: refused(404, "ROUTE_NOT_FOUND") },
  { name: "backslashes as dot segments (/api/<slug>\\..\\other)", request: (w) => ({ path: `${w.product.pathPrefix}\\..\\other`, headers: apiKey(w.key) }), expect: refused(404, "ROUTE_NOT_FOUND") },
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
  { name: "an encoded a in a scoped path (/%61dmin)", product: SCOPED, key: { scopes: ["read"] }, request: (w) => ({ path: `${w.product.pathPrefix}/%61dmin/users`, headers: apiKey(w.key) }), expect: refused(403, "API_KEY_SCOPE_MISSING") },
  { name: "a double slash before a scoped path", product: SCOPED, key: { scopes: ["read"] }, request: (w) => ({ path: `${w.product.pathPrefix}//admin/users`, headers: apiKey(w.key) }), expect: refused(403, "API_KEY_SCOPE_MISSING") },
  { name: "..%2F into a scoped path", product: SCOPED, key: { scopes: ["read"] }, request: (w) => ({ path: `${w.product.pathPrefix}/x/..%2Fadmin/users`, headers: apiKey(w.key) }), expect: refused(400, "PATH_INVALID") },
  { name: "an encoded slash inside a scoped path (admin%2Fusers)", product: SCOPED, key: { scopes: ["read"] }, request: (w) => ({ path: `${w.product.pathPrefix}/admin%2Fusers`, headers: apiKey(w.key) }), expect: refused(400, "PATH_INVALID") },
  { name: "a ./ segment before a scoped path", product: SCOPED, key: { scopes: ["read"] }, request: (w) => ({ path: `${w.product.pathPrefix}/./admin/users`, headers: apiKey(w.key) }), expect: refused(403, "API_KEY_SCOPE_MISSING") },
  { name: "keygate's own path upper-cased (/API/V1/KEYS) is no own endpoint", request: () => ({ path: "/API/V1/KEYS", headers: asAdmin() }), expect: refused(404, "ROUTE_NOT_FOUND") },
  { name: "a dot segment into the admin API without credentials", request: () => ({ path: "/healthz/../api/v1/admin/users" }), expect: refused(401, "AUTH_MISSING") },

  // --- the JWT attack list ---
  {
    name: 'alg "none"',
    request: async (w) => ({ headers: bearer(new UnsecuredJWT({ sub: w.subject, iss: "keygate", aud: "keygate", exp: nowSeconds() + 60 }).encode()) }),
    expect: refused(401, "JWT_ALG_NOT_ALLOWED"),
  },
  { name: 'alg "None" with an empty signature', request: (w) => ({ headers: bearer(unsigned({ alg: "None" }, w)) }), expect: refused(401, "JWT_ALG_NOT_ALLOWED") },
  { name: 'alg "NONE" with an empty signature', request: (w) => ({ headers: bearer(unsigned({ alg: "NONE" }, w)) }), expect: refused(401, "JWT_ALG_NOT_ALLOWED") },
  { name: 'alg "hs256" (lower case)', request: (w) => ({ headers: bearer(unsigned({ alg: "hs256" }, w, "c2ln")) }), expect: refused(401, "JWT_ALG_NOT_ALLOWED") },
  {
    name: "HS/RS confusion: HS256 signed with the gateway's public JWK as the secret",
    request: async (w) => {
      const { d: _d, ...publicJwk } = signingJwk;
      return { headers: bearer(await signToken({ sub: w.subject }, { alg: "HS256", key: new TextEncoder().encode(JSON.stringify(publicJwk)), header: { kid: OWN_KID } })) };
    },
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  {
    name: "HS/EC confusion: HS256 signed with the public key's x coordinate",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject }, { alg: "HS256", key: new TextEncoder().encode(signingJwk.x!) })) }),
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  { name: "RS256 naming the gateway's kid", request: (w) => ({ headers: bearer(unsigned({ alg: "RS256", kid: OWN_KID }, w, "c2ln")) }), expect: refused(401, "JWT_ALG_NOT_ALLOWED") },
  { name: "ES384 (not in JWT_ALGORITHMS)", request: (w) => ({ headers: bearer(unsigned({ alg: "ES384", kid: OWN_KID }, w, "c2ln")) }), expect: refused(401, "JWT_ALG_NOT_ALLOWED") },
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
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject }, { key: (await attacker).privateKey, header: { x5u: `${ORIGIN}/evil.pem` } })) }),
    expect: refused(401, "JWT_SIGNATURE_INVALID"),
  },
  { name: "an unknown kid", request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject }, { header: { kid: "rotated-away" } })) }), expect: refused(401, "JWT_KEY_NOT_FOUND") },
  { name: "a path-traversal kid", request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject }, { header: { kid: "../../../../dev/null" } })) }), expect: refused(401, "JWT_KEY_NOT_FOUND") },
  {
    name: "crit naming an unsupported extension",
    request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID, crit: ["x-custom"], "x-custom": 1 }, claims(w))) }),
    expect: refused(401, "JWT_MALFORMED"),
  },
  { name: "crit naming a parameter the header lacks", request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID, crit: ["exp"] }, claims(w))) }), expect: refused(401, "JWT_MALFORMED") },
  { name: "an empty crit list", request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID, crit: [] }, claims(w))) }), expect: refused(401, "JWT_MALFORMED") },
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
  { name: "an expired token", request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, exp: nowSeconds() - 120 })) }), expect: refused(401, "JWT_EXPIRED") },
  { name: "a token not valid before ten minutes from now", request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, nbf: nowSeconds() + 600 })) }), expect: refused(401, "JWT_NOT_YET_VALID") },
  {
    // RFC 7519 makes only nbf and exp validity bounds; jose checks iat only when a maximum token age is set.
    name: "ACCEPTED: a token whose iat is an hour in the future (iat is not a validity bound)",
    request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, products: ["*"], iat: nowSeconds() + 3600, exp: nowSeconds() + 7200 })) }),
    expect: accepted((seen, w) => expect(seen.headers.get("x-auth-subject")).toBe(w.subject), "jwt"),
  },
  { name: "exp as a string", request: async (w) => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID }, { ...claims(w), exp: String(nowSeconds() + 60) })) }), expect: refused(401, "JWT_CLAIM_INVALID") },
  { name: "no exp claim", request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, exp: undefined })) }), expect: refused(401, "JWT_CLAIM_INVALID") },
  { name: "no sub claim", request: async () => ({ headers: bearer(await signToken({ sub: undefined })) }), expect: refused(401, "JWT_CLAIM_INVALID") },
  { name: "an empty sub claim", request: async () => ({ headers: bearer(await signToken({ sub: "" })) }), expect: refused(401, "JWT_CLAIM_INVALID") },
  { name: "a wrong issuer", request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, iss: "https://evil.example" })) }), expect: refused(401, "JWT_CLAIM_INVALID") },
  { name: "an audience list without keygate", request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, aud: ["a", "b"] })) }), expect: refused(401, "JWT_CLAIM_INVALID") },
  { name: "a payload that is not JSON", request: async () => ({ headers: bearer(await signRawText({ alg: "ES256", kid: OWN_KID }, "not json")) }), expect: refused(401, "JWT_MALFORMED") },
  { name: "a payload that is a JSON array", request: async () => ({ headers: bearer(await signRaw({ alg: "ES256", kid: OWN_KID }, ["sub", "x"])) }), expect: refused(401, "JWT_MALFORMED") },
  { name: "a header that is not base64url", request: () => ({ headers: bearer("!!!.e30.c2ln") }), expect: refused(401, "JWT_MALFORMED") },
  { name: "a four-part token", request: async (w) => ({ headers: bearer(`${await signToken({ sub: w.subject })}.extra`) }), expect: refused(401, "JWT_MALFORMED") },
  { name: "a five-part (JWE-shaped) token", request: () => ({ headers: bearer(`${b64url({ alg: "dir", enc: "A256GCM" })}..aXY.Y2lwaGVy.dGFn`) }), expect: refused(401, "JWT_MALFORMED") },
  { name: "a token over 8 KiB", request: async (w) => ({ headers: bearer(await signToken({ sub: w.subject, pad: "x".repeat(8200) })) }), expect: refused(401, "JWT_MALFORMED") },

  // --- compact error format: exact bodies ---
  { name: "compact: no credentials", product: { errorFormat: "compact" }, request: () => ({}), expect: compact(401, "No API key provided") },
  { name: "compact: a malformed key", product: { errorFormat: "compact" }, request: (w) => ({ headers: apiKey(`${w.key}0`) }), expect: compact(401, "Invalid or inactive API key") },
  { name: "compact: a key never issued", product: { errorFormat: "compact" }, request: () => ({ headers: apiKey(`ilal_live_${HEX48}`) }), expect: compact(401, "Invalid or inactive API key") },
  { name: "compact: a wrong tail", product: { errorFormat: "compact" }, request: (w) => ({ headers: apiKey(swapAt(w.key, -1, w.key.endsWith("0") ? "1" : "0")) }), expect: compact(401, "Invalid or inactive API key") },
  { name: "compact: two keys in one header", product: { errorFormat: "compact" }, request: (w) => ({ headers: apiKey(`${w.key},${w.key}`) }), expect: compact(401, "Invalid or inactive API key") },
  { name: "compact: a key without the product", product: { errorFormat: "compact" }, key: { products: [] }, request: (w) => ({ headers: apiKey(w.key) }), expect: compact(403, "Your API key does not have access to this product") },

  // --- malformed management bodies (as admin) ---
  { name: "POST /api/v1/keys: name as a number", request: () => adminPost("/api/v1/keys", { name: 42 }), expect: refused(400, "VALIDATION_FAILED", ["name"]) },
  { name: "POST /api/v1/keys: an unknown field isAdmin", request: () => adminPost("/api/v1/keys", { name: "k", isAdmin: true }), expect: refused(400, "VALIDATION_FAILED", ["isAdmin"]) },
  { name: "POST /api/v1/keys: a __proto__ member", request: () => adminPost("/api/v1/keys", '{"name":"k","__proto__":{"status":"active","isAdmin":true}}'), expect: refused(400, "VALIDATION_FAILED", ["__proto__"]) },
  { name: "POST /api/v1/keys: a CIDR with two lengths", request: () => adminPost("/api/v1/keys", { name: "k", ipAllowlist: ["10.0.0.0/8/16"] }), expect: refused(400, "VALIDATION_FAILED", ["ipAllowlist.0"]) },
  { name: "POST /api/v1/keys: an IPv6 /129", request: () => adminPost("/api/v1/keys", { name: "k", ipAllowlist: ["2001:db8::/129"] }), expect: refused(400, "VALIDATION_FAILED", ["ipAllowlist.0"]) },
  { name: "POST /api/v1/keys: an octet with a leading zero", request: () => adminPost("/api/v1/keys", { name: "k", ipAllowlist: ["10.0.0.010"] }), expect: refused(400, "VALIDATION_FAILED", ["ipAllowlist.0"]) },
  { name: "POST /api/v1/keys: ipAllowlist as a string", request: () => adminPost("/api/v1/keys", { name: "k", ipAllowlist: "10.0.0.1" }), expect: refused(400, "VALIDATION_FAILED", ["ipAllowlist"]) },
  { name: "POST /api/v1/keys: month 13", request: () => adminPost("/api/v1/keys", { name: "k", expiresAt: "2031-13-01T00:00:00Z" }), expect: refused(400, "VALIDATION_FAILED", ["expiresAt"]) },
  { name: "POST /api/v1/keys: a date without a time", request: () => adminPost("/api/v1/keys", { name: "k", expiresAt: "2031-01-01" }), expect: refused(400, "VALIDATION_FAILED", ["expiresAt"]) },
  { name: "POST /api/v1/keys: a negative per-minute limit", request: () => adminPost("/api/v1/keys", { name: "k", rateLimitPerMinute: -1 }), expect: refused(400, "VALIDATION_FAILED", ["rateLimitPerMinute"]) },
  { name: "POST /api/v1/keys: a per-day limit over the maximum", request: () => adminPost("/api/v1/keys", { name: "k", rateLimitPerDay: 1e12 }), expect: refused(400, "VALIDATION_FAILED", ["rateLimitPerDay"]) },
  { name: "POST /api/v1/keys: an infinite limit (1e999)", request: () => adminPost("/api/v1/keys", '{"name":"k","rateLimitPerMinute":1e999}'), expect: refused(400, "VALIDATION_FAILED", ["rateLimitPerMinute"]) },
  { name: "POST /api/v1/keys: a product slug with ../", request: () => adminPost("/api/v1/keys", { name: "k", products: ["../admin"] }), expect: refused(400, "VALIDATION_FAILED", ["products.0"]) },
  { name: "POST /api/v1/keys: an env for an ila key", request: () => adminPost("/api/v1/keys", { name: "k", format: "ila", env: "test" }), expect: refused(400, "VALIDATION_FAILED", ["env"]) },
  { name: "POST /api/v1/keys: an owner that does not exist", request: () => adminPost("/api/v1/keys", { name: "k", ownerId: "no-such-user" }), expect: refused(400, "VALIDATION_FAILED", ["ownerId"]) },
  { name: "POST /api/v1/keys: a JSON array body", request: () => adminPost("/api/v1/keys", "[]"), expect: refused(400, "VALIDATION_FAILED", [""]) },
  { name: "POST /api/v1/keys: a JSON null body", request: () => adminPost("/api/v1/keys", "null"), expect: refused(400, "VALIDATION_FAILED", [""]) },
  { name: "POST /api/v1/keys: a truncated JSON body", request: () => adminPost("/api/v1/keys", '{"name":'), expect: refused(400, "VALIDATION_FAILED") },
  { name: "POST /api/v1/admin/products: an upper-case slug", request: () => adminPost("/api/v1/admin/products", validProduct({ slug: "Bad_Slug" })), expect: refused(400, "VALIDATION_FAILED", ["slug"]) },
  { name: "POST /api/v1/admin/products: keygate's own path as prefix", request: () => adminPost("/api/v1/admin/products", validProduct({ pathPrefix: "/api/v1/keys" })), expect: refused(400, "VALIDATION_FAILED", ["pathPrefix"]) },
  { name: "POST /api/v1/admin/products: a dot segment in the prefix", request: () => adminPost("/api/v1/admin/products", validProduct({ pathPrefix: "/x/../api/v1/keys" })), expect: refused(400, "VALIDATION_FAILED", ["pathPrefix"]) },
  { name: "POST /api/v1/admin/products: a javascript: origin", request: () => adminPost("/api/v1/admin/products", validProduct({ originUrl: "javascript:alert(1)" })), expect: refused(400, "VALIDATION_FAILED", ["originUrl"]) },
  { name: "POST /api/v1/admin/products: a file: origin", request: () => adminPost("/api/v1/admin/products", validProduct({ originUrl: "file:///etc/passwd" })), expect: refused(400, "VALIDATION_FAILED", ["originUrl"]) },
  { name: "POST /api/v1/admin/products: a negative limit", request: () => adminPost("/api/v1/admin/products", validProduct({ rateLimitPerMinute: -5 })), expect: refused(400, "VALIDATION_FAILED", ["rateLimitPerMinute"]) },
  { name: "POST /api/v1/admin/products: no auth methods", request: () => adminPost("/api/v1/admin/products", validProduct({ authMethods: [] })), expect: refused(400, "VALIDATION_FAILED", ["authMethods"]) },
  { name: "POST /api/v1/admin/products: an unknown auth method", request: () => adminPost("/api/v1/admin/products", validProduct({ authMethods: ["password"] })), expect: refused(400, "VALIDATION_FAILED", ["authMethods.0"]) },
  { name: "POST /api/v1/admin/products: errorFormat html", request: () => adminPost("/api/v1/admin/products", validProduct({ errorFormat: "html" })), expect: refused(400, "VALIDATION_FAILED", ["errorFormat"]) },
  { name: "POST /api/v1/admin/products: stripPrefix as a string", request: () => adminPost("/api/v1/admin/products", validProduct({ stripPrefix: "yes" })), expect: refused(400, "VALIDATION_FAILED", ["stripPrefix"]) },
  { name: "POST /api/v1/admin/products: a scope rule with a space in the scope", request: () => adminPost("/api/v1/admin/products", validProduct({ scopeRules: [{ scope: "a b" }] })), expect: refused(400, "VALIDATION_FAILED", ["scopeRules.0.scope"]) },
  { name: "POST /api/v1/admin/products: a scope rule method with a path in it", request: () => adminPost("/api/v1/admin/products", validProduct({ scopeRules: [{ method: "GET /", scope: "x" }] })), expect: refused(400, "VALIDATION_FAILED", ["scopeRules.0.method"]) },
  { name: "POST /api/v1/admin/products: an id chosen by the client", request: () => adminPost("/api/v1/admin/products", validProduct({ id: "chosen" })), expect: refused(400, "VALIDATION_FAILED", ["id"]) },
  { name: "POST /api/v1/admin/products: a slug that exists", request: (w) => adminPost("/api/v1/admin/products", validProduct({ slug: w.product.slug })), expect: refused(409, "CONFLICT") },
  { name: "POST /api/v1/admin/products: a path prefix that exists", request: (w) => adminPost("/api/v1/admin/products", validProduct({ pathPrefix: w.product.pathPrefix })), expect: refused(409, "CONFLICT") },
  { name: "POST /api/v1/admin/users: an invalid email", request: () => adminPost("/api/v1/admin/users", { email: "not-an-email", password: "long-enough-1" }), expect: refused(400, "VALIDATION_FAILED", ["email"]) },
  { name: "POST /api/v1/admin/users: a header injection in the email", request: () => adminPost("/api/v1/admin/users", { email: "a@example.com\r\nBcc: x@example.com", password: "long-enough-1" }), expect: refused(400, "VALIDATION_FAILED", ["email"]) },
  { name: "POST /api/v1/admin/users: a 7-character password", request: () => adminPost("/api/v1/admin/users", { email: `${uniqueSlug("u")}@example.com`, password: "short77" }), expect: refused(400, "VALIDATION_FAILED", ["password"]) },
  { name: "POST /api/v1/admin/users: a 1025-character password", request: () => adminPost("/api/v1/admin/users", { email: `${uniqueSlug("u")}@example.com`, password: "p".repeat(1025) }), expect: refused(400, "VALIDATION_FAILED", ["password"]) },
  { name: "POST /api/v1/admin/users: role root", request: () => adminPost("/api/v1/admin/users", { email: `${uniqueSlug("u")}@example.com`, password: "long-enough-1", role: "root" }), expect: refused(400, "VALIDATION_FAILED", ["role"]) },
  { name: "POST /api/v1/admin/users: a passwordHash field", request: () => adminPost("/api/v1/admin/users", { email: `${uniqueSlug("u")}@example.com`, password: "long-enough-1", passwordHash: "pbkdf2-sha256$1$AA$AA" }), expect: refused(400, "VALIDATION_FAILED", ["passwordHash"]) },
  {
    name: "POST /api/v1/admin/users: an email that exists, in other case",
    before: async (w) => void (await createUser({ email: `${w.product.slug}@example.com` })),
    request: (w) => adminPost("/api/v1/admin/users", { email: `${w.product.slug.toUpperCase()}@example.com`, password: "long-enough-1" }),
    expect: refused(409, "CONFLICT"),
  },
  { name: "PATCH /api/v1/keys/:id: status revoked (only DELETE revokes)", request: (w) => ({ ...adminPost(`/api/v1/keys/${w.record.id}`, { status: "revoked" }), method: "PATCH" }), expect: refused(400, "VALIDATION_FAILED", ["status"]) },
  { name: "PATCH /api/v1/keys/:id: an empty body", request: (w) => ({ ...adminPost(`/api/v1/keys/${w.record.id}`, {}), method: "PATCH" }), expect: refused(400, "VALIDATION_FAILED", [""]) },
  { name: "POST /api/v1/keys/:id/rotate: a negative grace period", request: (w) => adminPost(`/api/v1/keys/${w.record.id}/rotate`, { gracePeriodSeconds: -1 }), expect: refused(400, "VALIDATION_FAILED", ["gracePeriodSeconds"]) },

  // --- management calls by the wrong caller ---
  {
    name: "a plain user's JWT creating a product",
    request: async () => ({ ...adminPost("/api/v1/admin/products", validProduct()), headers: [...Object.entries(await userToken((await createUser()).user)), ["Content-Type", "application/json"]] }),
    expect: refused(403, "FORBIDDEN"),
  },
  {
    name: "a plain user's JWT giving their key a rate limit",
    request: async () => ({ ...adminPost("/api/v1/keys", { name: "k", rateLimitPerMinute: 1_000_000 }), headers: [...Object.entries(await userToken((await createUser()).user)), ["Content-Type", "application/json"]] }),
    expect: refused(403, "FORBIDDEN"),
  },
  { name: "an API key creating keys", request: (w) => ({ ...adminPost("/api/v1/keys", { name: "k" }), headers: [...apiKey(w.key), ["Content-Type", "application/json"]] }), expect: refused(403, "FORBIDDEN") },
  { name: "a wrong admin token", request: () => ({ ...adminPost("/api/v1/admin/users", {}), headers: [...bearer(`${env.ADMIN_TOKEN}x`), ["Content-Type", "application/json"]] }), expect: refused(401, "JWT_MALFORMED") },
  { name: "the admin token in X-API-Key", request: () => ({ path: "/api/v1/admin/users", headers: apiKey(env.ADMIN_TOKEN) }), expect: refused(401, "API_KEY_FORMAT_INVALID") },
  { name: "the admin token beside a junk X-API-Key (X-API-Key is exclusive)", request: () => ({ path: "/api/v1/admin/users", headers: [...asAdmin(), ...apiKey("junk")] }), expect: refused(401, "API_KEY_FORMAT_INVALID") },

  // --- login: malformed bodies and brute force ---
  { name: "POST /auth/login without a password", request: () => ({ method: "POST", path: "/auth/login", ...jsonBody({ email: "a@example.com" }) }), expect: refused(400, "VALIDATION_FAILED", ["password"]) },
  { name: "POST /auth/login with a numeric email", request: () => ({ method: "POST", path: "/auth/login", ...jsonBody({ email: 7, password: "x" }) }), expect: refused(400, "VALIDATION_FAILED", ["email"]) },
  { name: "POST /auth/login with a 2 KB password", request: () => ({ method: "POST", path: "/auth/login", ...jsonBody({ email: "a@example.com", password: "p".repeat(2048) }) }), expect: refused(400, "VALIDATION_FAILED", ["password"]) },
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
  return index % 2 === 0 ? `198.51.100.${index / 2 + 1}` : `2001:db8:${index.toString(16)}::1`;
}

async function buildWorld(row: Row, index: number): Promise<World> {
  const product = await createProduct(row.product);
  const { key, record } = await createKey(row.key);
  return { product, key, record, ip: clientIp(index), subject: `catalogue-${crypto.randomUUID()}` };
}

async function snapshot(world: World) {
  return {
    rows: Object.fromEntries(await Promise.all(TABLES.map(async (table) => [table, await rowCount(table)] as const))),
    key: await storedCounters(`key:${world.record.id}`),
    subject: await storedCounters(`user:${world.subject}`),
    ip: await storedCounters(throttleName(world.ip)!),
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
  if (expected.kind === "accepted") return false;
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
    expect(CATALOGUE.length).toBeGreaterThanOrEqual(100);
    expect(new Set(CATALOGUE.map((row) => row.name)).size).toBe(CATALOGUE.length);
  });

  it.each(CATALOGUE.map((row, index) => ({ ...row, index })))("#$index $name", async (row) => {
    origin = stubOrigin(row.originReply);
    const world = await buildWorld(row, row.index);
    await row.before?.(world);
    const probe = await row.request(world);
    const before = await snapshot(world);
    origin.received.length = 0;

    const response = await exports.default.fetch(toRequest(probe, world));
    const text = await response.text();
    const body = JSON.parse(text) as Record<string, any>;
    const expected = row.expect;
    const requestId = response.headers.get("x-request-id");

    // What the client sees.
    expect(response.headers.get("content-type"), text.slice(0, 300)).toMatch(/^application\/json\b/);
    expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    for (const credential of presentedCredentials(probe)) expect(text.includes(credential), "the body repeats the credential").toBe(false);
    if (expected.kind === "refused") {
      expect({ status: response.status, code: body.code }, text.slice(0, 500)).toEqual({ status: expected.status, code: expected.code });
      expect(body.requestId).toBe(requestId);
      if (expected.fields) expect(body.fields.map((field: { path: string }) => field.path), text).toEqual(expect.arrayContaining(expected.fields));
    } else if (expected.kind === "compact") {
      expect(response.status, text).toBe(expected.status);
      expect(body).toEqual(expected.body);
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
      expect(origin.received.map((request) => request.url), "requests that reached the origin").toEqual([]);
    }

    // What storage holds afterwards.
    const after = await snapshot(world);
    expect(after.rows, "D1 row counts").toEqual(before.rows);
    const admittedBy = expected.kind === "accepted" ? expected.by : undefined;
    const plusOne = (counters: Record<string, { count: number }>) => (counters.minute?.count ?? 0) + 1;
    if (admittedBy === "api_key") expect(after.key.minute?.count).toBe(plusOne(before.key));
    else expect(after.key, "the key's counters").toEqual(before.key);
    if (admittedBy === "jwt") expect(after.subject.minute?.count).toBe(plusOne(before.subject));
    else expect(after.subject, "the subject's counters").toEqual(before.subject);
    const failures = (counters: Record<string, { count: number }>) => counters.auth_failures?.count ?? 0;
    expect(failures(after.ip), "failed authentications counted for the client address").toBe(failures(before.ip) + (isFailedAuthentication(expected) ? 1 : 0));
  }, ROW_TIMEOUT_MS);
});
