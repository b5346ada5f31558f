/**
 * Origin request signatures: HTTP Message Signatures (RFC 9421, hmac-sha256)
 * over the target, the identity headers and a Content-Digest (RFC 9530) of
 * the body. An origin can use them to refuse a call that did not come through
 * keygate, or that was changed or replayed on the way.
 *
 * What keygate sends on every forwarded call (each header is one line):
 *
 *   Content-Digest: sha-256=:<base64 SHA-256 of the body>:        (when there is a body)
 *   Signature-Input: keygate=("@method" "@authority" "@path" "@query" "content-digest"
 *     "x-auth-method" "x-auth-key-id" "x-auth-env" "x-auth-scopes" "x-auth-product"
 *     "x-request-id" "x-forwarded-for");created=1772366400;nonce="<request id>";
 *     keyid="keygate";alg="hmac-sha256"
 *   Signature: keygate=:<base64 HMAC-SHA-256(ORIGIN_SIGNING_SECRET, signature base)>:
 *
 * Only the IDENTITY_HEADERS that are present are covered. The signature base
 * follows RFC 9421 §2.5: one `"<component>": <value>` line per covered
 * component, then `"@signature-params": ` followed by the Signature-Input
 * value after `keygate=`. The secret is used as its UTF-8 bytes.
 *
 * For origins: this file uses only Web Crypto and imports nothing, so an
 * origin on Workers, Deno, Bun or Node 20+ can copy it as is:
 *
 *   const result = await verifyOriginSignature(request, env.ORIGIN_SIGNING_SECRET);
 *   if (!result.ok) return new Response("Forbidden", { status: 403 }); // log result.reason
 *   const method = result.identity["x-auth-method"]; // only signed values are returned
 *
 * - Verify the request as it reached you. @authority is the host you were
 *   called on, and @path and @query are the target as sent. Behind a proxy
 *   that rewrites them, rebuild the Request from the original values first.
 * - The body is read from a clone to check Content-Digest, so it is buffered
 *   in memory once. Keep a body size limit in front of the verifier.
 * - Each nonce is accepted once within ±maxAgeSeconds (default 60) of
 *   `created`, so clocks must agree to within that. The default replay store
 *   is memory in this one process. An origin that runs several instances must
 *   pass a shared `replayStore` (Redis `SET <nonce> 1 NX PXAT <expiresAt>`, a
 *   Durable Object, …). Otherwise a captured call can be replayed once on
 *   each instance.
 * - The verifier refuses any request that carries an x-auth-* header
 *   (also spelled with `_` or `.`) or an X-Forwarded-For that is not covered.
 *   It also refuses a body that no covered Content-Digest binds.
 */

/** Identity headers keygate sets, covered in this order whenever present. */
export const IDENTITY_HEADERS = [
  "x-auth-method",
  "x-auth-key-id",
  "x-auth-subject",
  "x-auth-issuer",
  "x-auth-env",
  "x-auth-scopes",
  "x-auth-product",
  "x-request-id",
  "x-forwarded-for",
] as const;

/** The Signature / Signature-Input dictionary member keygate writes and reads. */
export const SIGNATURE_LABEL = "keygate";
export const DEFAULT_KEY_ID = "keygate";
const ALG = "hmac-sha256";
const DERIVED_COMPONENTS = ["@method", "@authority", "@path", "@query"];
/** The derived components as a structured-field inner list's items, quoted once. */
const QUOTED_DERIVED = DERIVED_COMPONENTS.map((name) => `"${name}"`).join(" ");
/** Header components covered whenever present, in this order: the body digest, then identity. */
const SIGNED_HEADERS = ["content-digest", ...IDENTITY_HEADERS];
/** What an origin needs to trust a call: where it goes and who made it. */
const REQUIRED_COMPONENTS = [...DERIVED_COMPONENTS, "x-auth-method", "x-auth-product", "x-request-id"];
/** The only signature parameters accepted, with their structured-field type. */
const PARAMETER_TYPES: Record<string, "number" | "string"> = { created: "number", expires: "number", nonce: "string", keyid: "string", alg: "string" };
/** A lowercase field name (RFC 9110 token): the form RFC 9421 §2.1 covers. */
const FIELD_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/** CryptoKey, named so that the file also type-checks with Node's types (no DOM lib). */
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

const encoder = new TextEncoder();
const keys = new Map<string, Promise<HmacKey>>();

/** Imported once per isolate and secret: importKey costs more than the HMAC itself. */
function hmacKey(secret: string): Promise<HmacKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    keys.set(secret, key);
  }
  return key;
}

/** The parts of a request that components are derived from. */
export interface SignableRequest {
  method: string;
  url: URL;
  headers: Headers;
}

/** RFC 9530 Content-Digest value: `sha-256=:<base64>:`. */
export async function contentDigest(body: ArrayBuffer | Uint8Array): Promise<string> {
  return `sha-256=:${base64(await crypto.subtle.digest("SHA-256", body as ArrayBuffer))}:`;
}

/**
 * Sets Signature-Input and Signature (label "keygate") on request.headers.
 * Set Content-Digest first whenever there is a body: it is covered only if
 * present. `created` is epoch seconds; `nonce` is the request id.
 */
export async function signOriginRequest(
  secret: string,
  request: SignableRequest & { created: number; nonce: string },
  keyId: string = DEFAULT_KEY_ID,
): Promise<void> {
  const { headers, created, nonce } = request;
  if (!Number.isSafeInteger(created) || created < 0) throw new TypeError(`created must be whole epoch seconds, got ${created}`);
  const components = [...DERIVED_COMPONENTS];
  let covered = QUOTED_DERIVED;
  for (const name of SIGNED_HEADERS) {
    if (!headers.has(name)) continue;
    components.push(name);
    covered += ` "${name}"`; // constant lowercase names: nothing to escape
  }
  const params = `(${covered});created=${created};nonce=${sfString(nonce)};keyid=${sfString(keyId)};alg="${ALG}"`;
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(signatureBase(request, components, params)));
  // set, not append: a Signature the client sent must not travel next to ours
  headers.set("Signature-Input", `${SIGNATURE_LABEL}=${params}`);
  headers.set("Signature", `${SIGNATURE_LABEL}=:${base64(mac)}:`);
}

/**
 * RFC 9421 §2.5 signature base. `signatureParams` is the serialized inner
 * list (the Signature-Input member value). Components are lowercase field
 * names or @method, @authority, @path, @query.
 */
export function signatureBase(message: SignableRequest, components: readonly string[], signatureParams: string): string {
  let base = "";
  for (const name of components) base += `"${name}": ${componentValue(message, name)}\n`;
  return `${base}"@signature-params": ${signatureParams}`;
}

function componentValue({ method, url, headers }: SignableRequest, name: string): string {
  switch (name) {
    case "@method":
      return method;
    case "@authority":
      return url.host; // the WHATWG URL lowercases it and drops a default port (§2.2.3)
    case "@path":
      return url.pathname || "/";
    case "@query":
      return url.search || "?"; // an empty query is "?" (§2.2.7)
  }
  const value = name.startsWith("@") ? null : headers.get(name);
  if (value === null) throw new TypeError(`no value for component ${name}`);
  return value.trim(); // Headers already joined repeated fields with ", " (§2.1)
}

// ---- Verifier (for origins) ----

/** Remembers nonces: false when the nonce was already seen and has not expired. Must be atomic across instances. */
export interface ReplayStore {
  /** expiresAt is epoch milliseconds: after it, `created` alone refuses the signature. */
  checkAndRemember(nonce: string, expiresAt: number): boolean | Promise<boolean>;
}

export interface VerifyOptions {
  /** Allowed distance between `created` and now, either way. Default 60. */
  maxAgeSeconds?: number;
  /** Epoch milliseconds. Default Date.now(). */
  now?: number;
  /** Default: one memory store per process (see the file comment). */
  replayStore?: ReplayStore;
  /** Refuse a body that no covered Content-Digest binds. Default true. */
  requireBodyDigest?: boolean;
  /** The keyid the signature must name. Default "keygate". */
  keyId?: string;
}

export type VerifyResult = { ok: true; identity: Record<string, string> } | { ok: false; reason: string };

/**
 * Nonces in a Map bounded to maxEntries. Each call drops expired entries from
 * the front, since insertion order is roughly expiry order. When the Map is
 * full, the oldest entry is dropped even if it has not expired. Size it to at
 * least requests per second × 2 × maxAgeSeconds. `clock` is epoch ms.
 */
export function memoryReplayStore(maxEntries = 100_000, clock: () => number = Date.now): ReplayStore {
  const seen = new Map<string, number>();
  return {
    checkAndRemember(nonce, expiresAt) {
      const now = clock();
      const known = seen.get(nonce);
      if (known !== undefined && known > now) return false;
      seen.delete(nonce);
      for (const [oldest, expiry] of seen) {
        if (expiry > now && seen.size < maxEntries) break;
        seen.delete(oldest);
      }
      seen.set(nonce, expiresAt);
      return true;
    },
  };
}

const defaultReplayStore = memoryReplayStore();

class Refusal extends Error {}

function refuse(reason: string): never {
  throw new Refusal(reason);
}

/**
 * Checks keygate's signature on a request as the origin received it. Returns
 * the covered identity headers (lowercase names) or the reason for refusal.
 */
export async function verifyOriginSignature(request: Request, secret: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  try {
    return { ok: true, identity: await verify(request, secret, options) };
  } catch (error) {
    if (error instanceof Refusal) return { ok: false, reason: error.message };
    throw error;
  }
}

async function verify(request: Request, secret: string, options: VerifyOptions): Promise<Record<string, string>> {
  const { maxAgeSeconds = 60, now = Date.now(), replayStore = defaultReplayStore, requireBodyDigest = true, keyId = DEFAULT_KEY_ID } = options;
  const { headers } = request;

  // Cheapest first: parsing and parameters, coverage, one HMAC, then the body, then the
  // replay store (last, so that only a request that passed everything uses up its nonce).
  const input = dictionary(headers, "signature-input").get(SIGNATURE_LABEL);
  const signature = dictionary(headers, "signature").get(SIGNATURE_LABEL);
  if (!input || !signature) refuse("no keygate signature");
  if (!("items" in input)) refuse("malformed signature-input: not an inner list");
  if ("items" in signature || !(signature.value instanceof Uint8Array) || signature.params.size > 0) refuse("malformed signature: not a byte sequence");

  const { created, nonce } = checkParameters(input.params, keyId, now / 1000, maxAgeSeconds);
  const components = checkComponents(input.items);
  checkCoverage(components, headers);

  const base = signatureBase({ method: request.method, url: new URL(request.url), headers }, components, serializeInnerList(input));
  if (!(await crypto.subtle.verify("HMAC", await hmacKey(secret), signature.value, encoder.encode(base)))) refuse("signature does not verify");

  if (components.includes("content-digest")) await checkDigest(request);
  else if (requireBodyDigest && (await hasBody(request))) refuse("body is not covered by content-digest");

  if (!(await replayStore.checkAndRemember(nonce, (created + maxAgeSeconds) * 1000))) refuse("replayed nonce");

  const identity: Record<string, string> = {};
  for (const name of IDENTITY_HEADERS) if (components.includes(name)) identity[name] = headers.get(name)!.trim();
  return identity;
}

function checkParameters(params: Map<string, BareItem>, keyId: string, nowSeconds: number, maxAgeSeconds: number) {
  for (const [name, value] of params) {
    const type = PARAMETER_TYPES[name];
    if (!type) refuse(`unexpected signature parameter ${name}`);
    if (typeof value !== type) refuse(`signature parameter ${name} is not ${type === "number" ? "an integer" : "a string"}`);
  }
  if (params.get("alg") !== ALG) refuse(`alg is not ${ALG}`);
  if (params.get("keyid") !== keyId) refuse(`keyid is not ${keyId}`);
  const created = params.get("created");
  if (typeof created !== "number") refuse("created is missing");
  if (nowSeconds - created > maxAgeSeconds) refuse("created is too old");
  if (created - nowSeconds > maxAgeSeconds) refuse("created is in the future");
  const expires = params.get("expires");
  if (typeof expires === "number" && nowSeconds > expires) refuse("signature expired");
  const nonce = params.get("nonce");
  if (typeof nonce !== "string" || nonce === "") refuse("nonce is missing");
  return { created, nonce };
}

/** Plain component names only: parameters (;sf, ;req, ;bs…) would change what a name means. */
function checkComponents(items: Item[]): string[] {
  const names: string[] = [];
  for (const { value, params } of items) {
    if (typeof value !== "string") refuse("malformed signature-input: a component is not a string");
    if (params.size > 0) refuse(`unsupported component parameter on ${value}`);
    if (!DERIVED_COMPONENTS.includes(value) && !FIELD_NAME.test(value)) refuse(`unsupported component ${value}`);
    if (names.includes(value)) refuse(`duplicate component ${value}`);
    names.push(value);
  }
  return names;
}

function checkCoverage(components: string[], headers: Headers): void {
  for (const name of REQUIRED_COMPONENTS) if (!components.includes(name)) refuse(`${name} is not covered`);
  for (const name of components) if (!name.startsWith("@") && !headers.has(name)) refuse(`covered header ${name} is missing`);
  // An unsigned identity header (X-Auth-Subject added to an API-key call, or an X_Auth_Subject that
  // a framework folds into it) would be trusted by the origin: refuse it.
  for (const [name] of headers) {
    const spelled = name.toLowerCase().replace(/[_.]/g, "-");
    if ((spelled.startsWith("x-auth-") || spelled === "x-forwarded-for") && !components.includes(name)) refuse(`header ${name} is not covered`);
  }
}

async function checkDigest(request: Request): Promise<void> {
  const digest = dictionary(request.headers, "content-digest").get("sha-256");
  if (!digest || "items" in digest || !(digest.value instanceof Uint8Array)) refuse("content-digest has no sha-256 byte sequence");
  const actual = new Uint8Array(await crypto.subtle.digest("SHA-256", await request.clone().arrayBuffer()));
  if (!equalBytes(digest.value, actual)) refuse("content-digest does not match the body");
}

/** A declared length, a chunked transfer, or bytes actually received. */
async function hasBody(request: Request): Promise<boolean> {
  const length = request.headers.get("content-length");
  if (request.headers.has("transfer-encoding") || (length !== null && Number(length) !== 0)) return true;
  return request.body !== null && (await request.clone().arrayBuffer()).byteLength > 0;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function base64(bytes: ArrayBuffer | Uint8Array): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))); // 32 bytes: one call, no per-byte strings
}

// ---- RFC 8941 structured fields: the subset signatures use, strictly ----
// Dictionaries of items and inner lists. Bare items are integers, strings,
// tokens, byte sequences and booleans. Decimals, duplicate keys and anything
// else unexpected are refused.

class SfToken {
  constructor(readonly name: string) {}
}
type BareItem = number | string | boolean | Uint8Array<ArrayBuffer> | SfToken;
type Parameters = Map<string, BareItem>;
interface Item {
  value: BareItem;
  params: Parameters;
}
interface InnerList {
  items: Item[];
  params: Parameters;
}
type Member = Item | InnerList;

class MalformedField extends Error {}

function dictionary(headers: Headers, name: string): Map<string, Member> {
  try {
    return new FieldParser(headers.get(name) ?? "").dictionary();
  } catch (error) {
    if (error instanceof MalformedField) refuse(`malformed ${name}: ${error.message}`);
    throw error;
  }
}

const KEY = /[a-z*][a-z0-9_.*-]*/y;
const INTEGER = /-?[0-9]{1,15}(?![0-9.])/y;
const STRING = /"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"/y;
const TOKEN = /[A-Za-z*][!#$%&'*+.^_`|~0-9A-Za-z:/-]*/y;
const BYTES = /:([A-Za-z0-9+/]*={0,2}):/y;
const BOOLEAN = /\?([01])/y;

class FieldParser {
  private pos = 0;

  constructor(private readonly input: string) {}

  /** §4.2.2: the whole input, or MalformedField. */
  dictionary(): Map<string, Member> {
    const members = new Map<string, Member>();
    this.skip(/ */y);
    while (this.pos < this.input.length) {
      const key = this.match(KEY, "key")[0];
      if (members.has(key)) throw new MalformedField(`duplicate key ${key}`);
      if (this.input[this.pos] === "=") {
        this.pos++;
        members.set(key, this.input[this.pos] === "(" ? this.innerList() : this.item());
      } else {
        members.set(key, { value: true, params: this.parameters() });
      }
      this.skip(/[ \t]*/y);
      if (this.pos === this.input.length) break;
      this.match(/,[ \t]*/y, "comma");
      if (this.pos === this.input.length) throw new MalformedField("trailing comma");
    }
    return members;
  }

  private innerList(): InnerList {
    this.pos++; // "("
    const items: Item[] = [];
    for (;;) {
      this.skip(/ */y);
      if (this.input[this.pos] === ")") {
        this.pos++;
        return { items, params: this.parameters() };
      }
      items.push(this.item());
      if (this.input[this.pos] !== " " && this.input[this.pos] !== ")") throw new MalformedField(`unexpected character at ${this.pos}`);
    }
  }

  private item(): Item {
    return { value: this.bareItem(), params: this.parameters() };
  }

  private parameters(): Parameters {
    const params: Parameters = new Map();
    while (this.input[this.pos] === ";") {
      this.pos++;
      this.skip(/ */y);
      const key = this.match(KEY, "parameter key")[0];
      if (params.has(key)) throw new MalformedField(`duplicate parameter ${key}`);
      let value: BareItem = true;
      if (this.input[this.pos] === "=") {
        this.pos++;
        value = this.bareItem();
      }
      params.set(key, value);
    }
    return params;
  }

  private bareItem(): BareItem {
    const c = this.input[this.pos] ?? "";
    if (c === "-" || (c >= "0" && c <= "9")) return Number(this.match(INTEGER, "integer")[0]);
    if (c === '"') return this.match(STRING, "string")[1]!.replace(/\\(["\\])/g, "$1");
    if (c === ":") {
      const encoded = this.match(BYTES, "byte sequence")[1]!;
      if (encoded.length % 4 !== 0) throw new MalformedField("byte sequence is not padded base64");
      return Uint8Array.from(atob(encoded), (char) => char.charCodeAt(0));
    }
    if (c === "?") return this.match(BOOLEAN, "boolean")[1] === "1";
    if (/[A-Za-z*]/.test(c)) return new SfToken(this.match(TOKEN, "token")[0]);
    throw new MalformedField(`unexpected character at ${this.pos}`);
  }

  private match(pattern: RegExp, what: string): RegExpExecArray {
    pattern.lastIndex = this.pos;
    const found = pattern.exec(this.input);
    if (!found) throw new MalformedField(`expected a ${what} at ${this.pos}`);
    this.pos = pattern.lastIndex;
    return found;
  }

  private skip(pattern: RegExp): void {
    pattern.lastIndex = this.pos;
    pattern.exec(this.input);
    this.pos = pattern.lastIndex;
  }
}

/** §4.1.1.1, for re-creating @signature-params from the parsed Signature-Input. */
function serializeInnerList({ items, params }: InnerList): string {
  return `(${items.map((item) => serializeBare(item.value) + serializeParameters(item.params)).join(" ")})${serializeParameters(params)}`;
}

function serializeParameters(params: Parameters): string {
  let out = "";
  for (const [key, value] of params) out += value === true ? `;${key}` : `;${key}=${serializeBare(value)}`;
  return out;
}

function serializeBare(value: BareItem): string {
  if (typeof value === "string") return sfString(value);
  if (typeof value === "number") return String(value);
  if (typeof value === "boolean") return value ? "?1" : "?0";
  if (value instanceof Uint8Array) return `:${base64(value)}:`;
  return value.name;
}

/** §4.1.6: printable ASCII only, with `"` and `\` escaped. */
function sfString(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) throw new TypeError(`not a structured-field string: ${JSON.stringify(value)}`);
  return `"${value.replace(/[\\"]/g, "\\$&")}"`;
}
