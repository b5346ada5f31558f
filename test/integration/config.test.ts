import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import { app } from "../../src/app";
import { createKey, createProduct, GATEWAY, json } from "../helpers/harness";
import { stubOrigin } from "../helpers/origin";

/**
 * SPEC section 9: a bad configuration value fails loudly with the variable's
 * name. Each test hands the app a new env object (configuration is parsed once
 * per env object), so a bad value here never leaks into another test.
 */

let errorLog: MockInstance<typeof console.error>;
beforeEach(() => {
  // The app logs every CONFIG_INVALID for the operator; keep the test output readable.
  errorLog = vi.spyOn(console, "error").mockImplementation(() => undefined);
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function callWithEnv(badEnv: Record<string, unknown>, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await app.fetch(new Request(`${GATEWAY}${path}`, init), badEnv, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

function without(name: string): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...env };
  delete copy[name];
  return copy;
}

describe("a bad configuration value", () => {
  const cases: [string, Record<string, unknown>][] = [
    ["KEY_CACHE_TTL_SECONDS", { ...env, KEY_CACHE_TTL_SECONDS: "abc" }],
    ["RATE_LIMIT_FAILURE_MODE", { ...env, RATE_LIMIT_FAILURE_MODE: "sideways" }],
    ["ORIGIN_SIGNING_SECRET", without("ORIGIN_SIGNING_SECRET")],
    ["JWT_SIGNING_KEY", without("JWT_SIGNING_KEY")],
    ["JWT_ALGORITHMS", { ...env, JWT_ALGORITHMS: "ES256,none" }],
    ["MAX_BODY_BYTES", { ...env, MAX_BODY_BYTES: "1MB" }],
    ["ORIGIN_TIMEOUT_MS", { ...env, ORIGIN_TIMEOUT_MS: "-5" }],
    ["API_KEY_FORMATS", { ...env, API_KEY_FORMATS: "ilal,sk" }],
    ["JWKS_URL", { ...env, JWKS_URL: "jwks.example" }],
  ];

  it.each(cases)("answers 500 CONFIG_INVALID naming %s for a product call, before the origin", async (name, badEnv) => {
    const origin = stubOrigin();
    const product = await createProduct();
    const { key } = await createKey();
    const response = await callWithEnv(badEnv, `${product.pathPrefix}/x`, { headers: { "X-API-Key": key } });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(500);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(body).toMatchObject({ error: "Internal Server Error", code: "CONFIG_INVALID" });
    expect(body.message).toContain(name);
    expect(body.requestId).toBe(response.headers.get("x-request-id"));
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    expect(origin.received).toHaveLength(0);
  });

  it("names the variable for keygate's own endpoints too", async () => {
    const response = await callWithEnv({ ...env, KEY_CACHE_TTL_SECONDS: "abc" }, "/api/v1/keys", {
      headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}` },
    });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(500);
    expect(body.code).toBe("CONFIG_INVALID");
    expect(body.message).toContain("KEY_CACHE_TTL_SECONDS");
  });

  it("does not echo a secret's value", async () => {
    const response = await callWithEnv({ ...env, ORIGIN_SIGNING_SECRET: "leaky-but-short" }, "/api/anything");
    const text = await response.text();
    expect(response.status, text).toBe(500);
    expect(text).toContain("ORIGIN_SIGNING_SECRET");
    expect(text).not.toContain("leaky-but-short");
  });

  it("logs the failure for the operator", async () => {
    await callWithEnv({ ...env, RATE_LIMIT_FAILURE_MODE: "sideways" }, "/api/anything");
    expect(errorLog.mock.calls.map((args) => args.join(" ")).join("\n")).toContain("RATE_LIMIT_FAILURE_MODE");
  });

  it("keeps failing on every request rather than once", async () => {
    const badEnv = { ...env, MAX_BODY_BYTES: "lots" };
    for (let i = 0; i < 2; i++) {
      const response = await callWithEnv(badEnv, "/api/anything");
      expect(response.status).toBe(500);
      expect((await json(response)).message).toContain("MAX_BODY_BYTES");
    }
  });

  it("takes effect from a corrected env object at once", async () => {
    const origin = stubOrigin();
    const product = await createProduct();
    const { key } = await createKey();
    const response = await callWithEnv({ ...env, KEY_CACHE_TTL_SECONDS: "10" }, `${product.pathPrefix}/x`, { headers: { "X-API-Key": key } });
    expect(response.status, await response.text()).toBe(200);
    expect(origin.received).toHaveLength(1);
  });
});

describe("GET /healthz with a bad configuration", () => {
  it("reports 500 CONFIG_INVALID naming the variable instead of ok, revealing no value", async () => {
    const secret = "short-secret";
    const request = new Request("https://gateway.test/healthz");
    const response = await app.fetch(request, { ...env, ORIGIN_SIGNING_SECRET: secret }, createExecutionContext());
    const body = (await response.json()) as Record<string, unknown>;
    expect(response.status, JSON.stringify(body)).toBe(500);
    expect(body.code).toBe("CONFIG_INVALID");
    expect(String(body.message)).toContain("ORIGIN_SIGNING_SECRET");
    expect(JSON.stringify(body)).not.toContain(secret);
  });
});
