import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import type { ErrorCode } from "../errors";
import type * as z from "../zod";

/**
 * What a handler or middleware tells the OpenAPI document about the routes it
 * serves. Each piece is attached to the very function the router runs, so the
 * document (src/openapi/document.ts) is read off the router: a route exists in
 * the document exactly when it is registered, with what its chain really does.
 *
 *  - `describe({...})` is the first handler of every own route: its summary,
 *    operationId and success answer.
 *  - The validators add the request body or query schema they validate with.
 *  - The caller middlewares add the security schemes and the refusals of
 *    authentication; `app.use` middlewares (request id, config, body cap) add
 *    what they add to every route under their path.
 */
export interface OperationDoc {
  summary?: string;
  description?: string;
  operationId?: string;
  tags?: string[];
  /** Alternatives, as OpenAPI's `security`: any one of them suffices. */
  security?: Record<string, string[]>[];
  body?: { schema: z.ZodMiniType; required: boolean };
  query?: z.ZodMiniType;
  /** The success answer(s): usually one. */
  responses?: SuccessDoc[];
  /** Refusals this step can answer, each with its catalogue status. */
  errors?: ErrorCode[];
  /** Refusals answered with another of the code's statuses, and why (CONFLICT's 412 under If-Match). */
  otherStatuses?: { code: ErrorCode; status: number; why: string }[];
  /** Headers this step adds to answers (by component name, see document.ts HEADERS). */
  headers?: HeaderUse[];
  /** Request headers this step reads. */
  requestHeaders?: { name: string; description: string }[];
}

export interface SuccessDoc {
  status: 200 | 201 | 301;
  description: string;
  /** JSON answers: the schema. */
  schema?: z.ZodMiniType;
  /** Other answers: their media types (a free-form body). */
  mediaTypes?: string[];
}

export type HeaderName =
  | "X-Request-Id"
  | "X-Auth-Method"
  | "WWW-Authenticate"
  | "Retry-After"
  | "ETag"
  | "Allow"
  | "Location"
  | "Cache-Control"
  | "Access-Control-Allow-Origin";

/** A header and which answers carry it: every answer, the success answer(s), or the answers of some codes. */
export interface HeaderUse {
  name: HeaderName;
  on: "all" | "success" | ErrorCode[];
}

const DOC = Symbol("openapi");

/** Attaches a piece of the document to a handler or middleware; returns it unchanged. */
export function documented<T extends object>(handler: T, doc: OperationDoc): T {
  const existing = (handler as { [DOC]?: OperationDoc })[DOC];
  Object.defineProperty(handler, DOC, { value: existing ? mergeDocs(existing, doc) : doc, configurable: true });
  return handler;
}

export function docOf(handler: unknown): OperationDoc | undefined {
  return typeof handler === "function" ? (handler as { [DOC]?: OperationDoc })[DOC] : undefined;
}

/**
 * The first handler of an own route: what the route is. It does nothing at
 * request time but pass the request on.
 */
export function describe(doc: OperationDoc & { summary: string; operationId: string; responses: SuccessDoc[] }) {
  return documented(
    createMiddleware<AppEnv>(async (_c, next) => next()),
    doc,
  );
}

/** Pieces from several steps as one: lists add up, a later scalar wins. */
export function mergeDocs(a: OperationDoc, b: OperationDoc): OperationDoc {
  const merged: OperationDoc = { ...a, ...b };
  for (const list of ["tags", "security", "responses", "errors", "otherStatuses", "headers", "requestHeaders"] as const) {
    if (a[list] && b[list]) (merged as Record<string, unknown>)[list] = [...a[list], ...b[list]];
  }
  return merged;
}
