import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { GatewayError } from "../errors";
import { describe } from "../openapi/operation";

/**
 * The web UI: static files from the ASSETS binding, under /dashboard/ only.
 * wrangler.toml runs the Worker first for every path, so this route is the one
 * door to the assets: no file can shadow a product's path prefix.
 */
export const dashboardRoutes = new Hono<AppEnv>();

const MOUNT = "/dashboard";

/** The page loads only its own script and stylesheet and talks only to this origin. */
const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy": [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join("; "),
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};

dashboardRoutes.get(
  MOUNT,
  describe({
    operationId: "redirectToDashboard",
    summary: "Redirect to the web UI",
    tags: ["meta"],
    responses: [{ status: 301, description: "Moved to /dashboard/" }],
    headers: [{ name: "Location", on: "success" }],
  }),
  (c) => withSecurityHeaders(c.redirect(`${MOUNT}/`, 301)),
);

dashboardRoutes.get(
  `${MOUNT}/*`,
  describe({
    operationId: "getDashboardFile",
    summary: "The web UI (static files)",
    tags: ["meta"],
    responses: [{ status: 200, description: "A file of the web UI", mediaTypes: ["text/html", "text/javascript", "text/css", "image/svg+xml"] }],
    errors: ["ROUTE_NOT_FOUND"],
    // The assets binding's validators and caching.
    headers: [
      { name: "ETag", on: "success" },
      { name: "Cache-Control", on: "success" },
    ],
  }),
  async (c) => {
    const url = new URL(c.req.url);
    url.pathname = url.pathname.slice(MOUNT.length);
    const asset = await c.env.ASSETS.fetch(new Request(url, { method: c.req.method, headers: c.req.raw.headers }));
    if (asset.status === 404) throw new GatewayError("ROUTE_NOT_FOUND");
    return withSecurityHeaders(remountAssetResponse(asset));
  },
);

/**
 * The assets binding sees paths without the mount, so a redirect of its own
 * (html_handling may send /index.html → /) would point outside it; put it back
 * under /dashboard. Also makes the binding's response headers mutable.
 */
export function remountAssetResponse(asset: Response): Response {
  const response = new Response(asset.body, asset);
  const location = response.headers.get("Location");
  if (location?.startsWith("/")) response.headers.set("Location", `${MOUNT}${location}`);
  return response;
}

function withSecurityHeaders(response: Response): Response {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
  return response;
}
