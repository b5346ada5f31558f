import type { KeyRecord } from "../db/keys";
import { limiterNames } from "../limits/names";

/** A token verified with JWT_SECRET, or with the remote JWKS (`jwks:<iss>`, or `jwks` for a token without `iss`). */
export type ThirdPartyIssuer = "hs256" | "jwks" | `jwks:${string}`;

/** Who signed a JWT: keygate's own key (the bearer is a keygate user), or a third party. */
export type JwtIssuer = "keygate" | ThirdPartyIssuer;

/** Who is calling, once a credential has been verified. */
export type Principal =
  | {
      method: "api_key";
      /** `ownerLimited`: the owner has owner-level limits, so the key's calls count in the owner's object. */
      key: KeyRecord & { ownerLimited?: boolean };
    }
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

/**
 * The Durable Object that knows this principal's revocation state: a key's
 * lineage object (a rotation's keys share it, and quota), or the token's subject's.
 */
export function limiterName(principal: Principal): string {
  if (principal.method === "api_key") return limiterNames.key(principal.key.lineageId);
  // A third party's `sub` may equal a keygate user's id: it must never share that user's object.
  if (principal.issuer === "keygate") return limiterNames.user(principal.subject);
  return limiterNames.subject(principal.issuer, principal.subject);
}

/** Where a call is counted: an object, and for a key counted in its owner's object, its lineage's bucket there. */
export interface CountingPlace {
  name: string;
  lineageId?: string;
}

/**
 * Where this principal's calls count. A key whose owner has owner-level
 * limits counts in the owner's object (one atomic decision for both); `moved`
 * is the other place, for when that object answered that counting moved.
 */
export function countingPlace(principal: Principal, moved = false): CountingPlace {
  if (principal.method !== "api_key" || principal.key.ownerId === null) return { name: limiterName(principal) };
  const inOwner = (principal.key.ownerLimited ?? false) !== moved;
  return inOwner ? { name: limiterNames.user(principal.key.ownerId), lineageId: principal.key.lineageId } : { name: limiterName(principal) };
}

export function principalScopes(principal: Principal): string[] {
  return principal.method === "api_key" ? principal.key.scopes : principal.scopes;
}

export function principalProducts(principal: Principal): string[] {
  return principal.method === "api_key" ? principal.key.products : principal.products;
}
