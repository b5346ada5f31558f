import { BoundedLru } from "../bounded-lru";
import type { Config } from "../config";
import type { JwtPrincipal } from "./jwt";
import { sha256, toHex } from "./key-format";

/**
 * Isolate-local cache of successful JWT verifications, so a client sending the
 * same token call after call pays a SHA-256 instead of an ES256 verification.
 *
 * - Keyed by the SHA-256 of the exact token: another spelling, a changed byte
 *   or another signature is another entry, and tokens are never held in memory.
 * - Never served at or past the token's `exp` (the clock tolerance is not
 *   extended to cached tokens), and never for another configuration: the
 *   keys, issuer, audience and algorithms it was verified against come with
 *   the config object.
 * - Never across a rotation of the signer: an entry keeps the key that
 *   verified it. keygate's own key and JWT_SECRET change only with the
 *   configuration; for a remote JWKS the caller asks the set for the token's
 *   key again (cheap: jose keeps the set and its imported keys, and refreshes
 *   a stale set as it would for any token) and uses the entry only if that is
 *   still the same key.
 * - Failures are never cached. Bounded (LRU), like the key cache.
 *
 * What the cache does not decide: a keygate user's deletion or access change
 * (`gv`) is judged by the user's limiter object on every call, cached or not.
 */
export const JWT_CACHE_MAX_ENTRIES = 10_000;

export interface VerifiedToken {
  principal: JwtPrincipal;
  /** Epoch ms of the token's exp: the entry is unusable from then on. */
  notAfter: number;
  config: Config;
  /** The key that verified the token; `remote` when it came from JWKS_URL. */
  key: CryptoKey;
  remote: boolean;
}

const entries = new BoundedLru<string, VerifiedToken>(JWT_CACHE_MAX_ENTRIES);

export async function tokenDigest(token: string): Promise<string> {
  return toHex(await sha256(token));
}

/** A usable entry for this token digest under this configuration at `now`, else undefined. */
export function cachedVerification(digest: string, config: Config, now: number): VerifiedToken | undefined {
  const entry = entries.get(digest);
  if (!entry) return undefined;
  if (now >= entry.notAfter || entry.config !== config) {
    entries.delete(digest);
    return undefined;
  }
  return entry;
}

export function rememberVerification(digest: string, verified: VerifiedToken): void {
  entries.set(digest, verified);
}

/** Drop one token's entry (after it failed a re-check) or everything (tests). */
export function forgetVerification(digest?: string): void {
  if (digest === undefined) entries.clear();
  else entries.delete(digest);
}

export function jwtCacheSize(): number {
  return entries.size;
}
