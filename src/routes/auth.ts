import { Hono } from "hono";
import * as z from "../zod";
import type { AppEnv } from "../app-env";
import { publicJwks, signUserToken } from "../auth/jwt";
import { DUMMY_PASSWORD_HASH, verifyPassword } from "../auth/password";
import { findUserByEmail, type UserRecord } from "../db/users";
import { GatewayError } from "../errors";
import { assertNameNotThrottled, assertNotThrottled, recordAuthFailure, recordNamedFailure } from "../limits/auth-throttle";
import { validateJson } from "../middleware/validate";

/**
 * POST /auth/login and GET /.well-known/jwks.json (SPEC section 6). Login is
 * unauthenticated, so its answer carries no authMethod.
 */
export const authRoutes = new Hono<AppEnv>();

export const LoginBody = z.strictObject({
  email: z.string().check(z.trim(), z.minLength(1), z.maxLength(320)),
  // Bounded so a huge "password" cannot make PBKDF2 hash megabytes.
  password: z.string().check(z.minLength(1), z.maxLength(1024)),
});

authRoutes.post("/auth/login", validateJson(LoginBody), async (c) => {
  const config = c.get("config");
  const now = Date.now();
  const { email, password } = c.req.valid("json");
  const ip = c.req.header("cf-connecting-ip") ?? null;
  // Failures count per client address and per account, so neither spraying
  // one address at many accounts nor many addresses at one account gets far.
  const account = `email:${email.toLowerCase()}`;
  assertNotThrottled(c.env, config, ip, now);
  // Never throttled for an unknown email: its failures count under the address alone (below).
  assertNameNotThrottled(account, now);

  const user = await lookupUser(c.env.DB, email);
  // An unknown email is checked against a dummy hash: both failures cost one PBKDF2 run and look the same.
  const passwordMatches = await verifyPassword(password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
  if (!user || !passwordMatches) {
    // An unknown email counts under the address only: a per-email object for
    // it would be a permanent Durable Object per name an attacker makes up.
    // The account's count runs beside the address's, so it adds no sequential round trip.
    await Promise.all([recordAuthFailure(c.env, config, ip), user ? recordNamedFailure(c.env, config, account) : undefined]);
    throw new GatewayError("INVALID_CREDENTIALS");
  }
  const token = await signUserToken(user, config, now);
  c.header("Cache-Control", "no-store");
  return c.json({ token, tokenType: "Bearer", expiresIn: config.jwtTtlSeconds });
});

authRoutes.get("/.well-known/jwks.json", async (c) => {
  c.header("Cache-Control", "public, max-age=300");
  return c.json(await publicJwks(c.get("config")));
});

// keygate's own paths never fall through to product routing, whatever the method.
authRoutes.all("/auth/login", () => methodNotAllowed("POST"));
authRoutes.all("/.well-known/jwks.json", () => methodNotAllowed("GET, HEAD"));

function methodNotAllowed(allow: string): never {
  throw new GatewayError("METHOD_NOT_ALLOWED", { headers: { Allow: allow } });
}

async function lookupUser(db: D1Database, email: string): Promise<UserRecord | undefined> {
  try {
    return await findUserByEmail(db, email);
  } catch (error) {
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", { cause: error, context: { event: "user_lookup_failed" } });
  }
}
