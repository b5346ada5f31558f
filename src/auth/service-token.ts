import type { Config } from "../config";
import { findServiceTokenByPrefix, type ServiceTokenRecord } from "../db/service-tokens";
import { GatewayError } from "../errors";
import { BoundedLru } from "../bounded-lru";
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
  // An unknown prefix is remembered briefly only, so a token just issued works almost at once.
  const ttlMs = token ? config.keyCacheTtlSeconds * 1000 : Math.min(2_000, config.keyCacheTtlSeconds * 1000);
  if (ttlMs > 0) cache.set(prefix, { token, expiresAt: now + ttlMs });
  return token;
}

/** The service behind an Authorization: Bearer header, or SERVICE_CREDENTIAL_INVALID (401). */
export async function verifyServiceToken(authorization: string | null, db: D1Database, config: Config, now: number): Promise<ServiceTokenRecord> {
  if (authorization === null) throw new GatewayError("AUTH_MISSING", { message: "Send the service credential as Authorization: Bearer kgsvc_…" });
  const presented = /^Bearer +(\S+)$/i.exec(authorization.trim())?.[1] ?? "";
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
