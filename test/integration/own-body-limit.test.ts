import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";
import { GATEWAY, json } from "../helpers/harness";

/** keygate's own JSON endpoints refuse bodies over MAX_BODY_BYTES before reading them whole. */
const smallCapEnv = { ...env, MAX_BODY_BYTES: "64" };

async function post(path: string, body: BodyInit, headers: Record<string, string> = {}) {
  const request = new Request(`${GATEWAY}${path}`, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
  return app.fetch(request, smallCapEnv, createExecutionContext());
}

describe("own endpoints' body cap", () => {
  it("refuses a login body over MAX_BODY_BYTES with 413 PAYLOAD_TOO_LARGE", async () => {
    const response = await post("/auth/login", JSON.stringify({ email: "a@example.com", password: "x".repeat(100) }));
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(413);
    expect(body.code).toBe("PAYLOAD_TOO_LARGE");
    expect(response.headers.get("content-type")).toContain("application/json");
  });

  it("refuses an oversized chunked key-creation body without a Content-Length", async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(JSON.stringify({ name: "y".repeat(200) })));
        controller.close();
      },
    });
    const before = await env.DB.prepare("SELECT count(*) AS n FROM api_keys").first<{ n: number }>();
    const response = await post("/api/v1/keys", stream, { authorization: `Bearer ${env.ADMIN_TOKEN}` });
    expect(response.status).toBe(413);
    expect((await json(response)).code).toBe("PAYLOAD_TOO_LARGE");
    const after = await env.DB.prepare("SELECT count(*) AS n FROM api_keys").first<{ n: number }>();
    expect(after?.n).toBe(before?.n);
  });

  it("still accepts a body within the cap", async () => {
    const response = await post("/auth/login", JSON.stringify({ email: "nobody@example.com", password: "pw" }));
    expect(response.status).toBe(401);
    expect((await json(response)).code).toBe("INVALID_CREDENTIALS");
  });
});
