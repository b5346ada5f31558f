import type { KeyRecord } from "../db/keys";
import { GatewayError } from "../errors";
import { credentialRefusal, credentialStateOutcome } from "./credential-state";
import { fromHex, keyPrefix, matchesKeyFormat, sha256, type KeyFormatName } from "./key-format";

/**
 * API-key verification in the SPEC's order: format → prefix lookup → hash →
 * status → expiry. The lookup is passed in, so this stays free of storage.
 */
export type KeyLookup<K extends KeyRecord = KeyRecord> = (prefix: string) => Promise<K[]>;

export async function verifyApiKey<K extends KeyRecord>(key: string, format: KeyFormatName | undefined, lookup: KeyLookup<K>, now: number): Promise<K> {
  // Cheapest first: a key that cannot be one is refused without storage.
  if (format === undefined || !matchesKeyFormat(key, format)) throw new GatewayError("API_KEY_FORMAT_INVALID");

  const candidates = await lookup(keyPrefix(key));
  if (candidates.length === 0) throw new GatewayError("API_KEY_PREFIX_NOT_FOUND");

  const digest = await sha256(key);
  let match: K | undefined;
  // Compare against every candidate in constant time, without an early exit.
  for (const candidate of candidates) {
    const stored = fromHex(candidate.hash);
    if (stored.byteLength === digest.byteLength && crypto.subtle.timingSafeEqual(stored, digest)) match = candidate;
  }
  if (!match) throw new GatewayError("API_KEY_HASH_MISMATCH");

  assertKeyUsable(match, now);
  return match;
}

/** The moment a key stops working: its expiry, or the end of a rotation's grace. */
export function keyNotAfter(key: Pick<KeyRecord, "expiresAt" | "graceUntil">): number | null {
  const limits = [key.expiresAt, key.graceUntil].filter((t): t is string => t !== null).map((t) => Date.parse(t));
  return limits.length === 0 ? null : Math.min(...limits);
}

export function assertKeyUsable(key: Pick<KeyRecord, "status" | "expiresAt" | "graceUntil">, now: number): void {
  const outcome = credentialStateOutcome({ status: key.status, notAfter: keyNotAfter(key) }, now);
  if (outcome) throw credentialRefusal(outcome, "api_key");
}
