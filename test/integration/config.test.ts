import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import { expectForwarded, expectRefusal } from "../helpers/expect";
import { createKey, createProduct, json, send, type EnvOverrides } from "../helpers/harness";
import { useOrigin } from "../helpers/origin";

/**
 * SPEC section 9: a bad configuration value fails loudly with the variable's
 * name. Each test hands the app a new env object (send's `env`; configuration
 * is parsed once per env object), so a bad value here never leaks into another test.
 */

useOrigin();
let errorLog: MockInstance<typeof console.error>;
beforeEach(() => {
  // The app logs every CONFIG_INVALID for the operator; keep the test output readable.
  errorLog = vi.spyOn(console, "error").mockImplementation(() => undefined);
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** The test env without `name` (send's `env`: an override of undefined removes the variable). */
const without = (name: string): EnvOverrides => ({ [name]: undefined });

describe("a bad configuration value", () => {
  const cases: [string, EnvOverrides][] = [
    ["KEY_CACHE_TTL_SECONDS", { KEY_CACHE_TTL_SECONDS: "abc" }],
    ["RATE_LIMIT_FAILURE_MODE", { RATE_LIMIT_FAILURE_MODE: "sideways" }],
    ["ORIGIN_SIGNING_SECRET", without("ORIGIN_SIGNING_SECRET")],
    ["JWT_SIGNING_KEY", without("JWT_SIGNING_KEY")],
    ["JWT_ALGORITHMS", { JWT_ALGORITHMS: "ES256,none" }],
    ["MAX_BODY_BYTES", { MAX_BODY_BYTES: "1MB" }],
    ["ORIGIN_TIMEOUT_MS", { ORIGIN_TIMEOUT_MS: "-5" }],
    ["API_KEY_FORMATS", { API_KEY_FORMATS: "ilal,sk" }],
    ["JWKS_URL", { JWKS_URL: "jwks.example" }],
  ];

  it.each(cases)("answers 500 CONFIG_INVALID naming %s for a product call, before the origin", async (name, bad) => {
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/x`, { key, env: bad });
    const body = await expectRefusal(response, 500, "CONFIG_INVALID", { presented: key });
    expect(body.error).toBe("Internal Server Error");
    expect(body.message).toContain(name);
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/); // no stack trace
  });

  it("names the variable for keygate's own endpoints too", async () => {
    const response = await send("/api/v1/keys", { headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}` }, env: { KEY_CACHE_TTL_SECONDS: "abc" } });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(500);
    expect(body.code).toBe("CONFIG_INVALID");
    expect(body.message).toContain("KEY_CACHE_TTL_SECONDS");
  });

  it("does not echo a secret's value", async () => {
    const response = await send("/api/anything", { env: { ORIGIN_SIGNING_SECRET: "leaky-but-short" } });
    const text = await response.text();
    expect(response.status, text).toBe(500);
    expect(text).toContain("ORIGIN_SIGNING_SECRET");
    expect(text).not.toContain("leaky-but-short");
  });

  it("logs the failure for the operator", async () => {
    await send("/api/anything", { env: { RATE_LIMIT_FAILURE_MODE: "sideways" } });
    expect(errorLog.mock.calls.map((args) => args.join(" ")).join("\n")).toContain("RATE_LIMIT_FAILURE_MODE");
  });

  it("keeps failing on every request rather than once", async () => {
    const bad = { MAX_BODY_BYTES: "lots" }; // one env object for both calls
    for (let i = 0; i < 2; i++) {
      const response = await send("/api/anything", { env: bad });
      expect(response.status).toBe(500);
      expect((await json(response)).message).toContain("MAX_BODY_BYTES");
    }
  });

  it("takes effect from a corrected env object at once", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    await expectForwarded(await send(`${product.pathPrefix}/x`, { key, env: { KEY_CACHE_TTL_SECONDS: "10" } }), { keyId: record.id });
  });
});

describe("GET /healthz with a bad configuration", () => {
  it("reports 500 CONFIG_INVALID naming the variable instead of ok, revealing no value", async () => {
    const secret = "short-secret";
    const response = await send("/healthz", { env: { ORIGIN_SIGNING_SECRET: secret } });
    const body = (await response.json()) as Record<string, unknown>;
    expect(response.status, JSON.stringify(body)).toBe(500);
    expect(body.code).toBe("CONFIG_INVALID");
    expect(String(body.message)).toContain("ORIGIN_SIGNING_SECRET");
    expect(JSON.stringify(body)).not.toContain(secret);
  });
});
