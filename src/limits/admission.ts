/**
 * @module
 * Counting one call, shared by every door that admits one (the product
 * pipeline, src/gateway.ts; the verify API and binding, src/verify.ts), so
 * they count, refuse and report limits alike: which limits apply, the one
 * object call, and what its outcome means for the caller.
 */
import { credentialRefusal } from "../auth/credential-state";
import { countingPlace, limiterName, type Principal } from "../auth/principal";
import type { Config } from "../config";
import type { Product } from "../db/products";
import type { Env } from "../env";
import { GatewayError, isGatewayError } from "../errors";
import { checkLimits, type LimitResult } from "./client";
import { callCost } from "./pricing";
import { bindingCredits, rateLimitHeaders, type LimitCheck } from "./windows";

export type LimitHeaders = Record<string, string>;

/**
 * One object call: where the principal counts (its lineage's object, or its
 * owner's when the owner has owner-level limits). Only when the key row this
 * isolate cached is older than a move of its counting does a second call go
 * to the other object.
 */
export async function countCall(env: Env, config: Config, principal: Principal, check: LimitCheck): Promise<LimitResult> {
  const place = countingPlace(principal);
  const result = await checkLimits(env, config, place.name, { ...check, lineageId: place.lineageId });
  if (result.outcome !== "moved") return result;
  const other = countingPlace(principal, true);
  return checkLimits(env, config, other.name, { ...check, lineageId: other.lineageId, redirected: true });
}

/** What a call draws from credits: its cost, and the least balance it needs (a metered product's reserve). */
export interface CallPrice {
  cost: number;
  reserve: number;
}

/** The price of a call to a product (src/limits/pricing.ts): its cost rule; a metered product (usage header) adds its reserve. */
export function productCallPrice(product: Product, method: string, relativePath: string): CallPrice {
  return { cost: callCost(product, method, relativePath), reserve: product.usageHeader === null ? 0 : product.usageReserve };
}

/** Limits: the key's own, else the product's (when the call names one), else the global default. */
export function limitCheck(
  principal: Principal,
  product: Pick<Product, "rateLimitPerMinute" | "rateLimitPerDay"> | undefined,
  config: Config,
  requestId: string,
  price?: CallPrice,
): LimitCheck {
  const key = principal.method === "api_key" ? principal.key : undefined;
  return {
    requestId,
    // Usage is filed by lineage: a rotation's keys share their stats as they share their quota.
    credentialId: key ? key.lineageId : limiterName(principal),
    ...(key ? { keyId: key.id } : {}),
    limitPerMinute: key?.rateLimitPerMinute ?? product?.rateLimitPerMinute ?? config.rateLimitPerMinuteDefault,
    limitPerDay: key?.rateLimitPerDay ?? product?.rateLimitPerDay ?? config.rateLimitPerDayDefault,
    consume: true,
    ...(price ? { cost: price.cost, creditReserve: price.reserve } : {}),
    // The user's object voids tokens signed before their access last changed (0 for third parties: never void).
    ...(principal.method === "jwt" ? { grantVersion: principal.grantVersion } : {}),
  };
}

/**
 * The limit headers of an outcome that lets the call go on, or its refusal.
 * The object's credential state wins over a cached key row: that is how a
 * revocation takes effect on the very next request. Such a refusal is a 401
 * for an unauthenticated caller, so it carries no limit headers.
 */
export function limitOutcome(result: LimitResult, principal: Principal): LimitHeaders {
  switch (result.outcome) {
    case "unenforced":
      return { "X-RateLimit-Enforced": "false" };
    case "inactive":
    case "revoked":
    case "expired":
      throw credentialRefusal(result.outcome, principal.method);
    case "moved":
      // countCall asks the other object with `redirected`, which never answers "moved".
      throw new Error("the limiter answered moved to a redirected call");
    case "admitted":
    case "peek":
      return rateLimitHeaders(result);
    case "rate_limited":
      throw new GatewayError("RATE_LIMIT_EXCEEDED", { headers: { ...rateLimitHeaders(result), "Retry-After": String(result.minute.resetSeconds) } });
    case "daily_quota_exceeded":
      throw new GatewayError("DAILY_QUOTA_EXCEEDED", { headers: { ...rateLimitHeaders(result), "Retry-After": String(result.day.resetSeconds) } });
    case "credits_exhausted": {
      const refusing = bindingCredits(result.credits, result.ownerCredits);
      const retryAfter = refusing?.refillSeconds ?? null;
      throw new GatewayError("CREDITS_EXHAUSTED", {
        headers: { ...rateLimitHeaders(result), ...(retryAfter === null ? {} : { "Retry-After": String(retryAfter) }) },
      });
    }
    default:
      return unreachable(result);
  }
}

function unreachable(value: never): never {
  throw new Error(`unexpected limiter outcome ${JSON.stringify(value)}`);
}

/** Adds the limit headers to a refusal (its own headers, such as Retry-After, win). */
export function withHeaders(error: unknown, headers: LimitHeaders): unknown {
  if (isGatewayError(error)) {
    for (const [name, value] of Object.entries(headers)) if (!Object.hasOwn(error.headers, name)) error.headers[name] = value;
  }
  return error;
}
