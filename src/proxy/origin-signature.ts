/**
 * X-Auth-Signature: proof for the origin that a call came through keygate.
 *
 *   X-Auth-Signature: v1=<hex HMAC-SHA-256(ORIGIN_SIGNING_SECRET, canonical)>
 *   canonical = "v1" \n METHOD \n path?query \n X-Auth-Timestamp \n
 *               X-Auth-Method \n X-Auth-Key-Id \n X-Auth-Subject \n X-Auth-Env \n
 *               X-Auth-Scopes \n X-Auth-Product \n X-Request-Id
 * (a missing header is an empty line). This file uses only Web Crypto, so an
 * origin on Workers, Deno, Bun or Node 20+ can copy it as is and call
 * verifyOriginSignature(request, secret).
 */
export const SIGNED_HEADERS = [
  "x-auth-method",
  "x-auth-key-id",
  "x-auth-subject",
  "x-auth-env",
  "x-auth-scopes",
  "x-auth-product",
  "x-request-id",
] as const;

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    keys.set(secret, key);
  }
  return key;
}

export function canonicalString(method: string, pathAndQuery: string, timestamp: string, headers: Headers): string {
  return ["v1", method.toUpperCase(), pathAndQuery, timestamp, ...SIGNED_HEADERS.map((name) => headers.get(name) ?? "")].join("\n");
}

function hex(buffer: ArrayBuffer): string {
  return [...new Uint8Array(buffer)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

export async function signOriginRequest(
  secret: string,
  method: string,
  pathAndQuery: string,
  timestamp: string,
  headers: Headers,
): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(canonicalString(method, pathAndQuery, timestamp, headers)));
  return `v1=${hex(mac)}`;
}

/** For origins: true when the request carries a valid, fresh keygate signature. */
export async function verifyOriginSignature(
  request: Request,
  secret: string,
  { maxAgeSeconds = 300, now = Date.now() }: { maxAgeSeconds?: number; now?: number } = {},
): Promise<boolean> {
  const timestamp = request.headers.get("x-auth-timestamp") ?? "";
  const signature = /^v1=([0-9a-f]{64})$/.exec(request.headers.get("x-auth-signature") ?? "")?.[1];
  if (!signature || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(now / 1000 - Number(timestamp)) > maxAgeSeconds) return false;
  const url = new URL(request.url);
  const mac = new Uint8Array(signature.match(/../g)!.map((pair) => parseInt(pair, 16)));
  const data = encoder.encode(canonicalString(request.method, url.pathname + url.search, timestamp, request.headers));
  return crypto.subtle.verify("HMAC", await hmacKey(secret), mac, data); // constant-time comparison
}
