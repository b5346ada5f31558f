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
 * The checks after authentication, in the SPEC's order: IP allowlist →
 * product access → scopes. Returns the refusal rather than throwing it: the
 * caller still asks the rate limiter for headers (without consuming) first.
 */
export function authorizeCall(principal: Principal, call: CallContext): GatewayError | undefined {
  if (!call.product.authMethods.includes(principal.method as AuthMethod)) {
    return new GatewayError("AUTH_METHOD_NOT_ALLOWED", {
      message: `This product does not accept ${principal.method === "api_key" ? "API keys" : "JWTs"}`,
    });
  }
  const ipRefused = ipRefusal(principal, call.clientIp);
  if (ipRefused) return ipRefused;
  const products = principalProducts(principal);
  if (!products.includes("*") && !products.includes(call.product.slug)) {
    return new GatewayError("API_KEY_PRODUCT_FORBIDDEN");
  }
  const missing = missingScope(
    principalScopes(principal),
    requiredScopes(call.product.scopeRules, call.method, call.relativePath, {
      caseSensitive: call.product.caseSensitiveRules,
      strictTrailingSlash: call.product.strictTrailingSlash,
    }),
  );
  if (missing !== undefined) {
    return new GatewayError(principal.method === "api_key" ? "API_KEY_SCOPE_MISSING" : "JWT_SCOPE_MISSING", {
      details: { requiredScope: missing },
    });
  }
  return undefined;
}
