import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { toHex } from "../../src/auth/key-format";
import { INJECT_MAX_BYTES } from "../../src/proxy/forward";
import { memoryReplayStore, verifyOriginSignature } from "../../src/proxy/origin-signature";
import { expectRefusal } from "../helpers/expect";
import { within } from "../helpers/faults";
import { createKey, createProduct, json, ORIGIN, send, uniqueSlug } from "../helpers/harness";
import { useOrigin, type OriginHandler, type ReceivedRequest } from "../helpers/origin";

/**
 * SPEC section 8 as the origin and the client see it: what arrives upstream
 * (method, path, query, body, headers, signature), what comes back, and the
 * gateway's own answers when the origin fails or the body is too large.
 */

const origin = useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
});

/** The one request the origin received. */
function upstream(): ReceivedRequest {
  expect(origin.received).toHaveLength(1);
  return origin.received[0]!;
}

/** The request as the origin saw it, body included, for verifyOriginSignature. */
function asOriginRequest(received: ReceivedRequest): Request {
  const body = received.method === "GET" || received.method === "HEAD" ? null : received.body;
  return new Request(received.url, { method: received.method, headers: received.headers, body });
}

/** Whether the origin would accept it (a fresh replay store per check: tests verify one request several ways). */
async function originAccepts(request: Request, secret: string = env.ORIGIN_SIGNING_SECRET): Promise<boolean> {
  return (await verifyOriginSignature(request, secret, { replayStore: memoryReplayStore() })).ok;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

function jsonResponse(value: unknown, init: ResponseInit = {}): Response {
  return new Response(JSON.stringify(value), { ...init, headers: { "Content-Type": "application/json", ...init.headers } });
}

describe("the request the origin receives", () => {
  it.each(["POST", "PUT", "PATCH", "DELETE"])("carries method, path, query and body for %s", async (method) => {
    const product = await createProduct();
    const { key } = await createKey();
    const body = JSON.stringify({ amount: 5, note: "héllo" });
    const response = await send(`${product.pathPrefix}/orders/42?expand=items&q=a%20b&q=c`, {
      method,
      key,
      headers: { "Content-Type": "application/json" },
      body,
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const received = upstream();
    expect(received.method).toBe(method);
    expect(received.url).toBe(`${ORIGIN}/upstream${product.pathPrefix}/orders/42?expand=items&q=a%20b&q=c`);
    expect(received.body).toBe(body);
    expect(received.headers.get("content-type")).toBe("application/json");
  });

  it("streams a body with a declared Content-Length through unchanged", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const body = "x".repeat(10_000);
    const response = await send(`${product.pathPrefix}/upload`, {
      method: "POST",
      key,
      headers: { "Content-Length": String(body.length) },
      body,
    });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(upstream().body).toBe(body);
  });

  it("forwards a GET and a HEAD without a body", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    expect((await send(`${product.pathPrefix}/a`, { key })).status).toBe(200);
    expect((await send(`${product.pathPrefix}/a`, { method: "HEAD", key })).status).toBe(200);
    expect(origin.received.map((r) => [r.method, r.body])).toEqual([
      ["GET", ""],
      ["HEAD", ""],
    ]);
  });

  it("removes the prefix when strip_prefix is on", async () => {
    const product = await createProduct({ stripPrefix: true });
    const { key } = await createKey();
    await send(`${product.pathPrefix}/v2/items?id=7`, { key });
    expect(upstream().url).toBe(`${ORIGIN}/upstream/v2/items?id=7`);
  });

  it("sends the bare prefix to the origin's root path when strip_prefix is on", async () => {
    const product = await createProduct({ stripPrefix: true, originUrl: ORIGIN });
    const { key } = await createKey();
    await send(product.pathPrefix, { key });
    expect(upstream().url).toBe(`${ORIGIN}/`);
  });

  it.each([
    ["without strip_prefix", false, "/base/v2", (prefix: string) => `/base/v2${prefix}/items`],
    ["with strip_prefix", true, "/base/v2", () => "/base/v2/items"],
    ["with a trailing slash on the base", true, "/base/v2/", () => "/base/v2/items"],
  ])("appends the path to an origin_url with a base path, %s", async (_label, stripPrefix, basePath, expected) => {
    const product = await createProduct({ stripPrefix, originUrl: `${ORIGIN}${basePath}` });
    const { key } = await createKey();
    await send(`${product.pathPrefix}/items?x=1`, { key });
    expect(upstream().url).toBe(`${ORIGIN}${expected(product.pathPrefix)}?x=1`);
  });

  it("removes credentials, hop-by-hop headers and the headers Connection names", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const headers = new Headers({
      "X-API-Key": key,
      Authorization: "Bearer something-else",
      Connection: "keep-alive, X-Hop-Secret",
      "Keep-Alive": "timeout=5",
      TE: "trailers",
      Upgrade: "websocket",
      Trailer: "X-Checksum",
      "Proxy-Authorization": "Basic cHJveHk6cHc=",
      "X-Hop-Secret": "internal",
      "X-Custom": "kept",
      Accept: "application/json",
    });
    const response = await send(`${product.pathPrefix}/h`, { headers });
    expect(response.status, await response.clone().text()).toBe(200);
    const received = upstream().headers;
    for (const name of ["x-api-key", "authorization", "connection", "keep-alive", "te", "upgrade", "trailer", "proxy-authorization", "x-hop-secret"]) {
      expect(received.get(name), name).toBeNull();
    }
    expect(received.get("x-custom")).toBe("kept");
    expect(received.get("accept")).toBe("application/json");
    for (const value of received.values()) expect(value).not.toContain(key);
  });

  it("replaces client-sent X-Auth-*, X-Request-Id and X-Forwarded-For with the gateway's own", async () => {
    const product = await createProduct();
    const { key, record } = await createKey({ scopes: ["read"] });
    const response = await send(`${product.pathPrefix}/h`, {
      headers: {
        "X-API-Key": key,
        "CF-Connecting-IP": "198.51.100.23",
        "X-Forwarded-For": "1.1.1.1, 2.2.2.2",
        "X-Auth-Key-Id": "spoofed",
        "X-Auth-Scopes": "*",
        "X-Auth-Method": "jwt",
        "X-Auth-Subject": "admin",
        "X-Auth-Signature": "v1=forged",
        "X-Auth-Anything": "spoofed",
        "X-Request-Id": "client-chosen",
      },
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const received = upstream().headers;
    expect(received.get("x-forwarded-for")).toBe("198.51.100.23");
    expect(received.get("x-auth-key-id")).toBe(record.id);
    expect(received.get("x-auth-scopes")).toBe("read");
    expect(received.get("x-auth-method")).toBe("api_key");
    expect(received.get("x-auth-subject")).toBeNull();
    expect(received.get("x-auth-anything")).toBeNull();
    expect(received.get("x-request-id")).toBe(response.headers.get("x-request-id"));
    expect(received.get("x-auth-signature")).toBeNull();
    expect(received.get("signature-input")).toMatch(/^keygate=\(/);
    expect(await originAccepts(asOriginRequest(upstream()))).toBe(true);
  });

  it("adds identity headers and a signature the origin can verify with the shared secret", async () => {
    const product = await createProduct();
    const { key, record } = await createKey({ scopes: ["defi:read", "defi:swap"] });
    const before = Math.floor(Date.now() / 1000);
    const response = await send(`${product.pathPrefix}/swap?amount=3`, { method: "POST", key, body: "{}" });
    expect(response.status, await response.clone().text()).toBe(200);
    const received = upstream();
    expect(Object.fromEntries([...received.headers].filter(([name]) => name.startsWith("x-auth-") || name === "x-request-id"))).toEqual({
      "x-auth-method": "api_key",
      "x-auth-key-id": record.id,
      "x-auth-env": "live",
      "x-auth-scopes": "defi:read defi:swap",
      "x-auth-product": product.slug,
      "x-request-id": response.headers.get("x-request-id"),
    });
    const input = received.headers.get("signature-input")!;
    expect(input).toMatch(
      /^keygate=\("@method" "@authority" "@path" "@query" "content-digest" "x-auth-method" "x-auth-key-id" "x-auth-env" "x-auth-scopes" "x-auth-product" "x-request-id" "x-forwarded-for"\);created=\d+;nonce="[^"]+";keyid="keygate";alg="hmac-sha256"$/,
    );
    const created = Number(/;created=(\d+)/.exec(input)![1]);
    expect(created).toBeGreaterThanOrEqual(before);
    expect(created).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(input).toContain(`nonce="${response.headers.get("x-request-id")}"`);
    expect(received.headers.get("content-digest")).toBe(
      `sha-256=:${btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("{}")))))}:`,
    );
    expect(await originAccepts(asOriginRequest(received))).toBe(true);
    expect(await originAccepts(asOriginRequest(received), "another-secret-of-enough-length-000000")).toBe(false);
    const otherBody = new Request(received.url, { method: "POST", headers: received.headers, body: '{"amount":1000000}' });
    expect(await originAccepts(otherBody)).toBe(false);
  });

  it("signs the stripped path the origin actually receives", async () => {
    const product = await createProduct({ stripPrefix: true, originUrl: `${ORIGIN}/base` });
    const { key } = await createKey();
    await send(`${product.pathPrefix}/deep/path?z=1`, { key });
    const received = upstream();
    expect(new URL(received.url).pathname).toBe("/base/deep/path");
    expect(await originAccepts(asOriginRequest(received))).toBe(true);
    const moved = new Request(received.url.replace("/deep/path", "/other"), { headers: received.headers });
    expect(await originAccepts(moved)).toBe(false);
  });
});

describe("test keys and test origins", () => {
  it("sends a test key to test_origin_url when the product has one", async () => {
    const product = await createProduct({ testOriginUrl: "https://sandbox.origin.test/v1" });
    const { key } = await createKey({ env: "test" });
    await send(`${product.pathPrefix}/x`, { key });
    const received = upstream();
    expect(received.url).toBe(`https://sandbox.origin.test/v1${product.pathPrefix}/x`);
    expect(received.headers.get("x-auth-env")).toBe("test");
    expect(await originAccepts(asOriginRequest(received))).toBe(true);
  });

  it("sends a test key to origin_url when the product has no test origin", async () => {
    const product = await createProduct({ testOriginUrl: null });
    const { key } = await createKey({ env: "test" });
    await send(`${product.pathPrefix}/x`, { key });
    expect(upstream().url).toBe(`${ORIGIN}/upstream${product.pathPrefix}/x`);
  });

  it("sends a live key to origin_url even when a test origin exists", async () => {
    const product = await createProduct({ testOriginUrl: "https://sandbox.origin.test" });
    const { key } = await createKey({ env: "live" });
    await send(`${product.pathPrefix}/x`, { key });
    expect(upstream().url).toBe(`${ORIGIN}/upstream${product.pathPrefix}/x`);
    expect(upstream().headers.get("x-auth-env")).toBe("live");
  });
});

describe("the response the client receives", () => {
  it("passes the origin's status and headers through and adds X-Auth-Method and limit headers", async () => {
    origin.reply(() => {
      const headers = new Headers({ Location: "/orders/43", "X-Origin-Trace": "abc", "Cache-Control": "no-store", "Content-Type": "text/plain" });
      headers.append("Set-Cookie", "a=1");
      headers.append("Set-Cookie", "b=2");
      return new Response("created", { status: 201, headers });
    });
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/orders`, { method: "POST", key, body: "{}" });
    expect(response.status).toBe(201);
    expect(await response.text()).toBe("created");
    expect(response.headers.get("location")).toBe("/orders/43");
    expect(response.headers.get("x-origin-trace")).toBe("abc");
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.getAll("Set-Cookie")).toEqual(["a=1", "b=2"]);
    expect(response.headers.get("x-auth-method")).toBe("api_key");
    expect(response.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get("x-ratelimit-limit")).toMatch(/^\d+$/);
    expect(response.headers.get("x-ratelimit-remaining")).toMatch(/^\d+$/);
  });

  it.each([204, 304, 404, 500, 503])("passes origin status %i through as the origin's own answer", async (status) => {
    origin.reply(() => new Response(status === 204 || status === 304 ? null : "origin says no", { status }));
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/x`, { key });
    expect(response.status).toBe(status);
    expect(await response.text()).toBe(status === 204 || status === 304 ? "" : "origin says no");
    expect(response.headers.get("x-auth-method")).toBe("api_key");
  });

  it("does not follow an origin redirect but hands it to the client", async () => {
    origin.reply(() => new Response(null, { status: 302, headers: { Location: "https://elsewhere.test/" } }));
    const product = await createProduct();
    const { key } = await createKey();
    // manual: the test's own call to the Worker would otherwise follow the redirect.
    const response = await send(`${product.pathPrefix}/x`, { key, redirect: "manual" });
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("https://elsewhere.test/");
    expect(origin.received).toHaveLength(1);
  });

  it("strips hop-by-hop headers from the origin's response", async () => {
    origin.reply(() => new Response("ok", { headers: { Connection: "X-Internal", "X-Internal": "secret", "Keep-Alive": "timeout=5" } }));
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/x`, { key });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-internal")).toBeNull();
    expect(response.headers.get("keep-alive")).toBeNull();
  });
});

describe("authMethod injection", () => {
  async function proxied(handler: OriginHandler, injectAuthMethod = true): Promise<Response> {
    origin.reply(handler);
    const product = await createProduct({ injectAuthMethod });
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/x`, { key });
    expect(response.headers.get("x-auth-method")).toBe("api_key");
    return response;
  }

  it("adds authMethod to a JSON object body when inject_auth_method is on", async () => {
    const response = await proxied(() => jsonResponse({ answer: 42, nested: { a: [1] } }, { status: 201 }));
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ answer: 42, nested: { a: [1] }, authMethod: "api_key" });
  });

  it("adds authMethod for application/json with parameters and fixes the length", async () => {
    const text = JSON.stringify({ a: 1 });
    const response = await proxied(
      () => new Response(text, { headers: { "Content-Type": "application/json; charset=utf-8", "Content-Length": String(text.length) } }),
    );
    const body = await response.text();
    expect(JSON.parse(body)).toEqual({ a: 1, authMethod: "api_key" });
    const length = response.headers.get("content-length");
    if (length !== null) expect(Number(length)).toBe(new TextEncoder().encode(body).byteLength);
  });

  it("keeps the origin's JSON text as sent, adding only the field", async () => {
    // Re-serializing would round 12345678901234567890 and rewrite 1.10 and \u00e9.
    const text = '{"id": 12345678901234567890, "price": 1.10, "name": "caf\\u00e9"}\n';
    const response = await proxied(() => new Response(text, { headers: { "Content-Type": "application/json" } }));
    const body = await response.text();
    // The trailing newline too: the field goes in before the closing brace, and nothing after it changes.
    expect(body).toBe('{"id": 12345678901234567890, "price": 1.10, "name": "caf\\u00e9","authMethod":"api_key"}\n');
    expect(JSON.parse(body)).toMatchObject({ name: "café", authMethod: "api_key" });
  });

  it("injects into an empty object and overrides an origin's own authMethod", async () => {
    expect(await (await proxied(() => jsonResponse({}))).json()).toEqual({ authMethod: "api_key" });
    expect(await (await proxied(() => jsonResponse({ authMethod: "origin's", a: 1 }))).json()).toEqual({ authMethod: "api_key", a: 1 });
  });

  it("replaces an origin's own top-level authMethod in place, escaped spellings and duplicates too, keeping every other byte", async () => {
    const text = '{"a": 1, "authMethod": {"nested": ["}"]}, "b": [2], "auth\\u004dethod": "x", "c": {"authMethod": "inner"}}';
    const response = await proxied(() => new Response(text, { headers: { "Content-Type": "application/json" } }));
    expect(await response.text()).toBe('{"a": 1, "authMethod": "api_key", "b": [2], "auth\\u004dethod": "api_key", "c": {"authMethod": "inner"}}');
  });

  it("sends a spliced JSON answer without Content-Length, its length being known only at the end", async () => {
    const text = JSON.stringify({ a: 1, b: "two" });
    const response = await proxied(() => new Response(text, { headers: { "Content-Type": "application/json", "Content-Length": String(text.length) } }));
    expect(response.headers.get("content-length")).toBeNull();
    expect(await response.text()).toBe('{"a":1,"b":"two","authMethod":"api_key"}');
  });

  it("keeps the Content-Length of a JSON answer declared over the cap, and of an answer to HEAD", async () => {
    const big = new Uint8Array(INJECT_MAX_BYTES + 1).fill(0x20);
    big[0] = 0x7b;
    big[INJECT_MAX_BYTES] = 0x7d; // "{", spaces, "}": a JSON object over the cap
    const declared = await proxied(() => new Response(big, { headers: { "Content-Type": "application/json", "Content-Length": String(big.byteLength) } }));
    expect(declared.headers.get("content-length")).toBe(String(big.byteLength));
    expect(await sha256Hex(new Uint8Array(await declared.arrayBuffer()))).toBe(await sha256Hex(big));

    origin.reply(() => new Response(null, { headers: { "Content-Type": "application/json", "Content-Length": "17" } }));
    const product = await createProduct();
    const { key } = await createKey();
    const head = await send(`${product.pathPrefix}/x`, { method: "HEAD", key });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("17");
    expect(await head.text()).toBe("");
  });

  it("streams a JSON body without Content-Length as it arrives, and over the cap byte-identical", async () => {
    // The origin holds its body back after the first chunk until the client has read that chunk:
    // a gateway that buffered before answering would wait forever.
    const head = new TextEncoder().encode(`{"data":"${"q".repeat(64 * 1024)}`);
    const tail = new TextEncoder().encode(`${"r".repeat(INJECT_MAX_BYTES)}"}`);
    let firstRead!: () => void;
    const clientHasFirst = new Promise<void>((resolve) => (firstRead = resolve));
    const answered = proxied(() => {
      let step = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (step === 0) controller.enqueue(head.slice());
          else if (step === 1) {
            await clientHasFirst;
            controller.enqueue(tail.slice());
          } else controller.close();
          step++;
        },
      });
      return new Response(body, { headers: { "Content-Type": "application/json" } });
    });
    const response = await within(5_000, "response headers, before the origin sends the rest", answered);
    expect(response.headers.get("content-length")).toBeNull();
    const reader = response.body!.getReader();
    const received: Uint8Array[] = [];
    let size = 0;
    while (size < head.byteLength) {
      const { done, value } = await within(5_000, "the first chunk, before the origin sends the rest", reader.read());
      if (done) break;
      received.push(value);
      size += value.byteLength;
    }
    expect(size, "the first chunk, before the origin sent the rest").toBe(head.byteLength);
    firstRead();
    for (let r = await reader.read(); !r.done; r = await reader.read()) received.push(r.value);
    const all = new Uint8Array(await new Blob(received).arrayBuffer());
    const expected = new Uint8Array(await new Blob([head, tail]).arrayBuffer());
    expect(all.byteLength).toBe(expected.byteLength);
    expect(await sha256Hex(all)).toBe(await sha256Hex(expected));
  });

  it("leaves the body untouched when inject_auth_method is off", async () => {
    const text = JSON.stringify({ answer: 42 });
    const response = await proxied(() => new Response(text, { headers: { "Content-Type": "application/json" } }), false);
    expect(await response.text()).toBe(text);
  });

  it.each([
    ["a JSON array", "application/json", "[1,2,3]"],
    ["JSON null", "application/json", "null"],
    ["a JSON string", "application/json", '"text"'],
    ["unparsable JSON", "application/json", '{"a":'],
    ["a JSON-looking text/plain body", "text/plain", '{"a":1}'],
    ["a problem+json body", "application/problem+json", '{"title":"x"}'],
    ["a body without a content type", "", '{"a":1}'],
  ])("passes %s through byte-identical", async (_label, type, text) => {
    const response = await proxied(() => new Response(text, { headers: type ? { "Content-Type": type } : {} }));
    expect(await response.text()).toBe(text);
  });

  it("injects into a JSON object of exactly 1 MiB", async () => {
    const text = JSON.stringify({ data: "y".repeat(INJECT_MAX_BYTES - 11) });
    expect(text.length).toBe(INJECT_MAX_BYTES);
    const response = await proxied(() => new Response(text, { headers: { "Content-Type": "application/json" } }));
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.authMethod).toBe("api_key");
  });

  it.each([
    ["with a declared Content-Length", true],
    ["streamed without a Content-Length", false],
  ])("streams a JSON object over 1 MiB through byte-identical, %s", async (_label, declared) => {
    const text = JSON.stringify({ data: "z".repeat(INJECT_MAX_BYTES) });
    const bytes = new TextEncoder().encode(text);
    const response = await proxied(() => {
      const headers: Record<string, string> = { "Content-Type": "application/json" };
      if (declared) headers["Content-Length"] = String(bytes.byteLength);
      // Several chunks, as a network body arrives.
      const chunkSize = 64 * 1024;
      let offset = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (offset >= bytes.byteLength) return controller.close();
          controller.enqueue(bytes.slice(offset, offset + chunkSize));
          offset += chunkSize;
        },
      });
      return new Response(body, { headers });
    });
    const received = new Uint8Array(await response.arrayBuffer());
    expect(received.byteLength).toBe(bytes.byteLength);
    // Digests rather than a deep equal: comparing a megabyte element by element is slow.
    expect(await sha256Hex(received)).toBe(await sha256Hex(bytes));
  });
});

describe("origin failures", () => {
  it("answers 502 ORIGIN_UNAVAILABLE when the origin cannot be reached", async () => {
    origin.reply(() => {
      throw new TypeError("Network connection lost.");
    });
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/x`, { key });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(502);
    expect(body).toMatchObject({ code: "ORIGIN_UNAVAILABLE", error: "Bad Gateway", requestId: response.headers.get("x-request-id") });
    expect(JSON.stringify(body)).not.toContain("Network connection lost");
    expect(origin.received).toHaveLength(1);
  });

  it("answers 504 ORIGIN_TIMEOUT when the origin is slower than ORIGIN_TIMEOUT_MS", async () => {
    let aborted = false;
    origin.reply(
      (request) =>
        new Promise<Response>((resolve, reject) => {
          request.signal.addEventListener("abort", () => {
            aborted = true;
            reject(request.signal.reason);
          });
          // Never reached when the gateway honours its timeout; keeps a broken one from hanging the suite.
          setTimeout(() => resolve(new Response("too late")), 3_000);
        }),
    );
    const product = await createProduct();
    const { key } = await createKey();
    const started = Date.now();
    const response = await send(`${product.pathPrefix}/slow`, { key, env: { ORIGIN_TIMEOUT_MS: "200" } });
    const elapsed = Date.now() - started;
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(504);
    expect(body).toMatchObject({ code: "ORIGIN_TIMEOUT", error: "Gateway Timeout" });
    expect(response.headers.get("x-request-id")).toBe(body.requestId);
    expect(aborted).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(2_000);
  });

  it("limits only the wait for response headers: a body streaming past ORIGIN_TIMEOUT_MS arrives whole", async () => {
    // Like a real fetch (Fetch spec, "abort fetch"), the stub errors the body
    // when the request's signal aborts, even after the headers were sent.
    origin.reply((request) => {
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          request.signal.addEventListener("abort", () => controller.error(request.signal.reason));
        },
        async pull(controller) {
          if (sent === 3) return controller.close();
          if (sent > 0) await new Promise((resolve) => setTimeout(resolve, 150));
          if (request.signal.aborted) return;
          controller.enqueue(new TextEncoder().encode(`chunk${sent++};`));
        },
      });
      return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
    });
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/stream`, { key, env: { ORIGIN_TIMEOUT_MS: "200" } });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("chunk0;chunk1;chunk2;");
  });

  it("does not time out an origin that answers within ORIGIN_TIMEOUT_MS", async () => {
    origin.reply(async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return jsonResponse({ ok: true });
    });
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/quick`, { key, env: { ORIGIN_TIMEOUT_MS: "1000" } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, authMethod: "api_key" });
  });
});

describe("PAYLOAD_TOO_LARGE", () => {
  const MAX = 1024;

  function chunkedBody(size: number): ReadableStream<Uint8Array> {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= size) return controller.close();
        const chunk = new Uint8Array(Math.min(300, size - sent)).fill(97);
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
  }

  /** MAX_BODY_BYTES at MAX (send's `env`). */
  const capped = { MAX_BODY_BYTES: String(MAX) };

  it("answers 413 for a declared Content-Length over MAX_BODY_BYTES, before the origin", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/upload`, {
      method: "POST",
      key,
      body: "a".repeat(MAX + 1),
      headers: { "Content-Length": String(MAX + 1) },
      env: capped,
    });
    await expectRefusal(response, 413, "PAYLOAD_TOO_LARGE", { presented: key });
  });

  it("answers 413 for a chunked body without Content-Length once it passes MAX_BODY_BYTES", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/upload`, { method: "POST", key, body: chunkedBody(MAX + 1), env: capped });
    await expectRefusal(response, 413, "PAYLOAD_TOO_LARGE", { presented: key });
  });

  it("consumes no quota for a refused chunked body", async () => {
    const product = await createProduct();
    const { key } = await createKey({ rateLimitPerMinute: 3 });
    expect((await send(`${product.pathPrefix}/upload`, { method: "POST", key, body: chunkedBody(MAX * 4), env: capped })).status).toBe(413);
    const admitted = await send(`${product.pathPrefix}/upload`, { method: "POST", key, body: "small", env: capped });
    expect(admitted.status).toBe(200);
    expect(admitted.headers.get("x-ratelimit-remaining")).toBe("2");
  });

  it("forwards bodies of exactly MAX_BODY_BYTES, declared or chunked", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    expect(
      (await send(`${product.pathPrefix}/upload`, { method: "POST", key, body: "b".repeat(MAX), headers: { "Content-Length": String(MAX) }, env: capped }))
        .status,
    ).toBe(200);
    expect((await send(`${product.pathPrefix}/upload`, { method: "POST", key, body: chunkedBody(MAX), env: capped })).status).toBe(200);
    expect(origin.received.map((r) => r.body.length)).toEqual([MAX, MAX]);
    expect(origin.received[1]!.body).toBe("a".repeat(MAX));
  });

  it("refuses an oversized body from an unauthenticated caller with 401, not 413, when it is chunked", async () => {
    const product = await createProduct();
    const response = await send(`${product.pathPrefix}/upload`, { method: "POST", body: chunkedBody(MAX * 2), env: capped });
    await expectRefusal(response, 401, "AUTH_MISSING");
  });
});

describe("routing", () => {
  it("answers 404 ROUTE_NOT_FOUND for a path no product claims, credentials or not", async () => {
    const { key } = await createKey();
    const response = await send(`/nowhere/${uniqueSlug()}`, { key });
    const body = await expectRefusal(response, 404, "ROUTE_NOT_FOUND", { presented: key });
    expect(body.error).toBe("Not Found");
  });

  it("does not route a look-alike that only starts with a product's prefix text", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}X/items`, { key });
    await expectRefusal(response, 404, "ROUTE_NOT_FOUND", { presented: key });
  });

  it.each([
    ["an encoded dot-dot segment", (other: string) => `/..%2F${other}/secret`],
    ["an encoded slash and dot-dot", (other: string) => `/x%2F..%2F..%2F${other}/secret`],
  ])("refuses a path that leaves its product through %s as PATH_INVALID (an encoded slash is not modelled)", async (_label, encodeSegment) => {
    const reachable = await createProduct({ originUrl: ORIGIN });
    const other = await createProduct({ originUrl: ORIGIN });
    const { key } = await createKey({ products: [reachable.slug] });
    const path = `${reachable.pathPrefix}${encodeSegment(other.pathPrefix.split("/").at(-1)!)}`;
    const response = await send(path, { key });
    await expectRefusal(response, 400, "PATH_INVALID", { presented: key, label: path });
  });

  it("still routes paths with ordinary escapes, forwarding their canonical spelling (unreserved decoded, hex upper-cased)", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/files/a%20b%7Ec%c3%a9?q=%2F`, { key });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(upstream().url).toBe(`${ORIGIN}/upstream${product.pathPrefix}/files/a%20b~c%C3%A9?q=%2F`);
  });

  it("routes to the product with the longest matching prefix", async () => {
    const slug = uniqueSlug("a");
    const outer = await createProduct({ pathPrefix: `/api/${slug}`, originUrl: "https://outer.origin.test" });
    const inner = await createProduct({ pathPrefix: `/api/${slug}/b`, originUrl: "https://inner.origin.test", stripPrefix: true });
    const { key } = await createKey();
    for (const path of [`/api/${slug}/b`, `/api/${slug}/b/c`, `/api/${slug}/bc`, `/api/${slug}/x/b`]) {
      const response = await send(path, { key });
      expect(response.status, path).toBe(200);
    }
    expect(origin.received.map((r) => [new URL(r.url).host, new URL(r.url).pathname, r.headers.get("x-auth-product")])).toEqual([
      ["inner.origin.test", "/", inner.slug],
      ["inner.origin.test", "/c", inner.slug],
      ["outer.origin.test", `/api/${slug}/bc`, outer.slug],
      ["outer.origin.test", `/api/${slug}/x/b`, outer.slug],
    ]);
  });
});
