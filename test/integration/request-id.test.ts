import { describe, expect, it } from "vitest";
import { call } from "../helpers/harness";

/** SPEC section 4: every response carries X-Request-Id — keygate's own pages and refusals included. */
describe("X-Request-Id on every kind of response", () => {
  it.each([
    ["GET", "/healthz", 200],
    ["GET", "/openapi.json", 200],
    ["GET", "/.well-known/jwks.json", 200],
    ["GET", "/dashboard", 301],
    ["GET", "/dashboard/", 200],
    ["GET", "/dashboard/app.js", 200],
    ["GET", "/dashboard/missing.js", 404],
    ["GET", "/auth/login", 405],
    ["GET", "/api/v1/keys", 401],
    ["GET", "/no/such/product", 404],
  ])("%s %s → %i with a fresh X-Request-Id", async (method, path, status) => {
    const response = await call(path, { method, redirect: "manual", headers: { "X-Request-Id": "client-chosen" } });
    await response.arrayBuffer();
    expect(response.status).toBe(status);
    const id = response.headers.get("X-Request-Id");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});
