import type { Config } from "../config";
import { findServiceTokenByPrefix, type ServiceTokenRecord } from "../db/service-tokens";
import { GatewayError } from "../errors";
import { BoundedLru } from "../bounded-lru";
import { extractCredential } from "./credentials";
import { NEGATIVE_CACHE_TTL_MS } from "./key-cache";
import { fromHex, hashKey, randomString, sha256, ALPHANUMERIC } from "./key-format";

/**
 * Service credentials: `kgsvc_` + a 12-character public part (the prefix
 * that finds the row) + `_` + 40 random characters. Verified like API keys:
 * shape first, then one indexed lookup, then the SHA-256 compared in constant
 * time. Rows are cached per isolate for KEY_CACHE_TTL_SECONDS, so a revoked
 * token stops working within that bound everywhere (at once in the isolate
 * that revoked it).
 */
const SHAPE = /^(kgsvc_[A-Za-z0-9]{12})_[A-Za-z0-9]{40}$/;

export function generateServiceToken(): { token: string; prefix: string } {
  const prefix = `kgsvc_${randomString(ALPHANUMERIC, 12)}`;
  return { token: `${prefix}_${randomString(ALPHANUMERIC, 40)}`, prefix };
}

export const hashServiceToken = hashKey;

interface Entry {
  token: ServiceTokenRecord | null;
  expiresAt: number;
}
const cache = new BoundedLru<string, Entry>(1_000);

export function forgetServiceToken(prefix?: string): void {
  if (prefix === undefined) cache.clear();
  else cache.delete(prefix);
}

async function lookup(db: D1Database, config: Config, prefix: string, now: number): Promise<ServiceTokenRecord | null> {
  const entry = cache.get(prefix);
  if (entry && entry.expiresAt > now) return entry.token;
  let token: ServiceTokenRecord | null;
  try {
    token = (await findServiceTokenByPrefix(db, prefix)) ?? null;
  } catch (error) {
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", { cause: error, context: { event: "service_token_lookup_failed" } });
  }
  // An unknown prefix is remembered briefly only (as for keys), so a token just issued works almost at once.
  const ttlMs = token ? config.keyCacheTtlSeconds * 1000 : Math.min(NEGATIVE_CACHE_TTL_MS, config.keyCacheTtlSeconds * 1000);
  if (ttlMs > 0) cache.set(prefix, { token, expiresAt: now + ttlMs });
  return token;
}

/**
 * The service behind an Authorization header: parsed as every credential is
 * (AUTH_MISSING, AUTH_HEADER_MALFORMED), then SERVICE_CREDENTIAL_INVALID (401)
 * for anything that is not a working service credential.
 */
export async function verifyServiceToken(authorization: string | null, db: D1Database, config: Config, now: number): Promise<ServiceTokenRecord> {
  // No key formats: whatever the Bearer token is, it is judged here as a service credential.
  const credential = extractCredential(null, authorization, []);
  const presented = credential.kind === "jwt" ? credential.token : credential.key;
  const prefix = SHAPE.exec(presented)?.[1];
  if (!prefix) throw new GatewayError("SERVICE_CREDENTIAL_INVALID", { message: "This is not a service credential (kgsvc_…)" });
  const token = await lookup(db, config, prefix, now);
  const digest = await sha256(presented);
  const stored = token ? fromHex(token.hash) : new Uint8Array(digest.byteLength);
  const matches = stored.byteLength === digest.byteLength && crypto.subtle.timingSafeEqual(stored, digest);
  if (!token || !matches) throw new GatewayError("SERVICE_CREDENTIAL_INVALID");
  if (token.revokedAt !== null) throw new GatewayError("SERVICE_CREDENTIAL_INVALID", { message: "This service credential has been revoked" });
  return token;
}
