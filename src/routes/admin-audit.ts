import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { listAuditPage } from "../db/audit";
import { callerJson, requireAdmin } from "../middleware/caller";
import { validateQuery } from "../middleware/validate";
import { describe } from "../openapi/operation";
import { DEFAULT_PAGE_SIZE, encodeCursor } from "./cursor";
import { AuditListSchema, AuditQuerySchema } from "./schemas";

/** The audit log, newest first: who (actor) did what (action) to which target, and when (at). Paged like every list. */
export const adminAuditRoutes = new Hono<AppEnv>().get(
  "/api/v1/admin/audit",
  describe({
    operationId: "listAuditEntries",
    summary: "Audit log, newest first, a page at a time",
    tags: ["admin"],
    responses: [{ status: 200, description: "A page of entries; nextCursor is null on the last", schema: AuditListSchema }],
  }),
  requireAdmin(),
  validateQuery(AuditQuerySchema),
  async (c) => {
    const query = c.req.valid("query");
    const page = await listAuditPage(c.env.DB, {
      targetType: query.targetType,
      targetId: query.targetId,
      after: query.cursor,
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
    });
    return callerJson(c, { entries: page.rows, nextCursor: encodeCursor("audit", page.nextAfter) });
  },
);
