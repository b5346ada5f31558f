import { GatewayError } from "../errors";
import { detectKeyFormat, type KeyFormatName } from "./key-format";

/**
 * Which credential a request carries (SPEC section 1). Pure: it reads header
 * values and decides, touching no storage.
 */
export type Credential = { kind: "api_key"; key: string; format: KeyFormatName | undefined } | { kind: "jwt"; token: string };

// Optional whitespace around a header value is HTTP's (RFC 9110: SP / HTAB).
const OWS = /^[ \t]+|[ \t]+$/g;
// After trimming, a credential is one token: no whitespace, commas (a
// duplicated header is joined with ", "), or control characters.
const NOT_A_SINGLE_TOKEN = /[\s,\x00-\x1f\x7f]/;
const BEARER = /^Bearer +(.*)$/i;

function malformed(message: string): GatewayError {
  return new GatewayError("AUTH_HEADER_MALFORMED", { message });
}

export function extractCredential(apiKeyHeader: string | null, authorizationHeader: string | null, formats: readonly KeyFormatName[]): Credential {
  // X-API-Key, when present, is used exclusively: no fallback to Authorization.
  if (apiKeyHeader !== null) {
    const key = apiKeyHeader.replace(OWS, "");
    if (key === "") throw malformed("X-API-Key is empty");
    if (NOT_A_SINGLE_TOKEN.test(key)) throw malformed("X-API-Key must hold exactly one key");
    return { kind: "api_key", key, format: detectKeyFormat(key, formats) };
  }

  if (authorizationHeader === null) throw new GatewayError("AUTH_MISSING");
  const value = authorizationHeader.replace(OWS, "");
  const bearer = BEARER.exec(value);
  if (!bearer) throw malformed("Authorization must use the Bearer scheme");
  const token = bearer[1]!;
  if (token === "") throw malformed("The Bearer token is empty");
  if (NOT_A_SINGLE_TOKEN.test(token)) throw malformed("Authorization must hold exactly one Bearer token");

  const format = detectKeyFormat(token, formats);
  return format ? { kind: "api_key", key: token, format } : { kind: "jwt", token };
}
