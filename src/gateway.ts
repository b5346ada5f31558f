/**
 * @module
 * The product pipeline: a call to a product, in the SPEC's order — canonical
 * path → route → credential → key or JWT checks → IP, product, scopes → rate
 * limits → forward. Nothing before the rate-limit step consumes quota, and
 * nothing unauthenticated reaches the origin. A CORS preflight leaves right
 * after routing, answered here (src/proxy/cors.ts). Each step returns what the
 * next needs; nothing travels through context variables but what shapes the
 * error answers: the product's error format and CORS headers.
 */
import type { Context } from "hono";
import type { AppEnv } from "./app-env";
import { authenticate } from "./auth/authenticate";
import { authorizeCall, type CallContext } from "./auth/authorize";
import type { Principal } from "./auth/principal";
import type { Config } from "./config";
import type { Product } from "./db/products";
import type { Env } from "./env";
import { GatewayError } from "./errors";
import { countCall, limitCheck, limitOutcome, productCallPrice, withHeaders, type LimitHeaders } from "./limits/admission";
import { assertNotThrottled, recordingAuthFailures } from "./limits/auth-throttle";
import { countInMode, type Background } from "./limits/leased-admission";
import { reportedUsage } from "./limits/pricing";
import { announce, debitUsage } from "./limits/usage-events";
import type { LimitEvent } from "./limits/windows";
import { assertDeclaredLength, readBodyWithin } from "./middleware/body-limit";
import { canonicalPath } from "./proxy/canonical-path";
import { applyProductCors, isPreflight, productCorsHeaders, productPreflight } from "./proxy/cors";
import { forwardToOrigin } from "./proxy/forward";
import { cachedProducts, loadProducts, matchProduct, relativePath } from "./proxy/route-match";

interface Admission {
  principal: Principal;
  body: ReadableStream | ArrayBuffer | null;
  /** The rate-limit headers every authenticated answer carries. */
  limitHeaders: LimitHeaders;
  /** What the admission crossed (credits low or exhausted, a day's quota used up), for the usage-event webhooks. */
  events: LimitEvent[] | undefined;
}

export async function handleProductCall(c: Context<AppEnv>): Promise<Response> {
  const config = c.get("config");
  const requestId = c.get("requestId");
  const now = Date.now();
  const url = new URL(c.req.url);
  const request = c.req.raw;
  const clientIp = request.headers.get("cf-connecting-ip");
  // A preflight carries no credentials and is never counted: not even the throttle refuses it.
  const preflight = isPreflight(request);

  // Before any storage lookup: a throttled address costs nothing but memory.
  if (!preflight) assertNotThrottledReadably(c, clientIp, now);
  // One canonical path is routed, authorized and forwarded; what it cannot model is refused before storage.
  const canonical = canonicalPath(url.pathname);
  if (!canonical.ok) throw new GatewayError("PATH_INVALID", { message: `The request path is refused: ${canonical.reason}` });
  const path = canonical.path;

  const product = await routeProduct(c.env.DB, config, path, now);
  c.set("errorFormat", product.errorFormat);
  if (preflight) return productPreflight(product, request);
  const cors = productCorsHeaders(product, request);
  c.set("corsHeaders", cors);

  assertDeclaredLength(request, config.maxBodyBytes);
  const call: CallContext = { product, clientIp, method: request.method, relativePath: relativePath(product, path) };
  const background = (work: Promise<unknown>) => c.executionCtx.waitUntil(work);
  const { principal, body, limitHeaders, events } = await recordingAuthFailures(c.env, config, clientIp, () =>
    admitCall(c.env, config, request, call, requestId, now, background),
  );
  // Off the request path: queued once the answer is on its way.
  if (events) c.executionCtx.waitUntil(announce(c.env, principal, events, now));

  let response: Response;
  try {
    response = await forwardToOrigin(request, {
      product,
      principal,
      requestId,
      path,
      search: url.search,
      clientIp,
      signingSecret: config.originSigningSecret,
      timeoutMs: config.originTimeoutMs,
      body,
    });
  } catch (error) {
    throw withHeaders(error, limitHeaders); // a 502/504 after admission is still an authenticated answer
  }
  if (product.usageHeader !== null) meterUsage(c, product.usageHeader, response, principal, requestId);
  response.headers.set("X-Auth-Method", principal.method);
  for (const [name, value] of Object.entries(limitHeaders)) response.headers.set(name, value);
  applyProductCors(response.headers, cors);
  return response;
}

/**
 * A metered product: the usage the origin reported in its usage header is
 * debited after the call, off the request path (it may take the balance below
 * zero; the next call is then refused). The header never reaches the client.
 * It is read when the answer's head arrives: a streamed answer's usage must be
 * in its head too (Workers' fetch exposes no trailers; README "Credits").
 */
function meterUsage(c: Context<AppEnv>, header: string, response: Response, principal: Principal, requestId: string): void {
  const value = response.headers.get(header);
  response.headers.delete(header);
  if (value === null) return;
  const usage = reportedUsage(value);
  if (usage === undefined) {
    console.error(JSON.stringify({ event: "usage_report_invalid", requestId, header, value: value.slice(0, 100) }));
    return;
  }
  if (usage > 0) c.executionCtx.waitUntil(debitUsage(c.env, principal, usage, requestId));
}

/**
 * The throttle check, whose 429 a browser page may read when this isolate
 * holds the product list: routed from memory only, so a throttled address
 * still costs no storage lookup (the list is usually warm: the failures that
 * tripped the throttle loaded it within the minute).
 */
function assertNotThrottledReadably(c: Context<AppEnv>, clientIp: string | null, now: number): void {
  try {
    assertNotThrottled(c.env, c.get("config"), clientIp, now);
  } catch (error) {
    const products = cachedProducts(now);
    const canonical = products && canonicalPath(new URL(c.req.url).pathname);
    const product = canonical?.ok ? matchProduct(products!, canonical.path) : undefined;
    if (product) {
      c.set("errorFormat", product.errorFormat);
      c.set("corsHeaders", productCorsHeaders(product, c.req.raw));
    }
    throw error;
  }
}

/**
 * Authenticates, authorizes and counts the call; resolves once it is admitted.
 * One limiter call either way: a call refused after authentication still gets
 * the limit headers but consumes nothing; an admitted one is counted.
 */
async function admitCall(
  env: Env,
  config: Config,
  request: Request,
  call: CallContext,
  requestId: string,
  now: number,
  background: Background,
): Promise<Admission> {
  const principal = await authenticate(request.headers, env.DB, config, now);
  const refusal = authorizeCall(principal, call);
  const check = limitCheck(principal, call.product, config, requestId, productCallPrice(call.product, call.method, call.relativePath));
  if (refusal) {
    const limitHeaders = limitOutcome(await countCall(env, config, principal, { ...check, consume: false }), principal);
    throw withHeaders(refusal, limitHeaders);
  }

  // Read a chunked body before counting, so an oversized one (413) consumes nothing.
  const body = await readBodyWithin(request, config.maxBodyBytes);
  const result = await countInMode(env, config, principal, check, call.product, background);
  const limitHeaders = limitOutcome(result, principal);
  return { principal, body, limitHeaders, events: "events" in result ? result.events : undefined };
}

async function routeProduct(db: D1Database, config: Config, path: string, now: number): Promise<Product> {
  const product = matchProduct(await loadProducts(db, config.productCacheTtlSeconds, now), path);
  if (!product) throw new GatewayError("ROUTE_NOT_FOUND");
  return product;
}
