import { describe, expect, it } from "vitest";
import { assertConformsToOpenApi } from "../helpers/openapi-conformance";
import { GATEWAY } from "../helpers/harness";

/** The check every own answer of the suite goes through (harness.ts call) refuses what the document does not say. */
const request = (method: string, path: string) => new Request(`${GATEWAY}${path}`, { method });
const answer = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", "X-Request-Id": "r", ...headers } });
const refusal = (code: string, extra: Record<string, unknown> = {}) => ({ error: "x", code, message: "m", hint: "h", requestId: "r", ...extra });

describe("the OpenAPI conformance check", () => {
  it("accepts a documented answer", async () => {
    await expect(assertConformsToOpenApi(request("GET", "/healthz"), answer(200, { status: "ok" }))).resolves.toBeUndefined();
    await expect(assertConformsToOpenApi(request("GET", "/api/v1/keys/k1"), answer(404, refusal("NOT_FOUND")))).resolves.toBeUndefined();
  });

  it("refuses an undocumented status", async () => {
    await expect(assertConformsToOpenApi(request("GET", "/healthz"), answer(418, refusal("INTERNAL_ERROR")))).rejects.toThrow(/not a documented status/);
  });

  it("refuses a body that does not match the status's schema", async () => {
    await expect(assertConformsToOpenApi(request("GET", "/healthz"), answer(200, { status: "fine" }))).rejects.toThrow(/does not match/);
  });

  it("refuses an error code the operation does not list for that status", async () => {
    await expect(assertConformsToOpenApi(request("GET", "/api/v1/keys/k1"), answer(404, refusal("ROUTE_NOT_FOUND")))).rejects.toThrow(/does not match/);
  });

  it("refuses an error field the Error schema does not name", async () => {
    await expect(assertConformsToOpenApi(request("GET", "/api/v1/keys/k1"), answer(404, refusal("NOT_FOUND", { secret: 1 })))).rejects.toThrow(
      /does not match/,
    );
  });

  it("refuses a keygate header not documented for that status, and an answer without X-Request-Id", async () => {
    await expect(assertConformsToOpenApi(request("GET", "/healthz"), answer(200, { status: "ok" }, { ETag: '"1"' }))).rejects.toThrow(
      /undocumented headers etag/,
    );
    await expect(
      assertConformsToOpenApi(request("GET", "/healthz"), new Response('{"status":"ok"}', { headers: { "Content-Type": "application/json" } })),
    ).rejects.toThrow(/lacks X-Request-Id/);
  });

  it("refuses a media type the status does not document", async () => {
    await expect(
      assertConformsToOpenApi(request("GET", "/healthz"), new Response("ok", { headers: { "Content-Type": "text/plain", "X-Request-Id": "r" } })),
    ).rejects.toThrow(/answers text\/plain/);
  });

  it("leaves product calls alone", async () => {
    await expect(assertConformsToOpenApi(request("GET", "/some-product/x"), answer(418, {}))).resolves.toBeUndefined();
  });
});
