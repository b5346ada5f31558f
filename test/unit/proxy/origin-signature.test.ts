import { describe, expect, it } from "vitest";
import { SIGNED_HEADERS, signOriginRequest, verifyOriginSignature } from "../../../src/proxy/origin-signature";

const SECRET = "unit-test-origin-signing-secret-0123456789";
const NOW = Date.parse("2026-03-01T12:00:00.000Z");
const TIMESTAMP = String(NOW / 1000);

const IDENTITY: Record<string, string> = {
  "X-Auth-Method": "api_key",
  "X-Auth-Key-Id": "6d1f1c9e-0000-4000-8000-000000000001",
  "X-Auth-Env": "live",
  "X-Auth-Scopes": "defi:read defi:swap",
  "X-Auth-Product": "defi",
  "X-Request-Id": "0f0e0d0c-0000-4000-8000-000000000002",
};

/** The request as the origin receives it: identity headers, timestamp and signature set by keygate. */
async function signedRequest(
  { method = "POST", url = "https://origin.test/upstream/swap?amount=1&to=x", timestamp = TIMESTAMP } = {},
): Promise<Request> {
  const headers = new Headers({ ...IDENTITY, "Content-Type": "application/json", "X-Auth-Timestamp": timestamp });
  const target = new URL(url);
  headers.set("X-Auth-Signature", await signOriginRequest(SECRET, method, target.pathname + target.search, timestamp, headers));
  return new Request(url, { method, headers, body: method === "GET" ? null : "{}" });
}

/** The same request with one thing changed on the way. */
function tampered(request: Request, change: { url?: string; method?: string; headers?: Record<string, string | null> }): Request {
  const headers = new Headers(request.headers);
  for (const [name, value] of Object.entries(change.headers ?? {})) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  return new Request(change.url ?? request.url, { method: change.method ?? request.method, headers });
}

describe("signOriginRequest", () => {
  it("produces v1= and 64 lowercase hex characters", async () => {
    const request = await signedRequest();
    expect(request.headers.get("X-Auth-Signature")).toMatch(/^v1=[0-9a-f]{64}$/);
  });

  it("signs every identity header", () => {
    expect([...SIGNED_HEADERS]).toEqual(
      expect.arrayContaining(["x-auth-method", "x-auth-key-id", "x-auth-subject", "x-auth-env", "x-auth-scopes", "x-auth-product", "x-request-id"]),
    );
  });
});

describe("verifyOriginSignature", () => {
  it("accepts the request exactly as signed", async () => {
    expect(await verifyOriginSignature(await signedRequest(), SECRET, { now: NOW })).toBe(true);
    expect(await verifyOriginSignature(await signedRequest({ method: "GET", url: "https://origin.test/x" }), SECRET, { now: NOW })).toBe(true);
  });

  it("accepts a timestamp within the allowed age on either side", async () => {
    const request = await signedRequest();
    expect(await verifyOriginSignature(request, SECRET, { now: NOW + 300_000 })).toBe(true);
    expect(await verifyOriginSignature(request, SECRET, { now: NOW - 300_000 })).toBe(true);
  });

  it("ignores headers outside the signed set", async () => {
    const request = tampered(await signedRequest(), { headers: { "Content-Type": "text/plain", "X-Other": "1" } });
    expect(await verifyOriginSignature(request, SECRET, { now: NOW })).toBe(true);
  });

  it("refuses a stale signature", async () => {
    const request = await signedRequest();
    expect(await verifyOriginSignature(request, SECRET, { now: NOW + 301_000 })).toBe(false);
    expect(await verifyOriginSignature(request, SECRET, { now: NOW + 61_000, maxAgeSeconds: 60 })).toBe(false);
  });

  it("refuses a signature from the future beyond the allowed skew", async () => {
    expect(await verifyOriginSignature(await signedRequest(), SECRET, { now: NOW - 301_000 })).toBe(false);
  });

  it("refuses another secret", async () => {
    expect(await verifyOriginSignature(await signedRequest(), `${SECRET}x`, { now: NOW })).toBe(false);
  });

  it.each([
    ["path", { url: "https://origin.test/upstream/admin?amount=1&to=x" }],
    ["query", { url: "https://origin.test/upstream/swap?amount=1000&to=x" }],
    ["method", { method: "PUT" }],
  ])("refuses a tampered %s", async (_label, change) => {
    expect(await verifyOriginSignature(tampered(await signedRequest(), change), SECRET, { now: NOW })).toBe(false);
  });

  it.each(SIGNED_HEADERS.map((name) => [name]))("refuses a tampered %s header", async (name) => {
    const request = await signedRequest();
    const changed = tampered(request, { headers: { [name]: `${request.headers.get(name) ?? ""}x` } });
    expect(await verifyOriginSignature(changed, SECRET, { now: NOW })).toBe(false);
  });

  it("refuses a removed identity header", async () => {
    const request = tampered(await signedRequest(), { headers: { "X-Auth-Key-Id": null } });
    expect(await verifyOriginSignature(request, SECRET, { now: NOW })).toBe(false);
  });

  it("refuses a changed timestamp, even a fresh one", async () => {
    const request = tampered(await signedRequest(), { headers: { "X-Auth-Timestamp": String(NOW / 1000 + 1) } });
    expect(await verifyOriginSignature(request, SECRET, { now: NOW })).toBe(false);
  });

  it.each([
    ["missing", null],
    ["without v1=", "0".repeat(64)],
    ["uppercase", `v1=${"A".repeat(64)}`],
    ["short", `v1=${"0".repeat(63)}`],
  ])("refuses a signature header that is %s", async (_label, value) => {
    const request = tampered(await signedRequest(), { headers: { "X-Auth-Signature": value } });
    expect(await verifyOriginSignature(request, SECRET, { now: NOW })).toBe(false);
  });

  it.each([["missing", null], ["not a number", "soon"], ["fractional", `${NOW / 1000}.5`]])(
    "refuses a timestamp that is %s",
    async (_label, value) => {
      const request = tampered(await signedRequest(), { headers: { "X-Auth-Timestamp": value } });
      expect(await verifyOriginSignature(request, SECRET, { now: NOW })).toBe(false);
    },
  );
});
