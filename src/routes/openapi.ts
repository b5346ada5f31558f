import { Hono } from "hono";
import * as z from "../zod";
import type { AppEnv } from "../app-env";
import { ERRORS, type ErrorCode } from "../errors";
import { LoginBody } from "./auth";
import * as S from "./schemas";

/**
 * GET /openapi.json: an OpenAPI 3.1 document of keygate's own endpoints,
 * generated from the zod schemas the handlers validate with and from the one
 * error catalogue. A test checks every own route is in OPERATIONS.
 */

type Access = "anyone" | "any_credential" | "user" | "admin";

export interface Operation {
  method: "get" | "post" | "patch" | "delete";
  /** Hono path syntax, exactly as the route is registered (`:id`, `*`). */
  path: string;
  summary: string;
  access: Access;
  body?: z.ZodMiniType;
  query?: z.ZodMiniType;
  status: 200 | 201 | 301;
  response?: z.ZodMiniType;
  /** Refusals beyond authentication's (and VALIDATION_FAILED when there is a body or query). */
  errors?: ErrorCode[];
  /** The answer carries the resource's ETag. */
  etag?: true;
  /** Honours If-Match: 412 CONFLICT when it names no current version. */
  ifMatch?: true;
}

const KEY_FAILURES: ErrorCode[] = ["API_KEY_FORMAT_INVALID", "API_KEY_PREFIX_NOT_FOUND", "API_KEY_HASH_MISMATCH", "API_KEY_INACTIVE", "API_KEY_EXPIRED"];
const JWT_FAILURES: ErrorCode[] = [
  "JWT_MALFORMED",
  "JWT_EXPIRED",
  "JWT_NOT_YET_VALID",
  "JWT_SIGNATURE_INVALID",
  "JWT_CLAIM_INVALID",
  "JWT_ALG_NOT_ALLOWED",
  "JWT_KEY_NOT_FOUND",
];
const AUTH_FAILURES: ErrorCode[] = ["AUTH_MISSING", "AUTH_HEADER_MALFORMED", ...KEY_FAILURES, ...JWT_FAILURES, "AUTH_BACKEND_UNAVAILABLE"];

const LoginAnswer = z.object({ token: z.string(), tokenType: z.literal("Bearer"), expiresIn: z.number() });
const Jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

export const OPERATIONS: Operation[] = [
  { method: "get", path: "/healthz", summary: "Liveness", access: "anyone", status: 200, response: z.object({ status: z.literal("ok") }) },
  {
    method: "post",
    path: "/auth/login",
    summary: "A JWT for a user (email and password)",
    access: "anyone",
    body: LoginBody,
    status: 200,
    response: LoginAnswer,
    errors: ["INVALID_CREDENTIALS", "AUTH_THROTTLED", "VALIDATION_FAILED"],
  },
  { method: "get", path: "/.well-known/jwks.json", summary: "Public signing keys", access: "anyone", status: 200, response: Jwks },
  { method: "get", path: "/openapi.json", summary: "This document", access: "anyone", status: 200 },
  { method: "get", path: "/dashboard", summary: "Redirect to the web UI", access: "anyone", status: 301 },
  { method: "get", path: "/dashboard/*", summary: "The web UI (static files)", access: "anyone", status: 200, errors: ["NOT_FOUND"] },

  {
    method: "post",
    path: "/api/v1/keys",
    summary: "Create a key (the plaintext is in this answer only)",
    access: "user",
    body: S.KeyCreateSchema,
    status: 201,
    response: S.KeyCreatedSchema,
  },
  {
    method: "get",
    path: "/api/v1/keys",
    summary: "List keys, newest first, a page at a time (a user's own; all for admins)",
    access: "user",
    query: S.KeyListQuerySchema,
    status: 200,
    response: S.KeyListSchema,
  },
  {
    method: "get",
    path: "/api/v1/keys/:id",
    summary: "Inspect a key",
    access: "user",
    status: 200,
    response: S.KeyResponseSchema,
    errors: ["NOT_FOUND"],
    etag: true,
  },
  {
    method: "patch",
    path: "/api/v1/keys/:id",
    summary: "Edit, deactivate or reactivate a key (only the fields named; 409 CONFLICT when a concurrent write won)",
    access: "user",
    body: S.KeyPatchSchema,
    status: 200,
    response: S.KeyResponseSchema,
    errors: ["NOT_FOUND", "CONFLICT"],
    etag: true,
    ifMatch: true,
  },
  {
    method: "delete",
    path: "/api/v1/keys/:id",
    summary: "Revoke a key (final; idempotent)",
    access: "user",
    status: 200,
    response: S.KeyRevokedSchema,
    errors: ["NOT_FOUND"],
    etag: true,
    ifMatch: true,
  },
  {
    method: "post",
    path: "/api/v1/keys/:id/rotate",
    summary: "Replace a key; the old one works until graceUntil",
    access: "user",
    body: S.KeyRotateSchema,
    status: 201,
    response: S.KeyRotatedSchema,
    errors: ["NOT_FOUND", "CONFLICT"],
  },
  {
    method: "get",
    path: "/api/v1/usage/stats",
    summary: "Usage per key: this minute, today, last 30 days",
    access: "any_credential",
    query: S.UsageQuerySchema,
    status: 200,
    response: S.UsageStatsSchema,
    errors: ["NOT_FOUND"],
  },

  {
    method: "get",
    path: "/api/v1/admin/users",
    summary: "List users, oldest first, a page at a time",
    access: "admin",
    query: S.UserListQuerySchema,
    status: 200,
    response: S.UserListSchema,
  },
  {
    method: "post",
    path: "/api/v1/admin/users",
    summary: "Create a user",
    access: "admin",
    body: S.UserCreateSchema,
    status: 201,
    response: S.UserResponseSchema,
    errors: ["CONFLICT"],
  },
  {
    method: "get",
    path: "/api/v1/admin/users/:id",
    summary: "Inspect a user",
    access: "admin",
    status: 200,
    response: S.UserResponseSchema,
    errors: ["NOT_FOUND"],
  },
  {
    method: "patch",
    path: "/api/v1/admin/users/:id",
    summary: "Edit a user",
    access: "admin",
    body: S.UserPatchSchema,
    status: 200,
    response: S.UserResponseSchema,
    errors: ["NOT_FOUND", "CONFLICT"],
  },
  {
    method: "delete",
    path: "/api/v1/admin/users/:id",
    summary: "Delete a user, revoking their keys",
    access: "admin",
    status: 200,
    response: S.UserDeletedSchema,
    errors: ["NOT_FOUND"],
  },

  {
    method: "get",
    path: "/api/v1/admin/products",
    summary: "List products by slug, a page at a time",
    access: "admin",
    query: S.ProductListQuerySchema,
    status: 200,
    response: S.ProductListSchema,
  },
  {
    method: "post",
    path: "/api/v1/admin/products",
    summary: "Create a product",
    access: "admin",
    body: S.ProductCreateSchema,
    status: 201,
    response: S.ProductResponseSchema,
    errors: ["CONFLICT"],
  },
  {
    method: "get",
    path: "/api/v1/admin/products/:idOrSlug",
    summary: "Inspect a product",
    access: "admin",
    status: 200,
    response: S.ProductResponseSchema,
    errors: ["NOT_FOUND"],
  },
  {
    method: "patch",
    path: "/api/v1/admin/products/:idOrSlug",
    summary: "Edit a product (the slug is immutable)",
    access: "admin",
    body: S.ProductPatchSchema,
    status: 200,
    response: S.ProductResponseSchema,
    errors: ["NOT_FOUND", "CONFLICT"],
  },
  {
    method: "delete",
    path: "/api/v1/admin/products/:idOrSlug",
    summary: "Delete a product",
    access: "admin",
    status: 200,
    response: S.ProductDeletedSchema,
    errors: ["NOT_FOUND"],
  },

  {
    method: "get",
    path: "/api/v1/admin/audit",
    summary: "Audit log, newest first, a page at a time",
    access: "admin",
    query: S.AuditQuerySchema,
    status: 200,
    response: S.AuditListSchema,
  },
];

/** `/api/v1/keys/:id` → `/api/v1/keys/{id}`; a trailing `*` becomes `{path}`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:(\w+)/g, "{$1}").replace(/\*$/, "{path}");
}

function jsonSchema(schema: z.ZodMiniType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
}

const SECURITY: Record<Access, Record<string, string[]>[] | undefined> = {
  anyone: [],
  any_credential: [{ bearer: [] }, { apiKey: [] }],
  user: [{ bearer: [] }],
  admin: [{ bearer: [] }],
};

function errorCodes(op: Operation): ErrorCode[] {
  const codes = new Set<ErrorCode>(op.errors ?? []);
  if (op.access !== "anyone") for (const code of AUTH_FAILURES) codes.add(code);
  if (op.access === "user" || op.access === "admin") codes.add("FORBIDDEN");
  if (op.body || op.query) codes.add("VALIDATION_FAILED");
  return [...codes];
}

/** Why a code is answered with one of its other statuses. */
const ALSO_STATUS_WHY: Record<number, string> = { 412: "If-Match names no current version, or a write under it lost a race" };

/** One response per status, naming the codes it can carry; all share the Error schema. */
function errorResponses(codes: ErrorCode[], op: Operation): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  const add = (status: number, code: ErrorCode) => byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  for (const code of codes) add(ERRORS[code].status, code);
  if (op.ifMatch) add(412, "CONFLICT");
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      String(status),
      {
        description: list.map((code) => `${code}: ${ALSO_STATUS_WHY[status] ?? ERRORS[code].message}`).join("; "),
        content: {
          "application/json": {
            schema: { allOf: [{ $ref: "#/components/schemas/Error" }, { properties: { code: { enum: list } } }] },
          },
        },
      },
    ]),
  );
}

function parameters(op: Operation): unknown[] {
  const pathParams = [...op.path.matchAll(/:(\w+)/g)].map((match) => ({ name: match[1], in: "path", required: true, schema: { type: "string" } }));
  if (op.path.endsWith("*")) pathParams.push({ name: "path", in: "path", required: true, schema: { type: "string" } });
  const query = op.query ? jsonSchema(op.query, "input") : undefined;
  const properties = (query?.properties ?? {}) as Record<string, unknown>;
  const required = new Set((query?.required ?? []) as string[]);
  const queryParams = Object.entries(properties).map(([name, schema]) => ({ name, in: "query", required: required.has(name), schema }));
  const headerParams = op.ifMatch
    ? [
        {
          name: "If-Match",
          in: "header",
          required: false,
          description: 'The ETag read (e.g. "3"), or *: write only if the resource is still at that version',
          schema: { type: "string" },
        },
      ]
    : [];
  return [...pathParams, ...queryParams, ...headerParams];
}

function operationObject(op: Operation): Record<string, unknown> {
  return {
    summary: op.summary,
    operationId: `${op.method}${op.path.replace(/[^A-Za-z0-9]+(\w)?/g, (_, next?: string) => (next ?? "").toUpperCase())}`,
    security: SECURITY[op.access],
    parameters: parameters(op),
    ...(op.body && { requestBody: { required: true, content: { "application/json": { schema: jsonSchema(op.body, "input") } } } }),
    responses: {
      [String(op.status)]: {
        description: op.summary,
        ...(op.etag && { headers: { ETag: { description: 'The version as written, e.g. "4": send it as If-Match', schema: { type: "string" } } } }),
        ...(op.response && { content: { "application/json": { schema: jsonSchema(op.response, "output") } } }),
      },
      ...errorResponses(errorCodes(op), op),
    },
  };
}

export function buildOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) (paths[openApiPath(op.path)] ??= {})[op.method] = operationObject(op);
  return {
    openapi: "3.1.0",
    info: {
      title: "keygate",
      version: "1.0.0",
      description:
        "keygate's own endpoints. Every error is JSON with a `code` from the catalogue; own JSON answers carry `authMethod` " +
        '("api_key", "jwt", or "admin_token" for the ADMIN_TOKEN secret) and the X-Auth-Method header.',
    },
    paths,
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "A keygate JWT, an API key, or the ADMIN_TOKEN secret" },
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
      },
      schemas: {
        Error: {
          type: "object",
          required: ["error", "code", "message", "hint", "requestId"],
          properties: {
            error: { type: "string", description: "The HTTP status title" },
            code: { type: "string", enum: Object.keys(ERRORS) },
            message: { type: "string" },
            hint: { type: "string" },
            requestId: { type: "string" },
            fields: {
              type: "array",
              description: "VALIDATION_FAILED: each refused field",
              items: { type: "object", properties: { path: { type: "string" }, message: { type: "string" } } },
            },
          },
        },
      },
    },
  };
}

// Built once per isolate: the schemas never change at runtime.
let document: Record<string, unknown> | undefined;

export const openapiRoutes = new Hono<AppEnv>().get("/openapi.json", (c) => {
  document ??= buildOpenApiDocument();
  c.header("Cache-Control", "public, max-age=300");
  return c.json(document);
});
