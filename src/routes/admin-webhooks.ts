import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env";
import { auditStatement } from "../db/audit";
import { nowIso } from "../db/json";
import { GatewayError } from "../errors";
import { callerJson, requireAdmin } from "../middleware/caller";
import { validateJson } from "../middleware/validate";
import { describe } from "../openapi/operation";
import {
  WebhookEndpointCreatedSchema,
  WebhookEndpointCreateSchema,
  WebhookEndpointDeletedSchema,
  WebhookEndpointListSchema,
  WebhookEndpointPatchSchema,
  WebhookEndpointResponseSchema,
} from "../webhooks/schemas";
import { generateWebhookSecret } from "../webhooks/signature";
import {
  deleteEndpointStatement,
  getEndpoint,
  insertEndpointStatement,
  listEndpoints,
  updateEndpointStatement,
  writtenEndpoint,
  type WebhookEndpointChanges,
  type WebhookEndpointRecord,
} from "../webhooks/store";

/**
 * Webhook endpoints, admin only: where signed events are delivered
 * (src/webhooks/). The signing secret is in the answers to create and
 * rotate-secret only. Every change is audited in the same D1 batch.
 */
function view(endpoint: WebhookEndpointRecord) {
  const { secret: _secret, ...rest } = endpoint;
  return rest;
}

async function endpointOr404(c: Context<AppEnv>): Promise<WebhookEndpointRecord> {
  const endpoint = await getEndpoint(c.env.DB, c.req.param("id")!);
  if (!endpoint) throw new GatewayError("NOT_FOUND", { message: "No such webhook endpoint" });
  return endpoint;
}

/** An update of a row read a moment ago; none written means it was deleted meanwhile. */
async function updateEndpoint(
  c: Context<AppEnv>,
  endpoint: WebhookEndpointRecord,
  changes: WebhookEndpointChanges,
  action: string,
  details?: Record<string, unknown>,
) {
  const now = Date.now();
  const actor = c.get("caller").actor;
  const [result] = await c.env.DB.batch([
    updateEndpointStatement(c.env.DB, endpoint.id, changes, nowIso(now)),
    auditStatement(c.env.DB, { actor, action, targetType: "webhook_endpoint", targetId: endpoint.id, ...(details ? { details } : {}) }, now),
  ]);
  const written = result && writtenEndpoint(result);
  if (!written) throw new GatewayError("NOT_FOUND", { message: "No such webhook endpoint" });
  return written;
}

export const adminWebhooksRoutes = new Hono<AppEnv>()
  .get(
    "/api/v1/admin/webhooks",
    describe({
      operationId: "listWebhookEndpoints",
      summary: "List webhook endpoints, oldest first (never their secrets)",
      tags: ["admin"],
      responses: [{ status: 200, description: "Every webhook endpoint", schema: WebhookEndpointListSchema }],
    }),
    requireAdmin(),
    async (c) => callerJson(c, { endpoints: (await listEndpoints(c.env.DB)).map(view) }),
  )

  .post(
    "/api/v1/admin/webhooks",
    describe({
      operationId: "createWebhookEndpoint",
      summary: "Add a webhook endpoint (its signing secret is in this answer only)",
      tags: ["admin"],
      responses: [{ status: 201, description: "The endpoint, with its `secret`", schema: WebhookEndpointCreatedSchema }],
    }),
    requireAdmin(),
    validateJson(WebhookEndpointCreateSchema),
    async (c) => {
      const body = c.req.valid("json");
      const actor = c.get("caller").actor;
      const now = Date.now();
      const endpoint: WebhookEndpointRecord = {
        id: crypto.randomUUID(),
        url: body.url,
        description: body.description ?? null,
        secret: generateWebhookSecret(),
        events: body.events ?? ["*"],
        enabled: true,
        createdAt: nowIso(now),
        updatedAt: nowIso(now),
        createdBy: actor,
      };
      await c.env.DB.batch([
        insertEndpointStatement(c.env.DB, endpoint),
        auditStatement(
          c.env.DB,
          { actor, action: "webhook_endpoint.create", targetType: "webhook_endpoint", targetId: endpoint.id, details: { ...body, events: endpoint.events } },
          now,
        ),
      ]);
      return callerJson(c, { ...view(endpoint), secret: endpoint.secret }, 201);
    },
  )

  .get(
    "/api/v1/admin/webhooks/:id",
    describe({
      operationId: "getWebhookEndpoint",
      summary: "Inspect a webhook endpoint (never its secret)",
      tags: ["admin"],
      responses: [{ status: 200, description: "The endpoint", schema: WebhookEndpointResponseSchema }],
      errors: ["NOT_FOUND"],
    }),
    requireAdmin(),
    async (c) => callerJson(c, view(await endpointOr404(c))),
  )

  .patch(
    "/api/v1/admin/webhooks/:id",
    describe({
      operationId: "updateWebhookEndpoint",
      summary: "Edit a webhook endpoint (only the fields named; enabled: false pauses it and drops its pending deliveries)",
      tags: ["admin"],
      responses: [{ status: 200, description: "The endpoint as written", schema: WebhookEndpointResponseSchema }],
      errors: ["NOT_FOUND"],
    }),
    requireAdmin(),
    validateJson(WebhookEndpointPatchSchema),
    async (c) => {
      const patch = c.req.valid("json");
      const endpoint = await endpointOr404(c);
      return callerJson(c, view(await updateEndpoint(c, endpoint, patch, "webhook_endpoint.update", patch)));
    },
  )

  .post(
    "/api/v1/admin/webhooks/:id/rotate-secret",
    describe({
      operationId: "rotateWebhookSecret",
      summary: "Replace a webhook endpoint's signing secret (the new one is in this answer only; deliveries from now on are signed with it)",
      tags: ["admin"],
      responses: [{ status: 200, description: "The endpoint, with its new `secret`", schema: WebhookEndpointCreatedSchema }],
      errors: ["NOT_FOUND"],
    }),
    requireAdmin(),
    async (c) => {
      const endpoint = await endpointOr404(c);
      const secret = generateWebhookSecret();
      const written = await updateEndpoint(c, endpoint, { secret }, "webhook_endpoint.rotate_secret");
      return callerJson(c, { ...view(written), secret });
    },
  )

  .delete(
    "/api/v1/admin/webhooks/:id",
    describe({
      operationId: "deleteWebhookEndpoint",
      summary: "Delete a webhook endpoint (its pending deliveries are dropped)",
      tags: ["admin"],
      responses: [{ status: 200, description: "The endpoint is gone", schema: WebhookEndpointDeletedSchema }],
      errors: ["NOT_FOUND"],
    }),
    requireAdmin(),
    async (c) => {
      const endpoint = await endpointOr404(c);
      const now = Date.now();
      const actor = c.get("caller").actor;
      const [deleted] = await c.env.DB.batch([
        deleteEndpointStatement(c.env.DB, endpoint.id),
        auditStatement(
          c.env.DB,
          { actor, action: "webhook_endpoint.delete", targetType: "webhook_endpoint", targetId: endpoint.id, details: { url: endpoint.url } },
          now,
        ),
      ]);
      if (deleted?.meta.changes === 0) throw new GatewayError("NOT_FOUND", { message: "No such webhook endpoint" });
      return callerJson(c, { id: endpoint.id, deleted: true as const });
    },
  );
