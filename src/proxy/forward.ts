import type { Principal } from "../auth/principal";
import { principalScopes } from "../auth/principal";
import type { Product } from "../db/products";
import { GatewayError } from "../errors";
import { spliceAuthMethod, spliceAuthMethodBytes } from "./auth-method-splice";
import { originRequestHeaders, stripHopByHopResponseHeaders } from "./forwarded-headers";
import { contentDigest, signOriginRequest } from "./origin-signature";
import { relativePath } from "./route-match";

/** JSON-object bodies up to this size get authMethod spliced in; larger ones stream through as sent. */
export const INJECT_MAX_BYTES = 1_048_576;
/** Declared JSON bodies up to this size are read whole and spliced at once (bounded, like a stream's chunk). */
export const WHOLE_BODY_MAX_BYTES = 16_384;

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
    response = await fetchHeaders(target, request.method, headers, requestBody, options.timeoutMs);
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    throw new GatewayError(timedOut ? "ORIGIN_TIMEOUT" : "ORIGIN_UNAVAILABLE", {
      cause: error,
      context: { event: "origin_failed", product: product.slug, timedOut },
    });
  }

  if (response.status < 200) {
    // An interim answer (100 Continue, 103 Early Hints) is no answer; a Response cannot even be built from one.
    throw new GatewayError("ORIGIN_UNAVAILABLE", {
      cause: `interim status ${response.status}`,
      context: { event: "origin_failed", product: product.slug, timedOut: false },
    });
  }
  // The origin's answer passed on: status, statusText and headers copied once, into headers
  // the gateway may still change. A body the splice rewrites streams as it arrives, so an
  // origin that breaks off midway errors the client's read (its status was already sent).
  const splice = product.injectAuthMethod ? spliceMode(request.method, response) : "none";
  if (splice === "none") return passedOn(response.body, response);
  const body =
    splice === "whole" ? await splicedWhole(response, principal.method, product) : spliceAuthMethod(response.body!, principal.method, INJECT_MAX_BYTES);
  const client = passedOn(body, response);
  // The origin's length is not the spliced body's: the runtime states a whole body's own, a streamed one's is known only at the end.
  client.headers.delete("content-length");
  return client;
}

/** The client's answer: the origin's status and headers (hop-by-hop ones taken out) with `body`. */
function passedOn(body: BodyInit | null, response: Response): Response {
  const client = new Response(body, response);
  stripHopByHopResponseHeaders(client.headers);
  return client;
}

/**
 * Small JSON answers with a declared length are read whole (at most
 * WHOLE_BODY_MAX_BYTES) and spliced in one pass: a stream costs more than such
 * a body. Nothing has been sent yet, so an origin that breaks off is a 502.
 */
async function splicedWhole(response: Response, method: Principal["method"], product: Product): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    throw new GatewayError("ORIGIN_UNAVAILABLE", { cause: error, context: { event: "origin_failed", product: product.slug, timedOut: false } });
  }
  return spliceAuthMethodBytes(bytes, method, INJECT_MAX_BYTES);
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
async function fetchHeaders(target: URL, method: string, headers: Headers, body: ArrayBuffer | null, timeoutMs: number): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("The origin did not answer in time", "TimeoutError")), timeoutMs);
  try {
    return await fetch(target, { method, headers, body, redirect: "manual", signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether and how the body gets "authMethod" spliced in (SPEC): an
 * application/json body (with or without parameters) not declared over
 * INJECT_MAX_BYTES; read whole when declared within WHOLE_BODY_MAX_BYTES, else
 * streamed. The splice itself leaves anything but one JSON object within the
 * cap as sent. HEAD, 204 and 304 answers have no body to change.
 */
function spliceMode(method: string, response: Response): "none" | "whole" | "stream" {
  if (!response.body || method === "HEAD" || response.status === 204 || response.status === 304) return "none";
  const headers = response.headers;
  if (!JSON_TYPE.test(headers.get("content-type") ?? "")) return "none";
  const declared = Number(headers.get("content-length") ?? NaN);
  if (declared > INJECT_MAX_BYTES) return "none";
  return declared <= WHOLE_BODY_MAX_BYTES ? "whole" : "stream";
}

const JSON_TYPE = /^application\/json\s*(;|$)/i;
