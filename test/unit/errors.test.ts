import { describe, expect, it } from "vitest";
import { verifyApiKey } from "../../src/auth/api-key";
import { extractCredential } from "../../src/auth/credentials";
import { ERRORS, GatewayError, errorBody, renderError, type ErrorCode } from "../../src/errors";

const REQUEST_ID = "00000000-0000-4000-8000-000000000001";
const KEY_FAILURES = ["API_KEY_FORMAT_INVALID", "API_KEY_PREFIX_NOT_FOUND", "API_KEY_HASH_MISMATCH", "API_KEY_INACTIVE", "API_KEY_EXPIRED"] as const;

/** The SPEC section 4 table: code → status. */
const SPEC_STATUS: Partial<Record<ErrorCode, number>> = {
  AUTH_MISSING: 401,
  AUTH_HEADER_MALFORMED: 401,
  API_KEY_FORMAT_INVALID: 401,
  API_KEY_PREFIX_NOT_FOUND: 401,
  API_KEY_HASH_MISMATCH: 401,
  API_KEY_INACTIVE: 401,
  API_KEY_EXPIRED: 401,
  IP_NOT_ALLOWED: 403,
  API_KEY_PRODUCT_FORBIDDEN: 403,
  API_KEY_SCOPE_MISSING: 403,
  JWT_SCOPE_MISSING: 403,
  JWT_MALFORMED: 401,
  JWT_EXPIRED: 401,
  JWT_NOT_YET_VALID: 401,
  JWT_SIGNATURE_INVALID: 401,
  JWT_CLAIM_INVALID: 401,
  JWT_ALG_NOT_ALLOWED: 401,
  JWT_KEY_NOT_FOUND: 401,
  RATE_LIMIT_EXCEEDED: 429,
  DAILY_QUOTA_EXCEEDED: 429,
  AUTH_THROTTLED: 429,
  ROUTE_NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  AUTH_BACKEND_UNAVAILABLE: 503,
  ORIGIN_UNAVAILABLE: 502,
  ORIGIN_TIMEOUT: 504,
};

async function refusalOf(run: () => unknown): Promise<GatewayError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("the error catalogue", () => {
  it.each(Object.entries(SPEC_STATUS))("gives %s the SPEC's status %i", (code, status) => {
    expect(new GatewayError(code as ErrorCode).status).toBe(status);
  });

  it("answers CONFLICT with 409, or with 412 when asked (a write under If-Match, SPEC section 4), and no code with a status it does not list", () => {
    expect(new GatewayError("CONFLICT").status).toBe(409);
    const precondition = new GatewayError("CONFLICT", { status: 412 });
    expect(precondition.status).toBe(412);
    expect(errorBody(precondition, "detailed", REQUEST_ID)).toMatchObject({ error: "Precondition Failed", code: "CONFLICT" });
    expect(() => new GatewayError("NOT_FOUND", { status: 412 })).toThrow(TypeError);
    expect(() => new GatewayError("CONFLICT", { status: 400 })).toThrow(TypeError);
  });

  it("uses the SPEC's wording for a hash mismatch and a forbidden product", () => {
    expect(ERRORS.API_KEY_HASH_MISMATCH.message).toBe("API Key hash verification failed");
    expect(ERRORS.API_KEY_HASH_MISMATCH.hint).toBe("Ensure you are using the exact key returned at creation time");
    expect(ERRORS.API_KEY_PRODUCT_FORBIDDEN.message).toBe("Your API key does not have access to this product");
  });
});

describe("errorBody, detailed", () => {
  it("has error title, code, message, hint and requestId", () => {
    const body = errorBody(new GatewayError("API_KEY_HASH_MISMATCH"), "detailed", REQUEST_ID);
    expect(body).toEqual({
      error: "Unauthorized",
      code: "API_KEY_HASH_MISMATCH",
      message: "API Key hash verification failed",
      hint: "Ensure you are using the exact key returned at creation time",
      requestId: REQUEST_ID,
    });
  });

  it("uses an overriding message and adds details as top-level fields", () => {
    const body = errorBody(new GatewayError("API_KEY_SCOPE_MISSING", { message: "custom", details: { requiredScope: "defi:swap" } }), "detailed", REQUEST_ID);
    expect(body).toMatchObject({ error: "Forbidden", code: "API_KEY_SCOPE_MISSING", message: "custom", requiredScope: "defi:swap" });
  });

  it("adds a detail named __proto__ as a field, never as the body's prototype (the property test's counterexample)", () => {
    const details = JSON.parse('{"__proto__": false, "field": "x"}') as Record<string, unknown>;
    const body = errorBody(new GatewayError("AUTH_MISSING", { details }), "detailed", REQUEST_ID);
    expect(Object.getPrototypeOf(body)).toBe(Object.prototype);
    expect(Object.hasOwn(body, "__proto__")).toBe(true);
    expect(JSON.parse(JSON.stringify(body))).toMatchObject({ code: "AUTH_MISSING", field: "x" });
    expect(JSON.stringify(body)).toContain('"__proto__":false');
  });

  it.each([
    ["ROUTE_NOT_FOUND", "Not Found"],
    ["PAYLOAD_TOO_LARGE", "Payload Too Large"],
    ["RATE_LIMIT_EXCEEDED", "Too Many Requests"],
    ["ORIGIN_UNAVAILABLE", "Bad Gateway"],
    ["AUTH_BACKEND_UNAVAILABLE", "Service Unavailable"],
    ["ORIGIN_TIMEOUT", "Gateway Timeout"],
    ["CONFIG_INVALID", "Internal Server Error"],
  ] as const)("titles %s as %s", (code, title) => {
    expect(errorBody(new GatewayError(code), "detailed", REQUEST_ID).error).toBe(title);
  });
});

describe("errorBody, compact", () => {
  it("says only 'No API key provided' when no credential was sent", () => {
    expect(errorBody(new GatewayError("AUTH_MISSING"), "compact", REQUEST_ID)).toEqual({ error: "No API key provided" });
  });

  it.each([...KEY_FAILURES, "AUTH_HEADER_MALFORMED"] as const)("collapses %s to 'Invalid or inactive API key'", (code) => {
    expect(errorBody(new GatewayError(code), "compact", REQUEST_ID)).toEqual({ error: "Invalid or inactive API key" });
  });

  it("says the product is not allowed for API_KEY_PRODUCT_FORBIDDEN", () => {
    expect(errorBody(new GatewayError("API_KEY_PRODUCT_FORBIDDEN"), "compact", REQUEST_ID)).toEqual({
      error: "Your API key does not have access to this product",
    });
  });

  it("leaves details and the request id out", () => {
    const body = errorBody(new GatewayError("API_KEY_SCOPE_MISSING", { details: { requiredScope: "x" } }), "compact", REQUEST_ID);
    expect(Object.keys(body)).toEqual(["error"]);
  });
});

describe("renderError", () => {
  it("answers JSON with the status, X-Request-Id and a Bearer challenge on 401", async () => {
    const response = renderError(new GatewayError("API_KEY_INACTIVE"), "detailed", REQUEST_ID);
    expect(response.status).toBe(401);
    expect(response.headers.get("Content-Type")).toBe("application/json");
    expect(response.headers.get("X-Request-Id")).toBe(REQUEST_ID);
    expect(response.headers.get("WWW-Authenticate")).toMatch(/^Bearer\b/);
    expect(await response.json()).toMatchObject({ code: "API_KEY_INACTIVE", requestId: REQUEST_ID });
  });

  it.each([403, 404, 413, 429, 500, 502, 503, 504].map((status) => Object.entries(ERRORS).find(([, spec]) => spec.status === status)![0]))(
    "sends no WWW-Authenticate for %s",
    (code) => {
      const response = renderError(new GatewayError(code as ErrorCode), "detailed", REQUEST_ID);
      expect(response.headers.get("WWW-Authenticate")).toBeNull();
      expect(response.headers.get("X-Request-Id")).toBe(REQUEST_ID);
    },
  );

  it("keeps the Bearer challenge and request id in the compact format too", async () => {
    const response = renderError(new GatewayError("AUTH_MISSING"), "compact", REQUEST_ID);
    expect(response.headers.get("WWW-Authenticate")).toMatch(/^Bearer\b/);
    expect(response.headers.get("X-Request-Id")).toBe(REQUEST_ID);
    expect(await response.text()).toBe('{"error":"No API key provided"}');
  });

  it("adds the error's own headers and the extra headers, and the error's win", () => {
    const response = renderError(new GatewayError("RATE_LIMIT_EXCEEDED", { headers: { "Retry-After": "7" } }), "detailed", REQUEST_ID, {
      "X-RateLimit-Remaining": "0",
      "Retry-After": "99",
      "Content-Type": "text/html",
    });
    expect(response.headers.get("Retry-After")).toBe("7");
    expect(response.headers.get("X-RateLimit-Remaining")).toBe("0");
    expect(response.headers.get("Content-Type")).toBe("application/json");
  });

  it("never echoes the presented key, whatever refused it", async () => {
    const key = `ilal_live_${"cd".repeat(24)}`;
    const refusals = await Promise.all([
      refusalOf(() => extractCredential(`${key}, ${key}`, null, ["ilal", "ila"])),
      refusalOf(() => extractCredential(null, `Basic ${key}`, ["ilal", "ila"])),
      refusalOf(() => verifyApiKey(`${key}0`, "ilal", async () => [], 0)),
      refusalOf(() => verifyApiKey(key, "ilal", async () => [], 0)),
    ]);
    expect(refusals.map((error) => error.code)).toEqual([
      "AUTH_HEADER_MALFORMED",
      "AUTH_HEADER_MALFORMED",
      "API_KEY_FORMAT_INVALID",
      "API_KEY_PREFIX_NOT_FOUND",
    ]);
    for (const error of refusals) {
      for (const format of ["detailed", "compact"] as const) {
        const response = renderError(error, format, REQUEST_ID);
        const text = await response.text();
        expect(text).not.toContain("cdcdcdcd");
        for (const value of response.headers.values()) expect(value).not.toContain("cdcdcdcd");
      }
    }
  });
});
