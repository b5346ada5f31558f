import { describe, expect, it } from "vitest";
import * as z from "zod";
import { app } from "../../src/app";
import { ERRORS } from "../../src/errors";
import { Hono } from "hono";
import { buildOpenApiDocument, openApiPath } from "../../src/openapi/document";
import { describe as describeRoute } from "../../src/openapi/operation";
import { KeyCreateSchema, ProductCreateSchema, UserCreateSchema } from "../../src/routes/schemas";
import { adminToken, api } from "../helpers/api";
import { call, createKey, json } from "../helpers/harness";
import { createUser } from "../helpers/users";

async function fetchDocument(): Promise<Record<string, any>> {
  const response = await call("/openapi.json");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("application/json");
  return json(response);
}

/** Every own route as "METHOD /path": app.routes minus middleware (method ALL) and the product catch-all. */
function ownRoutes(): string[] {
  const routes = app.routes.filter((route) => route.method !== "ALL" && route.path !== "*" && route.path !== "/*");
  return [...new Set(routes.map((route) => `${route.method} ${openApiPath(route.path)}`))];
}

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3.1 document served to anyone", async () => {
    const document = await fetchDocument();
    expect(document.openapi).toBe("3.1.0");
    expect(document.info.title).toBe("keygate");
  });

  it("documents every own route with its method", async () => {
    const document = await fetchDocument();
    const routes = ownRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(20);
    const missing = routes.filter((route) => {
      const [method, path] = route.split(" ") as [string, string];
      return document.paths[path]?.[method.toLowerCase()] === undefined;
    });
    expect(missing).toEqual([]);
  });

  it("request bodies are the very schemas the handlers validate with", async () => {
    const document = await fetchDocument();
    const body = (path: string) => document.paths[path].post.requestBody.content["application/json"].schema;
    const expected = (schema: z.core.$ZodType) => {
      const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
      return rest;
    };
    expect(body("/api/v1/keys")).toEqual(expected(KeyCreateSchema));
    expect(body("/api/v1/admin/products")).toEqual(expected(ProductCreateSchema));
    expect(body("/api/v1/admin/users")).toEqual(expected(UserCreateSchema));
    // Strict objects: unknown fields are refused, and the document says so.
    expect(body("/api/v1/keys").additionalProperties).toBe(false);
    expect(body("/api/v1/keys").required).toEqual(["name"]);
  });

  it("error responses come from the error catalogue", async () => {
    const document = await fetchDocument();
    expect(document.components.schemas.Error.properties.code.enum).toEqual(Object.keys(ERRORS));
    const create = document.paths["/api/v1/keys"].post.responses;
    const codesOf = (status: string) => create[status].content["application/json"].schema.allOf[1].properties.code.enum;
    expect(codesOf("401")).toEqual(expect.arrayContaining(["AUTH_MISSING", "API_KEY_HASH_MISMATCH", "JWT_EXPIRED"]));
    expect(codesOf("400")).toEqual(["VALIDATION_FAILED"]);
    expect(codesOf("403")).toEqual(["FORBIDDEN"]);
    for (const [status, response] of Object.entries<Record<string, any>>(create)) {
      if (status.startsWith("2")) continue;
      for (const code of response.content["application/json"].schema.allOf[1].properties.code.enum) {
        const spec: { status: number; alsoStatus?: readonly number[] } = ERRORS[code as keyof typeof ERRORS];
        expect([spec.status, ...(spec.alsoStatus ?? [])].map(String), `${code} under ${status}`).toContain(status);
      }
    }
    expect(create["201"].content["application/json"].schema.required).toContain("key");
  });

  it("documents the key's version: ETag on the answers, If-Match on PATCH and DELETE with 412 CONFLICT, and who set status and expiry", async () => {
    const document = await fetchDocument();
    const key = document.paths["/api/v1/keys/{id}"];
    for (const method of ["get", "patch", "delete"]) {
      expect(key[method].responses["200"].headers?.ETag, `${method}: ETag`).toBeDefined();
    }
    for (const method of ["patch", "delete"]) {
      expect(key[method].parameters, `${method}: If-Match`).toContainEqual(expect.objectContaining({ name: "If-Match", in: "header", required: false }));
      expect(key[method].responses["412"].content["application/json"].schema.allOf[1].properties.code.enum, `${method}: 412`).toEqual(["CONFLICT"]);
    }
    expect(key.patch.responses["409"].content["application/json"].schema.allOf[1].properties.code.enum).toContain("CONFLICT");
    expect(key.get.parameters.map((parameter: { name: string }) => parameter.name)).not.toContain("If-Match");
    const view = key.get.responses["200"].content["application/json"].schema;
    expect(view.properties.version.type).toBe("integer");
    for (const field of ["statusSetBy", "expiresSetBy"]) {
      expect(view.properties[field].anyOf.map((option: { type: string }) => option.type).sort(), field).toEqual(["null", "string"]);
    }
    expect(view.required).toEqual(expect.arrayContaining(["version", "statusSetBy", "expiresSetBy"]));
    // Products and users carry no ETag and no If-Match.
    expect(document.paths["/api/v1/admin/users/{id}"].patch.responses["412"]).toBeUndefined();
  });

  it("documents the four lists' paging: limit (1..200) and cursor parameters, nextCursor (string or null) in the answer", async () => {
    const document = await fetchDocument();
    for (const [path, list] of [
      ["/api/v1/keys", "keys"],
      ["/api/v1/admin/users", "users"],
      ["/api/v1/admin/products", "products"],
      ["/api/v1/admin/audit", "entries"],
    ] as const) {
      const get = document.paths[path].get;
      const parameters = Object.fromEntries(get.parameters.map((parameter: { name: string }) => [parameter.name, parameter]));
      expect(parameters.cursor, `${path} cursor`).toMatchObject({ in: "query", required: false, schema: { type: "string" } });
      expect(parameters.cursor.schema.description, path).toContain("nextCursor");
      // Interop defect 1.3: an integer, as a typed client sends it (`?limit=5`), not a digit string.
      expect(parameters.limit, `${path} limit`).toMatchObject({ in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 200 } });
      expect(get.responses["400"].content["application/json"].schema.allOf[1].properties.code.enum, path).toEqual(["VALIDATION_FAILED"]);
      const answer = get.responses["200"].content["application/json"].schema;
      expect(answer.required, path).toEqual(expect.arrayContaining([list, "nextCursor"]));
      expect(answer.properties.nextCursor.anyOf.map((option: { type: string }) => option.type).sort(), path).toEqual(["null", "string"]);
    }
  });

  it("documents every field a key and a user answer carry (lineage, version, who set what, owner limits)", async () => {
    const document = await fetchDocument();
    const schemaOf = (path: string, method: string, status: string) =>
      document.paths[path][method].responses[status].content["application/json"].schema as { properties: Record<string, unknown> };
    const key = await api("POST", "/api/v1/keys", adminToken(), { name: "documented", products: ["*"] });
    expect(key.status).toBe(201);
    expect(Object.keys(schemaOf("/api/v1/keys", "post", "201").properties).sort()).toEqual(Object.keys(key.body).sort());
    const { user } = await createUser();
    const answer = await api("GET", `/api/v1/admin/users/${user.id}`, adminToken());
    expect(Object.keys(schemaOf("/api/v1/admin/users/{id}", "get", "200").properties).sort()).toEqual(Object.keys(answer.body).sort());
  });

  it("documents the rotate body as optional, as keygate accepts none (interop defect 1.2)", async () => {
    const document = await fetchDocument();
    expect(document.paths["/api/v1/keys/{id}/rotate"].post.requestBody.required).toBe(false);
    expect(document.paths["/api/v1/keys"].post.requestBody.required).toBe(true);
    const { record } = await createKey({ products: ["*"] });
    const rotated = await call(`/api/v1/keys/${record.id}/rotate`, { method: "POST", headers: adminToken() });
    expect(rotated.status).toBe(201);
  });

  it("names each operation once, and serves this origin as its server", async () => {
    const document = await fetchDocument();
    const ids = Object.values<Record<string, { operationId: string }>>(document.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    expect(ids.length).toBe(ownRoutes().length);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(
      expect.arrayContaining(["createKey", "listKeys", "getKey", "updateKey", "revokeKey", "rotateKey", "getDashboardFile", "redirectToDashboard"]),
    );
    expect(document.servers).toEqual([{ url: "https://gateway.test", description: "This gateway" }]);
  });

  it("cannot ship an undescribed route: building the document throws, naming it", () => {
    const bare = new Hono().get("/described", describeRoute({ operationId: "a", summary: "a", responses: [{ status: 200, description: "ok" }] }), (c) =>
      c.text("ok"),
    );
    expect(() => buildOpenApiDocument(bare.routes, { serverUrl: "https://x.test" })).not.toThrow();
    bare.get("/forgotten", (c) => c.text("no"));
    expect(() => buildOpenApiDocument(bare.routes, { serverUrl: "https://x.test" })).toThrow(/GET \/forgotten has no describe/);
    const twice = new Hono()
      .get("/a", describeRoute({ operationId: "same", summary: "a", responses: [{ status: 200, description: "ok" }] }), (c) => c.text("a"))
      .get("/b", describeRoute({ operationId: "same", summary: "b", responses: [{ status: 200, description: "ok" }] }), (c) => c.text("b"));
    expect(() => buildOpenApiDocument(twice.routes, { serverUrl: "https://x.test" })).toThrow(/operationId same is used twice/);
  });

  it("documents what every route's middleware can answer: 500s everywhere, 413 under the body cap, the throttle's 429 with Retry-After, 401 with WWW-Authenticate", async () => {
    const document = await fetchDocument();
    const codes = (op: Record<string, any>, status: string): string[] =>
      op.responses[status]?.content["application/json"].schema.allOf[1].properties.code.enum ?? [];
    for (const [path, item] of Object.entries<Record<string, Record<string, any>>>(document.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const where = `${method} ${path}`;
        expect(codes(op, "500"), where).toEqual(expect.arrayContaining(["INTERNAL_ERROR", "CONFIG_INVALID"]));
        for (const response of Object.values<Record<string, any>>(op.responses)) expect(response.headers["X-Request-Id"], where).toBeDefined();
        // app.ts caps the bodies of login, keys, usage reports and admin (usage stats reads none).
        const capped = ["/auth/", "/api/v1/keys", "/api/v1/usage/report", "/api/v1/admin/"].some((prefix) => path.startsWith(prefix));
        expect(codes(op, "413"), where).toEqual(capped ? ["PAYLOAD_TOO_LARGE"] : []);
        if (op.security.length > 0) {
          expect(codes(op, "429"), where).toContain("AUTH_THROTTLED");
          expect(op.responses["429"].headers["Retry-After"], where).toBeDefined();
          const byService = op.security.some((scheme: Record<string, unknown>) => "serviceToken" in scheme);
          expect(codes(op, "401"), where).toEqual(
            expect.arrayContaining(byService ? ["AUTH_MISSING", "SERVICE_CREDENTIAL_INVALID"] : ["AUTH_MISSING", "API_KEY_INACTIVE", "JWT_EXPIRED"]),
          );
          expect(op.responses["401"].headers["WWW-Authenticate"], where).toBeDefined();
          expect(codes(op, "503"), where).toContain("AUTH_BACKEND_UNAVAILABLE");
          expect(op.responses["200"] ?? op.responses["201"], where).toHaveProperty("headers.X-Auth-Method");
        }
      }
    }
    expect(document.paths["/healthz"].get.security).toEqual([]);
    expect(document.paths["/api/v1/usage/stats"].get.security).toEqual(expect.arrayContaining([{ apiKeyHeader: [] }, { adminToken: [] }]));
    expect(Object.keys(document.components.securitySchemes).sort()).toEqual(["adminToken", "apiKeyBearer", "apiKeyHeader", "serviceToken", "userJwt"]);
    expect(document.components.headers).toHaveProperty("RateLimit-Policy");
    expect(document.paths["/dashboard"].get.responses["301"].headers.Location).toBeDefined();
  });

  it("answers 405 with Allow for a method an own path does not list, instead of routing it as a product call", async () => {
    for (const [method, path, allow] of [
      ["PUT", "/api/v1/keys/some-id", "GET, HEAD, PATCH, DELETE"],
      ["OPTIONS", "/api/v1/keys", "POST, GET, HEAD"],
      ["GET", "/auth/login", "POST"],
      ["DELETE", "/healthz", "GET, HEAD"],
      ["OPTIONS", "/openapi.json", "GET, HEAD"],
      ["POST", "/.well-known/jwks.json", "GET, HEAD"],
    ] as const) {
      const response = await call(path, { method, headers: adminToken() });
      expect(response.status, `${method} ${path}`).toBe(405);
      expect(response.headers.get("Allow"), `${method} ${path}`).toBe(allow);
      expect((await json(response)).code).toBe("METHOD_NOT_ALLOWED");
    }
  });
});
