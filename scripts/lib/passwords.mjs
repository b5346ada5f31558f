// Password hashes in the format the Worker verifies (users.password_hash):
//   pbkdf2-sha256$<iterations>$<salt base64url, no padding>$<hash base64url, no padding>

export const PBKDF2_ITERATIONS = 100_000;

/** @param {Uint8Array} bytes */
function base64url(bytes) {
  return Buffer.from(bytes).toString('base64url'); // Node's base64url has no padding
}

/** @param {string} password @param {Uint8Array<ArrayBuffer>} salt @param {number} iterations */
async function derive(password, salt, iterations) {
  const material = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, material, 256);
  return new Uint8Array(bits);
}

/** Hash a password with a fresh 16-byte salt and a 32-byte PBKDF2-SHA-256 key. @param {string} password */
export async function hashPassword(password, iterations = PBKDF2_ITERATIONS) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await derive(password, salt, iterations);
  return `pbkdf2-sha256$${iterations}$${base64url(salt)}$${base64url(hash)}`;
}

/** Check a password against a stored hash (used by the scripts' self-checks). @param {string} password @param {string} stored */
export async function verifyPassword(password, stored) {
  const [scheme, iterations, salt, hash] = stored.split('$');
  if (scheme !== 'pbkdf2-sha256' || !iterations || !salt || !hash) return false;
  const derived = await derive(password, new Uint8Array(Buffer.from(salt, 'base64url')), Number(iterations));
  return base64url(derived) === hash;
}
