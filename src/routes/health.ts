import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { describe } from "../openapi/operation";
import * as z from "../zod";

/**
 * Liveness: answers without touching storage or revealing configuration. It
 * runs after the configuration check, so a misconfigured gateway reports
 * 500 CONFIG_INVALID (naming the variable, never its value) instead of "ok".
 */
export const healthRoutes = new Hono<AppEnv>().get(
  "/healthz",
  describe({
    operationId: "getHealth",
    summary: "Liveness (500 CONFIG_INVALID when the gateway is misconfigured)",
    tags: ["meta"],
    responses: [{ status: 200, description: "The gateway is up and configured", schema: z.object({ status: z.literal("ok") }) }],
  }),
  (c) => c.json({ status: "ok" }),
);
