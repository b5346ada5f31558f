import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import type { Principal } from "../auth/principal";
import { getKey } from "../db/keys";
import { getUser } from "../db/users";
import { GatewayError } from "../errors";
import { announce, debitReportedUsage } from "../limits/usage-events";
import { requireService } from "../middleware/service-caller";
import { validateJson } from "../middleware/validate";
import { describe } from "../openapi/operation";
import { UsageReportResponseSchema, UsageReportSchema } from "./schemas";

/**
 * POST /api/v1/usage/report: usage an origin (or a verify-API service) learns
 * only after a call, such as an LLM stream's tokens, which no response header
 * can carry (Workers' fetch exposes no trailers). Debited like a usage header
 * (it may take the balance below zero), once per request id: a repeated
 * report debits nothing. Needs a service credential.
 */
export const usageReportRoutes = new Hono<AppEnv>().post(
  "/api/v1/usage/report",
  describe({
    operationId: "reportUsage",
    summary: "Report a call's metered usage after the fact (e.g. at the end of a stream); debited from the key's credits once per requestId",
    tags: ["usage"],
    responses: [{ status: 200, description: "Debited, or already debited for this requestId", schema: UsageReportResponseSchema }],
    errors: ["NOT_FOUND"],
  }),
  requireService(),
  validateJson(UsageReportSchema),
  async (c) => {
    const { keyId, requestId, amount } = c.req.valid("json");
    const key = await getKey(c.env.DB, keyId);
    if (!key) throw new GatewayError("NOT_FOUND", { message: "No such key" });
    // Where the key's calls count: its owner's object while the owner has owner-level limits.
    const owner = key.ownerId === null ? undefined : await getUser(c.env.DB, key.ownerId);
    const principal: Principal = {
      method: "api_key",
      key: { ...key, ownerLimited: owner !== undefined && (owner.rateLimitPerMinute !== null || owner.rateLimitPerDay !== null) },
    };
    let result: Awaited<ReturnType<typeof debitReportedUsage>>;
    try {
      result = await debitReportedUsage(c.env, principal, amount, requestId);
    } catch (error) {
      throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", {
        message: "Rate limiter is unavailable; nothing was debited, report again",
        cause: error,
        context: { event: "rate_limiter_failed" },
      });
    }
    if (result.outcome === "moved") throw new Error("the limiter answered moved to a redirected debit");
    if (result.outcome === "debited") c.executionCtx.waitUntil(announce(c.env, principal, result.events));
    return c.json({ authMethod: "service_token" as const, keyId, requestId, debited: result.outcome === "debited", balance: result.balance });
  },
);
