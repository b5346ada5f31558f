import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { buildOpenApiDocument, type RouteEntry } from "../openapi/document";
import { describe } from "../openapi/operation";

/**
 * GET /openapi.json: the OpenAPI 3.1 document of keygate's own endpoints,
 * read off the router (src/openapi/document.ts), with this origin as its server.
 */
export function openapiRoutes(routes: () => readonly RouteEntry[]) {
  // Built once per isolate and origin: the routes never change at runtime.
  let built: { origin: string; body: string } | undefined;
  return new Hono<AppEnv>().get(
    "/openapi.json",
    describe({
      operationId: "getOpenApiDocument",
      summary: "This document",
      tags: ["meta"],
      responses: [{ status: 200, description: "The OpenAPI 3.1 document", mediaTypes: ["application/json"] }],
      headers: [{ name: "Cache-Control", on: "success" }],
    }),
    (c) => {
      const origin = new URL(c.req.url).origin;
      if (built?.origin !== origin) built = { origin, body: JSON.stringify(buildOpenApiDocument(routes(), { serverUrl: origin })) };
      c.header("Cache-Control", "public, max-age=300");
      c.header("Content-Type", "application/json");
      return c.body(built.body);
    },
  );
}
