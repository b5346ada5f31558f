/**
 * @module
 * Checking a key for a service that is not behind the proxy: POST
 * /api/v1/keys/verify (src/routes/verify.ts) and the Workers RPC entrypoint
 * (src/keygate-service.ts). The same steps as a product call
 * (src/gateway.ts), in the same order and with the same codes: the key's
 * format, prefix, hash, status and expiry; the product's accepted methods,
 * the IP allowlist, product access, scopes; then one call to the key's
 * object, which counts it (unless `consume: false`) and knows a revocation
 * before any cache. A refusal of the key is an answer (`valid: false` and
 * its code), not an error: errors are for the request itself (an unknown
 * product, storage down). Given the client's `ip`, the key's failed attempts
 * count against that address as on the proxy, and a throttled address is
 * refused with AUTH_THROTTLED.
 */
import { verifyCredential } from "./auth/authenticate";
import { accessRefusal } from "./auth/authorize";
import { extractCredential } from "./auth/credentials";
import type { Principal } from "./auth/principal";
import type { Config } from "./config";
import type { Product } from "./db/products";
import type { Env } from "./env";
import { GatewayError, isGatewayError } from "./errors";
import { limitCheck, limitOutcome } from "./limits/admission";
import { assertNotThrottled, recordingAuthFailures } from "./limits/auth-throttle";
import type { LimitResult } from "./limits/client";
import { countInMode, type Background } from "./limits/leased-admission";
import { DEFAULT_CALL_COST } from "./limits/pricing";
import { announce } from "./limits/usage-events";
import { bindingCredits, bindingWindows, type WindowState } from "./limits/windows";
import { loadProducts } from "./proxy/route-match";
import type { VerifyAnswer, VerifyRequest } from "./routes/schemas";

type KeyPrincipal = Extract<Principal, { method: "api_key" }>;

export async function verifyKey(env: Env, config: Config, input: VerifyRequest, requestId: string, now: number, background: Background): Promise<VerifyAnswer> {
  const product = input.product === undefined ? undefined : await productNamed(env.DB, config, input.product, now);

  // With the client's address, its failed attempts are throttled as on the proxy (SPEC section 5).
  const clientIp = input.ip ?? null;
  let principal: KeyPrincipal;
  try {
    assertNotThrottled(env, config, clientIp, now);
    principal = await recordingAuthFailures(env, config, clientIp, async () => {
      // The key as X-API-Key would carry it: the same parsing, so the same codes.
      const credential = extractCredential(input.key, null, config.apiKeyFormats);
      return (await verifyCredential(credential, env.DB, config, now)) as KeyPrincipal;
    });
  } catch (error) {
    return refused(error);
  }

  const refusal = accessRefusal(principal, { product, clientIp, neededScopes: input.scopes ?? [] });
  // The caller names the cost (default 1); a product's cost rules need a path, which the verify API does not take.
  const check = limitCheck(principal, product, config, requestId, { cost: input.cost ?? DEFAULT_CALL_COST, reserve: 0 });
  // A call refused after authentication is only reported, never counted (as for product calls).
  const result = await countInMode(env, config, principal, { ...check, consume: refusal === undefined && input.consume !== false }, product, background);
  if ("events" in result && result.events) background(announce(env, principal, result.events, now));
  let outcome: GatewayError | undefined;
  try {
    limitOutcome(result, principal);
  } catch (error) {
    // The object's word on the key's state wins over the checks above, as on the proxy.
    if (!isGatewayError(error)) throw error;
    outcome = error;
  }
  const decided = outcome ?? refusal;
  if (decided?.status === 401) return refused(decided);
  return answer(principal, decided, result);
}

async function productNamed(db: D1Database, config: Config, slug: string, now: number): Promise<Product> {
  const products = await loadProducts(db, config.productCacheTtlSeconds, now);
  const product = products.find((candidate) => candidate.slug === slug);
  if (!product) throw new GatewayError("NOT_FOUND", { message: `No product has the slug ${slug}` });
  return product;
}

const NO_KEY = { keyId: null, ownerId: null, name: null, env: null, expiresAt: null } as const;

/** The key itself was refused (a 401 on the proxy), or its client is throttled: no identity, no limits. Storage down stays an error (503). */
function refused(error: unknown): VerifyAnswer {
  if (!isGatewayError(error) || (error.status !== 401 && error.code !== "AUTH_THROTTLED")) throw error;
  return {
    valid: false,
    code: error.code,
    message: error.message,
    ...NO_KEY,
    products: [],
    scopes: [],
    requiredScope: null,
    retryAfter: retryAfterOf(error),
    limits: null,
  };
}

function retryAfterOf(error: GatewayError | undefined): number | null {
  const header = error?.headers["Retry-After"];
  return header === undefined ? null : Number(header);
}

function windowOf(state: WindowState): { limit: number; remaining: number; resetSeconds: number } {
  return { limit: state.limit, remaining: state.remaining, resetSeconds: state.resetSeconds };
}

/** The balance that binds the key's calls, when it draws on credits. */
function creditsOf(result: LimitResult): { balance: number; quota: number; refillSeconds: number | null } | null {
  if (!("minute" in result)) return null;
  const binding = bindingCredits(result.credits, result.ownerCredits);
  return binding ? { balance: binding.balance, quota: binding.quota, refillSeconds: binding.refillSeconds } : null;
}

function answer(principal: KeyPrincipal, refusal: GatewayError | undefined, result: LimitResult): VerifyAnswer {
  const { key } = principal;
  const windows = "minute" in result ? bindingWindows(result) : undefined;
  return {
    valid: refusal === undefined,
    code: refusal?.code ?? null,
    message: refusal?.message ?? null,
    keyId: key.id,
    ownerId: key.ownerId,
    name: key.name,
    env: key.env,
    products: key.products,
    scopes: key.scopes,
    expiresAt: key.expiresAt,
    requiredScope: (refusal?.details?.requiredScope as string | undefined) ?? null,
    retryAfter: retryAfterOf(refusal),
    limits: {
      enforced: result.outcome !== "unenforced",
      minute: windows ? windowOf(windows.minute) : null,
      day: windows ? windowOf(windows.day) : null,
      credits: creditsOf(result),
    },
  };
}
