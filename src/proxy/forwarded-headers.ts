/**
 * @module
 * Which of a client's request headers reach the origin (SPEC section 8).
 *
 * Header names are compared in their canonical spelling (lowercase, `_` and
 * `.` as `-`), because CGI/WSGI-style origins fold `X_Auth_Scopes`,
 * `x.auth.scopes` and `X-Auth-Scopes` into one `HTTP_X_AUTH_SCOPES`. Dropped:
 * credentials; hop-by-hop headers, `Expect` and every header `Connection`
 * names (RFC 9110 §7.6.1); every header an origin could read as identity,
 * client address, the original path or the method. keygate then sets its own
 * identity headers and X-Forwarded-For.
 */

/** Hop-by-hop headers (RFC 9110 §7.6.1), never passed on in either direction. */
const HOP_BY_HOP = [
  "connection",
  "proxy-connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];
const HOP_BY_HOP_RESPONSE = new Set(HOP_BY_HOP);

/** Canonical names never forwarded. */
const DROPPED = new Set([
  // Credentials stay at the edge.
  "authorization",
  "x-api-key",
  ...HOP_BY_HOP,
  // Expect: the origin must not answer 100 Continue to keygate.
  "expect",
  // Client address and original request, which only keygate may state.
  "forwarded",
  "x-real-ip",
  "true-client-ip",
  "x-client-ip",
  "x-cluster-client-ip",
  "cf-connecting-ip",
  "cf-connecting-ipv6",
  "x-original-url",
  "x-rewrite-url",
  "x-request-id",
  // keygate's own signature and body digest (RFC 9421, RFC 9530) are computed, never passed on.
  "signature",
  "signature-input",
  "content-digest",
  // Method overrides: the method that was authorized is the method the origin serves.
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
]);
/** Canonical name prefixes never forwarded: keygate's identity headers and every X-Forwarded-* variant. */
const DROPPED_PREFIXES = ["x-auth-", "x-forwarded-"];

export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replace(/[_.]/g, "-");
}

function dropped(canonical: string, nominated: ReadonlySet<string>): boolean {
  return DROPPED.has(canonical) || nominated.has(canonical) || DROPPED_PREFIXES.some((prefix) => canonical.startsWith(prefix));
}

/** The names a Connection header nominates as hop-by-hop, canonicalised; junk tokens are simply ignored. */
function connectionNominated(headers: Headers): Set<string> {
  const value = headers.get("connection");
  if (!value) return new Set();
  return new Set(
    value
      .split(",")
      .map((token) => canonicalHeaderName(token.trim()))
      .filter(Boolean),
  );
}

/** A new Headers with only what may reach the origin; the client's headers are not changed. */
export function originRequestHeaders(client: Headers): Headers {
  const nominated = connectionNominated(client);
  const kept = new Headers();
  for (const [name, value] of client) {
    if (!dropped(canonicalHeaderName(name), nominated)) kept.append(name, value);
  }
  return kept;
}

/**
 * Removes, in place, the hop-by-hop headers of an origin's response and those
 * its Connection header names: the client's response is the origin's own,
 * passed on, so only what must not travel is taken out.
 */
export function stripHopByHopResponseHeaders(headers: Headers): void {
  const nominated = connectionNominated(headers);
  // Names first, deletions after: a Headers must not change while it is iterated.
  let doomed: string[] | undefined;
  for (const name of headers.keys()) {
    const canonical = canonicalHeaderName(name);
    if (HOP_BY_HOP_RESPONSE.has(canonical) || nominated.has(canonical)) (doomed ??= []).push(name);
  }
  if (doomed) for (const name of doomed) headers.delete(name);
}
