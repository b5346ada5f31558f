/**
 * API key formats: how a key looks, how one is generated, and the prefix that
 * indexes it in D1. Pure: no storage, no clock.
 */

export const KEY_FORMAT_NAMES = ["ilal", "ila"] as const;
export type KeyFormatName = (typeof KEY_FORMAT_NAMES)[number];
export type KeyEnv = "live" | "test";

interface KeyFormat {
  name: KeyFormatName;
  /** Exact shape of a whole key. */
  pattern: RegExp;
  /** Whether keys of this format carry a live/test environment. */
  hasEnv: boolean;
  /** The random part, after the format's fixed text. */
  randomPart(): string;
}

const HEX = "0123456789abcdef";
export const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * `length` characters drawn uniformly from `alphabet`. Rejection sampling keeps
 * the distribution uniform when 256 is not a multiple of the alphabet size.
 */
export function randomString(alphabet: string, length: number): string {
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    const bytes = crypto.getRandomValues(new Uint8Array(length * 2));
    for (const byte of bytes) {
      if (byte < limit) out += alphabet[byte % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

const FORMATS: Record<KeyFormatName, KeyFormat> = {
  // 48 hex characters = 192 bits of entropy.
  ilal: { name: "ilal", pattern: /^ilal_(test|live)_[0-9a-f]{48}$/, hasEnv: true, randomPart: () => randomString(HEX, 48) },
  // 72 characters of 62 = ~428 bits of entropy.
  ila: { name: "ila", pattern: /^ila_[A-Za-z0-9]{72}$/, hasEnv: false, randomPart: () => randomString(ALPHANUMERIC, 72) },
};

/** Which enabled format a token claims to be, judged by its `<name>_` prefix alone. */
export function detectKeyFormat(token: string, enabled: readonly KeyFormatName[]): KeyFormatName | undefined {
  return enabled.find((name) => token.startsWith(`${name}_`));
}

export function matchesKeyFormat(token: string, format: KeyFormatName): boolean {
  return FORMATS[format].pattern.test(token);
}

/** The indexed lookup prefix: everything up to and including the first 8 characters after the last `_`. */
export function keyPrefix(key: string): string {
  return key.slice(0, key.lastIndexOf("_") + 1 + 8);
}

/** live/test for formats that carry it, else null. */
export function keyEnv(key: string, format: KeyFormatName): KeyEnv | null {
  if (!FORMATS[format].hasEnv) return null;
  return key.startsWith(`${format}_test_`) ? "test" : "live";
}

export function generateKey(format: KeyFormatName, env: KeyEnv = "live"): string {
  const spec = FORMATS[format];
  return spec.hasEnv ? `${format}_${env}_${spec.randomPart()}` : `${format}_${spec.randomPart()}`;
}

export function formatHasEnv(format: KeyFormatName): boolean {
  return FORMATS[format].hasEnv;
}

/** Lowercase hex SHA-256 of the key's UTF-8 bytes: what D1 stores. */
export async function hashKey(key: string): Promise<string> {
  return toHex(await sha256(key));
}

export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** Every byte's two hex digits, and every character code's nibble (-1: not hex): table lookups on the hot path. */
const BYTE_HEX = Array.from({ length: 256 }, (_, byte) => HEX[byte >> 4]! + HEX[byte & 15]!);
const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  NIBBLE[HEX.charCodeAt(i)] = i;
  NIBBLE[HEX.toUpperCase().charCodeAt(i)] = i;
}

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += BYTE_HEX[bytes[i]!]!;
  return out;
}

/** The bytes of a hex string; empty when it is not hex of an even length (so it matches no digest). */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) return new Uint8Array(0);
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const high = NIBBLE[hex.charCodeAt(2 * i)] ?? -1;
    const low = NIBBLE[hex.charCodeAt(2 * i + 1)] ?? -1;
    if (high < 0 || low < 0) return new Uint8Array(0);
    out[i] = (high << 4) | low;
  }
  return out;
}
