import type { Principal } from "../auth/principal";
import { principalScopes } from "../auth/principal";
import type { Product } from "../db/products";
import { GatewayError } from "../errors";
import { clientResponseHeaders, originRequestHeaders } from "./forwarded-headers";
import { contentDigest, signOriginRequest } from "./origin-signature";
import { relativePath } from "./route-match";

/** Bodies up to this size are rewritten to carry authMethod. */
export const INJECT_MAX_BYTES = 1_048_576;

export interface ForwardOptions {
  product: Product;
  principal: Principal;
  requestId: string;
  /** The canonical path that was authorized (SPEC section 3): exactly what the origin receives. */
  path: string;
  /** The query, "?…" or "", passed on as sent. */
  search: string;
  clientIp: string | null;
  signingSecret: string;
  timeoutMs: number;
  /** The body, already read when it had to be measured (no Content-Length). */
  body: ReadableStream | ArrayBuffer | null;
}

export function originUrl(product: Product, principal: Principal, canonicalPath: string, search: string): URL {
  const useTest = principal.method === "api_key" && principal.key.env === "test" && product.testOriginUrl;
  const path = product.stripPrefix ? relativePath(product, canonicalPath) : canonicalPath;
  // Parsed once per request (hot path): the target starts as the origin URL itself.
  const target = new URL(useTest ? product.testOriginUrl! : product.originUrl);
  target.pathname = target.pathname.replace(/\/+$/, "") + path;
  target.search = search;
  return target;
}

function identityHeaders(principal: Principal, product: Product, requestId: string): Record<string, string> {
  const base = {
    "X-Auth-Method": principal.method,
    "X-Auth-Scopes": principalScopes(principal).join(" "),
    "X-Auth-Product": product.slug,
    "X-Request-Id": requestId,
  };
  return principal.method === "api_key"
    ? { ...base, "X-Auth-Key-Id": principal.key.id, "X-Auth-Env": principal.key.env ?? "live" }
    : { ...base, "X-Auth-Subject": principal.subject, "X-Auth-Issuer": principal.issuer, "X-Auth-Env": "live" };
}

export async function forwardToOrigin(request: Request, options: ForwardOptions): Promise<Response> {
  const { product, principal, requestId } = options;
  const target = originUrl(product, principal, options.path, options.search);
  const requestBody = request.method === "GET" || request.method === "HEAD" ? null : await bufferedBody(options.body);

  const headers = originRequestHeaders(request.headers);
  // The client's own X-Forwarded-For was dropped: the edge knows the address.
  if (options.clientIp) headers.set("X-Forwarded-For", options.clientIp);
  for (const [name, value] of Object.entries(identityHeaders(principal, product, requestId))) headers.set(name, value);
  if (requestBody) headers.set("Content-Digest", await contentDigest(requestBody));
  await signOriginRequest(options.signingSecret, {
    method: request.method,
    url: target,
    headers,
    created: Math.floor(Date.now() / 1000),
    nonce: requestId,
  });

  let response: Response;
  try {
    response = await fetchHeaders(
      target,
      {
        method: request.method,
        headers,
        body: requestBody,
        redirect: "manual",
      },
      options.timeoutMs,
    );
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    console.error(JSON.stringify({ event: "origin_failed", requestId, product: product.slug, timedOut, error: String(error) }));
    throw new GatewayError(timedOut ? "ORIGIN_TIMEOUT" : "ORIGIN_UNAVAILABLE");
  }

  if (response.status < 200) {
    // An interim answer (100 Continue, 103 Early Hints) is no answer; a Response cannot even be built from one.
    console.error(JSON.stringify({ event: "origin_failed", requestId, product: product.slug, timedOut: false, error: `interim status ${response.status}` }));
    throw new GatewayError("ORIGIN_UNAVAILABLE");
  }
  const responseHeaders = clientResponseHeaders(response.headers);
  let body: BodyInit | null = response.body;
  if (product.injectAuthMethod) {
    try {
      body = await injectAuthMethod(response, responseHeaders, principal.method);
    } catch (error) {
      // The origin broke off while its JSON body was being read: nothing was sent to the client yet.
      console.error(JSON.stringify({ event: "origin_failed", requestId, product: product.slug, timedOut: false, error: String(error) }));
      throw new GatewayError("ORIGIN_UNAVAILABLE");
    }
  }
  return new Response(body, { status: response.status, statusText: response.statusText, headers: responseHeaders });
}

/**
 * The body's bytes, for its Content-Digest: the signature binds the body, so
 * it is read before anything is sent. It is at most MAX_BODY_BYTES (a
 * declared length was judged, an undeclared one was read within the cap).
 */
async function bufferedBody(body: ReadableStream | ArrayBuffer | null): Promise<ArrayBuffer | null> {
  if (body === null || body instanceof ArrayBuffer) return body;
  return new Response(body).arrayBuffer();
}

/**
 * ORIGIN_TIMEOUT_MS bounds the wait for the origin's response headers only.
 * The timer stops once they arrive: a fetch whose signal aborts later also
 * errors the body, which would cut a long download or event stream midway.
 */
async function fetchHeaders(target: URL, init: RequestInit, timeoutMs: number): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("The origin did not answer in time", "TimeoutError")), timeoutMs);
  try {
    return await fetch(target, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Adds "authMethod" to a JSON-object body of at most INJECT_MAX_BYTES; any
 * other body (not JSON, not an object, too large, unparsable) passes through
 * untouched and streamed.
 */
async function injectAuthMethod(response: Response, headers: Headers, method: Principal["method"]): Promise<BodyInit | null> {
  const type = headers.get("content-type") ?? "";
  const length = Number(headers.get("content-length") ?? NaN);
  if (!response.body || !/^application\/json\s*(;|$)/i.test(type) || length > INJECT_MAX_BYTES) return response.body;

  let bytes: Uint8Array;
  if (Number.isFinite(length)) {
    bytes = new Uint8Array(await response.arrayBuffer()); // declared and within the cap: read natively, in one go
  } else {
    const { chunks, size, rest } = await readUpTo(response.body, INJECT_MAX_BYTES);
    bytes = concat(chunks, size);
    if (rest) return prepend(bytes, rest); // larger than the cap: stream it all through
  }
  try {
    const text = new TextDecoder().decode(bytes);
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) return bytes;
    headers.delete("content-length");
    return withAuthMethod(text, value as Record<string, unknown>, method);
  } catch {
    return bytes;
  }
}

/**
 * The origin's JSON text with the field spliced in before its closing brace,
 * so nothing else changes: re-serializing would round integers past 2^53
 * (ids) and rewrite numbers and escapes. An origin's own authMethod is
 * replaced, which needs a re-serialization to avoid a duplicate key.
 */
function withAuthMethod(text: string, value: Record<string, unknown>, method: Principal["method"]): string {
  if (Object.hasOwn(value, "authMethod")) return JSON.stringify({ ...value, authMethod: method });
  const open = text.trimEnd().slice(0, -1); // a JSON object's text ends with "}"
  const separator = Object.keys(value).length === 0 ? "" : ",";
  return `${open}${separator}"authMethod":${JSON.stringify(method)}}`;
}

async function readUpTo(stream: ReadableStream<Uint8Array>, limit: number) {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { chunks, size, rest: undefined };
    chunks.push(value);
    size += value.byteLength;
    if (size > limit) return { chunks, size, rest: reader };
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function prepend(head: Uint8Array, rest: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(head);
    },
    async pull(controller) {
      const { done, value } = await rest.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return rest.cancel(reason);
    },
  });
}
