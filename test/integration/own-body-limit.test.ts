import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DRAIN_CEILING_BYTES, drainBoundBytes, readBodyWithin } from "../../src/middleware/body-limit";
import { expectRefusal, refusalCode } from "../helpers/expect";
import { GATEWAY, json, send } from "../helpers/harness";
import { useOrigin } from "../helpers/origin";

/** keygate's own JSON endpoints refuse bodies over MAX_BODY_BYTES before reading them whole. */
const smallCap = { MAX_BODY_BYTES: "64" };

/** The JSON these endpoints take; a string or a stream body is sent as it is. */
const JSON_BODY = { "Content-Type": "application/json" };

useOrigin();

describe("own endpoints' body cap", () => {
  it("refuses a login body over MAX_BODY_BYTES with 413 PAYLOAD_TOO_LARGE", async () => {
    const response = await send("/auth/login", {
      method: "POST",
      body: JSON.stringify({ email: "a@example.com", password: "x".repeat(100) }),
      headers: JSON_BODY,
      env: smallCap,
    });
    await expectRefusal(response, 413, "PAYLOAD_TOO_LARGE");
  });

  it("refuses an oversized chunked key-creation body without a Content-Length", async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(JSON.stringify({ name: "y".repeat(200) })));
        controller.close();
      },
    });
    const before = await env.DB.prepare("SELECT count(*) AS n FROM api_keys").first<{ n: number }>();
    const response = await send("/api/v1/keys", {
      method: "POST",
      body: stream,
      headers: { ...JSON_BODY, authorization: `Bearer ${env.ADMIN_TOKEN}` },
      env: smallCap,
    });
    await expectRefusal(response, 413, "PAYLOAD_TOO_LARGE", { presented: env.ADMIN_TOKEN });
    const after = await env.DB.prepare("SELECT count(*) AS n FROM api_keys").first<{ n: number }>();
    expect(after?.n).toBe(before?.n);
  });

  it("still accepts a body within the cap", async () => {
    const response = await send("/auth/login", {
      method: "POST",
      body: JSON.stringify({ email: "nobody@example.com", password: "pw" }),
      headers: JSON_BODY,
      env: smallCap,
    });
    expect(response.status).toBe(401);
    expect((await json(response)).code).toBe("INVALID_CREDENTIALS");
  });
});

/**
 * A chunked body (no Content-Length) of `total` bytes, Infinity for an endless
 * one, that records how much was pulled from it, whether it reached its end,
 * and whether it was cancelled.
 */
function meteredBody(total: number, chunkBytes = 1000) {
  const meter = { pulled: 0, finished: false, cancelled: false };
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (meter.pulled >= total) {
          meter.finished = true;
          controller.close();
          return;
        }
        const size = Math.min(chunkBytes, total - meter.pulled);
        meter.pulled += size;
        controller.enqueue(new TextEncoder().encode("x".repeat(size)));
      },
      cancel() {
        meter.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, meter };
}

// F12: an over-cap chunked body is read to its end (up to a bound) before the 413, so the
// connection it came on stays usable; test/e2e/body-drain.e2e.test.ts shows why under wrangler dev.
describe("draining an over-cap chunked body", () => {
  it("drains up to 4 × the cap past it, never more than 8 MiB", () => {
    expect(drainBoundBytes(64)).toBe(256);
    expect(drainBoundBytes(1_048_576)).toBe(4 * 1_048_576);
    expect(drainBoundBytes(2 * 1_048_576)).toBe(DRAIN_CEILING_BYTES);
    expect(drainBoundBytes(100 * 1_048_576)).toBe(8 * 1_048_576);
  });

  it("readBodyWithin reads an over-cap body that ends within the bound to its end, then refuses it", async () => {
    const { stream, meter } = meteredBody(3000);
    const request = new Request(`${GATEWAY}/x`, { method: "POST", body: stream });
    expect(await refusalCode(readBodyWithin(request, 1024))).toBe("PAYLOAD_TOO_LARGE");
    expect(meter).toEqual({ pulled: 3000, finished: true, cancelled: false });
  });

  it("readBodyWithin cancels a body that goes on past the bound, having read no more than the bound", async () => {
    const { stream, meter } = meteredBody(Infinity);
    const request = new Request(`${GATEWAY}/x`, { method: "POST", body: stream });
    expect(await refusalCode(readBodyWithin(request, 1024))).toBe("PAYLOAD_TOO_LARGE");
    const limit = 1024 + drainBoundBytes(1024);
    expect(meter.cancelled).toBe(true);
    expect(meter.pulled).toBeGreaterThan(limit);
    // The last chunk read, and what the stream may have queued ahead of the reader.
    expect(meter.pulled).toBeLessThanOrEqual(limit + 3 * 1000);
  });

  it("readBodyWithin still returns a chunked body within the cap whole", async () => {
    const { stream, meter } = meteredBody(1024);
    const body = await readBodyWithin(new Request(`${GATEWAY}/x`, { method: "POST", body: stream }), 1024);
    expect(body).toBeInstanceOf(ArrayBuffer);
    expect(new TextDecoder().decode(body as ArrayBuffer)).toBe("x".repeat(1024));
    expect(meter.cancelled).toBe(false);
  });

  it("an own endpoint drains an over-cap chunked body before its 413", async () => {
    const { stream, meter } = meteredBody(200, 50);
    const response = await send("/auth/login", { method: "POST", body: stream, headers: JSON_BODY, env: smallCap });
    await expectRefusal(response, 413, "PAYLOAD_TOO_LARGE");
    expect(meter).toEqual({ pulled: 200, finished: true, cancelled: false });
  });

  it("an own endpoint cancels a chunked body past the bound, with a JSON 413", async () => {
    const { stream, meter } = meteredBody(Infinity, 50);
    const response = await send("/auth/login", { method: "POST", body: stream, headers: JSON_BODY, env: smallCap });
    await expectRefusal(response, 413, "PAYLOAD_TOO_LARGE");
    expect(meter.cancelled).toBe(true);
    expect(meter.pulled).toBeLessThanOrEqual(64 + drainBoundBytes(64) + 3 * 50);
  });

  it("an own endpoint hands a chunked body within the cap to its handler", async () => {
    const text = JSON.stringify({ email: "n@x.io", password: "pw" });
    expect(text.length).toBeLessThanOrEqual(64);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(text));
        controller.close();
      },
    });
    const response = await send("/auth/login", { method: "POST", body: stream, headers: JSON_BODY, env: smallCap });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(401);
    expect(body.code).toBe("INVALID_CREDENTIALS");
  });
});
