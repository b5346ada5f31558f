import type { KeyRecord } from "../db/keys";
import { limiterNames } from "../limits/names";

/** A token verified with JWT_SECRET, or with the remote JWKS (`jwks:<iss>`, or `jwks` for a token without `iss`). */
export type ThirdPartyIssuer = "hs256" | "jwks" | `jwks:${string}`;

/** Who signed a JWT: keygate's own key (the bearer is a keygate user), or a third party. */
export type JwtIssuer = "keygate" | ThirdPartyIssuer;

/** Who is calling, once a credential has been verified. */
export type Principal =
  | { method: "api_key"; key: KeyRecord }
  | {
      method: "jwt";
      issuer: JwtIssuer;
      subject: string;
      scopes: string[];
      /** The subject, for tokens keygate issued to one of its users (issuer "keygate"); else null. */
      userId: string | null;
      role: "user" | "admin" | null;
      email: string | null;
      products: string[];
      /**
       * The token's `gv` claim: its user's updatedAt (epoch ms) when it was
       * signed; 0 when absent and for third parties. The user's limiter object
       * refuses a version older than the user's last access change.
       */
      grantVersion: number;
    };

/**
 * Who vouches for the caller, as origins are told (X-Auth-Issuer): "keygate"
 * for API keys and keygate users' tokens, "hs256" or "jwks:<iss>" (or "jwks")
 * for third parties' tokens, whose subjects are not keygate users.
 */
export function principalIssuer(principal: Principal): JwtIssuer {
  return principal.method === "api_key" ? "keygate" : principal.issuer;
}

/** The Durable Object that counts this principal's calls and knows its revocation state. */
export function limiterName(principal: Principal): string {
  if (principal.method === "api_key") return limiterNames.key(principal.key.id);
  // A third party's `sub` may equal a keygate user's id: it must never share that user's object.
  if (principal.issuer === "keygate") return limiterNames.user(principal.subject);
  return limiterNames.subject(principal.issuer, principal.subject);
}

export function principalScopes(principal: Principal): string[] {
  return principal.method === "api_key" ? principal.key.scopes : principal.scopes;
}

export function principalProducts(principal: Principal): string[] {
  return principal.method === "api_key" ? principal.key.products : principal.products;
}
