/**
 * @module
 * The names of RateLimiter objects: one naming scheme, so two kinds of caller
 * can never share an object (and its counters and revocation state) by accident.
 *
 *   key:<key id>                  an API key
 *   user:<user id>                a keygate user's JWT (signed with keygate's own key)
 *   sub:hs256:<sub>               a JWT_SECRET token's subject
 *   sub:jwks:<escaped iss>:<sub>  a remote JWKS token's subject, by issuer
 *   sub:jwks::<sub>               the same for a token without `iss`
 *   ip:<address>                  failed authentications from a client address
 *   email:<lowercased email>      failed logins to an account
 */
import type { ThirdPartyIssuer } from "../auth/principal";

const KEY = "key:";
const USER = "user:";
const SUBJECT = "sub:";

export const limiterNames = {
  key: (keyId: string): string => `${KEY}${keyId}`,
  user: (userId: string): string => `${USER}${userId}`,
  /**
   * A third party's subject, namespaced by who signed the token. The issuer is
   * escaped so a ":" in it cannot move the boundary to the subject, and an
   * absent issuer is the empty string, which no escaped `iss` can be.
   */
  subject(issuer: ThirdPartyIssuer, sub: string): string {
    if (issuer === "hs256") return `${SUBJECT}hs256:${sub}`;
    const iss = issuer === "jwks" ? "" : issuer.slice("jwks:".length);
    return `${SUBJECT}jwks:${encodeURIComponent(iss)}:${sub}`;
  },
  /** `address` is already normalized (auth-throttle.ts: IPv4 as is, IPv6 as its /64). */
  address: (address: string): string => `ip:${address}`,
  account: (email: string): string => `email:${email.toLowerCase()}`,
};

/**
 * Whether the credential id a limiter records (LimitCheck.credentialId) is an
 * API key's: keys file their usage under their bare id, which usage stats and
 * api_keys.last_used_at look up; JWT principals file it under their limiter
 * name (`user:` or `sub:`, including the `sub:<subject>` of objects from
 * before this scheme).
 */
export function isApiKeyCredential(credentialId: string): boolean {
  return !credentialId.startsWith(USER) && !credentialId.startsWith(SUBJECT);
}
