import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { authenticate } from "../auth/authenticate";
import { authorizeCall, limiterName, type CallContext, type Principal } from "../auth/principal";
import type { Config } from "../config";
import type { Product } from "../db/products";
import { GatewayError } from "../errors";
import { assertDeclaredLength, readBodyWithin } from "../middleware/body-limit";
import { assertNotThrottled, recordingAuthFailures } from "../limits/auth-throttle";
import { checkLimits, type LimitResult } from "../limits/client";
import { rateLimitHeaders, type LimitCheck } from "../limits/windows";
import { canonicalPath } from "./canonical-path";
import { forwardToOrigin } from "./forward";
import { loadProducts, matchProduct, relativePath } from "./route-match";

/**
 * A call to a product, in the SPEC's order: route → credential → key or JWT
 * checks → IP, product, scopes → rate limits → forward. Nothing before the
 * rate-limit step consumes quota, and nothing unauthenticated reaches the origin.
 */
export async function handleProductCall(c: Context<AppEnv>): Promise<Response> {
  const config = c.get("config");
  const now = Date.now();
  const url = new URL(c.req.url);
  const request = c.req.raw;
  const clientIp = request.headers.get("cf-connecting-ip");

  // Before any storage lookup: a throttled address costs nothing but memory.
  assertNotThrottled(c.env, config, clientIp);
  // One canonical path is routed, authorized and forwarded; what it cannot model is refused before storage.
  const canonical = canonicalPath(url.pathname);
  if (!canonical.ok) throw new GatewayError("PATH_INVALID", { message: `The request path is refused: ${canonical.reason}` });
  const path = canonical.path;

  const product = await routeProduct(c.env.DB, config, path, now);
  c.set("product", product);
  c.set("errorFormat", product.errorFormat);

  assertDeclaredLength(request, config.maxBodyBytes);
  const { principal, body } = await recordingAuthFailures(c.env, config, clientIp, () =>
    admitCall(c, { product, clientIp, method: request.method, relativePath: relativePath(product, path) }, now),
  );

  const response = await forwardToOrigin(request, {
    product,
    principal,
    requestId: c.get("requestId"),
    path,
    search: url.search,
    clientIp,
    signingSecret: config.originSigningSecret,
    timeoutMs: config.originTimeoutMs,
    body,
  });
  response.headers.set("X-Auth-Method", principal.method);
  for (const [name, value] of Object.entries(c.get("rateLimitHeaders") ?? {})) response.headers.set(name, value);
  return response;
}

/**
 * Authenticates, authorizes and counts the call; resolves once it is admitted.
 * One limiter call either way: a call refused after authentication still gets
 * the limit headers but consumes nothing; an admitted one is counted.
 */
async function admitCall(
  c: Context<AppEnv>,
  call: CallContext,
  now: number,
): Promise<{ principal: Principal; body: ReadableStream | ArrayBuffer | null }> {
  const config = c.get("config");
  const request = c.req.raw;
  const principal = await authenticate(request.headers, c.env.DB, config, now);
  c.set("principal", principal);

  const refusal = authorizeCall(principal, call);
  const check = limitCheck(principal, call.product, config, c.get("requestId"));
  if (refusal) {
    applyLimitOutcome(c, await checkLimits(c.env, config, limiterName(principal), { ...check, consume: false }), principal);
    throw refusal;
  }

  // Read a chunked body before counting, so an oversized one (413) consumes nothing.
  const body = await readBodyWithin(request, config.maxBodyBytes);
  applyLimitOutcome(c, await checkLimits(c.env, config, limiterName(principal), check), principal);
  return { principal, body };
}

async function routeProduct(db: D1Database, config: Config, path: string, now: number): Promise<Product> {
  let products: Product[];
  try {
    products = await loadProducts(db, config.productCacheTtlSeconds, now);
  } catch (error) {
    console.error(JSON.stringify({ event: "product_lookup_failed", error: String(error) }));
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE");
  }
  const product = matchProduct(products, path);
  if (!product) throw new GatewayError("ROUTE_NOT_FOUND");
  return product;
}

/** Limits: the key's own, else the product's, else the global default. */
function limitCheck(principal: Principal, product: Product, config: Config, requestId: string): LimitCheck {
  const key = principal.method === "api_key" ? principal.key : undefined;
  return {
    requestId,
    credentialId: key ? key.id : limiterName(principal),
    limitPerMinute: key?.rateLimitPerMinute ?? product.rateLimitPerMinute ?? config.rateLimitPerMinuteDefault,
    limitPerDay: key?.rateLimitPerDay ?? product.rateLimitPerDay ?? config.rateLimitPerDayDefault,
    consume: true,
    // The user's object voids tokens signed before their access last changed (0 for third parties: never void).
    ...(principal.method === "jwt" ? { grantVersion: principal.grantVersion } : {}),
  };
}

/**
 * Records the rate-limit headers and turns a refusing outcome into its error.
 * The object's credential state wins over a cached key row: that is how a
 * revocation takes effect on the very next request. Such a refusal is a 401
 * for an unauthenticated caller, so it carries no limit headers.
 */
function applyLimitOutcome(c: Context<AppEnv>, result: LimitResult, principal: Principal): void {
  const isKey = principal.method === "api_key";
  switch (result.outcome) {
    case "unenforced":
      c.set("rateLimitHeaders", { "X-RateLimit-Enforced": "false" });
      return;
    case "inactive":
    case "revoked":
      // A user's object is revoked on deletion, and refuses tokens older than their last access change.
      throw isKey
        ? new GatewayError("API_KEY_INACTIVE")
        : new GatewayError("JWT_CLAIM_INVALID", { message: "The token's user has been deleted or their access changed; sign in again" });
    case "expired":
      throw new GatewayError(isKey ? "API_KEY_EXPIRED" : "JWT_EXPIRED");
  }
  c.set("rateLimitHeaders", rateLimitHeaders(result));
  switch (result.outcome) {
    case "admitted":
    case "peek":
      return;
    case "rate_limited":
      throw new GatewayError("RATE_LIMIT_EXCEEDED", { headers: { "Retry-After": String(result.minute.resetSeconds) } });
    case "daily_quota_exceeded":
      throw new GatewayError("DAILY_QUOTA_EXCEEDED", { headers: { "Retry-After": String(result.day.resetSeconds) } });
  }
}
