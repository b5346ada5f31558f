/**
 * The one canonical spelling of a request path. Pure.
 *
 * keygate routes, judges scope rules on, and forwards this spelling, so the
 * origin serves exactly the path that was checked. A path whose meaning
 * differs between origins is refused rather than guessed at.
 *
 * The input is `new URL(request.url).pathname`: WHATWG URL parsing has
 * already turned `\` into `/`, resolved literal `.` and `..` segments and
 * percent-encoded non-ASCII characters and controls. Rules, in order:
 *
 * 1. A path longer than MAX_PATH_BYTES is refused.
 * 2. Refused, as not modelled or ambiguous: a literal `;` (matrix
 *    parameters, Tomcat's `/.;/`); any other literal character outside
 *    RFC 3986's pchar set (ALPHA DIGIT `-._~!$&'()*+,=:@`, plus `/` and `%`);
 *    a `%` not followed by two hex digits; the escapes `%3B` (`;`), `%5C`
 *    (`\`), `%2F` (`/`), `%3F` (`?`), `%23` (`#`), `%00`–`%1F` and `%7F`
 *    (controls); percent-encoded bytes that are not valid UTF-8 (overlong
 *    forms such as `%C0%AE`, lone continuation bytes, surrogates, truncated
 *    sequences), judged per run of consecutive escapes; and `%25` followed
 *    by two hex digits once decoded (double encoding, `%2561`).
 * 3. Escapes of unreserved characters (ALPHA DIGIT `-._~`) are decoded
 *    (`%61` is `a`, `%2E` is `.`); every other escape keeps its byte and is
 *    written with upper-case hex (`%c3%a9` is `%C3%A9`).
 * 4. Dot segments (`.`, `..`, which can only come from `%2E`) are resolved
 *    and empty segments (`//`) collapse; a `..` above the root is refused.
 * 5. One trailing slash is kept as written (`/swap/` stays `/swap/`, and a
 *    final dot segment leaves one, as in RFC 3986); the result always starts
 *    with `/`.
 *
 * The result is idempotent: canonicalizing a canonical path returns it as is.
 */

/**
 * Longest path accepted, in bytes (paths are ASCII by now). REST paths are far
 * shorter; 4 KB is IIS's default `maxUrl`, half the request line nginx and
 * Apache accept by default and a quarter of Cloudflare's URL limit, so no
 * ordinary origin serves a longer one, and it bounds the rule-matching work
 * a single request can cause (review finding F6).
 */
export const MAX_PATH_BYTES = 4096;

export type CanonicalPathResult = { ok: true; path: string } | { ok: false; reason: string };

const SLASH = 0x2f;
const PERCENT = 0x25;
const DOT = 0x2e;

/** ASCII characters a segment may hold literally: RFC 3986 pchar without ";" (and without "%", handled apart). */
const LITERAL = asciiSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@");
/** RFC 3986 unreserved: their escapes mean the same as the character, so they are decoded. */
const UNRESERVED = asciiSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~");

/** Why an escaped byte is refused, by byte; undefined for bytes kept or decoded. */
const REFUSED_ESCAPES: ReadonlyMap<number, string> = new Map([
  [0x2f, "an encoded slash (%2F)"],
  [0x5c, "an encoded backslash (%5C)"],
  [0x3b, "an encoded semicolon (%3B)"],
  [0x3f, "an encoded question mark (%3F)"],
  [0x23, "an encoded number sign (%23)"],
  [0x7f, "an encoded control character"],
]);

const HEX_DIGITS = "0123456789ABCDEF";
// Only used to validate; ignoreBOM is required by the workers types and changes nothing here.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// One segment's run of escaped bytes; reused, the function is synchronous.
const runBytes = new Uint8Array(Math.ceil(MAX_PATH_BYTES / 3));

function asciiSet(characters: string): Uint8Array {
  const set = new Uint8Array(128);
  for (let i = 0; i < characters.length; i++) set[characters.charCodeAt(i)] = 1;
  return set;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

function isLiteral(code: number): boolean {
  return code < 128 && LITERAL[code] === 1;
}

function refused(reason: string): CanonicalPathResult {
  return { ok: false, reason };
}

export function canonicalPath(pathname: string): CanonicalPathResult {
  if (pathname.length > MAX_PATH_BYTES) return refused(`the path is longer than ${MAX_PATH_BYTES} bytes`);
  return isCanonicalAsWritten(pathname) ? { ok: true, path: pathname } : canonicalizeSegments(pathname);
}

/** The common case, in one scan: starts with "/", only literal pchars, no "%", no "//", no "/." (so no dot segment). */
function isCanonicalAsWritten(pathname: string): boolean {
  if (pathname.charCodeAt(0) !== SLASH) return false;
  for (let i = 1; i < pathname.length; i++) {
    const code = pathname.charCodeAt(i);
    if (code === SLASH || code === DOT) {
      if (pathname.charCodeAt(i - 1) === SLASH) return false;
    } else if (!isLiteral(code)) {
      return false;
    }
  }
  return true;
}

function canonicalizeSegments(pathname: string): CanonicalPathResult {
  const segments: string[] = [];
  let trailingSlash = false;
  let start = pathname.charCodeAt(0) === SLASH ? 1 : 0;
  for (;;) {
    const slash = pathname.indexOf("/", start);
    const end = slash === -1 ? pathname.length : slash;
    const segment = canonicalSegment(pathname, start, end);
    if (typeof segment !== "string") return segment;
    if (segment === "" || segment === ".") {
      trailingSlash = true;
    } else if (segment === "..") {
      if (segments.length === 0) return refused("a '..' segment climbs above the root");
      segments.pop();
      trailingSlash = true;
    } else {
      segments.push(segment);
      trailingSlash = false;
    }
    if (slash === -1) break;
    start = slash + 1;
  }
  if (segments.length === 0) return { ok: true, path: "/" };
  return { ok: true, path: `/${segments.join("/")}${trailingSlash ? "/" : ""}` };
}

/** pathname[start, end) in canonical form (escapes decoded or upper-cased), or why it is refused. */
function canonicalSegment(pathname: string, start: number, end: number): string | CanonicalPathResult {
  let out = "";
  let copiedFrom = start;
  let escaped = false;
  let i = start;
  while (i < end) {
    const code = pathname.charCodeAt(i);
    if (code !== PERCENT) {
      if (!isLiteral(code)) {
        return refused(code === 0x3b ? "a ';' (matrix parameters are not modelled)" : `the character ${JSON.stringify(pathname[i])} is not allowed in a path`);
      }
      i++;
      continue;
    }
    // A run of consecutive escapes: validated as UTF-8 together, then written back.
    out += pathname.slice(copiedFrom, i);
    escaped = true;
    let count = 0;
    let nonAscii = false;
    while (i < end && pathname.charCodeAt(i) === PERCENT) {
      const high = i + 2 < end ? hexValue(pathname.charCodeAt(i + 1)) : -1;
      const low = i + 2 < end ? hexValue(pathname.charCodeAt(i + 2)) : -1;
      if (high < 0 || low < 0) return refused("a '%' that does not start a two-digit escape");
      const byte = high * 16 + low;
      if (byte < 0x20) return refused("an encoded control character");
      const reason = REFUSED_ESCAPES.get(byte);
      if (reason) return refused(reason);
      runBytes[count++] = byte;
      if (byte >= 0x80) nonAscii = true;
      i += 3;
    }
    if (nonAscii) {
      try {
        utf8.decode(runBytes.subarray(0, count));
      } catch {
        return refused("percent-encoded bytes that are not valid UTF-8");
      }
    }
    for (let k = 0; k < count; k++) {
      const byte = runBytes[k]!;
      out += UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : `%${HEX_DIGITS[byte >> 4]}${HEX_DIGITS[byte & 15]}`;
    }
    copiedFrom = i;
  }
  if (!escaped) return pathname.slice(start, end);
  out += pathname.slice(copiedFrom, end);
  return isDoubleEncoded(out) ? refused("a double-encoded escape (%25 followed by two hex digits)") : out;
}

/** "%25" followed by two hex digits in the canonical segment: an origin that decodes twice would read another character. */
function isDoubleEncoded(segment: string): boolean {
  for (let at = segment.indexOf("%25"); at !== -1; at = segment.indexOf("%25", at + 3)) {
    if (hexValue(segment.charCodeAt(at + 3)) >= 0 && hexValue(segment.charCodeAt(at + 4)) >= 0) return true;
  }
  return false;
}
