import type { KeyRecord } from "../db/keys";
import type { AuthMethod, Product } from "../db/products";
import { GatewayError } from "../errors";
import { ipAllowed } from "./ip-allowlist";
import { missingScope, requiredScopes } from "./scopes";

/** Who is calling, once a credential has been verified. */
export type Principal =
  | { method: "api_key"; key: KeyRecord }
  | {
      method: "jwt";
      subject: string;
      scopes: string[];
      /** Present for tokens keygate issued to one of its users. */
      userId: string | null;
      role: "user" | "admin" | null;
      email: string | null;
      products: string[];
    };

/** The Durable Object that counts this principal's calls and knows its revocation state. */
export function limiterName(principal: Principal): string {
  return principal.method === "api_key" ? `key:${principal.key.id}` : `sub:${principal.subject}`;
}

export function principalScopes(principal: Principal): string[] {
  return principal.method === "api_key" ? principal.key.scopes : principal.scopes;
}

export function principalProducts(principal: Principal): string[] {
  return principal.method === "api_key" ? principal.key.products : principal.products;
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
  if (principal.method === "api_key" && !ipAllowed(call.clientIp, principal.key.ipAllowlist)) {
    return new GatewayError("IP_NOT_ALLOWED");
  }
  const products = principalProducts(principal);
  if (!products.includes("*") && !products.includes(call.product.slug)) {
    return new GatewayError("API_KEY_PRODUCT_FORBIDDEN");
  }
  const missing = missingScope(principalScopes(principal), requiredScopes(call.product.scopeRules, call.method, call.relativePath, {
    caseSensitive: call.product.caseSensitiveRules,
    strictTrailingSlash: call.product.strictTrailingSlash,
  }));
  if (missing !== undefined) {
    return new GatewayError(principal.method === "api_key" ? "API_KEY_SCOPE_MISSING" : "JWT_SCOPE_MISSING", {
      details: { requiredScope: missing },
    });
  }
  return undefined;
}
