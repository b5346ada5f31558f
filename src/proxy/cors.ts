/**
 * @module
 * CORS (SPEC section 7). A product lists the browser origins it admits
 * (`corsOrigins`); keygate alone speaks CORS for products:
 *  - it answers their preflights itself: a preflight carries no credentials, so
 *    the pipeline would refuse it, and it is never counted or forwarded;
 *  - it marks its answers to an admitted origin — the origin's and its own
 *    errors alike — so the page can read them, and drops the origin's own
 *    Access-Control-* headers, so no two authorities give conflicting answers.
 * Methods and request headers are not configured: a preflight is granted the
 * method and headers it asks for, since a product routes every method and the
 * pipeline, not CORS, decides what a call may do (forwarding strips identity
 * headers whatever the browser sends). keygate never sends
 * Access-Control-Allow-Credentials: it authenticates by header, never by
 * cookie, so no call needs the browser's credentialed mode, and a ["*"]
 * product cannot expose a signed-in browser's cookies to any page.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import type { Product } from "../db/products";
import { RATE_LIMIT_HEADERS } from "../limits/windows";
import { documented } from "../openapi/operation";
import { GatewayError } from "../errors";

/** A product's list holding exactly this admits every origin, answered with `Access-Control-Allow-Origin: *`. */
export const ANY_ORIGIN = "*";
/** How long a browser may reuse a preflight: short, so a narrowed list bites soon (actual answers are checked at once anyway). */
export const PREFLIGHT_MAX_AGE_SECONDS = 600;
/** What a page may read of an answer: the request id, how it was authenticated and the limits. */
export const EXPOSED_HEADERS = ["X-Request-Id", "X-Auth-Method", ...RATE_LIMIT_HEADERS, "Retry-After", "WWW-Authenticate"] as const;

/** A preflight's answer depends on all three request headers. */
const PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
/** An RFC 9110 token: a method or a header name. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** More names than any browser sends; bounds what is echoed. */
const MAX_REQUEST_HEADERS = 64;

const ORIGIN_FORMAT = 'must be an exact origin, scheme://host[:port] such as "https://app.example.com": lowercase, no path or trailing slash, no wildcard';

/** Why an entry of `corsOrigins` is refused, or undefined. Browsers send the serialised origin, so only that spelling could ever match. */
export function corsOriginProblem(origin: string): string | undefined {
  if (origin === ANY_ORIGIN) return undefined;
  // The URL parser accepts "*" in a host; a wildcard must never pass for a name.
  if (origin.includes("*")) return ORIGIN_FORMAT;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return ORIGIN_FORMAT;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "must be an http or https origin";
  return url.origin === origin ? undefined : ORIGIN_FORMAT;
}

/** A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method. Any other OPTIONS is an ordinary call. */
export function isPreflight(request: Request): boolean {
  return request.method === "OPTIONS" && request.headers.has("Origin") && request.headers.has("Access-Control-Request-Method");
}

/** What Access-Control-Allow-Origin says to this Origin, or undefined when the product does not admit it. */
function allowedOrigin(product: Product, origin: string | null): string | undefined {
  if (origin === null || product.corsOrigins.length === 0) return undefined;
  if (product.corsOrigins[0] === ANY_ORIGIN) return ANY_ORIGIN;
  return product.corsOrigins.includes(origin) ? origin : undefined;
}

/**
 * The CORS headers of every answer keygate gives to a (non-preflight) call to
 * this product: none for a product without a list; Vary: Origin for one with
 * a list (the answer depends on Origin, so caches must keep them apart); and
 * for an admitted origin, Allow-Origin and Expose-Headers.
 */
export function productCorsHeaders(product: Product, request: Request): Record<string, string> {
  if (product.corsOrigins.length === 0) return {};
  const allowed = allowedOrigin(product, request.headers.get("Origin"));
  if (!allowed) return { Vary: "Origin" };
  return { "Access-Control-Allow-Origin": allowed, "Access-Control-Expose-Headers": EXPOSED_HEADERS.join(", "), Vary: "Origin" };
}

/**
 * A preflight to a product, answered here: 204 for an admitted origin, else
 * 403 CORS_ORIGIN_NOT_ALLOWED (JSON, like every refusal; the browser reports
 * a CORS failure either way, but a developer with curl reads why).
 */
export function productPreflight(product: Product, request: Request): Response {
  const origin = request.headers.get("Origin") ?? "";
  const allowed = allowedOrigin(product, origin);
  if (!allowed) {
    throw new GatewayError("CORS_ORIGIN_NOT_ALLOWED", {
      message:
        product.corsOrigins.length === 0
          ? "This product admits no browser origins (CORS)"
          : "This origin is not among the product's allowed browser origins (CORS)",
      details: { origin },
      headers: { Vary: PREFLIGHT_VARY },
    });
  }
  return preflightResponse(allowed, request);
}

/** 204 granting `allowOrigin` the requested method (or `methods`) and the requested headers. */
function preflightResponse(allowOrigin: string, request: Request, methods?: string): Response {
  const method = (request.headers.get("Access-Control-Request-Method") ?? "").trim();
  if (!TOKEN.test(method)) throw new GatewayError("VALIDATION_FAILED", { message: "Access-Control-Request-Method must be an HTTP method" });
  const requested = requestedHeaders(request.headers.get("Access-Control-Request-Headers"));
  const headers = new Headers({
    "Access-Control-Allow-Origin": allowOrigin,
    "Access-Control-Allow-Methods": methods ?? method,
    "Access-Control-Max-Age": String(PREFLIGHT_MAX_AGE_SECONDS),
    Vary: PREFLIGHT_VARY,
  });
  if (requested.length > 0) headers.set("Access-Control-Allow-Headers", requested.join(", "));
  return new Response(null, { status: 204, headers });
}

/** Access-Control-Request-Headers as a list of lowercase names; a malformed list is a 400, not an echo. */
function requestedHeaders(value: string | null): string[] {
  if (value === null) return [];
  const names = value
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== "");
  if (names.length > MAX_REQUEST_HEADERS || !names.every((name) => TOKEN.test(name))) {
    throw new GatewayError("VALIDATION_FAILED", { message: `Access-Control-Request-Headers must list at most ${MAX_REQUEST_HEADERS} header names` });
  }
  return names;
}

/**
 * The origin's answer under keygate's CORS: its own Access-Control-* headers
 * are dropped (for every product: keygate alone decides who may read; left
 * alone only where nothing could be read anyway, no list and no Allow-Origin
 * from the origin), then `cors` (productCorsHeaders) is set. The names the origin chose to expose
 * stay exposed, next to keygate's: exposing only lets a page admitted by
 * keygate read the origin's own headers.
 */
export function applyProductCors(headers: Headers, cors: Record<string, string>): void {
  // The hot path of a product without a list: without Allow-Origin no other Access-Control-* header lets a page read anything.
  if (!("Vary" in cors) && !headers.has("Access-Control-Allow-Origin")) return;
  const originExposes = headers.get("Access-Control-Expose-Headers");
  for (const name of [...headers.keys()]) if (name.startsWith("access-control-")) headers.delete(name);
  for (const [name, value] of Object.entries(cors)) {
    if (name === "Vary") addVary(headers, value);
    else headers.set(name, value);
  }
  const exposed = cors["Access-Control-Expose-Headers"];
  if (exposed && originExposes) {
    const ours = new Set(exposed.toLowerCase().split(", "));
    // Named headers only: "*" would mean every header, a choice keygate does not leave to the origin.
    const extra = originExposes
      .split(",")
      .map((name) => name.trim())
      .filter((name) => name !== "*" && TOKEN.test(name) && !ours.has(name.toLowerCase()));
    if (extra.length > 0) headers.set("Access-Control-Expose-Headers", [exposed, ...extra].join(", "));
  }
}

/** Adds names to Vary, keeping the origin's own (and "*", which already covers everything). */
function addVary(headers: Headers, names: string): void {
  const current = headers.get("Vary");
  if (!current) {
    headers.set("Vary", names);
    return;
  }
  const present = new Set(current.split(",").map((name) => name.trim().toLowerCase()));
  if (present.has("*")) return;
  const missing = names.split(", ").filter((name) => !present.has(name.toLowerCase()));
  if (missing.length > 0) headers.set("Vary", [current, ...missing].join(", "));
}

/**
 * GET /.well-known/jwks.json and /openapi.json: public documents, readable
 * from any origin (Swagger UI elsewhere, a browser verifying a token). No
 * credential is involved, so "*" is safe; their preflights are answered here.
 */
export const publicCors = () =>
  documented(
    createMiddleware<AppEnv>(async function publicCors(c, next) {
      if (isPreflight(c.req.raw)) return preflightResponse(ANY_ORIGIN, c.req.raw, "GET, HEAD");
      await next();
      c.res.headers.set("Access-Control-Allow-Origin", ANY_ORIGIN);
      c.res.headers.set("Access-Control-Expose-Headers", "X-Request-Id");
    }),
    { headers: [{ name: "Access-Control-Allow-Origin", on: "all" }] },
  );
