/**
 * @module
 * Authorization steps shared by every door into keygate (product calls and
 * management calls), after a credential has been verified.
 */
import type { AuthMethod, Product } from "../db/products";
import { GatewayError } from "../errors";
import { ipAllowed } from "./ip-allowlist";
import { principalProducts, principalScopes, type Principal } from "./principal";
import { missingScope, requiredScopes } from "./scopes";

/** An API key used from outside its IP allowlist; JWTs carry no allowlist. */
export function ipRefusal(principal: Principal, clientIp: string | null): GatewayError | undefined {
  if (principal.method === "api_key" && !ipAllowed(clientIp, principal.key.ipAllowlist)) return new GatewayError("IP_NOT_ALLOWED");
  return undefined;
}

export interface CallContext {
  product: Product;
  clientIp: string | null;
  method: string;
  /** Path relative to the product's prefix, e.g. "/swap". */
  relativePath: string;
}

/**
 * The checks after authentication, in the SPEC's order: the product's
 * accepted credential kinds → IP allowlist → product access → scopes.
 * Returns the refusal rather than throwing it: the caller still asks the
 * rate limiter for headers (without consuming) first.
 */
export function authorizeCall(principal: Principal, call: CallContext): GatewayError | undefined {
  return accessRefusal(principal, {
    product: call.product,
    clientIp: call.clientIp,
    neededScopes: requiredScopes(call.product.scopeRules, call.method, call.relativePath, {
      caseSensitive: call.product.caseSensitiveRules,
      strictTrailingSlash: call.product.strictTrailingSlash,
    }),
  });
}

export interface Access {
  /** The product called, if the door names one (the verify API may not). */
  product: Product | undefined;
  clientIp: string | null;
  /** The scopes the call needs: from the product's scope rules, or named by the verify API's caller. */
  neededScopes: readonly string[];
}

/** The same checks for every door that admits a call: product calls (above) and the verify API (src/verify.ts). */
export function accessRefusal(principal: Principal, access: Access): GatewayError | undefined {
  const { product } = access;
  if (product && !product.authMethods.includes(principal.method as AuthMethod)) {
    return new GatewayError("AUTH_METHOD_NOT_ALLOWED", {
      message: `This product does not accept ${principal.method === "api_key" ? "API keys" : "JWTs"}`,
    });
  }
  const ipRefused = ipRefusal(principal, access.clientIp);
  if (ipRefused) return ipRefused;
  const products = principalProducts(principal);
  if (product && !products.includes("*") && !products.includes(product.slug)) {
    return new GatewayError("API_KEY_PRODUCT_FORBIDDEN");
  }
  const missing = missingScope(principalScopes(principal), access.neededScopes);
  if (missing !== undefined) {
    return new GatewayError(principal.method === "api_key" ? "API_KEY_SCOPE_MISSING" : "JWT_SCOPE_MISSING", {
      details: { requiredScope: missing },
    });
  }
  return undefined;
}
