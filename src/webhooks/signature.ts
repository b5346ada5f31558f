/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com/, the
 * format Svix and others use): the secret is "whsec_" + base64 of random
 * bytes; a delivery carries `webhook-id`, `webhook-timestamp` (unix seconds)
 * and `webhook-signature: v1,<base64 HMAC-SHA256>` over
 * "<webhook-id>.<webhook-timestamp>.<body>", keyed with the decoded secret.
 * HMAC by WebCrypto (crypto.subtle); test/unit/webhook-signature.test.ts
 * checks it against the independent `standardwebhooks` library.
 */
export const SECRET_PREFIX = "whsec_";

/** Bytes of a new secret (Standard Webhooks: 24 to 64). */
export const SECRET_BYTES = 32;

/** A receiver refuses a timestamp further than this from its clock (the library's default). */
export const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60;

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

export function generateWebhookSecret(): string {
  return SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/** The HMAC key a secret stands for: the bytes after "whsec_", base64-decoded. */
function secretKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const bytes = fromBase64(encoded);
  if (bytes.length === 0) throw new Error("The webhook secret is empty");
  return crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

function signedContent(id: string, timestampSeconds: number, body: string): Uint8Array {
  return new TextEncoder().encode(`${id}.${timestampSeconds}.${body}`);
}

/** The `webhook-signature` header's value: "v1,<base64 HMAC-SHA256>". */
export async function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await secretKey(secret, "sign"), signedContent(id, timestampSeconds, body));
  return `v1,${toBase64(new Uint8Array(mac))}`;
}

/** The three headers of a signed delivery. */
export async function webhookHeaders(secret: string, id: string, timestampSeconds: number, body: string): Promise<Record<string, string>> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": await signWebhook(secret, id, timestampSeconds, body),
  };
}

/**
 * A receiver's check: some `v1` signature in the (space-separated) header is
 * the body's, compared in constant time (crypto.subtle.verify), and the
 * timestamp is within the tolerance of `nowSeconds`.
 */
export async function verifyWebhook(
  secret: string,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): Promise<boolean> {
  if (!/^\d{1,12}$/.test(headers.timestamp)) return false;
  const timestamp = Number(headers.timestamp);
  if (Math.abs(nowSeconds - timestamp) > TIMESTAMP_TOLERANCE_SECONDS) return false;
  const key = await secretKey(secret, "verify");
  const content = signedContent(headers.id, timestamp, body);
  for (const candidate of headers.signature.split(" ")) {
    const [version, encoded] = candidate.split(",");
    if (version !== "v1" || encoded === undefined) continue;
    let mac: Uint8Array;
    try {
      mac = fromBase64(encoded);
    } catch {
      continue;
    }
    if (await crypto.subtle.verify("HMAC", key, mac, content)) return true;
  }
  return false;
}
