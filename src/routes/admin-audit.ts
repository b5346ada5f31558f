import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { listAudit } from "../db/audit";
import { callerJson, requireAdmin } from "../middleware/caller";
import { validateQuery } from "../middleware/validate";
import { AuditQuerySchema } from "./schemas";

/** The audit log, newest first: who (actor) did what (action) to which target, and when (at). */
const DEFAULT_LIMIT = 50;

export const adminAuditRoutes = new Hono<AppEnv>().get("/api/v1/admin/audit", requireAdmin(), validateQuery(AuditQuerySchema), async (c) => {
  const query = c.req.valid("query");
  const entries = await listAudit(c.env.DB, { ...query, limit: query.limit ?? DEFAULT_LIMIT });
  return callerJson(c, { entries });
});
