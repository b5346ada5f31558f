import type { Config } from "../config";
import { findKeysByPrefix, type VerifiableKey } from "../db/keys";
import { GatewayError } from "../errors";
import { verifyApiKey } from "./api-key";
import { extractCredential, type Credential } from "./credentials";
import { verifyJwt } from "./jwt";
import { cacheKeys, cachedKeys } from "./key-cache";
import type { Principal } from "./principal";

/**
 * Key rows by prefix: from the isolate cache, else from D1. A D1 failure is
 * AUTH_BACKEND_UNAVAILABLE (503), never a 401 that would make a client
 * discard a good key.
 */
export async function lookupKeys(db: D1Database, config: Config, prefix: string, now: number): Promise<VerifiableKey[]> {
  const cached = cachedKeys(prefix, now);
  if (cached) return cached;
  let rows: VerifiableKey[];
  try {
    rows = await findKeysByPrefix(db, prefix);
  } catch (error) {
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", { cause: error, context: { event: "key_lookup_failed" } });
  }
  cacheKeys(prefix, rows, config.keyCacheTtlSeconds, now);
  return rows;
}

/** SPEC section 1: which credential the request carries (no storage touched). */
export function requestCredential(headers: Headers, config: Config): Credential {
  return extractCredential(headers.get("x-api-key"), headers.get("authorization"), config.apiKeyFormats);
}

/** Verifies a credential as a key (format, prefix, hash, status, expiry) or a JWT. */
export async function verifyCredential(credential: Credential, db: D1Database, config: Config, now: number): Promise<Principal> {
  if (credential.kind === "jwt") return verifyJwt(credential.token, config, now);
  const key = await verifyApiKey(credential.key, credential.format, (prefix) => lookupKeys(db, config, prefix, now), now);
  return { method: "api_key", key };
}

/** Both steps, for product calls. */
export function authenticate(headers: Headers, db: D1Database, config: Config, now: number): Promise<Principal> {
  return verifyCredential(requestCredential(headers, config), db, config, now);
}
