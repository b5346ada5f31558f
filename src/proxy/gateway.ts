import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { authenticate } from "../auth/authenticate";
import { authorizeCall, limiterName, type Principal } from "../auth/principal";
import type { Config } from "../config";
import type { Product } from "../db/products";
import { GatewayError } from "../errors";
import { assertDeclaredLength, readBodyWithin } from "../middleware/body-limit";
import { checkLimits, type LimitResult } from "../limits/client";
import { rateLimitHeaders, type LimitCheck } from "../limits/windows";
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

  const product = await routeProduct(c.env.DB, config, url.pathname, now);
  c.set("product", product);
  c.set("errorFormat", product.errorFormat);

  const request = c.req.raw;
  assertDeclaredLength(request, config.maxBodyBytes);
  const principal = await authenticate(request.headers, c.env.DB, config, now);
  c.set("principal", principal);

  const clientIp = request.headers.get("cf-connecting-ip");
  const refusal = authorizeCall(principal, { product, clientIp, method: request.method, relativePath: relativePath(product, url.pathname) });
  const check = limitCheck(principal, product, config, c.get("requestId"));
  if (refusal) {
    // A refused call still reports the limits, but consumes none of them.
    applyLimitOutcome(c, await checkLimits(c.env, config, limiterName(principal), { ...check, consume: false }), principal);
    throw refusal;
  }

  const body = await readBodyWithin(request, config.maxBodyBytes);
  applyLimitOutcome(c, await checkLimits(c.env, config, limiterName(principal), check), principal);

  const response = await forwardToOrigin(request, {
    product,
    principal,
    requestId: c.get("requestId"),
    clientIp,
    signingSecret: config.originSigningSecret,
    timeoutMs: config.originTimeoutMs,
    body,
  });
  response.headers.set("X-Auth-Method", principal.method);
  for (const [name, value] of Object.entries(c.get("rateLimitHeaders") ?? {})) response.headers.set(name, value);
  return response;
}

async function routeProduct(db: D1Database, config: Config, path: string, now: number): Promise<Product> {
  let products: Product[];
  try {
    products = await loadProducts(db, config.keyCacheTtlSeconds, now);
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
    credentialId: key ? key.id : `sub:${principal.method === "jwt" ? principal.subject : ""}`,
    limitPerMinute: key?.rateLimitPerMinute ?? product.rateLimitPerMinute ?? config.rateLimitPerMinuteDefault,
    limitPerDay: key?.rateLimitPerDay ?? product.rateLimitPerDay ?? config.rateLimitPerDayDefault,
    consume: true,
  };
}

/**
 * Records the rate-limit headers and turns a refusing outcome into its error.
 * The object's credential state wins over a cached key row: that is how a
 * revocation takes effect on the very next request.
 */
function applyLimitOutcome(c: Context<AppEnv>, result: LimitResult, principal: Principal): void {
  if (result.outcome === "unenforced") {
    c.set("rateLimitHeaders", { "X-RateLimit-Enforced": "false" });
    return;
  }
  const headers = rateLimitHeaders(result);
  c.set("rateLimitHeaders", headers);
  switch (result.outcome) {
    case "admitted":
    case "peek":
      return;
    case "inactive":
    case "revoked":
      throw new GatewayError(principal.method === "api_key" ? "API_KEY_INACTIVE" : "JWT_CLAIM_INVALID");
    case "expired":
      throw new GatewayError(principal.method === "api_key" ? "API_KEY_EXPIRED" : "JWT_EXPIRED");
    case "rate_limited":
      throw new GatewayError("RATE_LIMIT_EXCEEDED", { headers: { "Retry-After": String(result.minute.resetSeconds) } });
    case "daily_quota_exceeded":
      throw new GatewayError("DAILY_QUOTA_EXCEEDED", { headers: { "Retry-After": String(result.day.resetSeconds) } });
  }
}
