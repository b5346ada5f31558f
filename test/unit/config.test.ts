import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { getConfig, parseConfig } from "../../src/config";
import { GatewayError } from "../../src/errors";

/** Only the required secrets: every var takes its default. */
const MINIMAL = { JWT_SIGNING_KEY: env.JWT_SIGNING_KEY, ORIGIN_SIGNING_SECRET: "s".repeat(32) };

function configError(vars: Record<string, unknown>): GatewayError {
  try {
    parseConfig(vars);
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error("expected the configuration to be refused");
}

describe("parseConfig defaults", () => {
  it("fills every var with its documented default when only the secrets are set", () => {
    const config = parseConfig(MINIMAL);
    expect(config).toMatchObject({
      rateLimitPerMinuteDefault: 60,
      rateLimitPerDayDefault: 10_000,
      keyCacheTtlSeconds: 30,
      authFailureLimitPerMinute: 30,
      apiKeyFormats: ["ilal", "ila"],
      jwtIssuer: undefined,
      jwtAudience: undefined,
      jwksUrl: undefined,
      jwtAlgorithms: ["ES256", "HS256"],
      jwtClockToleranceSeconds: 30,
      originTimeoutMs: 10_000,
      maxBodyBytes: 1_048_576,
      rateLimitFailureMode: "closed",
      adminToken: undefined,
      jwtSecret: undefined,
      originSigningSecret: "s".repeat(32),
    });
    expect(config.jwtSigningKey).toMatchObject({ kty: "EC", crv: "P-256" });
  });

  it("treats empty strings as unset, as wrangler.toml writes them", () => {
    const config = parseConfig({ ...MINIMAL, JWKS_URL: "", JWT_ISSUER: " ", KEY_CACHE_TTL_SECONDS: "", RATE_LIMIT_FAILURE_MODE: "" });
    expect(config.jwksUrl).toBeUndefined();
    expect(config.jwtIssuer).toBeUndefined();
    expect(config.keyCacheTtlSeconds).toBe(30);
    expect(config.rateLimitFailureMode).toBe("closed");
  });

  it("reads set values, trimming lists", () => {
    const config = parseConfig({
      ...MINIMAL,
      API_KEY_FORMATS: " ila , ilal ",
      JWT_ALGORITHMS: "RS256,ES256",
      ORIGIN_TIMEOUT_MS: "250",
      RATE_LIMIT_FAILURE_MODE: "open",
      JWKS_URL: "https://issuer.example/.well-known/jwks.json",
    });
    expect(config.apiKeyFormats).toEqual(["ila", "ilal"]);
    expect(config.jwtAlgorithms).toEqual(["RS256", "ES256"]);
    expect(config.originTimeoutMs).toBe(250);
    expect(config.rateLimitFailureMode).toBe("open");
    expect(config.jwksUrl).toBe("https://issuer.example/.well-known/jwks.json");
  });

  it("accepts numbers, as wrangler.toml passes unquoted [vars] values", () => {
    const config = parseConfig({ ...MINIMAL, KEY_CACHE_TTL_SECONDS: 45, ORIGIN_TIMEOUT_MS: 2500, MAX_BODY_BYTES: 2048 });
    expect(config.keyCacheTtlSeconds).toBe(45);
    expect(config.originTimeoutMs).toBe(2500);
    expect(config.maxBodyBytes).toBe(2048);
    expect(configError({ ...MINIMAL, KEY_CACHE_TTL_SECONDS: 1.5 }).message).toContain("KEY_CACHE_TTL_SECONDS");
  });

  it("accepts the test environment's configuration", () => {
    expect(parseConfig({ ...env } as Record<string, unknown>).originSigningSecret).toBe(env.ORIGIN_SIGNING_SECRET);
  });
});

describe("parseConfig refusals name the variable", () => {
  it.each([
    ["KEY_CACHE_TTL_SECONDS", "abc"],
    ["KEY_CACHE_TTL_SECONDS", "-1"],
    ["KEY_CACHE_TTL_SECONDS", "1.5"],
    ["KEY_CACHE_TTL_SECONDS", "3601"],
    ["RATE_LIMIT_PER_MINUTE_DEFAULT", "0"],
    ["RATE_LIMIT_PER_DAY_DEFAULT", "lots"],
    ["AUTH_FAILURE_LIMIT_PER_MINUTE", "0"],
    ["API_KEY_FORMATS", "ilal,sk"],
    ["API_KEY_FORMATS", " , "],
    ["JWT_ALGORITHMS", "none"],
    ["JWT_ALGORITHMS", "ES256,HS512"],
    ["JWKS_URL", "not a url"],
    ["JWKS_URL", "ftp://issuer.example/jwks"],
    ["JWT_CLOCK_TOLERANCE_SECONDS", "601"],
    ["ORIGIN_TIMEOUT_MS", "10s"],
    ["ORIGIN_TIMEOUT_MS", "99"],
    ["MAX_BODY_BYTES", "0"],
    ["RATE_LIMIT_FAILURE_MODE", "sideways"],
    ["ADMIN_TOKEN", "short"],
    ["JWT_SECRET", "too-short"],
    ["JWT_SIGNING_KEY", "{not json"],
    ["JWT_SIGNING_KEY", JSON.stringify({ kty: "EC", crv: "P-256", x: "a", y: "b" })],
    ["ORIGIN_SIGNING_SECRET", "short"],
  ])("refuses %s=%j with CONFIG_INVALID naming it", (name, value) => {
    const error = configError({ ...MINIMAL, [name]: value });
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.status).toBe(500);
    expect(error.message).toContain(name);
  });

  it.each(["ORIGIN_SIGNING_SECRET", "JWT_SIGNING_KEY"])("refuses a missing %s, naming it", (name) => {
    const vars: Record<string, unknown> = { ...MINIMAL };
    delete vars[name];
    const error = configError(vars);
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toContain(name);
    expect(error.message).toMatch(/required/);
  });

  it("does not echo a secret's value in its message", () => {
    const error = configError({ ...MINIMAL, ORIGIN_SIGNING_SECRET: "tiny-secret" });
    expect(error.message).not.toContain("tiny-secret");
  });
});

describe("getConfig", () => {
  it("parses once per env object and re-parses a new one", () => {
    const vars = { ...MINIMAL };
    const first = getConfig(vars);
    expect(getConfig(vars)).toBe(first);
    expect(getConfig({ ...MINIMAL, ORIGIN_TIMEOUT_MS: "200" }).originTimeoutMs).toBe(200);
  });

  it("keeps failing a bad env rather than caching the failure as a config", () => {
    const vars = { ...MINIMAL, MAX_BODY_BYTES: "big" };
    expect(() => getConfig(vars)).toThrow(/MAX_BODY_BYTES/);
    expect(() => getConfig(vars)).toThrow(/MAX_BODY_BYTES/);
  });
});
