import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { getConfig } from "../../../src/config";
import { GatewayError } from "../../../src/errors";
import { assertNotThrottled, isAuthFailure, recordAuthFailure, throttleName } from "../../../src/limits/auth-throttle";
import { setClock } from "../../helpers/limiter";

afterEach(() => vi.useRealTimers());

describe("throttleName", () => {
  it("names an IPv4 address as itself", () => {
    expect(throttleName(" 203.0.113.7 ")).toBe("ip:203.0.113.7");
  });

  it("names an IPv4-mapped IPv6 address as its IPv4 address", () => {
    expect(throttleName("::ffff:203.0.113.7")).toBe("ip:203.0.113.7");
  });

  it("names an IPv6 address by its /64", () => {
    expect(throttleName("2001:db8:aa:bb:1:2:3:4")).toBe("ip:2001:db8:aa:bb::/64");
    expect(throttleName("2001:0db8:00aa:00bb::ffff")).toBe("ip:2001:db8:aa:bb::/64");
  });

  it("gives no name for a missing or unparsable address", () => {
    expect(throttleName(null)).toBeUndefined();
    expect(throttleName("not-an-ip")).toBeUndefined();
  });
});

describe("isAuthFailure", () => {
  it("counts 401s from credential verification", () => {
    for (const code of [
      "API_KEY_HASH_MISMATCH",
      "API_KEY_FORMAT_INVALID",
      "API_KEY_INACTIVE",
      "JWT_SIGNATURE_INVALID",
      "INVALID_CREDENTIALS",
      "AUTH_HEADER_MALFORMED",
    ] as const) {
      expect(isAuthFailure(new GatewayError(code)), code).toBe(true);
    }
  });

  it("does not count missing credentials, 403s, 503s or errors that are not ours", () => {
    for (const code of ["AUTH_MISSING", "API_KEY_SCOPE_MISSING", "IP_NOT_ALLOWED", "AUTH_BACKEND_UNAVAILABLE", "RATE_LIMIT_EXCEEDED"] as const) {
      expect(isAuthFailure(new GatewayError(code)), code).toBe(false);
    }
    expect(isAuthFailure(new Error("boom"))).toBe(false);
  });
});

describe("assertNotThrottled / recordAuthFailure (reusable by the login endpoint)", () => {
  it("throws AUTH_THROTTLED with Retry-After once the address reaches the limit, from memory", async () => {
    const config = { ...getConfig(env), authFailureLimitPerMinute: 2 };
    const ip = `192.0.2.${crypto.getRandomValues(new Uint8Array(1))[0]}`;
    const now = setClock("2031-08-09T10:11:12.300Z");
    await recordAuthFailure(env, config, ip);
    expect(() => assertNotThrottled(env, config, ip)).not.toThrow();
    await recordAuthFailure(env, config, ip);

    let thrown: unknown;
    try {
      assertNotThrottled(env, config, ip, now);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GatewayError);
    expect((thrown as GatewayError).code).toBe("AUTH_THROTTLED");
    expect((thrown as GatewayError).headers["Retry-After"]).toBe("48");
    expect(() => assertNotThrottled(env, config, ip, Date.parse("2031-08-09T10:12:00.000Z")), "at the next minute").not.toThrow();
  });

  it("ignores calls without a client address", async () => {
    const config = { ...getConfig(env), authFailureLimitPerMinute: 1 };
    await recordAuthFailure(env, config, null);
    expect(() => assertNotThrottled(env, config, null)).not.toThrow();
  });
});
