import { env } from "cloudflare:workers";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { throttleName } from "../../src/limits/auth-throttle";
import { setCredentialState } from "../../src/limits/client";
import { invalidateProductCache } from "../../src/proxy/route-match";
import { adminToken, userToken } from "../helpers/api";
import { expectForwarded, expectRefusal } from "../helpers/expect";
import { brokenD1, hangingOrigin, patternStream, resettingOrigin, sha256Hex, slowD1, unreachableLimiter, within } from "../helpers/faults";
import { createKey, createProduct, json, randomClientIp, send } from "../helpers/harness";
import { nowSeconds, uniqueSubject } from "../helpers/jwt";
import { storedCounters } from "../helpers/limiter";
import { echo, useOrigin, type OriginHandler } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * Fault injection (issue #8): D1, the Durable Objects, the origin and a
 * remote JWKS failing in the ways they do in production, and what a client
 * gets meanwhile. Complements, without repeating:
 *  - api-key-auth.test.ts "AUTH_BACKEND_UNAVAILABLE" (D1 down: cached key
 *    admitted, uncached key or product list → 503);
 *  - limiter-failures.test.ts (object errors, retries, failure modes);
 *  - forwarding.test.ts "origin failures" (origin down → 502, slow → 504);
 *  - jwt.test.ts "remote JWKS" (JWKS down with and without a cached key).
 * Every test is bounded: a hang fails it, it never stalls the suite.
 */

const FAULT_TIMEOUT_MS = 15_000;
const origin = useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/**
 * Every call here runs app.fetch in this isolate (send's `env`: REAL when no binding is replaced), as
 * the calls that take a binding away must, so a warm-up call and a faulty one differ in that binding
 * alone, and a test reads the app's own Response (an origin's reset reaches the client's read as it is).
 */
const REAL: Record<string, unknown> = {};
const failures = async (ip: string) => (await storedCounters(throttleName(ip)!)).auth_failures?.count ?? 0;
const quiet = () => vi.spyOn(console, "error").mockImplementation(() => undefined);

describe("D1 unavailable or slow", () => {
  it(
    "does not count a 503 for an unjudged key as a failed authentication, and admits the key once D1 is back",
    async () => {
      quiet();
      const product = await createProduct();
      const { key, record } = await createKey();
      await send(`${product.pathPrefix}/warm`, { env: REAL }); // caches the product list only
      const ip = randomClientIp();

      const { db, queries } = brokenD1();
      const refused = await send(`${product.pathPrefix}/x`, { key, ip, env: { DB: db } });
      // expectRefusal: a 503 must not invite the client to re-authenticate (no WWW-Authenticate), and nothing reached the origin.
      await expectRefusal(refused, 503, "AUTH_BACKEND_UNAVAILABLE", { presented: key });
      expect(queries.length, "the key lookup was attempted").toBeGreaterThan(0);
      expect(await failures(ip)).toBe(0);
      expect(await storedCounters(`key:${record.id}`)).toEqual({});

      // The failed lookup left nothing cached (no negative entry): the next call with D1 back verifies.
      const recovered = await send(`${product.pathPrefix}/x`, { key, ip, env: REAL });
      await expectForwarded(recovered, { keyId: record.id });
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "refuses a key cached here but revoked elsewhere while D1 is down: the key's object knows",
    async () => {
      const product = await createProduct();
      const { key, record } = await createKey();
      expect((await send(`${product.pathPrefix}/warm`, { key, env: REAL })).status).toBe(200);

      // What DELETE /api/v1/keys/:id does in another isolate: the row and the object change; this isolate's cache does not.
      await env.DB.prepare("UPDATE api_keys SET status = 'revoked' WHERE id = ?").bind(record.id).run();
      await setCredentialState(env, `key:${record.id}`, { status: "revoked", notAfter: null });

      const { db, queries } = brokenD1();
      expect(origin.received, "the warm-up call").toHaveLength(1);
      origin.received.length = 0;
      const response = await send(`${product.pathPrefix}/x`, { key, env: { DB: db } });
      await expectRefusal(response, 401, "API_KEY_INACTIVE", { presented: key });
      expect(queries, "answered from the cache and the object, without D1").toEqual([]);
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "answers correctly and counts once when every D1 query is slow (250 ms)",
    async () => {
      invalidateProductCache();
      const product = await createProduct();
      const { key, record } = await createKey({ rateLimitPerMinute: 5 });
      const started = Date.now();
      const response = await within(5_000, "gateway over slow D1", send(`${product.pathPrefix}/x`, { key, env: { DB: slowD1(env.DB, 250) } }));
      const elapsed = Date.now() - started;
      expect(response.status, await response.clone().text()).toBe(200);
      expect(elapsed, "product list and key lookup both waited").toBeGreaterThanOrEqual(450);
      expect(response.headers.get("x-ratelimit-remaining")).toBe("4");
      expect((await storedCounters(`key:${record.id}`)).minute?.count).toBe(1);
      expect(origin.received).toHaveLength(1);
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "answers POST /auth/login with 503, not INVALID_CREDENTIALS, when D1 is down, counting no failure",
    async () => {
      quiet();
      const { user, password } = await createUser();
      const ip = randomClientIp();
      const response = await send("/auth/login", { method: "POST", body: { email: user.email, password }, ip, env: { DB: brokenD1().db } });
      await expectRefusal(response, 503, "AUTH_BACKEND_UNAVAILABLE", { presented: password });
      expect(await failures(ip)).toBe(0);
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "answers a keygate user's management call with 503 when D1 is down",
    async () => {
      quiet();
      const { user } = await createUser();
      const response = await send("/api/v1/keys", { headers: await userToken(user), env: { DB: brokenD1().db } });
      await expectRefusal(response, 503, "AUTH_BACKEND_UNAVAILABLE");
    },
    FAULT_TIMEOUT_MS,
  );

  // The caller is judged without D1 (ADMIN_TOKEN); the write itself fails: a 503 tells the client to retry.
  it(
    "answers an admin's write with a JSON 503 AUTH_BACKEND_UNAVAILABLE when D1 is down, and writes nothing",
    async () => {
      quiet();
      const name = `fault-${crypto.randomUUID()}`;
      const response = await send("/api/v1/keys", { method: "POST", headers: adminToken(), body: { name, products: ["*"] }, env: { DB: brokenD1().db } });
      const body = await expectRefusal(response, 503, "AUTH_BACKEND_UNAVAILABLE", { presented: env.ADMIN_TOKEN });
      expect(JSON.stringify(body)).not.toContain("D1_ERROR");
      expect(await env.DB.prepare("SELECT count(*) AS n FROM api_keys WHERE name = ?").bind(name).first("n")).toBe(0);
    },
    FAULT_TIMEOUT_MS,
  );
});

describe("Durable Objects unreachable", () => {
  it(
    "still answers a bad key with its 401 when the failed-auth counter cannot be reached",
    async () => {
      quiet();
      const product = await createProduct();
      const { namespace, calls } = unreachableLimiter();
      const key = `ilal_live_${"0".repeat(48)}`;
      const response = await send(`${product.pathPrefix}/x`, { key, env: { RATE_LIMITER: namespace } });
      await expectRefusal(response, 401, "API_KEY_PREFIX_NOT_FOUND", { presented: key });
      expect(
        calls.some((call) => call.endsWith(".recordAuthFailure")),
        "the count was attempted",
      ).toBe(true);
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "revokes the D1 row when the key's object cannot be told, answers 503, and the key is refused once its row is re-read",
    async () => {
      quiet();
      const product = await createProduct();
      const { key, record } = await createKey();
      expect((await send(`${product.pathPrefix}/warm`, { key, env: REAL })).status).toBe(200);

      expect(origin.received, "the warm-up call").toHaveLength(1);
      origin.received.length = 0;
      const revoke = await send(`/api/v1/keys/${record.id}`, {
        method: "DELETE",
        headers: adminToken(),
        env: { RATE_LIMITER: unreachableLimiter().namespace },
      });
      await expectRefusal(revoke, 503, "AUTH_BACKEND_UNAVAILABLE");
      expect(await env.DB.prepare("SELECT status FROM api_keys WHERE id = ?").bind(record.id).first("status")).toBe("revoked");

      // This isolate dropped its cached row when it wrote the revocation; others do within KEY_CACHE_TTL_SECONDS.
      const next = await send(`${product.pathPrefix}/x`, { key, env: REAL });
      await expectRefusal(next, 401, "API_KEY_INACTIVE", { presented: key });
    },
    FAULT_TIMEOUT_MS,
  );
});

describe("origin faults", () => {
  // A streamed body (any type, and JSON the authMethod splice streams): status and headers go out before
  // the body is read, so an origin that resets midway cannot be answered with a 502; the client's read fails.
  it.each([
    ["a non-JSON body", () => resettingOrigin(4096, "text/plain"), "text/plain"],
    ["a JSON object cut off while authMethod is being spliced in", () => resettingJsonObject(4096), "application/json"],
    ["a JSON body that is no object", () => resettingOrigin(4096, "application/json"), "application/json"],
  ])(
    "ends the client's read with an error, not a hang, when the origin resets mid-stream: %s",
    async (_label, resetting, contentType) => {
      origin.reply(resetting());
      const product = await createProduct();
      const { key, record } = await createKey();
      const response = await within(5_000, "response headers", send(`${product.pathPrefix}/stream`, { key, env: REAL }));
      expect(response.status).toBe(200);
      expect(response.headers.get("x-auth-method")).toBe("api_key");
      expect(response.headers.get("content-type")).toBe(contentType);
      const outcome = await within(
        5_000,
        "body read",
        response.arrayBuffer().then(
          (bytes) => `ended after ${bytes.byteLength} bytes`,
          (error: unknown) => `rejected: ${String(error)}`,
        ),
      );
      expect(outcome).toMatch(/^rejected: /);
      expect((await storedCounters(`key:${record.id}`)).minute?.count, "the call was admitted before the origin failed").toBe(1);
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "answers 502 ORIGIN_UNAVAILABLE when a small JSON answer with a declared length breaks off: it is read whole before anything is sent",
    async () => {
      quiet();
      origin.reply(resettingJsonObject(14, { declaredLength: 4096 }));
      const product = await createProduct();
      const { key, record } = await createKey();
      const response = await within(5_000, "response", send(`${product.pathPrefix}/small`, { key, env: REAL }));
      const body = await within(5_000, "body read", json(response));
      expect(response.status, JSON.stringify(body)).toBe(502);
      expect(body.code).toBe("ORIGIN_UNAVAILABLE");
      expect(response.headers.get("x-ratelimit-limit"), "an authenticated answer: the limit headers").not.toBeNull();
      expect((await storedCounters(`key:${record.id}`)).minute?.count, "admitted before the origin failed").toBe(1);
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "answers 504 within ORIGIN_TIMEOUT_MS when the origin never answers at all",
    async () => {
      quiet();
      origin.reply(hangingOrigin);
      const product = await createProduct();
      const { key } = await createKey();
      const response = await within(3_000, "gateway with a hung origin", send(`${product.pathPrefix}/x`, { key, env: { ORIGIN_TIMEOUT_MS: "100" } }));
      expect(response.status).toBe(504);
      expect((await json(response)).code).toBe("ORIGIN_TIMEOUT");
    },
    FAULT_TIMEOUT_MS,
  );

  it.each([
    ["application/octet-stream", "binary"],
    ["application/json", "JSON (over the 1 MiB injection cap, so passed through untouched)"],
  ])(
    "streams a 10 MB %s answer through byte-identical: %s",
    async (contentType) => {
      const SIZE = 10 * 1_048_576;
      // A JSON object's text when it is JSON: `{"d":"xxxx…"}` padded to exactly SIZE bytes.
      const pattern = new TextEncoder().encode("0123456789abcdef");
      const jsonHead = new TextEncoder().encode('{"d":"');
      origin.reply(() => {
        const body = contentType === "application/json" ? jsonObjectStream(SIZE, jsonHead) : patternStream(SIZE, pattern);
        return new Response(body, { headers: { "Content-Type": contentType } });
      });
      const product = await createProduct();
      const { key } = await createKey();
      const response = await within(10_000, "response", send(`${product.pathPrefix}/big`, { key, env: REAL }));
      expect(response.status).toBe(200);
      expect(response.headers.get("x-auth-method")).toBe("api_key");
      const received = new Uint8Array(await within(10_000, "body", response.arrayBuffer()));
      expect(received.byteLength).toBe(SIZE);
      const expected = new Uint8Array(
        await new Response(contentType === "application/json" ? jsonObjectStream(SIZE, jsonHead) : patternStream(SIZE, pattern)).arrayBuffer(),
      );
      expect(await sha256Hex(received)).toBe(await sha256Hex(expected));
    },
    30_000,
  );
});

describe("JWKS endpoint faults through the gateway", () => {
  async function issuer() {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const kid = `idp-${crypto.randomUUID().slice(0, 8)}`;
    const url = `https://idp-${crypto.randomUUID().slice(0, 8)}.test/jwks.json`;
    const jwk = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
    const sign = () =>
      new SignJWT({ sub: uniqueSubject("idp"), iss: "keygate", aud: "keygate", exp: nowSeconds() + 300 })
        .setProtectedHeader({ alg: "ES256", kid })
        .sign(privateKey);
    return { url, jwk, sign };
  }

  it(
    "answers 503 within jose's JWKS timeout when the JWKS endpoint never answers",
    async () => {
      quiet();
      const idp = await issuer();
      origin.reply((request) => (request.url === idp.url ? hangingOrigin(request) : echo(request)));
      const product = await createProduct();
      const ip = randomClientIp();
      const token = await idp.sign();
      const response = await within(9_000, "gateway with a hung JWKS", send(`${product.pathPrefix}/x`, { jwt: token, ip, env: { JWKS_URL: idp.url } }));
      await expectRefusal(response, 503, "AUTH_BACKEND_UNAVAILABLE", { presented: token, fetched: [idp.url] });
      expect(await failures(ip)).toBe(0);
    },
    FAULT_TIMEOUT_MS,
  );

  it(
    "keeps admitting tokens of a cached JWKS key through the gateway after the endpoint goes down and the cache ages",
    async () => {
      quiet();
      const idp = await issuer();
      let up = true;
      origin.reply((request) => {
        if (request.url !== idp.url) return echo(request);
        return up ? Response.json({ keys: [idp.jwk] }) : new Response("down", { status: 503 });
      });
      const product = await createProduct();
      const first = await send(`${product.pathPrefix}/x`, { jwt: await idp.sign(), env: { JWKS_URL: idp.url } });
      expect(first.status, await first.clone().text()).toBe(200);

      up = false;
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(Date.now() + 11 * 60_000); // past jose's 10-minute cache: the next call tries to refresh, and fails
      const later = await send(`${product.pathPrefix}/x`, { jwt: await idp.sign(), env: { JWKS_URL: idp.url } });
      expect(later.status, await later.clone().text()).toBe(200);
      const jwksCalls = origin.received.filter((request) => request.url === idp.url).length;
      expect(jwksCalls, "the refresh was attempted").toBeGreaterThanOrEqual(2);
      expect(origin.calls()).toHaveLength(2);
    },
    FAULT_TIMEOUT_MS,
  );
});

/** An origin whose JSON object (`{"d":"xxxx…`) breaks off after `bytesBeforeReset` bytes (its connection resets), optionally having declared a longer Content-Length. */
function resettingJsonObject(bytesBeforeReset: number, { declaredLength }: { declaredLength?: number } = {}): OriginHandler {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (declaredLength !== undefined) headers["Content-Length"] = String(declaredLength);
  return () => {
    const head = new TextEncoder().encode('{"d":"');
    const body = new Uint8Array(bytesBeforeReset).fill(120);
    body.set(head);
    return new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(body);
        },
        async pull(controller) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          controller.error(new Error("Network connection lost."));
        },
      }),
      { status: 200, headers },
    );
  };
}

/** `size` bytes of one JSON object: `{"d":"` + hex digits + `"}`. */
function jsonObjectStream(size: number, head: Uint8Array): ReadableStream<Uint8Array> {
  const tail = new TextEncoder().encode('"}');
  const digits = patternStream(size - head.byteLength - tail.byteLength, new TextEncoder().encode("0123456789abcdef")).getReader();
  return new ReadableStream({
    start(controller) {
      controller.enqueue(head);
    },
    async pull(controller) {
      const { done, value } = await digits.read();
      if (!done) return controller.enqueue(value);
      controller.enqueue(tail);
      controller.close();
    },
  });
}
