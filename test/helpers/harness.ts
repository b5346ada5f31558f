import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { app } from "../../src/app";
import { generateKey, type KeyEnv, type KeyFormatName } from "../../src/auth/key-format";
import { invalidateKeyCache } from "../../src/auth/key-cache";
import { insertKeyStatement, type KeyRecord } from "../../src/db/keys";
import { insertProductStatement, type Product } from "../../src/db/products";
import { invalidateProductCache } from "../../src/proxy/route-match";
import { assertConformsToOpenApi } from "./openapi-conformance";
import { noteSent } from "./origin";
import { keyRecordFor, productRecord } from "./records";

/**
 * Each test builds its own world with unique ids and path prefixes: storage is
 * isolated per file, not per test. Rows go straight into D1 through the
 * project's own query functions.
 */
export const GATEWAY = "https://gateway.test";
export { ORIGIN, uniqueSlug } from "./records";

export async function createProduct(overrides: Partial<Product> = {}): Promise<Product> {
  const product = productRecord(overrides);
  await insertProductStatement(env.DB, product).run();
  invalidateProductCache();
  return product;
}

export interface KeyOptions extends Partial<KeyRecord> {
  format?: KeyFormatName;
  env?: KeyEnv;
}

export async function createKey(options: KeyOptions = {}): Promise<{ key: string; record: KeyRecord }> {
  const format = options.format ?? "ilal";
  const key = generateKey(format, options.env ?? "live");
  const { format: _format, env: _env, ...overrides } = options;
  const record = await keyRecordFor(key, format, overrides);
  await insertKeyStatement(env.DB, record).run();
  invalidateKeyCache(record.prefix);
  return { key, record };
}

/** A CF-Connecting-IP of its own for a call, so the per-IP failed-auth throttle never links unrelated tests. */
export function randomClientIp(): string {
  const [a, b, c] = crypto.getRandomValues(new Uint8Array(3));
  return `10.${a}.${b}.${c}`;
}

/**
 * A request to the gateway, as a client would send it: the suite's one door.
 * An own endpoint's answer is checked against /openapi.json on the way back.
 */
export async function call(path: string, init: RequestInit = {}): Promise<Response> {
  const request = new Request(`${GATEWAY}${path}`, init);
  const response = await exports.default.fetch(request);
  await assertConformsToOpenApi(request, response);
  return response;
}

/** Bindings or vars to put in place of the test env's for one call; `undefined` removes one. */
export type EnvOverrides = Record<string, unknown>;

export interface SendOptions extends Omit<RequestInit, "body" | "headers"> {
  /** An API key, sent in X-API-Key, or as `Authorization: Bearer` when `keyAs` is "bearer". */
  key?: string;
  keyAs?: "x-api-key" | "bearer";
  /** A JWT, sent as `Authorization: Bearer`. */
  jwt?: string;
  /**
   * The client address sent as CF-Connecting-IP, as the edge always sends one: a fresh
   * randomClientIp() unless given (so the failed-auth throttle never links two calls), none when null.
   */
  ip?: string | null;
  /** Sent as given; a CF-Connecting-IP here is used instead of a fresh one. */
  headers?: HeadersInit;
  /**
   * A string, bytes, a stream, a Blob, FormData or URLSearchParams is sent as it is; any other value
   * (an object, an array, a number) as JSON, with Content-Type: application/json unless `headers` set one.
   */
  body?: unknown;
  /**
   * Bindings or vars replaced for this call (a broken D1, JWKS_URL, a lower limit). The call still
   * goes through call(); the Worker is then app.fetch with `{ ...env, ...overrides }` in a fresh
   * execution context, awaited. One env object is made per overrides object, so a suite that passes
   * the same object each time has its configuration parsed once, as a deployment would.
   */
  env?: EnvOverrides;
}

/**
 * A request to the gateway, as a client sends it, through call(): the one request helper of the
 * workers suite. `send(path, { key })`, `send(path, { jwt, method: "POST", body: { … } })`,
 * `send(path, { headers, ip: null })` for a request exactly as written.
 */
export function send(path: string, options: SendOptions = {}): Promise<Response> {
  const { key, keyAs = "x-api-key", jwt, ip, headers: given, body, env: overrides, ...init } = options;
  const headers = new Headers(given);
  const add = (name: string, value: string) => {
    if (headers.has(name)) throw new Error(`send(${path}): ${name} is set twice (by an option and by headers, or by key and jwt)`);
    headers.set(name, value);
  };
  if (key !== undefined) {
    if (keyAs === "bearer") add("Authorization", `Bearer ${key}`);
    else add("X-API-Key", key);
  }
  if (jwt !== undefined) add("Authorization", `Bearer ${jwt}`);
  if (typeof ip === "string") add("CF-Connecting-IP", ip);
  else if (ip === undefined && !headers.has("CF-Connecting-IP")) headers.set("CF-Connecting-IP", randomClientIp());
  const encoded = encodeBody(body, headers);
  if (overrides !== undefined) headers.set(ENV_MARKER, withEnv(overrides));
  return noteSent(() => call(path, { ...init, headers, ...(encoded === undefined ? {} : { body: encoded }) }));
}

function encodeBody(body: unknown, headers: Headers): BodyInit | null | undefined {
  if (body === undefined || body === null) return body;
  const asIs =
    typeof body === "string" ||
    body instanceof ReadableStream ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof Blob ||
    body instanceof FormData ||
    body instanceof URLSearchParams;
  if (asIs) return body as BodyInit;
  if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  return JSON.stringify(body);
}

// ---- env overrides, through call() ----
//
// call() hands its Request to exports.default.fetch. A call with env overrides carries a marker
// header naming them; the first such call puts a dispatcher in front of exports.default.fetch that
// takes the marker off and runs app.fetch with that env. Every other request reaches the loopback
// exactly as before, and so every answer, overridden or not, comes back through call().

const ENV_MARKER = "x-keygate-test-env";
const envsByOverrides = new WeakMap<EnvOverrides, Record<string, unknown>>();
const pendingEnvs = new Map<string, Record<string, unknown>>();
let dispatching = false;

function withEnv(overrides: EnvOverrides): string {
  let merged = envsByOverrides.get(overrides);
  if (!merged) {
    merged = { ...env, ...overrides } as Record<string, unknown>;
    for (const [name, value] of Object.entries(overrides)) if (value === undefined) delete merged[name];
    envsByOverrides.set(overrides, merged);
  }
  const id = crypto.randomUUID();
  pendingEnvs.set(id, merged);
  if (!dispatching) dispatchEnvOverrides();
  return id;
}

function dispatchEnvOverrides(): void {
  dispatching = true;
  const gateway = exports.default;
  const loopback = gateway.fetch.bind(gateway);
  gateway.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
    const id = input instanceof Request ? input.headers.get(ENV_MARKER) : null;
    if (id === null) return loopback(input, init);
    const overridden = pendingEnvs.get(id);
    pendingEnvs.delete(id);
    if (!overridden) throw new Error(`send: no env overrides are waiting under ${id}`);
    const headers = new Headers((input as Request).headers);
    headers.delete(ENV_MARKER);
    return inEnv(new Request(input as Request, { ...init, headers }), overridden);
  }) as typeof gateway.fetch;
}

async function inEnv(request: Request, overridden: Record<string, unknown>): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await app.fetch(request, overridden as unknown as Parameters<typeof app.fetch>[1], ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** The response once its body has been read to the end (from a clone, so it stays readable): the call is over, its counting done. */
export async function settled(response: Promise<Response>): Promise<Response> {
  const answer = await response;
  await answer.clone().arrayBuffer();
  return answer;
}

export async function json(response: Response): Promise<Record<string, any>> {
  const text = await response.text();
  try {
    return JSON.parse(text) as Record<string, any>;
  } catch {
    throw new Error(`expected JSON, got ${response.status} ${response.headers.get("content-type")}: ${text.slice(0, 300)}`);
  }
}
