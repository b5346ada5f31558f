import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, createKey, createProduct, json, randomClientIp } from "../helpers/harness";
import { setClock, storedCounters } from "../helpers/limiter";
import { signToken, uniqueSubject } from "../helpers/jwt";
import { stubOrigin } from "../helpers/origin";
import { memoryReplayStore, verifyOriginSignature } from "../../src/proxy/origin-signature";

/**
 * SPEC section 8, security review F2 and interop 4.1: whatever a client sends
 * in its headers, the origin learns identity and client address only from
 * keygate, and no header set makes keygate answer a 5xx of its own.
 */

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** Headers an origin could read as identity, client address, path or method, in the spellings CGI/WSGI servers fold together. */
const SPOOFED: Record<string, string> = {
  X_Auth_Subject: "3ff79ebf-1be9-4042-bbbf-0eeb9eec88f9",
  X_Auth_Scopes: "*",
  X_Auth_Product: "defi",
  "x.auth.key.id": "victim-key-id",
  "x-auth_method": "jwt",
  X_Auth_Issuer: "keygate",
  X_Request_Id: "forged-request-id",
  Forwarded: "for=6.6.6.6;proto=https",
  "X-Real-IP": "6.6.6.6",
  X_Real_IP: "6.6.6.6",
  "True-Client-IP": "6.6.6.6",
  "X-Client-IP": "6.6.6.6",
  "X-Cluster-Client-IP": "6.6.6.6",
  X_Forwarded_For: "6.6.6.6",
  "X-Forwarded-Host": "evil.test",
  "X-Forwarded-Proto": "http",
  "X-Forwarded-Port": "8443",
  "X-Forwarded-Prefix": "/admin",
  "X-Original-URL": "/admin/delete",
  "X-Rewrite-URL": "/admin/delete",
  "X-HTTP-Method-Override": "DELETE",
  "X-HTTP-Method": "DELETE",
  "X-Method-Override": "DELETE",
  X_HTTP_Method_Override: "DELETE",
  X_Api_Key: "someone-elses-key",
};

/** The canonical spelling of a header name, as CGI-style servers see it. */
function canonical(name: string): string {
  return name.toLowerCase().replace(/[_.]/g, "-");
}

describe("identity cannot be spoofed under any spelling (F2)", () => {
  it("drops every client header that could pass for identity, address, path or method and sets keygate's own", async () => {
    const origin = stubOrigin();
    const product = await createProduct();
    const { key, record } = await createKey({ scopes: ["read"] });
    const response = await call(`${product.pathPrefix}/me`, {
      headers: { "X-API-Key": key, "CF-Connecting-IP": "198.51.100.7", ...SPOOFED },
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const received = origin.received[0]!.headers;
    for (const name of Object.keys(SPOOFED)) {
      const spellings = [...received.keys()].filter((seen) => canonical(seen) === canonical(name));
      const values = spellings.map((seen) => received.get(seen));
      // Only keygate's own canonical header may remain, with keygate's value.
      expect(
        values.every((value) => !Object.values(SPOOFED).includes(value!)),
        `${name}: ${values.join(" | ")}`,
      ).toBe(true);
    }
    expect(received.get("x-auth-key-id")).toBe(record.id);
    expect(received.get("x-auth-scopes")).toBe("read");
    expect(received.get("x-forwarded-for")).toBe("198.51.100.7");
    expect(received.get("x-request-id")).toBe(response.headers.get("x-request-id"));
    expect(received.get("x-auth-subject")).toBeNull();
    expect(received.get("forwarded")).toBeNull();
    expect(received.get("x-http-method-override")).toBeNull();
    expect(received.get("x-original-url")).toBeNull();
  });

  it("never forwards the client's CF-Connecting-IP header itself", async () => {
    const origin = stubOrigin();
    const product = await createProduct();
    const { key } = await createKey();
    await call(`${product.pathPrefix}/me`, { headers: { "X-API-Key": key, "CF-Connecting-IP": "198.51.100.8" } });
    expect(origin.received[0]!.headers.get("cf-connecting-ip")).toBeNull();
    expect(origin.received[0]!.headers.get("x-forwarded-for")).toBe("198.51.100.8");
  });

  it("removes Expect, hop-by-hop headers and every header Connection names, in any spelling", async () => {
    const origin = stubOrigin();
    const product = await createProduct();
    const { key } = await createKey();
    const response = await call(`${product.pathPrefix}/orders`, {
      method: "POST",
      headers: {
        "X-API-Key": key,
        Expect: "100-continue",
        Connection: "keep-alive, X_Hop_Secret, x-other-hop",
        "X-Hop-Secret": "secret",
        "x-other-hop": "secret",
        "Proxy-Connection": "keep-alive",
        "Content-Type": "application/json",
      },
      body: '{"a":1}',
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const received = origin.received[0]!.headers;
    for (const name of ["expect", "connection", "x-hop-secret", "x-other-hop", "proxy-connection"]) {
      expect(received.get(name), name).toBeNull();
    }
    expect(origin.received[0]!.body).toBe('{"a":1}');
  });
});

describe("Expect: 100-continue (interop 4.1)", () => {
  it("reaches the origin without Expect and answers the origin's reply", async () => {
    const origin = stubOrigin();
    const product = await createProduct();
    const { key } = await createKey();
    const response = await call(`${product.pathPrefix}/swap`, {
      method: "POST",
      headers: { "X-API-Key": key, Expect: "100-continue", "Content-Type": "application/json" },
      body: '{"amount":"1"}',
    });
    expect(response.status, await response.clone().text()).toBe(200);
    expect((await json(response)).body).toBe('{"amount":"1"}');
    expect(origin.received[0]!.headers.get("expect")).toBeNull();
  });

  it("turns an interim (1xx) origin answer into 502 ORIGIN_UNAVAILABLE, never a 500", async () => {
    // workerd's fetch handed keygate a 100 Continue when the origin sent one; a Response cannot be built with it.
    stubOrigin(() => Object.defineProperty(new Response(null), "status", { value: 100 }));
    const product = await createProduct();
    const { key } = await createKey();
    const response = await call(`${product.pathPrefix}/swap`, { method: "POST", headers: { "X-API-Key": key }, body: "{}" });
    expect(response.status).toBe(502);
    expect((await json(response)).code).toBe("ORIGIN_UNAVAILABLE");
  });
});

/** Header names and values a client can send: valid tokens, including the tricky ones. */
const headerName = fc.oneof(
  fc.constantFrom(
    "expect",
    "connection",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "content-type",
    "accept-encoding",
    "range",
    "if-none-match",
    "host",
    "x-api-key",
    "authorization",
    "cookie",
    "forwarded",
    "x-forwarded-for",
    "x_auth_scopes",
    "x-request-id",
    "x-http-method-override",
    "cf-connecting-ip",
    "origin",
  ),
  fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}$/),
);
const headerValue = fc.oneof(
  fc.constantFrom("100-continue", "close", "keep-alive, x-foo", "gzip", "chunked", "0", "-1", "abc", "bytes=0-1", "", "*", "trailers"),
  fc.stringMatching(/^[\x21-\x7e]{0,30}$/),
);

describe("header fuzz: no header set makes keygate answer a 5xx of its own", () => {
  it("answers < 500 with a healthy origin and storage, and counts only forwarded calls", async () => {
    const origin = stubOrigin();
    const product = await createProduct({ rateLimitPerMinute: 10_000, rateLimitPerDay: 100_000 });
    const { key, record } = await createKey();
    // One minute window for the whole run: 150 calls can straddle a minute boundary, and the count below is the minute's.
    setClock(new Date(Math.floor(Date.now() / 60_000) * 60_000 + 5_000).toISOString());
    let forwarded = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(headerName, headerValue, { maxKeys: 6 }),
        fc.constantFrom("GET", "POST", "PUT", "DELETE", "HEAD"),
        async (extra, method) => {
          let headers: Headers;
          try {
            headers = new Headers(extra);
          } catch {
            return; // not a header set a client could send
          }
          headers.set("X-API-Key", key);
          headers.set("CF-Connecting-IP", randomClientIp());
          const before = origin.received.length;
          let request: Request;
          try {
            request = new Request(`https://gateway.test${product.pathPrefix}/items`, {
              method,
              headers,
              body: method === "GET" || method === "HEAD" ? null : '{"x":1}',
            });
          } catch {
            return; // the runtime itself refuses it before keygate sees it
          }
          const response = await exports.default.fetch(request);
          await response.arrayBuffer();
          expect(response.status, `${method} ${JSON.stringify(extra)}`).toBeLessThan(500);
          if (origin.received.length > before) forwarded += 1;
        },
      ),
      { numRuns: 150 },
    );
    // Every counted call was forwarded; refused ones (413, 400, …) consumed nothing.
    expect((await storedCounters(`key:${record.id}`)).minute?.count ?? 0).toBe(forwarded);
  });
});

describe("X-Auth-Issuer (F7): the origin is told who vouches for a JWT's subject, under the signature", () => {
  it.each([
    ["a keygate user's token", "ES256", "keygate"],
    ["a JWT_SECRET token", "HS256", "hs256"],
  ])("sends %s (%s) with a signed X-Auth-Issuer %s", async (_label, alg, issuer) => {
    const origin = stubOrigin();
    const product = await createProduct();
    const token = await signToken({ sub: uniqueSubject(), scope: "read", products: ["*"] }, { alg });
    const response = await call(`${product.pathPrefix}/me`, { headers: { Authorization: `Bearer ${token}`, X_Auth_Issuer: "keygate" } });
    expect(response.status, await response.clone().text()).toBe(200);
    const received = origin.received[0]!;
    expect(received.headers.get("x-auth-issuer")).toBe(issuer);
    expect([...received.headers.keys()].filter((name) => canonical(name) === "x-auth-issuer")).toEqual(["x-auth-issuer"]);
    expect(received.headers.get("signature-input")).toContain('"x-auth-issuer"');
    const verdict = await verifyOriginSignature(new Request(received.url, { headers: received.headers }), env.ORIGIN_SIGNING_SECRET, {
      replayStore: memoryReplayStore(),
    });
    expect(verdict).toMatchObject({ ok: true, identity: { "x-auth-issuer": issuer } });
  });
});
