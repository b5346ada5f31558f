import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateKey } from "../../src/auth/key-format";
import { getProduct } from "../../src/db/products";
import { EXPOSED_HEADERS, PREFLIGHT_MAX_AGE_SECONDS } from "../../src/proxy/cors";
import { ProductResponseSchema } from "../../src/routes/schemas";
import { adminToken, api } from "../helpers/api";
import { createKey, createProduct, json, ORIGIN, randomClientIp, send, uniqueSlug } from "../helpers/harness";
import { storedCounters } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";

// SPEC section 7: products may list allowed browser origins (CORS); preflights
// are answered by keygate without credentials, never counted, never forwarded.
// (Defect 4.2 of the interop review: every preflight used to get 401.)

const PAGE = "https://app.example.com";
const OTHER_PAGE = "https://evil.example.net";

const origin = useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
});

/** A browser's preflight from PAGE for a POST with a key; `headers` add to or replace its headers. */
function preflight(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return send(path, {
    method: "OPTIONS",
    headers: { Origin: PAGE, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key", ...headers },
  });
}

function varyOf(response: Response): string[] {
  return (response.headers.get("Vary") ?? "").split(",").map((name) => name.trim().toLowerCase());
}

function expectReadableBy(response: Response, page: string): void {
  expect(response.headers.get("Access-Control-Allow-Origin")).toBe(page);
  expect(response.headers.get("Access-Control-Allow-Credentials")).toBeNull();
  const exposed = (response.headers.get("Access-Control-Expose-Headers") ?? "").split(", ");
  expect(exposed).toEqual(expect.arrayContaining([...EXPOSED_HEADERS]));
  expect(varyOf(response)).toContain("origin");
}

describe("preflights to a product", () => {
  it("are answered 204 for a listed origin with the origin, the requested method and headers, Max-Age and Vary, without credentials", async () => {
    const product = await createProduct({ corsOrigins: ["http://127.0.0.1:5173", PAGE] });
    const response = await preflight(`${product.pathPrefix}/swap`, { "Access-Control-Request-Headers": "X-API-Key, Authorization, Content-Type" });
    expect(response.status, await response.clone().text()).toBe(204);
    expect(await response.text()).toBe("");
    expect(
      Object.fromEntries(
        ["Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Max-Age"].map((n) => [
          n,
          response.headers.get(n),
        ]),
      ),
    ).toEqual({
      "Access-Control-Allow-Origin": PAGE,
      "Access-Control-Allow-Methods": "POST",
      "Access-Control-Allow-Headers": "x-api-key, authorization, content-type",
      "Access-Control-Max-Age": String(PREFLIGHT_MAX_AGE_SECONDS),
    });
    expect(response.headers.get("Access-Control-Allow-Credentials")).toBeNull();
    expect(varyOf(response)).toEqual(["origin", "access-control-request-method", "access-control-request-headers"]);
    expect(response.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(origin.received, "never forwarded").toHaveLength(0);
  });

  it("grant whatever method the product would route, and no Allow-Headers when none were asked for", async () => {
    const product = await createProduct({ corsOrigins: [PAGE] });
    for (const method of ["GET", "PUT", "PATCH", "DELETE"]) {
      const response = await send(`${product.pathPrefix}/r`, { method: "OPTIONS", headers: { Origin: PAGE, "Access-Control-Request-Method": method } });
      expect(response.status).toBe(204);
      expect(response.headers.get("Access-Control-Allow-Methods")).toBe(method);
      expect(response.headers.get("Access-Control-Allow-Headers")).toBeNull();
    }
    expect(origin.received).toHaveLength(0);
  });

  it('answer any origin with a literal * (never the origin, never credentials) when the list is ["*"]', async () => {
    const product = await createProduct({ corsOrigins: ["*"] });
    const response = await preflight(`${product.pathPrefix}/r`, { Origin: OTHER_PAGE });
    expect(response.status).toBe(204);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(response.headers.get("Access-Control-Allow-Credentials")).toBeNull();
  });

  it("are refused 403 CORS_ORIGIN_NOT_ALLOWED (JSON, no Allow-Origin) for an origin not on the list", async () => {
    const product = await createProduct({ corsOrigins: [PAGE] });
    for (const page of [OTHER_PAGE, "https://app.example.com:8443", "http://app.example.com", "null"]) {
      const response = await preflight(`${product.pathPrefix}/swap`, { Origin: page });
      const body = await json(response);
      expect(response.status, page).toBe(403);
      expect(body).toMatchObject({ error: "Forbidden", code: "CORS_ORIGIN_NOT_ALLOWED", origin: page });
      expect(response.headers.get("Content-Type")).toBe("application/json");
      expect(response.headers.get("Access-Control-Allow-Origin")).toBeNull();
      expect(varyOf(response)).toContain("origin");
    }
    expect(origin.received).toHaveLength(0);
  });

  it("are refused 403 CORS_ORIGIN_NOT_ALLOWED for a product without a list, in the product's error format", async () => {
    const product = await createProduct();
    const response = await preflight(`${product.pathPrefix}/swap`);
    expect(response.status).toBe(403);
    expect(await json(response)).toMatchObject({ code: "CORS_ORIGIN_NOT_ALLOWED", message: "This product admits no browser origins (CORS)" });
    expect(response.headers.get("Access-Control-Allow-Origin")).toBeNull();

    const compact = await createProduct({ errorFormat: "compact" });
    const refused = await preflight(`${compact.pathPrefix}/swap`);
    expect(refused.status).toBe(403);
    expect(await json(refused)).toEqual({ error: "This product admits no browser origins (CORS)" });
  });

  it("are never counted: no limiter object, no failed-auth count, even from an address the throttle refuses", async () => {
    const throttledEnv = { AUTH_FAILURE_LIMIT_PER_MINUTE: "2" };
    const product = await createProduct({ corsOrigins: [PAGE] });
    const { key, record } = await createKey();
    const ip = randomClientIp();
    const preflightFrom = () =>
      send(`${product.pathPrefix}/r`, { method: "OPTIONS", headers: { Origin: PAGE, "Access-Control-Request-Method": "GET" }, ip, env: throttledEnv });

    for (let i = 0; i < 5; i++) expect((await preflightFrom()).status).toBe(204);
    // A preflight carrying a wrong key is still only a preflight: the key is not even looked at.
    const withBadKey = await send(`${product.pathPrefix}/r`, {
      method: "OPTIONS",
      key: generateKey("ilal", "live"),
      headers: { Origin: PAGE, "Access-Control-Request-Method": "GET" },
      ip,
      env: throttledEnv,
    });
    expect(withBadKey.status).toBe(204);
    expect(await storedCounters(`ip:${ip}`), "failed-auth counter").toEqual({});
    expect(await storedCounters(`key:${record.id}`), "the key's limiter").toEqual({});

    // Trip the throttle; preflights are still answered, and the actual call's 429 is readable by the page.
    for (let i = 0; i < 2; i++) {
      const failed = await send(`${product.pathPrefix}/r`, { key: generateKey("ilal", "live"), ip, env: throttledEnv });
      expect(failed.status).toBe(401);
    }
    const before = await storedCounters(`ip:${ip}`);
    expect(before.auth_failures?.count).toBe(2);
    const throttled = await send(`${product.pathPrefix}/r`, { key, headers: { Origin: PAGE }, ip, env: throttledEnv });
    expect(throttled.status).toBe(429);
    expect((await json(throttled)).code).toBe("AUTH_THROTTLED");
    expectReadableBy(throttled, PAGE);
    expect((await preflightFrom()).status).toBe(204);
    expect(await storedCounters(`ip:${ip}`)).toEqual(before);
    expect(await storedCounters(`key:${record.id}`)).toEqual({});
    expect(origin.received).toHaveLength(0);
  });

  it("to a path no product routes are 404 ROUTE_NOT_FOUND, as before", async () => {
    const response = await preflight(`/api/${uniqueSlug("none")}/r`);
    expect(response.status).toBe(404);
    expect((await json(response)).code).toBe("ROUTE_NOT_FOUND");
  });

  it("with a malformed Access-Control-Request-Method or -Headers are 400, not echoed", async () => {
    const product = await createProduct({ corsOrigins: [PAGE] });
    const badMethod = await preflight(`${product.pathPrefix}/r`, { "Access-Control-Request-Method": "GE T" });
    expect(badMethod.status).toBe(400);
    expect((await json(badMethod)).code).toBe("VALIDATION_FAILED");
    const badHeaders = await preflight(`${product.pathPrefix}/r`, { "Access-Control-Request-Headers": "x-api-key, bad header" });
    expect(badHeaders.status).toBe(400);
    expect(badHeaders.headers.get("Access-Control-Allow-Headers")).toBeNull();
  });

  it("an OPTIONS without Access-Control-Request-Method is an ordinary call: authenticated, counted and forwarded", async () => {
    const product = await createProduct({ corsOrigins: [PAGE] });
    const anonymous = await send(`${product.pathPrefix}/r`, { method: "OPTIONS", headers: { Origin: PAGE } });
    expect(anonymous.status).toBe(401);
    expect((await json(anonymous)).code).toBe("AUTH_MISSING");
    expectReadableBy(anonymous, PAGE);

    const { key, record } = await createKey();
    const authenticated = await send(`${product.pathPrefix}/r`, { method: "OPTIONS", key, headers: { Origin: PAGE } });
    expect(authenticated.status).toBe(200);
    expect(origin.received.map((r) => r.method)).toEqual(["OPTIONS"]);
    expect((await storedCounters(`key:${record.id}`)).minute?.count).toBe(1);
  });
});

describe("actual cross-origin calls to a product", () => {
  it("carry Allow-Origin, Expose-Headers and Vary: Origin on success; the origin's own Access-Control-* headers give way", async () => {
    origin.reply(() =>
      Response.json(
        { ok: true },
        {
          headers: {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": "GET, POST, DELETE",
            "Access-Control-Expose-Headers": "X-Origin-Thing, *",
            "X-Origin-Thing": "1",
            Vary: "Accept-Encoding",
          },
        },
      ),
    );
    const product = await createProduct({ corsOrigins: [PAGE] });
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/r`, { key, headers: { Origin: PAGE } });
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({ ok: true });
    expectReadableBy(response, PAGE);
    expect(response.headers.get("Access-Control-Allow-Methods")).toBeNull();
    expect(response.headers.get("Access-Control-Expose-Headers")).toBe([...EXPOSED_HEADERS, "X-Origin-Thing"].join(", "));
    expect(varyOf(response)).toEqual(["accept-encoding", "origin"]);
    expect(response.headers.get("X-RateLimit-Remaining")).not.toBeNull();
    // The page's Origin still reaches the origin: it is the origin's to log.
    expect(origin.received[0]!.headers.get("Origin")).toBe(PAGE);
  });

  it("carry them on keygate's own errors too (401, 403, 502), so the page can read the code and the request id", async () => {
    origin.reply(() => {
      throw new TypeError("Network connection lost.");
    });
    const product = await createProduct({ corsOrigins: [PAGE], authMethods: ["api_key"] });
    const missing = await send(`${product.pathPrefix}/r`, { headers: { Origin: PAGE } });
    expect(missing.status).toBe(401);
    expect((await json(missing)).code).toBe("AUTH_MISSING");
    expectReadableBy(missing, PAGE);
    expect(missing.headers.get("WWW-Authenticate")).not.toBeNull();

    const { key: otherProductKey } = await createKey({ products: ["some-other-product"] });
    const forbidden = await send(`${product.pathPrefix}/r`, { key: otherProductKey, headers: { Origin: PAGE } });
    expect(forbidden.status).toBe(403);
    expectReadableBy(forbidden, PAGE);

    vi.spyOn(console, "error").mockImplementation(() => {});
    const { key } = await createKey();
    const unreachable = await send(`${product.pathPrefix}/r`, { key, headers: { Origin: PAGE } });
    expect(unreachable.status).toBe(502);
    expectReadableBy(unreachable, PAGE);
  });

  it("from an origin not on the list carry no Allow-Origin, only Vary: Origin", async () => {
    origin.reply(() => Response.json({ ok: true }, { headers: { "Access-Control-Allow-Origin": OTHER_PAGE } }));
    const product = await createProduct({ corsOrigins: [PAGE] });
    const { key } = await createKey();
    for (const headers of [{ Origin: OTHER_PAGE }, {}] as Record<string, string>[]) {
      const response = await send(`${product.pathPrefix}/r`, { key, headers });
      expect(response.status).toBe(200);
      expect(response.headers.get("Access-Control-Allow-Origin")).toBeNull();
      expect(response.headers.get("Access-Control-Expose-Headers")).toBeNull();
      expect(varyOf(response)).toContain("origin");
    }
    const refused = await send(`${product.pathPrefix}/r`, { headers: { Origin: OTHER_PAGE } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("to a product without a list carry no CORS headers, not even the origin's", async () => {
    origin.reply(() => Response.json({ ok: true }, { headers: { "Access-Control-Allow-Origin": "*" } }));
    const product = await createProduct();
    const { key } = await createKey();
    const response = await send(`${product.pathPrefix}/r`, { key, headers: { Origin: PAGE } });
    expect(response.status).toBe(200);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBeNull();
    expect(response.headers.get("Vary")).toBeNull();
  });
});

describe("public documents", () => {
  it.each(["/.well-known/jwks.json", "/openapi.json"])("%s is readable from any origin, preflight included", async (path) => {
    const response = await send(path, { headers: { Origin: OTHER_PAGE } });
    expect(response.status).toBe(200);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(response.headers.get("Access-Control-Allow-Credentials")).toBeNull();
    await response.arrayBuffer();

    const answer = await send(path, {
      method: "OPTIONS",
      headers: { Origin: OTHER_PAGE, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "accept" },
    });
    expect(answer.status).toBe(204);
    expect(answer.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(answer.headers.get("Access-Control-Allow-Methods")).toBe("GET, HEAD");
    expect(answer.headers.get("Access-Control-Allow-Headers")).toBe("accept");
    expect(answer.headers.get("Access-Control-Max-Age")).toBe(String(PREFLIGHT_MAX_AGE_SECONDS));
  });
});

describe("the admin API's corsOrigins", () => {
  const productBody = (overrides: Record<string, unknown> = {}) => {
    const slug = uniqueSlug("cors");
    return { slug, name: `Product ${slug}`, pathPrefix: `/api/${slug}`, originUrl: `${ORIGIN}/one`, ...overrides };
  };

  it("defaults to [] and round-trips through create, read and update, taking effect at once", async () => {
    const plain = await api("POST", "/api/v1/admin/products", adminToken(), productBody());
    expect(plain.status).toBe(201);
    expect(ProductResponseSchema.parse(plain.body).corsOrigins).toEqual([]);

    const origins = [PAGE, "http://127.0.0.1:5173", "http://[::1]:8080", "http://localhost:3000"];
    const body = productBody({ corsOrigins: origins });
    const created = await api("POST", "/api/v1/admin/products", adminToken(), body);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.corsOrigins).toEqual(origins);
    expect((await getProduct(env.DB, body.slug))?.corsOrigins).toEqual(origins);
    expect((await api("GET", `/api/v1/admin/products/${body.slug}`, adminToken())).body.corsOrigins).toEqual(origins);
    expect((await preflight(`${body.pathPrefix}/r`)).status).toBe(204);

    const patched = await api("PATCH", `/api/v1/admin/products/${body.slug}`, adminToken(), { corsOrigins: [] });
    expect(patched.status).toBe(200);
    expect(patched.body.corsOrigins).toEqual([]);
    expect((await preflight(`${body.pathPrefix}/r`)).status).toBe(403);

    const anyOrigin = await api("PATCH", `/api/v1/admin/products/${body.slug}`, adminToken(), { corsOrigins: ["*"] });
    expect(anyOrigin.body.corsOrigins).toEqual(["*"]);
  });

  it.each([
    ["a trailing slash", ["https://app.example.com/"]],
    ["a path", ["https://app.example.com/app"]],
    ["a wildcard subdomain", ["https://*.example.com"]],
    ["upper case", ["https://App.example.com"]],
    ["a default port", ["https://app.example.com:443"]],
    ["no scheme", ["app.example.com"]],
    ["another scheme", ["ftp://app.example.com"]],
    ['"null"', ["null"]],
    ["a query", ["https://app.example.com?x=1"]],
    ["credentials", ["https://user@app.example.com"]],
    ["an empty entry", [""]],
    ['"*" beside others', ["*", PAGE]],
    ["not a list", PAGE],
  ])("refuses %s with 400 VALIDATION_FAILED naming corsOrigins", async (_label, corsOrigins) => {
    const body = productBody({ corsOrigins });
    const created = await api("POST", "/api/v1/admin/products", adminToken(), body);
    expect(created.status, JSON.stringify(created.body)).toBe(400);
    expect(created.body.code).toBe("VALIDATION_FAILED");
    expect(created.body.fields.map((f: { path: string }) => f.path).join(" ")).toContain("corsOrigins");
    expect(await getProduct(env.DB, body.slug)).toBeUndefined();

    const product = await createProduct();
    const patched = await api("PATCH", `/api/v1/admin/products/${product.slug}`, adminToken(), { corsOrigins });
    expect(patched.status).toBe(400);
    expect(patched.body.code).toBe("VALIDATION_FAILED");
  });

  it("is in the OpenAPI document, on the product and its create and update bodies", async () => {
    const document = await json(await send("/openapi.json"));
    const products = document.paths["/api/v1/admin/products"];
    expect(products.post.requestBody.content["application/json"].schema.properties.corsOrigins).toMatchObject({ type: "array" });
    expect(document.paths["/api/v1/admin/products/{idOrSlug}"].patch.requestBody.content["application/json"].schema.properties.corsOrigins).toBeDefined();
    const view = products.post.responses["201"].content["application/json"].schema;
    expect(view.properties.corsOrigins.description).toContain("CORS");
    expect(view.required).toContain("corsOrigins");
  });
});
