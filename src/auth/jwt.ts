import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  SignJWT,
  type FetchImplementation,
  type FlattenedJWSInput,
  type JWK,
  type JWSHeaderParameters,
  type JWTPayload,
} from "jose";
import type { Config } from "../config";
import { userGrantVersion, type UserRecord } from "../db/users";
import { GatewayError } from "../errors";
import { cachedVerification, forgetVerification, rememberVerification, tokenDigest } from "./jwt-cache";
import type { JwtIssuer, Principal } from "./principal";

/**
 * keygate's JWTs: verifying any token with jose (SPEC section 6), signing the
 * tokens POST /auth/login issues, and publishing their public key. Every jose
 * failure becomes a JWT_* code in one place, jwtFailure.
 */

export type JwtPrincipal = Extract<Principal, { method: "jwt" }>;

/** Tokens longer than this are refused before jose parses anything. Header values are byte strings: a char is a byte. */
export const MAX_TOKEN_BYTES = 8 * 1024;
/** The algorithm of keygate's own signing key (a P-256 EC JWK, checked by config.ts). */
const OWN_ALG = "ES256";

interface GatewayKeys {
  kid: string;
  /** The public half only, as published at /.well-known/jwks.json. */
  publicJwk: JWK;
  publicKey: CryptoKey;
  privateKey: CryptoKey;
  /** The optional HS256 secret (JWT_SECRET). */
  secret: CryptoKey | undefined;
}

// Importing keys costs more than verifying a signature: do it once per isolate.
const keysByConfig = new WeakMap<Config, Promise<GatewayKeys>>();

export function gatewayKeys(config: Config): Promise<GatewayKeys> {
  let keys = keysByConfig.get(config);
  if (!keys) {
    keys = importGatewayKeys(config);
    keysByConfig.set(config, keys);
  }
  return keys;
}

async function importGatewayKeys(config: Config): Promise<GatewayKeys> {
  const { kty, crv, x, y, d } = config.jwtSigningKey;
  const ecdsa = { name: "ECDSA", namedCurve: "P-256" };
  try {
    // Built member by member, so no private member (d, or any other) can reach the public JWK.
    const publicMembers = { kty: kty!, crv: crv!, x: x!, y: y! };
    const kid = config.jwtSigningKey.kid ?? (await calculateJwkThumbprint(publicMembers));
    return {
      kid,
      publicJwk: { ...publicMembers, kid, alg: OWN_ALG, use: "sig" },
      publicKey: await crypto.subtle.importKey("jwk", publicMembers, ecdsa, false, ["verify"]),
      privateKey: await crypto.subtle.importKey("jwk", { ...publicMembers, d: d! }, ecdsa, false, ["sign"]),
      secret: config.jwtSecret === undefined ? undefined : await importHmacSecret(config.jwtSecret),
    };
  } catch (error) {
    throw new GatewayError("CONFIG_INVALID", { message: `Invalid configuration: JWT_SIGNING_KEY could not be imported (${String(error)})` });
  }
}

function importHmacSecret(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
}

/** The JWKS document: the gateway's public signing key with its kid, alg and use. */
export async function publicJwks(config: Config): Promise<{ keys: JWK[] }> {
  return { keys: [(await gatewayKeys(config)).publicJwk] };
}

// ---------------------------------------------------------------------------
// Remote JWKS

/** Raised by our fetch when the JWKS endpoint cannot be reached or does not answer 200. */
class JwksUnavailable extends Error {
  readonly code = "KEYGATE_JWKS_UNAVAILABLE";
}

const fetchJwks: FetchImplementation = async (url, options) => {
  let response: Response;
  try {
    response = await fetch(url, options);
  } catch (cause) {
    throw new JwksUnavailable(`JWKS fetch failed: ${String(cause)}`);
  }
  if (response.status !== 200) throw new JwksUnavailable(`JWKS answered ${response.status}`);
  return response;
};

type RemoteJwks = ReturnType<typeof createRemoteJWKSet>;
// One set per URL per isolate: jose caches the keys (10 min) and refetches on an unknown kid (at most every 30 s).
const remoteSets = new Map<string, RemoteJwks>();

function remoteJwks(url: string): RemoteJwks {
  let set = remoteSets.get(url);
  if (!set) {
    set = createRemoteJWKSet(new URL(url), { [customFetch]: fetchJwks });
    remoteSets.set(url, set);
  }
  return set;
}

/** The JWKS could not be fetched or read: the token was not judged. */
function isJwksUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof JwksUnavailable || code === "ERR_JWKS_TIMEOUT" || code === "ERR_JWKS_INVALID" || code === "ERR_JOSE_GENERIC";
}

/**
 * The token's key from the remote JWKS. When a refresh fails, jose throws
 * even if the last good set holds the key; that set is still trusted, so the
 * key is looked up there before the failure is reported.
 */
async function keyFromRemote(set: RemoteJwks, header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
  try {
    return await set(header, token);
  } catch (error) {
    const lastGood = set.jwks();
    if (!isJwksUnavailable(error) || !lastGood) throw error;
    const cached = await createLocalJWKSet(lastGood)(header, token).catch(() => undefined);
    if (cached) return cached;
    throw error;
  }
}

// ---------------------------------------------------------------------------
// Verification

type KeySource = "own" | "secret" | "jwks";

/** The key by the token's header: HS256 → JWT_SECRET; ES256 with our kid or none → ours; else the remote JWKS. */
async function chooseKey(
  header: JWSHeaderParameters,
  token: FlattenedJWSInput,
  config: Config,
  keys: GatewayKeys,
): Promise<{ source: KeySource; key: CryptoKey }> {
  if (header.alg === "HS256") {
    if (!keys.secret) throw new errors.JWKSNoMatchingKey("No HS256 secret is configured");
    return { source: "secret", key: keys.secret };
  }
  if (header.alg === OWN_ALG && (header.kid === undefined || header.kid === keys.kid)) return { source: "own", key: keys.publicKey };
  if (config.jwksUrl) return { source: "jwks", key: await keyFromRemote(remoteJwks(config.jwksUrl), header, token) };
  throw new errors.JWKSNoMatchingKey("No key is configured for this token's alg and kid");
}

export async function verifyJwt(token: string, config: Config, now: number): Promise<JwtPrincipal> {
  if (token.length > MAX_TOKEN_BYTES) throw new GatewayError("JWT_MALFORMED", { message: "The token is larger than 8 KiB" });
  const keys = await gatewayKeys(config);
  const digest = await tokenDigest(token);
  const cached = cachedVerification(digest, config, now);
  if (cached) {
    // The same token, verified before: usable while the key its header picks is still the one that verified it.
    if ((await currentKey(token, config, keys)) === cached.key) return cached.principal;
    forgetVerification(digest);
  }
  let source: KeySource | undefined;
  let key: CryptoKey | undefined;
  let payload: JWTPayload;
  try {
    // jose checks the header and the alg allowlist before it asks for a key.
    ({ payload } = await jwtVerify(
      token,
      async (header, jws) => {
        const choice = await chooseKey(header, jws, config, keys);
        source = choice.source;
        key = choice.key;
        return choice.key;
      },
      {
        algorithms: config.jwtAlgorithms,
        issuer: config.jwtIssuer,
        audience: config.jwtAudience,
        clockTolerance: config.jwtClockToleranceSeconds,
        currentDate: new Date(now),
        requiredClaims: ["exp", "sub"],
      },
    ));
  } catch (error) {
    throw jwtFailure(error);
  }
  // Set: jose asks for the key before it returns a payload.
  const principal = toPrincipal(payload, source!);
  rememberVerification(digest, { principal, notAfter: payload.exp! * 1000, config, key: key!, remote: source === "jwks" });
  return principal;
}

/** The key a verified token's header picks now (a JWKS refresh may have replaced it); undefined if none does. */
async function currentKey(token: string, config: Config, keys: GatewayKeys): Promise<CryptoKey | undefined> {
  const [protectedHeader = "", payload = "", signature = ""] = token.split(".");
  try {
    return (await chooseKey(decodeProtectedHeader(token), { protected: protectedHeader, payload, signature }, config, keys)).key;
  } catch {
    return undefined; // judged again by a full verification
  }
}

/**
 * Every verification failure as the SPEC's code, by jose's stable `code`.
 * Anything without one (a TypeError when a key does not fit the token's alg,
 * a DOMException from importing a JWKS member) is still the token's problem:
 * a 401, never a 500.
 */
export function jwtFailure(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  if (isJwksUnavailable(error)) return new GatewayError("AUTH_BACKEND_UNAVAILABLE", { cause: error, context: { event: "jwks_unavailable" } });
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return new GatewayError("JWT_EXPIRED");
    case "ERR_JWT_CLAIM_VALIDATION_FAILED": {
      const { claim, reason } = error as errors.JWTClaimValidationFailed;
      // Only a well-formed time in the future is "not yet valid"; an nbf that is no number is a bad claim.
      if ((claim === "nbf" || claim === "iat") && reason === "check_failed") return new GatewayError("JWT_NOT_YET_VALID");
      return new GatewayError("JWT_CLAIM_INVALID", { message: `The token's "${claim}" claim is ${reason === "missing" ? "missing" : "invalid"}` });
    }
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return new GatewayError("JWT_SIGNATURE_INVALID");
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return new GatewayError("JWT_ALG_NOT_ALLOWED");
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return new GatewayError("JWT_MALFORMED");
    case "ERR_JOSE_NOT_SUPPORTED":
      // An unrecognised `crit` extension, or an alg no key type serves.
      return new GatewayError("JWT_MALFORMED", { message: "The token uses a JOSE feature keygate does not support" });
    case "ERR_JWKS_NO_MATCHING_KEY":
      return new GatewayError("JWT_KEY_NOT_FOUND");
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return new GatewayError("JWT_KEY_NOT_FOUND", { message: "More than one key matches this token; it must name its kid" });
    default:
      // ERR_JWK_INVALID, TypeError, DOMException: no usable key for this token.
      return new GatewayError("JWT_KEY_NOT_FOUND", { message: "No usable key verifies this token" });
  }
}

// ---------------------------------------------------------------------------
// Claim values

/**
 * `sub` and `iss` reach origins in headers and name limiter objects:
 * printable ASCII without spaces, so no value can break a header or a name.
 */
const PRINTABLE_ID = /^[\x21-\x7E]{1,255}$/;
/** The key scopes' charset (routes/schemas.ts): X-Auth-Scopes, split on spaces, gives back exactly what was granted. */
const SCOPE = /^[A-Za-z0-9:._*-]{1,100}$/;
/** As many as a key may hold. */
export const MAX_TOKEN_SCOPES = 100;

function invalidClaim(claim: string, rule: string): GatewayError {
  // The value is not echoed: it is the part that cannot be trusted.
  return new GatewayError("JWT_CLAIM_INVALID", { message: `The token's "${claim}" claim is invalid: ${rule}` });
}

/**
 * Scopes from `scope` (space-separated, RFC 8693), or the `scp`/`scopes`
 * arrays (a string there is split too). Every scope must have the key
 * scopes' charset: an array entry holding a space would read as two scopes
 * at the origin, so it is refused, never forwarded.
 */
export function claimedScopes(payload: JWTPayload): string[] {
  for (const claim of ["scope", "scp", "scopes"]) {
    const value = payload[claim];
    if (value === undefined || value === null) continue;
    const scopes = typeof value === "string" ? value.split(" ").filter(Boolean) : value;
    if (!Array.isArray(scopes)) throw invalidClaim(claim, "it must be a string or an array of strings");
    if (scopes.length > MAX_TOKEN_SCOPES) throw invalidClaim(claim, `it holds more than ${MAX_TOKEN_SCOPES} scopes`);
    if (!scopes.every((scope) => typeof scope === "string" && SCOPE.test(scope))) {
      throw invalidClaim(claim, "each scope must be 1 to 100 letters, digits or : . _ - *");
    }
    return scopes as string[];
  }
  return [];
}

function claimedSubject(payload: JWTPayload): string {
  const subject = payload.sub;
  if (typeof subject !== "string" || !PRINTABLE_ID.test(subject)) {
    throw invalidClaim("sub", "it must be 1 to 255 printable ASCII characters without spaces");
  }
  return subject;
}

/** A remote JWKS serves any issuer it holds keys for; the token's `iss` tells them apart. */
function jwksIssuer(payload: JWTPayload): JwtIssuer {
  const iss = payload.iss;
  if (iss === undefined) return "jwks";
  if (typeof iss !== "string" || !PRINTABLE_ID.test(iss)) {
    throw invalidClaim("iss", "it must be 1 to 255 printable ASCII characters without spaces");
  }
  return `jwks:${iss}`;
}

/** keygate's own `gv` claim (see signUserToken); tokens signed before it existed have none: 0. */
function claimedGrantVersion(payload: JWTPayload): number {
  const gv = payload.gv;
  if (gv === undefined) return 0;
  if (typeof gv !== "number" || !Number.isSafeInteger(gv) || gv < 0) throw invalidClaim("gv", "it must be a whole number of milliseconds");
  return gv;
}

/**
 * Tokens signed with keygate's own key carry its user's id, role, email,
 * products and grant version. Any other token (HS256, remote JWKS) is a third
 * party's: it never makes its bearer a keygate user or admin, its subject is
 * namespaced by its issuer, and it reaches every product that accepts JWTs,
 * narrowed by the product's scope rules. Claims are checked here, before any
 * limiter is asked: a refused token counts nothing.
 */
function toPrincipal(payload: JWTPayload, source: KeySource): JwtPrincipal {
  const subject = claimedSubject(payload);
  const scopes = claimedScopes(payload);
  if (source !== "own") {
    const issuer = source === "secret" ? "hs256" : jwksIssuer(payload);
    return { method: "jwt", issuer, subject, scopes, userId: null, role: null, email: null, products: ["*"], grantVersion: 0 };
  }
  const products = Array.isArray(payload.products) ? payload.products.filter((slug): slug is string => typeof slug === "string") : [];
  return {
    method: "jwt",
    issuer: "keygate",
    subject,
    scopes,
    userId: subject,
    role: payload.role === "admin" ? "admin" : "user",
    email: typeof payload.email === "string" ? payload.email : null,
    products,
    grantVersion: claimedGrantVersion(payload),
  };
}

// ---------------------------------------------------------------------------
// Signing

/**
 * The token POST /auth/login returns: ES256, our kid, the user's identity and
 * grants, and `gv`, the version of those grants (the row's updatedAt in epoch ms).
 */
export async function signUserToken(user: UserRecord, config: Config, now: number): Promise<string> {
  const keys = await gatewayKeys(config);
  const issuedAt = Math.floor(now / 1000);
  const claims = { email: user.email, role: user.role, scope: user.scopes.join(" "), products: user.products, gv: userGrantVersion(user) };
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: OWN_ALG, kid: keys.kid, typ: "JWT" })
    .setSubject(user.id)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + config.jwtTtlSeconds)
    .setJti(crypto.randomUUID());
  if (config.jwtIssuer) jwt = jwt.setIssuer(config.jwtIssuer);
  if (config.jwtAudience) jwt = jwt.setAudience(config.jwtAudience);
  return jwt.sign(keys.privateKey);
}
