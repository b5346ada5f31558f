import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../app-env";
import { requestCredential, verifyCredential } from "../auth/authenticate";
import { ipRefusal } from "../auth/authorize";
import { credentialRefusal, credentialStateOutcome } from "../auth/credential-state";
import type { Credential } from "../auth/credentials";
import { sha256 } from "../auth/key-format";
import { limiterName, type Principal } from "../auth/principal";
import type { Config } from "../config";
import type { KeyRecord } from "../db/keys";
import { getUser, type UserRecord } from "../db/users";
import type { Env } from "../env";
import { type ErrorCode, GatewayError } from "../errors";
import { assertNotThrottled, recordingAuthFailures } from "../limits/auth-throttle";
import { limiterStub } from "../limits/client";
import { documented, type OperationDoc } from "../openapi/operation";
import type { CredentialState } from "../limits/windows";

/**
 * Who calls keygate's management endpoints: the ADMIN_TOKEN secret, a JWT
 * (keygate's own users, or a third party's subject), or — for usage stats
 * only — an API key. Resolved once per request by one of the middlewares below.
 */
export type CallerAuthMethod = "admin_token" | "jwt" | "api_key";

export interface Caller {
  /** Reported as `authMethod` and X-Auth-Method; "admin_token" for the ADMIN_TOKEN secret. */
  authMethod: CallerAuthMethod;
  isAdmin: boolean;
  /** The keygate user behind a JWT, as stored now (role changes apply at once); else null. */
  user: UserRecord | null;
  /** The calling API key (authMethod "api_key"); else null. */
  key: KeyRecord | null;
  /** How the audit log names the caller. */
  actor: string;
}

const ADMIN_TOKEN_CALLER: Caller = { authMethod: "admin_token", isAdmin: true, user: null, key: null, actor: "admin_token" };

/**
 * Whether the credential is exactly the ADMIN_TOKEN: a Bearer token that is
 * not a key (the same parsing as every credential, so X-API-Key, when
 * present, rules it out). Both sides are hashed first so the constant-time
 * comparison never depends on lengths.
 */
async function isAdminToken(credential: Credential, config: Config): Promise<boolean> {
  if (config.adminToken === undefined || credential.kind !== "jwt") return false;
  const [presented, expected] = await Promise.all([sha256(credential.token), sha256(config.adminToken)]);
  return crypto.subtle.timingSafeEqual(presented, expected);
}

/**
 * An API key's Durable Object knows a revocation before any cached key row
 * does; ask it, as the gateway does for product calls.
 */
async function assertKeyStateLive(env: Env, principal: Extract<Principal, { method: "api_key" }>, now: number): Promise<void> {
  let state: CredentialState;
  try {
    state = await limiterStub(env, limiterName(principal)).keyState(principal.key.id);
  } catch (error) {
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", { message: "Rate limiter is unavailable", cause: error, context: { event: "rate_limiter_failed" } });
  }
  const outcome = credentialStateOutcome(state, now);
  if (outcome) throw credentialRefusal(outcome, "api_key");
}

/** The token's user as stored now; storage down is a 503, like a failed key lookup, never a 500 or a 401. */
async function currentUser(db: D1Database, id: string): Promise<UserRecord | undefined> {
  try {
    return await getUser(db, id);
  } catch (error) {
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", { cause: error, context: { event: "user_lookup_failed" } });
  }
}

async function callerOf(principal: Principal, c: Context<AppEnv>, clientIp: string | null, now: number): Promise<Caller> {
  if (principal.method === "api_key") {
    // The SPEC's order, as on product calls: status and expiry (the object knows a revocation first), then IP.
    await assertKeyStateLive(c.env, principal, now);
    const refusal = ipRefusal(principal, clientIp);
    if (refusal) throw refusal;
    return { authMethod: "api_key", isAdmin: false, user: null, key: principal.key, actor: `key:${principal.key.id}` };
  }
  if (principal.userId === null) {
    // A third party's token: authenticated, but no keygate user behind it.
    return { authMethod: "jwt", isAdmin: false, user: null, key: null, actor: `sub:${principal.subject}` };
  }
  const user = await currentUser(c.env.DB, principal.userId);
  if (!user) throw new GatewayError("JWT_CLAIM_INVALID", { message: "The token's user no longer exists" });
  return { authMethod: "jwt", isAdmin: user.role === "admin", user, key: null, actor: `user:${user.id}` };
}

/**
 * As for product calls: a throttled address is refused before any lookup, and
 * every failed attempt (a wrong admin token included) counts against it.
 */
export async function resolveCaller(c: Context<AppEnv>): Promise<Caller> {
  const config = c.get("config");
  const headers = c.req.raw.headers;
  const ip = headers.get("cf-connecting-ip");
  assertNotThrottled(c.env, config, ip);
  return recordingAuthFailures(c.env, config, ip, async () => {
    const credential = requestCredential(headers, config);
    if (await isAdminToken(credential, config)) return ADMIN_TOKEN_CALLER;
    const now = Date.now();
    return callerOf(await verifyCredential(credential, c.env.DB, config, now), c, ip, now);
  });
}

type Admits = (caller: Caller) => GatewayError | undefined;

/** What resolveCaller can refuse, whoever may call: the throttle, every failed credential, storage down. */
const AUTHENTICATION_REFUSALS: ErrorCode[] = [
  "AUTH_THROTTLED",
  "AUTH_MISSING",
  "AUTH_HEADER_MALFORMED",
  "API_KEY_FORMAT_INVALID",
  "API_KEY_PREFIX_NOT_FOUND",
  "API_KEY_HASH_MISMATCH",
  "API_KEY_INACTIVE",
  "API_KEY_EXPIRED",
  "JWT_MALFORMED",
  "JWT_EXPIRED",
  "JWT_NOT_YET_VALID",
  "JWT_SIGNATURE_INVALID",
  "JWT_CLAIM_INVALID",
  "JWT_ALG_NOT_ALLOWED",
  "JWT_KEY_NOT_FOUND",
  "AUTH_BACKEND_UNAVAILABLE",
];

function callerMiddleware(admits: Admits, doc: OperationDoc) {
  const middleware = createMiddleware<AppEnv>(async function caller(c, next) {
    const caller = await resolveCaller(c);
    const refusal = admits(caller);
    if (refusal) throw refusal;
    c.set("caller", caller);
    c.header("X-Auth-Method", caller.authMethod);
    await next();
  });
  return documented(middleware, {
    errors: AUTHENTICATION_REFUSALS,
    headers: [
      { name: "X-Auth-Method", on: "success" },
      { name: "Retry-After", on: ["AUTH_THROTTLED"] },
    ],
    ...doc,
  });
}

const USER_JWT = { userJwt: [] };
const ADMIN_TOKEN = { adminToken: [] };

/** Admins only: ADMIN_TOKEN, or a JWT of a user whose role is admin. */
export const requireAdmin = () =>
  callerMiddleware((caller) => (caller.isAdmin ? undefined : new GatewayError("FORBIDDEN", { message: "Only admins may do this" })), {
    security: [USER_JWT, ADMIN_TOKEN],
    errors: [...AUTHENTICATION_REFUSALS, "FORBIDDEN"],
  });

/** Someone who can own keys: a keygate user's JWT, or an admin. */
export const requireUser = () =>
  callerMiddleware(
    (caller) => {
      if (caller.isAdmin || caller.user) return undefined;
      return new GatewayError("FORBIDDEN", {
        message: caller.key ? "API keys cannot manage keys; sign in and use a JWT" : "This token does not belong to a keygate user",
      });
    },
    { security: [USER_JWT, ADMIN_TOKEN], errors: [...AUTHENTICATION_REFUSALS, "FORBIDDEN"] },
  );

/** Any authenticated caller, API keys included (an API key's IP allowlist applies). */
export const requireAnyCaller = () =>
  callerMiddleware(() => undefined, {
    security: [{ apiKeyHeader: [] }, { apiKeyBearer: [] }, USER_JWT, ADMIN_TOKEN],
    errors: [...AUTHENTICATION_REFUSALS, "IP_NOT_ALLOWED"],
  });

/** keygate's own JSON answers carry the caller's `authMethod` at the top level (SPEC 1.4). */
export function callerJson(c: Context<AppEnv>, body: object, status: ContentfulStatusCode = 200): Response {
  return c.json({ authMethod: c.get("caller").authMethod, ...body }, status);
}
