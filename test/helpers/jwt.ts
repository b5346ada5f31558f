import { env } from "cloudflare:workers";
import { importJWK, SignJWT, type JWK, type JWTPayload } from "jose";

/**
 * Tokens minted the way a client or a third-party issuer would. Defaults: a
 * valid keygate token (ES256, the gateway's own key and kid, iss/aud
 * "keygate", five minutes to live, a fresh subject). A claim set to
 * `undefined` is left out of the token.
 */
export const OWN_KID = "test-signing-key";

/** The gateway's signing key as the test env holds it (private). */
export const signingJwk = JSON.parse(env.JWT_SIGNING_KEY) as JWK;

let ownKey: Promise<CryptoKey> | undefined;
export function ownPrivateKey(): Promise<CryptoKey> {
  ownKey ??= importJWK(signingJwk, "ES256") as Promise<CryptoKey>;
  return ownKey;
}

export const hsSecret = (): Uint8Array => new TextEncoder().encode(env.JWT_SECRET);

export interface SignOptions {
  alg?: string;
  /** Defaults to the gateway's own private key (ES256) or JWT_SECRET (HS256). */
  key?: CryptoKey | Uint8Array;
  /** Extra or replaced protected-header members; `kid: undefined` removes the kid. */
  header?: Record<string, unknown>;
  /** Seconds since the epoch the default iat/exp are counted from. */
  now?: number;
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export function uniqueSubject(label = "user"): string {
  return `${label}-${crypto.randomUUID()}`;
}

export async function signToken(claims: JWTPayload = {}, options: SignOptions = {}): Promise<string> {
  const alg = options.alg ?? "ES256";
  const now = options.now ?? nowSeconds();
  const payload = withoutUndefined({ sub: uniqueSubject(), iss: "keygate", aud: "keygate", iat: now, exp: now + 300, ...claims });
  const header = withoutUndefined({ alg, ...(alg === "ES256" ? { kid: OWN_KID } : {}), ...options.header });
  const key = options.key ?? (alg === "HS256" ? hsSecret() : await ownPrivateKey());
  return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key);
}

function withoutUndefined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, member]) => member !== undefined)) as T;
}

/** base64url of a JSON value or of bytes, for hand-built (hostile) tokens. */
export function b64url(value: unknown): string {
  const bytes = value instanceof Uint8Array ? value : new TextEncoder().encode(JSON.stringify(value));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * A compact ES256 JWS over any header and payload, signed with the gateway's
 * key without jose's checks: for tokens jose would refuse to mint.
 */
export async function signRaw(header: Record<string, unknown>, payload: unknown): Promise<string> {
  const signingInput = `${b64url(header)}.${b64url(payload)}`;
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, await ownPrivateKey(), new TextEncoder().encode(signingInput));
  return `${signingInput}.${b64url(new Uint8Array(signature))}`;
}
