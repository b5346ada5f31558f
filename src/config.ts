import * as z from "./zod";
import { GatewayError } from "./errors";
import { KEY_FORMAT_NAMES, type KeyFormatName } from "./auth/key-format";

/**
 * The Worker's configuration, parsed from `env` once per isolate. A bad value
 * fails every request with 500 CONFIG_INVALID naming the variable (and logs
 * it), instead of letting a typo silently change behaviour.
 */
export interface Config {
  rateLimitPerMinuteDefault: number;
  rateLimitPerDayDefault: number;
  keyCacheTtlSeconds: number;
  productCacheTtlSeconds: number;
  authFailureLimitPerMinute: number;
  apiKeyFormats: KeyFormatName[];
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  jwksUrl: string | undefined;
  jwtAlgorithms: string[];
  jwtClockToleranceSeconds: number;
  jwtTtlSeconds: number;
  originTimeoutMs: number;
  maxBodyBytes: number;
  rateLimitFailureMode: "closed" | "open";
  /** Days a new key lives when its creator names no expiry; undefined = keys never expire by default. */
  keyDefaultTtlDays: number | undefined;
  /** Days before a key's expiry that the cron publishes key.expiring. */
  keyExpiringWarningDays: number;
  /** Seconds before a failed webhook delivery's first retry; each further retry waits twice as long (capped). */
  webhookRetryBaseSeconds: number;
  /** Milliseconds a webhook endpoint has to answer. */
  webhookTimeoutMs: number;
  adminToken: string | undefined;
  jwtSigningKey: JsonWebKey & { kid?: string; alg?: string };
  jwtSecret: string | undefined;
  originSigningSecret: string;
}

const ALLOWED_JWT_ALGORITHMS = ["ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "EdDSA", "HS256"] as const;

// Unquoted [vars] values reach env as numbers; they are read like their text.
const integer = (fallback: number, min: number, max: number) =>
  z.pipe(
    z.pipe(
      z.optional(z.union([z.string(), z.pipe(z.number(), z.transform(String))])),
      z.transform((value: string | undefined) => (value === undefined || value.trim() === "" ? String(fallback) : value.trim())),
    ),
    z.pipe(z.pipe(z.string().check(z.regex(/^\d+$/, "must be a whole number")), z.transform(Number)), z.number().check(z.gte(min), z.lte(max))),
  );

/** Like integer(), but empty means "not set" (undefined). */
const optionalInteger = (min: number, max: number) =>
  z.pipe(
    z.pipe(
      z.optional(z.union([z.string(), z.pipe(z.number(), z.transform(String))])),
      z.transform((value: string | undefined) => (value === undefined || value.trim() === "" ? undefined : value.trim())),
    ),
    z.optional(
      z.pipe(z.pipe(z.string().check(z.regex(/^\d+$/, "must be a whole number or empty")), z.transform(Number)), z.number().check(z.gte(min), z.lte(max))),
    ),
  );

const optionalText = z.pipe(
  z.optional(z.string()),
  z.transform((value: string | undefined) => (value && value.trim() !== "" ? value.trim() : undefined)),
);

const list = <T extends string>(allowed: readonly T[], fallback: string) =>
  z.pipe(
    z.pipe(
      z.optional(z.string()),
      z.transform((value: string | undefined) =>
        (value && value.trim() !== "" ? value : fallback)
          .split(",")
          .map((item) => item.trim())
          .filter(Boolean),
      ),
    ),
    z.array(z.enum(allowed as unknown as [T, ...T[]])).check(z.minLength(1)),
  );

const EnvSchema = z.object({
  RATE_LIMIT_PER_MINUTE_DEFAULT: integer(60, 1, 1_000_000),
  RATE_LIMIT_PER_DAY_DEFAULT: integer(10_000, 1, 1_000_000_000),
  KEY_CACHE_TTL_SECONDS: integer(30, 0, 3600),
  PRODUCT_CACHE_TTL_SECONDS: integer(30, 0, 3600),
  AUTH_FAILURE_LIMIT_PER_MINUTE: integer(30, 1, 1_000_000),
  API_KEY_FORMATS: list(KEY_FORMAT_NAMES, "ilal,ila"),
  JWT_ISSUER: optionalText,
  JWT_AUDIENCE: optionalText,
  JWKS_URL: z.pipe(optionalText, z.optional(z.url({ protocol: /^https?$/ }))),
  JWT_ALGORITHMS: list(ALLOWED_JWT_ALGORITHMS, "ES256,HS256"),
  JWT_CLOCK_TOLERANCE_SECONDS: integer(30, 0, 600),
  JWT_TTL_SECONDS: integer(3600, 60, 86_400),
  ORIGIN_TIMEOUT_MS: integer(10_000, 100, 300_000),
  MAX_BODY_BYTES: integer(1_048_576, 1, 100 * 1_048_576),
  RATE_LIMIT_FAILURE_MODE: z.pipe(
    z.pipe(
      z.optional(z.string()),
      z.transform((value: string | undefined) => value?.trim() || "closed"),
    ),
    z.enum(["closed", "open"]),
  ),
  KEY_DEFAULT_TTL_DAYS: optionalInteger(1, 36_500),
  KEY_EXPIRING_WARNING_DAYS: integer(7, 1, 365),
  WEBHOOK_RETRY_BASE_SECONDS: integer(30, 0, 3600),
  WEBHOOK_TIMEOUT_MS: integer(10_000, 100, 60_000),
  ADMIN_TOKEN: z.pipe(optionalText, z.optional(z.string().check(z.minLength(16, "must be at least 16 characters")))),
  JWT_SIGNING_KEY: z.pipe(
    z.string({ error: "is required (a private ES256 JWK as JSON)" }),
    z.transform((value: string, ctx) => {
      try {
        const jwk = JSON.parse(value) as JsonWebKey & { kid?: string };
        if (jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.d !== "string") throw new Error();
        return jwk;
      } catch {
        ctx.issues.push({ code: "custom", message: "must be a private EC P-256 JWK (JSON with kty, crv, x, y, d)", input: value });
        return z.NEVER;
      }
    }),
  ),
  JWT_SECRET: z.pipe(optionalText, z.optional(z.string().check(z.minLength(32, "must be at least 32 characters")))),
  ORIGIN_SIGNING_SECRET: z.string({ error: "is required" }).check(z.minLength(32, "must be at least 32 characters")),
});

const parsed = new WeakMap<object, Config>();

export function parseConfig(env: Record<string, unknown>): Config {
  const result = EnvSchema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const name = String(issue.path[0] ?? "configuration");
    throw new GatewayError("CONFIG_INVALID", { message: `Invalid configuration: ${name} ${issue.message}` });
  }
  const v = result.data;
  return {
    rateLimitPerMinuteDefault: v.RATE_LIMIT_PER_MINUTE_DEFAULT,
    rateLimitPerDayDefault: v.RATE_LIMIT_PER_DAY_DEFAULT,
    keyCacheTtlSeconds: v.KEY_CACHE_TTL_SECONDS,
    productCacheTtlSeconds: v.PRODUCT_CACHE_TTL_SECONDS,
    authFailureLimitPerMinute: v.AUTH_FAILURE_LIMIT_PER_MINUTE,
    apiKeyFormats: v.API_KEY_FORMATS,
    jwtIssuer: v.JWT_ISSUER,
    jwtAudience: v.JWT_AUDIENCE,
    jwksUrl: v.JWKS_URL,
    jwtAlgorithms: v.JWT_ALGORITHMS,
    jwtClockToleranceSeconds: v.JWT_CLOCK_TOLERANCE_SECONDS,
    jwtTtlSeconds: v.JWT_TTL_SECONDS,
    originTimeoutMs: v.ORIGIN_TIMEOUT_MS,
    maxBodyBytes: v.MAX_BODY_BYTES,
    rateLimitFailureMode: v.RATE_LIMIT_FAILURE_MODE,
    keyDefaultTtlDays: v.KEY_DEFAULT_TTL_DAYS,
    keyExpiringWarningDays: v.KEY_EXPIRING_WARNING_DAYS,
    webhookRetryBaseSeconds: v.WEBHOOK_RETRY_BASE_SECONDS,
    webhookTimeoutMs: v.WEBHOOK_TIMEOUT_MS,
    adminToken: v.ADMIN_TOKEN,
    jwtSigningKey: v.JWT_SIGNING_KEY,
    jwtSecret: v.JWT_SECRET,
    originSigningSecret: v.ORIGIN_SIGNING_SECRET,
  };
}

/** Parsed once per env object (one per isolate in production). */
export function getConfig(env: object): Config {
  let config = parsed.get(env);
  if (!config) {
    config = parseConfig(env as Record<string, unknown>);
    parsed.set(env, config);
  }
  return config;
}
