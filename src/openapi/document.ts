import { TrieRouter } from "hono/router/trie-router";
import { ERRORS, type ErrorCode } from "../errors";
import type { RATE_LIMIT_HEADERS } from "../limits/windows";
import * as z from "../zod";
import { docOf, mergeDocs, type HeaderName, type HeaderUse, type OperationDoc } from "./operation";

/**
 * GET /openapi.json, read off the router (see operation.ts): every own route
 * registered with a method is an operation, documented by the pieces its
 * handlers and the `app.use` middlewares over its path carry. A route without
 * a `describe(...)` makes the build throw, so an undocumented route cannot ship
 * (test/integration/openapi.test.ts builds it).
 */

/** What Hono's `app.routes` lists: every handler, middleware included (method "ALL"), in registration order. */
export interface RouteEntry {
  method: string;
  path: string;
  handler: unknown;
}

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

/** `/api/v1/keys/:id` → `/api/v1/keys/{id}`; a trailing `*` becomes `{path}`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:(\w+)/g, "{$1}").replace(/\*$/, "{path}");
}

/** A concrete path the route matches, to ask Hono's own router which middlewares cover it. */
function samplePath(honoPath: string): string {
  return honoPath.replace(/:\w+/g, "x").replace(/\*$/, "x");
}

function covers(pattern: string, path: string): boolean {
  const router = new TrieRouter<true>();
  router.add("ALL", pattern, true);
  return router.match("GET", samplePath(path))[0].length > 0;
}

interface Operation {
  method: (typeof METHODS)[number];
  path: string;
  doc: OperationDoc;
}

/** Groups the router's entries into operations, each with the merged doc of the middlewares over it and its own chain. */
export function operationsOf(routes: readonly RouteEntry[]): Operation[] {
  const middleware = routes.filter((route) => route.method === "ALL" && docOf(route.handler));
  const operations = new Map<string, Operation>();
  for (const route of routes) {
    const method = route.method.toLowerCase() as Operation["method"];
    if (!METHODS.includes(method)) continue;
    const id = `${method} ${route.path}`;
    let operation = operations.get(id);
    if (!operation) {
      const inherited = middleware.filter((entry) => covers(entry.path, route.path)).map((entry) => docOf(entry.handler)!);
      operation = { method, path: route.path, doc: inherited.reduce(mergeDocs, {}) };
      operations.set(id, operation);
    }
    const own = docOf(route.handler);
    if (own) operation.doc = mergeDocs(operation.doc, own);
  }
  for (const operation of operations.values()) {
    if (!operation.doc.operationId || !operation.doc.responses?.length) {
      throw new Error(`${operation.method.toUpperCase()} ${operation.path} has no describe(...): every own route is documented`);
    }
  }
  return [...operations.values()];
}

function jsonSchema(schema: z.ZodMiniType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
}

/** Every header keygate sets, once, as components; operations refer to them. */
export const HEADERS: Record<HeaderName | ProductHeaderName, { description: string; schema: Record<string, unknown> }> = {
  "X-Request-Id": { description: "This request's id (a UUID): quote it when reporting a problem. Every answer carries it.", schema: { type: "string" } },
  "X-Auth-Method": {
    description: "How the caller authenticated; the same as the body's authMethod",
    schema: { type: "string", enum: ["api_key", "jwt", "admin_token", "service_token"] },
  },
  "WWW-Authenticate": { description: "On every 401: the scheme to use", schema: { type: "string", example: 'Bearer realm="keygate"' } },
  "Retry-After": { description: "Seconds to wait before retrying", schema: { type: "integer", minimum: 0 } },
  ETag: { description: 'The version as written, e.g. "4": send it as If-Match', schema: { type: "string" } },
  Allow: { description: "The methods the path answers", schema: { type: "string" } },
  Location: { description: "Where the resource is", schema: { type: "string" } },
  "Cache-Control": { description: "How long the answer may be cached", schema: { type: "string" } },
  "Access-Control-Allow-Origin": { description: "Readable from any origin", schema: { type: "string", const: "*" } },
  "X-RateLimit-Limit": { description: "Product calls: calls allowed per minute", schema: { type: "integer" } },
  "X-RateLimit-Remaining": { description: "Product calls: calls left in this minute", schema: { type: "integer" } },
  "X-RateLimit-Reset": { description: "Product calls: seconds until the minute window resets", schema: { type: "integer" } },
  "X-RateLimit-Daily-Limit": { description: "Product calls: calls allowed per UTC day", schema: { type: "integer" } },
  "X-RateLimit-Daily-Remaining": { description: "Product calls: calls left today (UTC)", schema: { type: "integer" } },
  "X-RateLimit-Enforced": { description: 'Product calls: "false" when limits could not be enforced (fail-open)', schema: { type: "string" } },
  RateLimit: {
    description: 'Product calls, IETF draft: remaining and reset per policy, e.g. "minute";r=2;t=10, "day";r=999;t=14110',
    schema: { type: "string" },
  },
  "RateLimit-Policy": {
    description: 'Product calls, IETF draft: the policies, e.g. "minute";q=3;w=60, "day";q=1000;w=86400, and "credits";q=5000;w=86400 for a key with credits',
    schema: { type: "string" },
  },
  "X-Credits-Remaining": {
    description: "Product calls of a key with credits: the balance left after this call (negative after usage the origin reported)",
    schema: { type: "integer" },
  },
};

type ProductHeaderName = (typeof RATE_LIMIT_HEADERS)[number];

const WWW_AUTHENTICATE: HeaderUse = { name: "WWW-Authenticate", on: "all" };

const headerRef = (name: string) => ({ $ref: `#/components/headers/${name}` });

function headersFor(uses: readonly HeaderUse[], success: boolean, codes: readonly ErrorCode[]): Record<string, unknown> | undefined {
  const names = uses.filter((use) => use.on === "all" || (use.on === "success" ? success : use.on.some((code) => codes.includes(code)))).map((use) => use.name);
  const unique = [...new Set(names)];
  return unique.length ? Object.fromEntries(unique.map((name) => [name, headerRef(name)])) : undefined;
}

/** One response per status, naming the codes it can carry; all share the Error schema. */
function errorResponses(doc: OperationDoc): Record<string, unknown> {
  const byStatus = new Map<number, { codes: ErrorCode[]; lines: string[] }>();
  const add = (status: number, code: ErrorCode, why: string) => {
    const entry = byStatus.get(status) ?? { codes: [], lines: [] };
    if (!entry.codes.includes(code)) entry.codes.push(code);
    entry.lines.push(`${code}: ${why}`);
    byStatus.set(status, entry);
  };
  for (const code of new Set(doc.errors ?? [])) add(ERRORS[code].status, code, ERRORS[code].message);
  for (const { code, status, why } of doc.otherStatuses ?? []) add(status, code, why);
  return Object.fromEntries(
    [...byStatus]
      .sort(([a], [b]) => a - b)
      .map(([status, { codes, lines }]) => [
        String(status),
        {
          description: lines.join("; "),
          // renderError sets WWW-Authenticate on every 401.
          headers: headersFor([...(doc.headers ?? []), ...(status === 401 ? [WWW_AUTHENTICATE] : [])], false, codes),
          content: {
            "application/json": {
              schema: { allOf: [{ $ref: "#/components/schemas/Error" }, { type: "object", properties: { code: { type: "string", enum: codes } } }] },
            },
          },
        },
      ]),
  );
}

function parameters(operation: Operation): unknown[] {
  const { path, doc } = operation;
  const pathParams = [...path.matchAll(/:(\w+)/g)].map((match) => ({ name: match[1], in: "path", required: true, schema: { type: "string" } }));
  if (path.endsWith("*")) pathParams.push({ name: "path", in: "path", required: true, schema: { type: "string" } });
  const query = doc.query ? jsonSchema(doc.query, "input") : undefined;
  const properties = (query?.properties ?? {}) as Record<string, unknown>;
  const required = new Set((query?.required ?? []) as string[]);
  const queryParams = Object.entries(properties).map(([name, schema]) => ({ name, in: "query", required: required.has(name), schema }));
  const headerParams = (doc.requestHeaders ?? []).map(({ name, description }) => ({
    name,
    in: "header",
    required: false,
    description,
    schema: { type: "string" },
  }));
  return [...pathParams, ...queryParams, ...headerParams];
}

function operationObject(operation: Operation): Record<string, unknown> {
  const { doc } = operation;
  const success = Object.fromEntries(
    doc.responses!.map((response) => [
      String(response.status),
      {
        description: response.description,
        headers: headersFor(doc.headers ?? [], true, []),
        ...(response.schema && { content: { "application/json": { schema: jsonSchema(response.schema, "output") } } }),
        ...(response.mediaTypes && { content: Object.fromEntries(response.mediaTypes.map((type) => [type, { schema: {} }])) }),
      },
    ]),
  );
  return {
    operationId: doc.operationId,
    summary: doc.summary,
    ...(doc.description && { description: doc.description }),
    tags: doc.tags ?? [],
    security: doc.security ?? [],
    parameters: parameters(operation),
    ...(doc.body && { requestBody: { required: doc.body.required, content: { "application/json": { schema: jsonSchema(doc.body.schema, "input") } } } }),
    responses: { ...success, ...errorResponses(doc) },
  };
}

export interface DocumentOptions {
  /** The origin this document is served from: its `servers` entry. */
  serverUrl: string;
}

export function buildOpenApiDocument(routes: readonly RouteEntry[], options: DocumentOptions): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const operations = operationsOf(routes);
  const ids = new Set<string>();
  for (const operation of operations) {
    const id = operation.doc.operationId!;
    if (ids.has(id)) throw new Error(`operationId ${id} is used twice`);
    ids.add(id);
    (paths[openApiPath(operation.path)] ??= {})[operation.method] = operationObject(operation);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "keygate",
      version: "1.0.0",
      license: { name: "Proprietary", identifier: "LicenseRef-Proprietary" },
      description: DESCRIPTION,
    },
    servers: [{ url: options.serverUrl, description: "This gateway" }],
    tags: TAGS,
    paths,
    components: {
      securitySchemes: SECURITY_SCHEMES,
      headers: HEADERS,
      schemas: { Error: ERROR_SCHEMA },
    },
  };
}

const DESCRIPTION = [
  "keygate's own endpoints. Every error is JSON with a `code` from the catalogue (components.schemas.Error) and every answer carries `X-Request-Id`.",
  'Own JSON answers to an authenticated caller carry `authMethod` ("api_key", "jwt", or "admin_token" for the ADMIN_TOKEN secret) and the X-Auth-Method header.',
  "A method a path does not list answers 405 METHOD_NOT_ALLOWED with `Allow`.",
  "",
  "Every other path is a product call: authenticated with an API key (X-API-Key, or Authorization: Bearer) or a JWT, rate-limited and forwarded to the product's origin.",
  "Its answers are the origin's, with X-Request-Id, X-Auth-Method and the rate-limit headers (components.headers: X-RateLimit-*, RateLimit, RateLimit-Policy);",
  "its refusals are the catalogue's 400/401/403/404/413/429 (with Retry-After), 502 ORIGIN_UNAVAILABLE, 503 and 504 ORIGIN_TIMEOUT, in the product's error format.",
].join("\n");

const TAGS = [
  { name: "keys", description: "API keys: a user's own, or every key for admins" },
  { name: "usage", description: "Usage statistics" },
  { name: "auth", description: "Sign-in and the public signing keys" },
  { name: "admin", description: "Users, products and the audit log (admins only)" },
  { name: "meta", description: "Health, this document, the dashboard" },
];

export const SECURITY_SCHEMES = {
  userJwt: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "A keygate user's JWT from POST /auth/login (admins are users whose role is admin), or a trusted third party's JWT",
  },
  adminToken: { type: "http", scheme: "bearer", description: "The ADMIN_TOKEN secret: full admin access" },
  apiKeyHeader: { type: "apiKey", in: "header", name: "X-API-Key", description: "An API key (usage stats only)" },
  apiKeyBearer: { type: "http", scheme: "bearer", description: "An API key as Authorization: Bearer (usage stats only)" },
  serviceToken: { type: "http", scheme: "bearer", description: "A service credential (kgsvc_…) an admin issued: POST /api/v1/keys/verify only" },
} as const;

const ERROR_SCHEMA = {
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
      items: { type: "object", required: ["path", "message"], properties: { path: { type: "string" }, message: { type: "string" } } },
    },
    field: { type: "string", description: "FORBIDDEN or CONFLICT: the one field at fault (e.g. rateLimitPerMinute, email, slug)" },
    requiredScope: { type: "string", description: "API_KEY_SCOPE_MISSING / JWT_SCOPE_MISSING: the scope the call needs" },
    origin: { type: "string", description: "CORS_ORIGIN_NOT_ALLOWED: the refused origin" },
  },
};
