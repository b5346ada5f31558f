import { afterEach, describe, expect, it } from "vitest";
import { remountAssetResponse } from "../../src/routes/dashboard";
import { call, createKey, createProduct, json } from "../helpers/harness";
import { stubOrigin } from "../helpers/origin";

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

function expectSecurityHeaders(response: Response): void {
  expect(response.headers.get("Content-Security-Policy")).toBe(CSP);
  expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
  expect(response.headers.get("Referrer-Policy")).toBe("no-referrer");
  expect(response.headers.get("X-Frame-Options")).toBe("DENY");
}

describe("dashboard", () => {
  let origin: ReturnType<typeof stubOrigin> | undefined;
  afterEach(() => origin?.restore());

  it("redirects /dashboard to /dashboard/", async () => {
    const response = await call("/dashboard", { redirect: "manual" });
    expect(response.status).toBe(301);
    expect(new URL(response.headers.get("Location")!, "https://gateway.test").pathname).toBe("/dashboard/");
    expectSecurityHeaders(response);
  });

  it("serves the page at /dashboard/ as HTML with the security headers", async () => {
    const response = await call("/dashboard/");
    const html = await response.text();
    expect(response.status, html.slice(0, 200)).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/html/);
    expect(html).toContain('<script type="module" src="app.js"></script>');
    expectSecurityHeaders(response);
    expect(response.headers.get("X-Request-Id")).toBeTruthy();
  });

  it("serves the page without inline script or style attributes the CSP would block", async () => {
    const html = await (await call("/dashboard/")).text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=/);
    expect(html).not.toMatch(/\son[a-z]+=/);
    // Nothing loaded from elsewhere: no absolute or protocol-relative src/href.
    expect(html).not.toMatch(/\s(src|href)="(https?:)?\/\//);
  });

  it("serves the script and stylesheet with their content types and the security headers", async () => {
    const script = await call("/dashboard/app.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("Content-Type")).toMatch(/^(text|application)\/javascript/);
    expect(await script.text()).toContain("./api.js");
    expectSecurityHeaders(script);

    const style = await call("/dashboard/style.css");
    expect(style.status).toBe(200);
    expect(style.headers.get("Content-Type")).toMatch(/^text\/css/);
    expectSecurityHeaders(style);
  });

  it("serves /dashboard/index.html as the same page", async () => {
    const response = await call("/dashboard/index.html", { redirect: "manual" });
    const html = await response.text();
    expect(response.status, html.slice(0, 200)).toBe(200);
    expect(html).toContain('<script type="module" src="app.js"></script>');
    expectSecurityHeaders(response);
  });

  it("puts a redirect from the assets binding back under /dashboard", () => {
    const redirected = remountAssetResponse(new Response(null, { status: 307, headers: { Location: "/" } }));
    expect(redirected.status).toBe(307);
    expect(redirected.headers.get("Location")).toBe("/dashboard/");
    const absolute = remountAssetResponse(new Response(null, { status: 307, headers: { Location: "https://elsewhere.test/" } }));
    expect(absolute.headers.get("Location")).toBe("https://elsewhere.test/");
  });

  it("answers a missing dashboard file with a JSON 404, not HTML", async () => {
    const response = await call("/dashboard/no-such-file.js");
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(404);
    expect(response.headers.get("Content-Type")).toBe("application/json");
    expect(body.code).toBe("ROUTE_NOT_FOUND");
  });

  it("never serves a dashboard file outside /dashboard/", async () => {
    for (const path of ["/", "/index.html", "/app.js", "/style.css"]) {
      const response = await call(path);
      const body = await json(response);
      expect(response.status, `${path}: ${JSON.stringify(body)}`).toBe(404);
      expect(body.code).toBe("ROUTE_NOT_FOUND");
    }
  });

  it.each(["/index.html", "/app.js", "/style.css"])("routes %s to a product with that path prefix, not to the dashboard file", async (pathPrefix) => {
    origin = stubOrigin();
    const product = await createProduct({ pathPrefix });
    const { key } = await createKey({ products: [product.slug] });

    const refused = await call(pathPrefix);
    expect(refused.status).toBe(401);
    expect((await json(refused)).code).toBe("AUTH_MISSING");
    expect(origin.received).toHaveLength(0);

    const response = await call(pathPrefix, { headers: { "X-API-Key": key } });
    const body = await json(response);
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(response.headers.get("X-Auth-Method")).toBe("api_key");
    expect(response.headers.get("Content-Security-Policy")).toBeNull();
    expect(origin.received).toHaveLength(1);
    expect(new URL(origin.received[0]!.url).pathname).toBe(`/upstream${pathPrefix}`);
  });
});
