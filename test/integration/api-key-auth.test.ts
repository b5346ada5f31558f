import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { keyPrefix } from "../../src/auth/key-format";
import type { Product } from "../../src/db/products";
import { expectCompactRefusal, expectForwarded, expectRefusal } from "../helpers/expect";
import { createKey, createProduct, send } from "../helpers/harness";
import { storedCounters } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";

/**
 * SPEC sections 1–4 for API keys, as a client sees them: which header wins,
 * every refusal code in the check order, both error formats, and that nothing
 * refused ever reaches the origin.
 */

const origin = useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
});

/** Another well-formed key with the same 8-character lookup prefix. */
function sibling(key: string): string {
  const last = key.at(-1) === "0" ? "1" : "0";
  return key.slice(0, -1) + last;
}

/** A well-formed key whose prefix no row has. */
function unknownKey(key: string): string {
  const prefixEnd = keyPrefix(key).length;
  const flipped = key[prefixEnd - 1] === "0" ? "1" : "0";
  return key.slice(0, prefixEnd - 1) + flipped + key.slice(prefixEnd);
}

/** SQL that touched api_keys during the calls run by `act`. */
async function keyQueriesDuring(act: () => Promise<unknown>): Promise<string[]> {
  const prepare = vi.spyOn(env.DB, "prepare");
  await act();
  const sql = prepare.mock.calls.map(([statement]) => statement).filter((statement) => /api_keys/i.test(statement));
  prepare.mockRestore();
  return sql;
}

describe("which header carries the credential", () => {
  it("accepts a valid key in X-API-Key and forwards with its identity", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    await expectForwarded(await send(`${product.pathPrefix}/hello`, { key }), { keyId: record.id });
  });

  it("uses X-API-Key exclusively: a failing X-API-Key is the answer even beside a valid Bearer key", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const bad = unknownKey(key);
    const response = await send(`${product.pathPrefix}/hello`, { headers: { "X-API-Key": bad, Authorization: `Bearer ${key}` } });
    await expectRefusal(response, 401, "API_KEY_PREFIX_NOT_FOUND", { presented: bad });
  });

  it("does not fall back to Authorization when X-API-Key is empty", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const headers = new Headers({ Authorization: `Bearer ${key}` });
    headers.set("X-API-Key", "");
    await expectRefusal(await send(`${product.pathPrefix}/hello`, { headers }), 401, "AUTH_HEADER_MALFORMED", { presented: key });
  });

  it("treats a Bearer token with a key prefix as an API key", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    await expectForwarded(await send(`${product.pathPrefix}/hello`, { key, keyAs: "bearer" }), { keyId: record.id });
  });

  it("judges a Bearer token with a key prefix as a key, not a JWT, when it fails", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/hello`, { key: sibling(key), keyAs: "bearer" });
    await expectRefusal(response, 401, "API_KEY_HASH_MISMATCH", { presented: sibling(key) });
  });

  it("treats any other Bearer token as a JWT and refuses a bad one with a JWT_* 401", async () => {
    const product = await createProduct();
    const token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.c2lnbmF0dXJl";
    const response = await send(`${product.pathPrefix}/hello`, { jwt: token });
    await expectRefusal(response, 401, /^JWT_/, { presented: token });
  });

  it("ignores whitespace around a key in either header", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    await expectForwarded(await send(`${product.pathPrefix}/a`, { key: `  ${key} \t` }), { keyId: record.id });
    origin.received.length = 0;
    await expectForwarded(await send(`${product.pathPrefix}/b`, { headers: { Authorization: `\t Bearer ${key}  ` } }), { keyId: record.id });
  });
});

describe("AUTH_MISSING and AUTH_HEADER_MALFORMED", () => {
  it("answers AUTH_MISSING when neither header is sent", async () => {
    const product = await createProduct();
    const body = await expectRefusal(await send(`${product.pathPrefix}/hello`), 401, "AUTH_MISSING");
    expect(body.error).toBe("Unauthorized");
  });

  const malformedXApiKey: [string, (key: string) => Headers][] = [
    ["an empty X-API-Key", () => new Headers({ "X-API-Key": "" })],
    ["a whitespace-only X-API-Key", () => new Headers({ "X-API-Key": "   \t  " })],
    [
      "a duplicated X-API-Key (joined with a comma)",
      (key) => {
        const headers = new Headers();
        headers.append("X-API-Key", key);
        headers.append("X-API-Key", key);
        return headers;
      },
    ],
    ["a tab inside the key", (key) => new Headers({ "X-API-Key": `${key.slice(0, 14)}\t${key.slice(14)}` })],
    ["a control character inside the key", (key) => new Headers({ "X-API-Key": `${key.slice(0, 14)}\x01${key.slice(14)}` })],
    ["two keys separated by a space", (key) => new Headers({ "X-API-Key": `${key} ${key}` })],
  ];

  it.each(malformedXApiKey)("refuses %s as AUTH_HEADER_MALFORMED", async (_label, headers) => {
    const product = await createProduct();
    const { key } = await createKey();
    await expectRefusal(await send(`${product.pathPrefix}/hello`, { headers: headers(key) }), 401, "AUTH_HEADER_MALFORMED", { presented: key });
  });

  const malformedAuthorization: [string, (key: string) => Headers][] = [
    ["the Basic scheme", () => new Headers({ Authorization: `Basic ${btoa("user:pass")}` })],
    ["a bare key without a scheme", (key) => new Headers({ Authorization: key })],
    ["Bearer with an empty token", () => new Headers({ Authorization: "Bearer" })],
    ["Bearer with a blank token", () => new Headers({ Authorization: "Bearer    " })],
    ["two bearer tokens", (key) => new Headers({ Authorization: `Bearer ${key} ${key}` })],
    [
      "a duplicated Authorization header",
      (key) => {
        const headers = new Headers();
        headers.append("Authorization", `Bearer ${key}`);
        headers.append("Authorization", `Bearer ${key}`);
        return headers;
      },
    ],
    ["a control character inside the token", (key) => new Headers({ Authorization: `Bearer ${key.slice(0, 14)}\x7f${key.slice(14)}` })],
  ];

  it.each(malformedAuthorization)("refuses %s as AUTH_HEADER_MALFORMED", async (_label, headers) => {
    const product = await createProduct();
    const { key } = await createKey();
    await expectRefusal(await send(`${product.pathPrefix}/hello`, { headers: headers(key) }), 401, "AUTH_HEADER_MALFORMED", { presented: key });
  });
});

describe("key verification in the SPEC order", () => {
  const hex48 = "0123456789abcdef".repeat(3);
  const formatInvalid: [string, string][] = [
    ["uppercase hex", `ilal_live_${hex48.toUpperCase()}`],
    ["47 hex characters", `ilal_live_${hex48.slice(1)}`],
    ["49 hex characters", `ilal_live_${hex48}0`],
    ["an unknown environment", `ilal_prod_${hex48}`],
    ["a short ila key", `ila_${"Ab3".repeat(20)}`],
    ["an unknown prefix", `sk_live_${hex48}`],
  ];

  it.each(formatInvalid)("refuses %s as API_KEY_FORMAT_INVALID without touching D1", async (_label, key) => {
    const product = await createProduct();
    await send(`${product.pathPrefix}/warm`); // loads the product list, so only key SQL could follow
    const sql = await keyQueriesDuring(async () => {
      await expectRefusal(await send(`${product.pathPrefix}/hello`, { key }), 401, "API_KEY_FORMAT_INVALID", { presented: key });
    });
    expect(sql).toEqual([]);
  });

  it("refuses a malformed key sent as a Bearer token with API_KEY_FORMAT_INVALID, not a JWT error", async () => {
    const product = await createProduct();
    const key = `ilal_test_${"A".repeat(48)}`;
    const sql = await keyQueriesDuring(async () => {
      await expectRefusal(await send(`${product.pathPrefix}/hello`, { key, keyAs: "bearer" }), 401, "API_KEY_FORMAT_INVALID", { presented: key });
    });
    expect(sql).toEqual([]);
  });

  it("looks a well-formed key up by its prefix (the spy sees the lookup)", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const bad = unknownKey(key);
    const sql = await keyQueriesDuring(async () => {
      await expectRefusal(await send(`${product.pathPrefix}/hello`, { key: bad }), 401, "API_KEY_PREFIX_NOT_FOUND", { presented: bad });
    });
    expect(sql).toHaveLength(1);
  });

  it.each(["ilal", "ila"] as const)("answers API_KEY_PREFIX_NOT_FOUND for an %s key no row has", async (format) => {
    const product = await createProduct();
    const { key } = await createKey({ format });
    const bad = unknownKey(key);
    const body = await expectRefusal(await send(`${product.pathPrefix}/hello`, { key: bad }), 401, "API_KEY_PREFIX_NOT_FOUND", { presented: bad });
    expect(body.message).toBe("API key not found");
  });

  it.each(["ilal", "ila"] as const)("answers API_KEY_HASH_MISMATCH for an %s key sharing a real key's prefix", async (format) => {
    const product = await createProduct();
    const { key } = await createKey({ format });
    const impostor = sibling(key);
    expect(keyPrefix(impostor)).toBe(keyPrefix(key));
    const body = await expectRefusal(await send(`${product.pathPrefix}/hello`, { key: impostor }), 401, "API_KEY_HASH_MISMATCH", { presented: impostor });
    expect(body).toMatchObject({
      error: "Unauthorized",
      message: "API Key hash verification failed",
      hint: "Ensure you are using the exact key returned at creation time",
    });
  });

  it.each(["inactive", "revoked"] as const)("answers API_KEY_INACTIVE for a %s key", async (status) => {
    const product = await createProduct();
    const { key } = await createKey({ status });
    await expectRefusal(await send(`${product.pathPrefix}/hello`, { key }), 401, "API_KEY_INACTIVE", { presented: key });
  });

  it("answers API_KEY_EXPIRED once expires_at is in the past", async () => {
    const product = await createProduct();
    const { key } = await createKey({ expiresAt: new Date(Date.now() - 1000).toISOString() });
    await expectRefusal(await send(`${product.pathPrefix}/hello`, { key }), 401, "API_KEY_EXPIRED", { presented: key });
  });

  it("answers API_KEY_EXPIRED once a rotated key's grace_until is in the past", async () => {
    const product = await createProduct();
    const { record: successor } = await createKey();
    const { key } = await createKey({ rotatedTo: successor.id, graceUntil: new Date(Date.now() - 1000).toISOString() });
    await expectRefusal(await send(`${product.pathPrefix}/hello`, { key }), 401, "API_KEY_EXPIRED", { presented: key });
  });

  it("still admits a key whose expiry and grace are in the future", async () => {
    const product = await createProduct();
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const { record: successor } = await createKey();
    const { key, record } = await createKey({ expiresAt: future, rotatedTo: successor.id, graceUntil: future });
    await expectForwarded(await send(`${product.pathPrefix}/hello`, { key }), { keyId: record.id });
  });

  it("checks status before expiry", async () => {
    const product = await createProduct();
    const { key } = await createKey({ status: "revoked", expiresAt: new Date(Date.now() - 1000).toISOString() });
    await expectRefusal(await send(`${product.pathPrefix}/hello`, { key }), 401, "API_KEY_INACTIVE", { presented: key });
  });

  it("checks expiry before the IP allowlist, the product and scopes", async () => {
    const product = await createProduct({ scopeRules: [{ scope: "needed" }] });
    const { key } = await createKey({
      expiresAt: new Date(Date.now() - 1000).toISOString(),
      ipAllowlist: ["192.0.2.1"],
      products: ["elsewhere"],
      scopes: [],
    });
    await expectRefusal(await send(`${product.pathPrefix}/hello`, { key, ip: "198.51.100.1" }), 401, "API_KEY_EXPIRED", { presented: key });
  });

  it("checks the IP allowlist before product access, and product access before scopes", async () => {
    const product = await createProduct({ scopeRules: [{ scope: "needed" }] });
    const { key } = await createKey({ ipAllowlist: ["192.0.2.1"], products: ["elsewhere"], scopes: [] });
    await expectRefusal(await send(`${product.pathPrefix}/a`, { key, ip: "198.51.100.1" }), 403, "IP_NOT_ALLOWED", { presented: key });
    await expectRefusal(await send(`${product.pathPrefix}/b`, { key, ip: "192.0.2.1" }), 403, "API_KEY_PRODUCT_FORBIDDEN", { presented: key });
  });
});

describe("AUTH_BACKEND_UNAVAILABLE", () => {
  /** D1 fails for statements matching `sql`, as during an outage; everything else is real. */
  function failD1For(sql: RegExp): void {
    const prepare = env.DB.prepare.bind(env.DB);
    vi.spyOn(env.DB, "prepare").mockImplementation((statement: string) => {
      if (sql.test(statement)) throw new Error("D1_ERROR: simulated outage");
      return prepare(statement);
    });
  }

  it("answers 503, not a 401, when the key lookup fails and nothing is cached", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const product = await createProduct();
    const { key } = await createKey();
    await send(`${product.pathPrefix}/warm`); // the product list is cached; only the key lookup will fail
    failD1For(/api_keys/);
    const body = await expectRefusal(await send(`${product.pathPrefix}/hello`, { key }), 503, "AUTH_BACKEND_UNAVAILABLE", { presented: key });
    expect(body.error).toBe("Service Unavailable");
  });

  it("answers 503 when the product list cannot be read", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const product = await createProduct(); // invalidates the cached product list
    const { key } = await createKey();
    failD1For(/FROM products/);
    await expectRefusal(await send(`${product.pathPrefix}/hello`, { key }), 503, "AUTH_BACKEND_UNAVAILABLE", { presented: key });
  });

  it("keeps admitting a key whose row is cached while D1 is down", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    await expectForwarded(await send(`${product.pathPrefix}/first`, { key }), { keyId: record.id });
    origin.received.length = 0;
    failD1For(/./);
    await expectForwarded(await send(`${product.pathPrefix}/second`, { key }), { keyId: record.id });
  });
});

describe("IP_NOT_ALLOWED", () => {
  const cases: [string, string[], string, string | null][] = [
    ["an IPv4 CIDR range", ["198.51.100.0/24"], "198.51.100.77", "198.51.101.77"],
    ["an IPv6 CIDR range", ["2001:db8:1234::/48"], "2001:db8:1234:ff::9", "2001:db8:1235::9"],
    ["an exact IPv4 address", ["203.0.113.9"], "203.0.113.9", "203.0.113.10"],
    ["an exact IPv6 address", ["2001:db8::42"], "2001:db8:0:0:0:0:0:42", "2001:db8::43"],
    ["any allowlist, when CF-Connecting-IP is missing", ["0.0.0.0/0", "::/0"], "192.0.2.200", null],
  ];

  it.each(cases)("admits an address inside %s and refuses one outside", async (_label, allowlist, inside, outside) => {
    const product = await createProduct();
    const { key, record } = await createKey({ ipAllowlist: allowlist });
    const refused = await send(`${product.pathPrefix}/out`, { key, ip: outside });
    const body = await expectRefusal(refused, 403, "IP_NOT_ALLOWED", { presented: key });
    expect(body.error).toBe("Forbidden");
    await expectForwarded(await send(`${product.pathPrefix}/in`, { key, ip: inside }), { keyId: record.id });
  });

  it("ignores a client-sent X-Forwarded-For when judging the address", async () => {
    const product = await createProduct();
    const { key } = await createKey({ ipAllowlist: ["203.0.113.9"] });
    const response = await send(`${product.pathPrefix}/hello`, { key, headers: { "X-Forwarded-For": "203.0.113.9" }, ip: "198.51.100.1" });
    await expectRefusal(response, 403, "IP_NOT_ALLOWED", { presented: key });
  });
});

describe("API_KEY_PRODUCT_FORBIDDEN", () => {
  it("refuses a key whose product list lacks the product", async () => {
    const product = await createProduct();
    const other = await createProduct();
    const { key } = await createKey({ products: [other.slug] });
    const body = await expectRefusal(await send(`${product.pathPrefix}/hello`, { key }), 403, "API_KEY_PRODUCT_FORBIDDEN", { presented: key });
    expect(body.message).toBe("Your API key does not have access to this product");
  });

  it("admits a key listing the product by slug, and one with *", async () => {
    const product = await createProduct();
    const listed = await createKey({ products: ["unrelated", product.slug] });
    await expectForwarded(await send(`${product.pathPrefix}/a`, { key: listed.key }), { keyId: listed.record.id });
    origin.received.length = 0;
    const all = await createKey({ products: ["*"] });
    await expectForwarded(await send(`${product.pathPrefix}/b`, { key: all.key }), { keyId: all.record.id });
  });

  it("answers the compact message exactly on a compact product", async () => {
    const product = await createProduct({ errorFormat: "compact" });
    const { key } = await createKey({ products: [] });
    await expectCompactRefusal(await send(`${product.pathPrefix}/hello`, { key }), 403, "Your API key does not have access to this product", {
      presented: key,
    });
  });
});

describe("API_KEY_SCOPE_MISSING", () => {
  let product: Product;
  beforeEach(async () => {
    product = await createProduct({
      scopeRules: [
        { method: "POST", path: "/swap", scope: "defi:swap" },
        { path: "/admin/**", scope: "defi:admin" },
        { method: "GET", path: "/quotes/*", scope: "defi:read" },
      ],
    });
  });

  it("refuses a call whose method and path need a scope the key lacks, naming the scope", async () => {
    const { key } = await createKey({ scopes: ["defi:read"] });
    const body = await expectRefusal(await send(`${product.pathPrefix}/swap`, { key, method: "POST", body: "{}" }), 403, "API_KEY_SCOPE_MISSING", {
      presented: key,
    });
    expect(body.requiredScope).toBe("defi:swap");
  });

  it("applies a ** glob across path segments", async () => {
    const { key } = await createKey({ scopes: ["defi:read"] });
    const body = await expectRefusal(await send(`${product.pathPrefix}/admin/users/1`, { key }), 403, "API_KEY_SCOPE_MISSING", { presented: key });
    expect(body.requiredScope).toBe("defi:admin");
  });

  it.each([
    ["an encoded slash", "/admin%2Fusers"],
    ["an encoded slash and dot-dot", "/public/..%2Fadmin/users"],
    ["a matrix parameter", "/admin;x/users"],
    ["an encoded backslash", "/admin%5Cusers"],
    ["double encoding", "/%2561dmin/users"],
  ])("refuses a path spelled with %s as 400 PATH_INVALID, before storage and quota", async (_label, path) => {
    const { key, record } = await createKey({ scopes: ["defi:read"] });
    await expectRefusal(await send(`${product.pathPrefix}${path}`, { key }), 400, "PATH_INVALID", { presented: key });
    expect(await storedCounters(`key:${record.id}`)).toEqual({});
  });

  it("needs a GET rule's scope for HEAD too", async () => {
    const { key } = await createKey({ scopes: [] });
    const response = await send(`${product.pathPrefix}/quotes/eth`, { key, method: "HEAD" });
    expect(response.status).toBe(403);
    expect(response.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(origin.received).toHaveLength(0);
  });

  it("needs no scope when no rule's method and path match", async () => {
    const { key, record } = await createKey({ scopes: [] });
    await expectForwarded(await send(`${product.pathPrefix}/swap`, { key }), { keyId: record.id }); // GET: the rule is POST only
  });

  it("admits an exactly granted scope", async () => {
    const { key, record } = await createKey({ scopes: ["defi:read"] });
    await expectForwarded(await send(`${product.pathPrefix}/quotes/eth`, { key }), { keyId: record.id });
  });

  it("admits a prefix:* grant for every scope under the prefix", async () => {
    const { key, record } = await createKey({ scopes: ["defi:*"] });
    await expectForwarded(await send(`${product.pathPrefix}/swap`, { key, method: "POST", body: "{}" }), { keyId: record.id });
  });

  it("admits a * grant for everything", async () => {
    const { key, record } = await createKey({ scopes: ["*"] });
    await expectForwarded(await send(`${product.pathPrefix}/admin/x`, { key }), { keyId: record.id });
  });

  it("does not let a look-alike prefix grant count", async () => {
    const { key } = await createKey({ scopes: ["def:*", "defi"] });
    await expectRefusal(await send(`${product.pathPrefix}/quotes/eth`, { key }), 403, "API_KEY_SCOPE_MISSING", { presented: key });
  });

  it.each([
    ["a percent-encoded letter", "/%61dmin/users"],
    ["a doubled slash", "//admin/users"],
    ["upper case", "/ADMIN/users"],
    ["a trailing slash", "/admin/users/"],
    ["an encoded dot-dot segment", "/public/%2e%2e/admin/users"],
  ])("needs the scope of the path an origin would serve when it is spelled with %s", async (_label, path) => {
    const { key } = await createKey({ scopes: ["defi:read"] });
    const body = await expectRefusal(await send(`${product.pathPrefix}${path}`, { key }), 403, "API_KEY_SCOPE_MISSING", { presented: key });
    expect(body.requiredScope).toBe("defi:admin");
  });

  it("consumes no quota when refusing: the next admitted call still sees a full window", async () => {
    const { key, record } = await createKey({ scopes: ["defi:read"], rateLimitPerMinute: 5 });
    const refused = await send(`${product.pathPrefix}/admin/x`, { key });
    await expectRefusal(refused, 403, "API_KEY_SCOPE_MISSING", { presented: key });
    expect(refused.headers.get("x-ratelimit-remaining")).toBe("5");
    const admitted = await send(`${product.pathPrefix}/quotes/eth`, { key });
    expect(admitted.headers.get("x-ratelimit-remaining")).toBe("4");
    await expectForwarded(admitted, { keyId: record.id });
  });
});

describe("products that do not accept API keys", () => {
  it("refuses a valid key on a JWT-only product with 403 AUTH_METHOD_NOT_ALLOWED", async () => {
    const product = await createProduct({ authMethods: ["jwt"] });
    const { key } = await createKey();
    await expectRefusal(await send(`${product.pathPrefix}/hello`, { key }), 403, "AUTH_METHOD_NOT_ALLOWED", { presented: key });
  });
});

describe("both key formats", () => {
  it.each(["ilal", "ila"] as const)("admits an %s key in X-API-Key and as a Bearer token", async (format) => {
    const product = await createProduct();
    const { key, record } = await createKey({ format });
    await expectForwarded(await send(`${product.pathPrefix}/a`, { key }), { keyId: record.id });
    origin.received.length = 0;
    await expectForwarded(await send(`${product.pathPrefix}/b`, { key, keyAs: "bearer" }), { keyId: record.id });
  });

  it("admits a test-environment ilal key", async () => {
    const product = await createProduct();
    const { key, record } = await createKey({ format: "ilal", env: "test" });
    expect(key.startsWith("ilal_test_")).toBe(true);
    await expectForwarded(await send(`${product.pathPrefix}/a`, { key }), { keyId: record.id });
  });
});

describe("the compact error format", () => {
  it('answers exactly {"error":"No API key provided"} when no credential is sent', async () => {
    const product = await createProduct({ errorFormat: "compact" });
    await expectCompactRefusal(await send(`${product.pathPrefix}/hello`), 401, "No API key provided");
  });

  it('answers exactly {"error":"Invalid or inactive API key"} for every key failure', async () => {
    const product = await createProduct({ errorFormat: "compact" });
    const { key } = await createKey();
    const inactive = await createKey({ status: "inactive" });
    const expired = await createKey({ expiresAt: new Date(Date.now() - 1000).toISOString() });
    const failures: [string, string][] = [
      ["format", key.toUpperCase()],
      ["prefix", unknownKey(key)],
      ["hash", sibling(key)],
      ["status", inactive.key],
      ["expiry", expired.key],
      ["malformed header", `${key}, ${key}`],
    ];
    for (const [label, presented] of failures) {
      await expectCompactRefusal(await send(`${product.pathPrefix}/hello`, { key: presented }), 401, "Invalid or inactive API key", { label, presented });
    }
  });
});

describe("the detailed error format", () => {
  it("gives a distinct request id per response, matching the body's requestId", async () => {
    const product = await createProduct();
    const first = await expectRefusal(await send(`${product.pathPrefix}/hello`), 401, "AUTH_MISSING");
    const second = await expectRefusal(await send(`${product.pathPrefix}/hello`), 401, "AUTH_MISSING");
    expect(first.requestId).not.toBe(second.requestId);
  });

  it("ignores a client-sent X-Request-Id", async () => {
    const product = await createProduct();
    const response = await send(`${product.pathPrefix}/hello`, { headers: { "X-Request-Id": "client-chosen" } });
    const body = await expectRefusal(response, 401, "AUTH_MISSING");
    expect(body.requestId).not.toBe("client-chosen");
  });
});
