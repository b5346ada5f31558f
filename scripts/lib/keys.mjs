// API key generation, matching SPEC.md section 2: formats, prefix and SHA-256 hash.

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** The accepted key shapes (SPEC.md §2). Handy for tests that parse printed keys. */
export const KEY_PATTERNS = {
  ilal: /^ilal_(test|live)_[0-9a-f]{48}$/,
  ila: /^ila_[A-Za-z0-9]{72}$/,
};

/** Lowercase hex of `byteLength` random bytes. @param {number} byteLength */
export function randomHex(byteLength) {
  const bytes = crypto.getRandomValues(new Uint8Array(byteLength));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * `length` characters from [A-Za-z0-9]. Rejection sampling: bytes >= 248 (= 62 * 4)
 * are discarded so every character is equally likely (plain `% 62` would favour some).
 * @param {number} length
 */
export function randomAlphanumeric(length) {
  let out = '';
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (byte >= 248) continue;
      out += ALPHANUMERIC.charAt(byte % 62);
      if (out.length === length) break;
    }
  }
  return out;
}

/**
 * A new plaintext key.
 * @param {'ilal' | 'ila'} format
 * @param {'live' | 'test'} [env] only for ilal
 */
export function generateApiKey(format, env = 'live') {
  if (format === 'ilal') {
    if (env !== 'live' && env !== 'test') throw new Error(`ilal keys need env live|test, got ${env}`);
    return `ilal_${env}_${randomHex(24)}`; // 192 bits
  }
  if (format === 'ila') return `ila_${randomAlphanumeric(72)}`; // ~428 bits
  throw new Error(`unknown key format ${format}`);
}

/** The stored, human-visible prefix: up to and including 8 characters after the last `_`. @param {string} key */
export function keyPrefix(key) {
  return key.slice(0, key.lastIndexOf('_') + 1 + 8);
}

/** Lowercase hex SHA-256 of the UTF-8 text. @param {string} text */
export async function sha256Hex(text) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A new key with everything the api_keys row needs.
 * @param {'ilal' | 'ila'} format
 * @param {'live' | 'test'} [env]
 * @returns {Promise<{ key: string, prefix: string, hash: string, format: 'ilal' | 'ila', env: 'live' | 'test' | null }>}
 */
export async function newApiKey(format, env = 'live') {
  const key = generateApiKey(format, env);
  return { key, prefix: keyPrefix(key), hash: await sha256Hex(key), format, env: format === 'ilal' ? env : null };
}
