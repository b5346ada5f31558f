import { BoundedLru } from "../bounded-lru";
import type { VerifiableKey } from "../db/keys";

/**
 * Isolate-local cache of key rows by prefix, bounded (LRU) and short-lived
 * (KEY_CACHE_TTL_SECONDS). An empty list is a negative entry: an unknown
 * prefix, kept only briefly so a new key is usable almost at once.
 * Revocation does not wait for this cache: the key's Durable Object, asked on
 * every request anyway, knows a key's status at once.
 */
export const KEY_CACHE_MAX_ENTRIES = 10_000;
export const NEGATIVE_CACHE_TTL_MS = 2_000;

interface Entry {
  rows: VerifiableKey[];
  expiresAt: number;
}

const entries = new BoundedLru<string, Entry>(KEY_CACHE_MAX_ENTRIES);

export function cachedKeys(prefix: string, now: number): VerifiableKey[] | undefined {
  const entry = entries.get(prefix);
  if (!entry) return undefined;
  if (entry.expiresAt <= now) {
    entries.delete(prefix);
    return undefined;
  }
  return entry.rows;
}

export function cacheKeys(prefix: string, rows: VerifiableKey[], ttlSeconds: number, now: number): void {
  const ttlMs = rows.length === 0 ? Math.min(NEGATIVE_CACHE_TTL_MS, ttlSeconds * 1000) : ttlSeconds * 1000;
  if (ttlMs <= 0) return;
  entries.set(prefix, { rows, expiresAt: now + ttlMs });
}

/** Drop one prefix (after an edit in this isolate) or everything. */
export function invalidateKeyCache(prefix?: string): void {
  if (prefix === undefined) entries.clear();
  else entries.delete(prefix);
}

export function keyCacheSize(): number {
  return entries.size;
}
