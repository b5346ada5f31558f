import { Hono } from "hono";
import * as z from "../zod";
import type { AppEnv } from "../app-env";
import { publicJwks, signUserToken } from "../auth/jwt";
import { DUMMY_PASSWORD_HASH, verifyPassword } from "../auth/password";
import { findUserByEmail, type UserRecord } from "../db/users";
import { GatewayError } from "../errors";
import { assertNameNotThrottled, assertNotThrottled, recordAuthFailure, recordNamedFailure } from "../limits/auth-throttle";
import { validateJson } from "../middleware/validate";
import { describe } from "../openapi/operation";

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

const LoginAnswer = z.object({ token: z.string(), tokenType: z.literal("Bearer"), expiresIn: z.number() });
const Jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

authRoutes.post(
  "/auth/login",
  describe({
    operationId: "login",
    summary: "A JWT for a user (email and password)",
    tags: ["auth"],
    responses: [{ status: 200, description: "A signed JWT, for Authorization: Bearer", schema: LoginAnswer }],
    errors: ["INVALID_CREDENTIALS", "AUTH_THROTTLED", "AUTH_BACKEND_UNAVAILABLE"],
    headers: [
      { name: "Cache-Control", on: "success" },
      { name: "Retry-After", on: ["AUTH_THROTTLED"] },
    ],
  }),
  validateJson(LoginBody),
  async (c) => {
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
  },
);

authRoutes.get(
  "/.well-known/jwks.json",
  describe({
    operationId: "getJwks",
    summary: "Public signing keys (JWKS) of the tokens keygate issues",
    tags: ["auth"],
    responses: [{ status: 200, description: "A JWK Set", schema: Jwks }],
    headers: [{ name: "Cache-Control", on: "success" }],
  }),
  async (c) => {
    c.header("Cache-Control", "public, max-age=300");
    return c.json(await publicJwks(c.get("config")));
  },
);

async function lookupUser(db: D1Database, email: string): Promise<UserRecord | undefined> {
  try {
    return await findUserByEmail(db, email);
  } catch (error) {
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", { cause: error, context: { event: "user_lookup_failed" } });
  }
}
