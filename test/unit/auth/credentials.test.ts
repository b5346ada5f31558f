import { describe, expect, it } from "vitest";
import { extractCredential } from "../../../src/auth/credentials";
import { GatewayError } from "../../../src/errors";

const FORMATS = ["ilal", "ila"] as const;
const KEY = `ilal_live_${"ab".repeat(24)}`;
const JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln";

function codeOf(apiKey: string | null, authorization: string | null): string {
  try {
    extractCredential(apiKey, authorization, FORMATS);
  } catch (error) {
    if (error instanceof GatewayError) return error.code;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("extractCredential: X-API-Key", () => {
  it("takes the key from X-API-Key with its detected format", () => {
    expect(extractCredential(KEY, null, FORMATS)).toEqual({ kind: "api_key", key: KEY, format: "ilal" });
  });

  it("uses X-API-Key exclusively even when a Bearer token is also sent", () => {
    expect(extractCredential(KEY, `Bearer ${JWT}`, FORMATS)).toEqual({ kind: "api_key", key: KEY, format: "ilal" });
    expect(codeOf("", `Bearer ${JWT}`)).toBe("AUTH_HEADER_MALFORMED");
  });

  it("ignores spaces and tabs around the value", () => {
    expect(extractCredential(` \t${KEY}\t `, null, FORMATS)).toMatchObject({ key: KEY });
  });

  it("passes an unknown prefix on with no format, for the verifier to refuse", () => {
    expect(extractCredential("sk_live_abc", null, FORMATS)).toEqual({ kind: "api_key", key: "sk_live_abc", format: undefined });
  });

  it.each([
    ["empty", ""],
    ["whitespace only", " \t "],
    ["two keys joined by a duplicated header", `${KEY}, ${KEY}`],
    ["a tab inside", `${KEY.slice(0, 20)}\t${KEY.slice(20)}`],
    ["a space inside", `${KEY.slice(0, 20)} ${KEY.slice(20)}`],
    ["a control character inside", `${KEY.slice(0, 20)}\x01${KEY.slice(20)}`],
    ["DEL inside", `${KEY}\x7f`],
  ])("refuses an X-API-Key that is %s as AUTH_HEADER_MALFORMED", (_label, value) => {
    expect(codeOf(value, null)).toBe("AUTH_HEADER_MALFORMED");
  });
});

describe("extractCredential: Authorization", () => {
  it("is AUTH_MISSING when neither header is present", () => {
    expect(codeOf(null, null)).toBe("AUTH_MISSING");
  });

  it("reads a Bearer token that starts with a key prefix as an API key", () => {
    expect(extractCredential(null, `Bearer ${KEY}`, FORMATS)).toEqual({ kind: "api_key", key: KEY, format: "ilal" });
    const ila = `ila_${"x".repeat(72)}`;
    expect(extractCredential(null, `Bearer ${ila}`, FORMATS)).toEqual({ kind: "api_key", key: ila, format: "ila" });
  });

  it("reads any other Bearer token as a JWT", () => {
    expect(extractCredential(null, `Bearer ${JWT}`, FORMATS)).toEqual({ kind: "jwt", token: JWT });
  });

  it("reads a token with a disabled format's prefix as a JWT", () => {
    expect(extractCredential(null, `Bearer ${KEY}`, ["ila"])).toEqual({ kind: "jwt", token: KEY });
  });

  it("accepts the scheme name in any case and surrounding whitespace", () => {
    expect(extractCredential(null, `  bearer ${JWT}\t`, FORMATS)).toEqual({ kind: "jwt", token: JWT });
    expect(extractCredential(null, `BEARER ${JWT}`, FORMATS)).toEqual({ kind: "jwt", token: JWT });
  });

  it.each([
    ["Basic scheme", "Basic dXNlcjpwYXNz"],
    ["no scheme", KEY],
    ["Bearer with no token", "Bearer"],
    ["Bearer with only spaces", "Bearer    "],
    ["two Bearer tokens", `Bearer ${JWT} ${JWT}`],
    ["a duplicated Authorization header", `Bearer ${JWT}, Bearer ${JWT}`],
    ["a tab between scheme and token", `Bearer\t${JWT}`],
    ["a control character in the token", `Bearer ${JWT}\x00x`],
    ["an empty value", ""],
  ])("refuses %s as AUTH_HEADER_MALFORMED", (_label, value) => {
    expect(codeOf(null, value)).toBe("AUTH_HEADER_MALFORMED");
  });
});
