import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { requireService } from "../middleware/service-caller";
import { validateJson } from "../middleware/validate";
import { describe } from "../openapi/operation";
import { verifyKey } from "../verify";
import { VerifyRequestSchema, VerifyResponseSchema } from "./schemas";

/**
 * POST /api/v1/keys/verify: a key checked and counted as a product call
 * would be (src/verify.ts), for a service holding a service credential.
 * Registered before /api/v1/keys/:id, whose GET would otherwise take the path.
 */
export const verifyRoutes = new Hono<AppEnv>().post(
  "/api/v1/keys/verify",
  describe({
    operationId: "verifyKey",
    summary: "Check an API key as a product call would, and count it (for services not behind the proxy)",
    description:
      "The same checks, codes, counting and revocation as a product call. A refused key is a 200 with valid: false and the code a product call would get; " +
      "the HTTP errors are the request's own (a bad service credential, an unknown product, storage down).",
    tags: ["keys"],
    responses: [{ status: 200, description: "The verdict", schema: VerifyResponseSchema }],
    errors: ["NOT_FOUND"],
  }),
  requireService(),
  validateJson(VerifyRequestSchema),
  async (c) => {
    const answer = await verifyKey(c.env, c.get("config"), c.req.valid("json"), c.get("requestId"), Date.now(), (work) => c.executionCtx.waitUntil(work));
    return c.json({ authMethod: "service_token" as const, ...answer });
  },
);
