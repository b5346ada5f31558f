/**
 * keygate-client: a thin typed client for keygate's own API. The types come from
 * GET /openapi.json (src/schema.d.ts, made by openapi-typescript: `npm run client:generate`
 * at the repository root); the transport is openapi-fetch. createKeygateClient() answers
 * the openapi-fetch client itself (GET, POST, … on every documented path) with a few
 * helpers for keys and usage that return the answer's data and throw a KeygateError on
 * every error answer.
 *
 * The helpers name paths, never operationIds, so a renamed operation changes nothing here.
 */
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema";

export type { components, paths } from "./schema";

type Json<T> = T extends { content: { "application/json": infer Body } } ? Body : never;
/** The JSON body of a path's method's answer with this status. */
type Answer<Path extends keyof paths, Method extends keyof paths[Path], Status extends number> = paths[Path][Method] extends {
  responses: infer Responses;
}
  ? Status extends keyof Responses
    ? Json<Responses[Status]>
    : never
  : never;
type RequestJson<Path extends keyof paths, Method extends keyof paths[Path]> = paths[Path][Method] extends { requestBody?: infer Body }
  ? Json<NonNullable<Body>>
  : never;

export type KeyCreateInput = RequestJson<"/api/v1/keys", "post">;
export type KeyPatchInput = RequestJson<"/api/v1/keys/{id}", "patch">;
export type KeyRotateInput = RequestJson<"/api/v1/keys/{id}/rotate", "post">;
/** A key as create answers it: with the plaintext `key`, shown this once. */
export type CreatedKey = Answer<"/api/v1/keys", "post", 201>;
/** One page of GET /api/v1/keys. */
export type KeyPage = Answer<"/api/v1/keys", "get", 200>;
/** A key as a list shows it. */
export type KeyView = KeyPage["keys"][number];
/** A key as GET and PATCH answer it. */
export type KeyDetails = Answer<"/api/v1/keys/{id}", "get", 200>;
/** The replacement key, with its plaintext `key`, `rotatedFrom` and the old key's `graceUntil`. */
export type RotatedKey = Answer<"/api/v1/keys/{id}/rotate", "post", 201>;
export type RevokedKey = Answer<"/api/v1/keys/{id}", "delete", 200>;
export type UsageStats = Answer<"/api/v1/usage/stats", "get", 200>;
export type VerifyInput = RequestJson<"/api/v1/keys/verify", "post">;
export type VerifyAnswer = Answer<"/api/v1/keys/verify", "post", 200>;
export type CreditsSetInput = RequestJson<"/api/v1/keys/{id}/credits", "put">;
export type KeyCredits = Answer<"/api/v1/keys/{id}/credits", "get", 200>;
export type UsageReportInput = RequestJson<"/api/v1/usage/report", "post">;
export type UsageReported = Answer<"/api/v1/usage/report", "post", 200>;
/** keygate's error body: every error answer is one. */
export type ErrorBody = components["schemas"]["Error"];
export type ErrorCode = ErrorBody["code"];

/** An error answer from keygate (or, with code `HTTP_<status>`, a non-keygate answer on the way). */
export class KeygateError extends Error {
  override readonly name = "KeygateError";
  /** The catalogue code, e.g. NOT_FOUND, CONFLICT, VALIDATION_FAILED. */
  readonly code: ErrorCode | `HTTP_${number}`;
  readonly status: number;
  /** The request's id (body `requestId`, else the X-Request-Id header): quote it when reporting a problem. */
  readonly requestId: string | undefined;
  /** The whole error body when it was keygate's JSON error (hint, fields, field, …). */
  readonly body: ErrorBody | undefined;

  constructor(status: number, body: unknown, requestId?: string | null) {
    const error = isErrorBody(body) ? body : undefined;
    const text = typeof body === "string" && body !== "" ? body.slice(0, 200) : `HTTP ${status}`;
    super(error?.message ?? text);
    this.status = status;
    this.code = error?.code ?? `HTTP_${status}`;
    this.requestId = error?.requestId ?? requestId ?? undefined;
    this.body = error;
  }
}

function isErrorBody(body: unknown): body is ErrorBody {
  return (
    typeof body === "object" &&
    body !== null &&
    typeof (body as { code?: unknown }).code === "string" &&
    typeof (body as { message?: unknown }).message === "string"
  );
}

/** openapi-fetch's result: the data on success, else a KeygateError. */
function unwrap<Data>(result: { data?: Data; error?: unknown; response: Response }): Data {
  if (result.response.ok && result.error === undefined) return result.data as Data;
  throw new KeygateError(result.response.status, result.error, result.response.headers.get("X-Request-Id"));
}

export interface KeygateClientOptions {
  /** keygate's origin, e.g. https://keygate.example.com (no trailing path needed). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer`: an API key, a keygate JWT, the ADMIN_TOKEN, or a service credential (verifyKey). */
  token?: string;
  /** A fetch to use instead of globalThis.fetch (tests, proxies, service bindings). */
  fetch?: (request: Request) => Promise<Response>;
}

export interface KeyListOptions {
  /** Keys per page (keygate's default when absent; at most its MAX_PAGE_SIZE). */
  limit?: number;
  /** A page's nextCursor: the page after it. */
  cursor?: string;
}

/** Write conditions: the ETag read (e.g. `"3"`) as If-Match, so a concurrent write is a 412, not lost. */
export interface WriteOptions {
  ifMatch?: string;
}

export interface KeygateHelpers {
  /** POST /api/v1/keys: the new key, with its plaintext (never shown again). */
  createKey(input: KeyCreateInput): Promise<CreatedKey>;
  /** GET /api/v1/keys: one page, newest first; `nextCursor` is null on the last. */
  listKeys(options?: KeyListOptions): Promise<KeyPage>;
  /** Every key the caller may see, page after page, following nextCursor. */
  allKeys(options?: Omit<KeyListOptions, "cursor">): AsyncGenerator<KeyView, void, undefined>;
  /** GET /api/v1/keys/{id}. */
  getKey(id: string): Promise<KeyDetails>;
  /** PATCH /api/v1/keys/{id}: only the fields named change. */
  updateKey(id: string, patch: KeyPatchInput, options?: WriteOptions): Promise<KeyDetails>;
  /** POST /api/v1/keys/{id}/rotate: the replacement; the old key works until `graceUntil`. */
  rotateKey(id: string, input?: KeyRotateInput): Promise<RotatedKey>;
  /** DELETE /api/v1/keys/{id}: final, and idempotent. */
  revokeKey(id: string, options?: WriteOptions): Promise<RevokedKey>;
  /** GET /api/v1/usage/stats: this minute, today and the last 30 days, per key (or for one). */
  usageStats(options?: { keyId?: string }): Promise<UsageStats>;
  /**
   * POST /api/v1/keys/verify (with a service credential as the token): a key checked and counted
   * as a product call would be. A refused key is an answer (`valid: false`, `code`), not a throw.
   */
  verifyKey(input: VerifyInput): Promise<VerifyAnswer>;
  /** GET /api/v1/keys/{id}/credits: the key's balance (its rotation lineage's), or `credits: null`. */
  getKeyCredits(id: string): Promise<KeyCredits>;
  /** PUT /api/v1/keys/{id}/credits (admins): balance, refill and low threshold, all at once. */
  setKeyCredits(id: string, input: CreditsSetInput): Promise<KeyCredits>;
  /** POST /api/v1/keys/{id}/credits/top-up (admins): a 409 CONFLICT when the key has no balance. */
  topUpKeyCredits(id: string, amount: number): Promise<KeyCredits>;
  /** POST /api/v1/usage/report (with a service credential): usage learned after a call, debited once per requestId. */
  reportUsage(input: UsageReportInput): Promise<UsageReported>;
}

export type KeygateClient = Client<paths, "application/json"> & KeygateHelpers;

export function createKeygateClient({ baseUrl, token, fetch }: KeygateClientOptions): KeygateClient {
  const client = createClient<paths, "application/json">({
    baseUrl,
    ...(fetch && { fetch }),
    ...(token !== undefined && { headers: { Authorization: `Bearer ${token}` } }),
  });
  const ifMatchHeader = (options?: WriteOptions) => (options?.ifMatch === undefined ? undefined : { "If-Match": options.ifMatch });

  const listKeys: KeygateHelpers["listKeys"] = async ({ limit, cursor } = {}) =>
    unwrap(await client.GET("/api/v1/keys", { params: { query: { limit, cursor } } }));

  const helpers: KeygateHelpers = {
    createKey: async (input) => unwrap(await client.POST("/api/v1/keys", { body: input })),
    listKeys,
    async *allKeys(options = {}) {
      let cursor: string | undefined;
      do {
        const page = await listKeys({ ...options, cursor });
        yield* page.keys;
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
    },
    getKey: async (id) => unwrap(await client.GET("/api/v1/keys/{id}", { params: { path: { id } } })),
    updateKey: async (id, patch, options) =>
      unwrap(await client.PATCH("/api/v1/keys/{id}", { params: { path: { id } }, headers: ifMatchHeader(options), body: patch })),
    // The body is optional to keygate; {} asks for the defaults just as no body does.
    rotateKey: async (id, input = {}) => unwrap(await client.POST("/api/v1/keys/{id}/rotate", { params: { path: { id } }, body: input })),
    revokeKey: async (id, options) => unwrap(await client.DELETE("/api/v1/keys/{id}", { params: { path: { id } }, headers: ifMatchHeader(options) })),
    usageStats: async ({ keyId } = {}) => unwrap(await client.GET("/api/v1/usage/stats", { params: { query: { keyId } } })),
    verifyKey: async (input) => unwrap(await client.POST("/api/v1/keys/verify", { body: input })),
    getKeyCredits: async (id) => unwrap(await client.GET("/api/v1/keys/{id}/credits", { params: { path: { id } } })),
    setKeyCredits: async (id, input) => unwrap(await client.PUT("/api/v1/keys/{id}/credits", { params: { path: { id } }, body: input })),
    topUpKeyCredits: async (id, amount) => unwrap(await client.POST("/api/v1/keys/{id}/credits/top-up", { params: { path: { id } }, body: { amount } })),
    reportUsage: async (input) => unwrap(await client.POST("/api/v1/usage/report", { body: input })),
  };
  return Object.assign(client, helpers);
}
