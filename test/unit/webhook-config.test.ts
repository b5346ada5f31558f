import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config";
import { GatewayError } from "../../src/errors";

/** The webhook and key-lifetime vars (src/config.ts): defaults, set values, and refusals naming the variable. */
const MINIMAL = { JWT_SIGNING_KEY: env.JWT_SIGNING_KEY, ORIGIN_SIGNING_SECRET: "s".repeat(32) };

describe("KEY_DEFAULT_TTL_DAYS, KEY_EXPIRING_WARNING_DAYS, WEBHOOK_RETRY_BASE_SECONDS, WEBHOOK_TIMEOUT_MS", () => {
  it("default to: keys never expire, 7 days' warning, 30 s backoff base, 10 s timeout", () => {
    expect(parseConfig(MINIMAL)).toMatchObject({
      keyDefaultTtlDays: undefined,
      keyExpiringWarningDays: 7,
      webhookRetryBaseSeconds: 30,
      webhookTimeoutMs: 10_000,
    });
    expect(parseConfig({ ...MINIMAL, KEY_DEFAULT_TTL_DAYS: " " }).keyDefaultTtlDays).toBeUndefined();
  });

  it("read set values, as text or as numbers", () => {
    expect(
      parseConfig({ ...MINIMAL, KEY_DEFAULT_TTL_DAYS: "90", KEY_EXPIRING_WARNING_DAYS: 14, WEBHOOK_RETRY_BASE_SECONDS: "0", WEBHOOK_TIMEOUT_MS: "250" }),
    ).toMatchObject({ keyDefaultTtlDays: 90, keyExpiringWarningDays: 14, webhookRetryBaseSeconds: 0, webhookTimeoutMs: 250 });
    expect(parseConfig({ ...MINIMAL, KEY_DEFAULT_TTL_DAYS: 30 }).keyDefaultTtlDays).toBe(30);
  });

  it.each([
    ["KEY_DEFAULT_TTL_DAYS", "0"],
    ["KEY_DEFAULT_TTL_DAYS", "thirty"],
    ["KEY_DEFAULT_TTL_DAYS", "1.5"],
    ["KEY_EXPIRING_WARNING_DAYS", "0"],
    ["KEY_EXPIRING_WARNING_DAYS", "366"],
    ["WEBHOOK_RETRY_BASE_SECONDS", "-1"],
    ["WEBHOOK_RETRY_BASE_SECONDS", "3601"],
    ["WEBHOOK_TIMEOUT_MS", "99"],
    ["WEBHOOK_TIMEOUT_MS", "60001"],
  ])("refuse %s=%j with CONFIG_INVALID naming it", (name, value) => {
    let error: unknown;
    try {
      parseConfig({ ...MINIMAL, [name]: value });
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe("CONFIG_INVALID");
    expect((error as GatewayError).message).toContain(name);
  });
});
