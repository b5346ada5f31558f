import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { forgetServiceToken, generateServiceToken, hashServiceToken } from "../auth/service-token";
import { auditStatement } from "../db/audit";
import { nowIso } from "../db/json";
import { getServiceToken, insertServiceTokenStatement, listServiceTokens, revokeServiceTokenStatement, type ServiceTokenRecord } from "../db/service-tokens";
import { GatewayError } from "../errors";
import { callerJson, requireAdmin } from "../middleware/caller";
import { validateJson } from "../middleware/validate";
import { describe } from "../openapi/operation";
import { ServiceTokenCreatedSchema, ServiceTokenCreateSchema, ServiceTokenListSchema, ServiceTokenRevokedSchema } from "./schemas";

/**
 * Service credentials, admin only: issue (the token is in this answer only),
 * list, revoke (final; idempotent). Every change is audited.
 */
function view(token: ServiceTokenRecord) {
  const { hash: _hash, ...rest } = token;
  return rest;
}

export const adminServiceTokensRoutes = new Hono<AppEnv>()
  .post(
    "/api/v1/admin/service-tokens",
    describe({
      operationId: "createServiceToken",
      summary: "Issue a service credential for POST /api/v1/keys/verify (the token is in this answer only)",
      tags: ["admin"],
      responses: [{ status: 201, description: "The credential, with its `token`", schema: ServiceTokenCreatedSchema }],
    }),
    requireAdmin(),
    validateJson(ServiceTokenCreateSchema),
    async (c) => {
      const { name } = c.req.valid("json");
      const actor = c.get("caller").actor;
      const now = Date.now();
      const { token, prefix } = generateServiceToken();
      const record: ServiceTokenRecord = {
        id: crypto.randomUUID(),
        name,
        prefix,
        hash: await hashServiceToken(token),
        createdAt: nowIso(now),
        createdBy: actor,
        revokedAt: null,
      };
      await c.env.DB.batch([
        insertServiceTokenStatement(c.env.DB, record),
        auditStatement(c.env.DB, { actor, action: "service_token.create", targetType: "service_token", targetId: record.id, details: { name, prefix } }, now),
      ]);
      forgetServiceToken(prefix);
      return callerJson(c, { ...view(record), token }, 201);
    },
  )
  .get(
    "/api/v1/admin/service-tokens",
    describe({
      operationId: "listServiceTokens",
      summary: "List service credentials, oldest first (never the tokens)",
      tags: ["admin"],
      responses: [{ status: 200, description: "Every service credential", schema: ServiceTokenListSchema }],
    }),
    requireAdmin(),
    async (c) => callerJson(c, { tokens: (await listServiceTokens(c.env.DB)).map(view) }),
  )
  .delete(
    "/api/v1/admin/service-tokens/:id",
    describe({
      operationId: "revokeServiceToken",
      summary: "Revoke a service credential (final; idempotent)",
      tags: ["admin"],
      responses: [{ status: 200, description: "The credential is revoked", schema: ServiceTokenRevokedSchema }],
      errors: ["NOT_FOUND"],
    }),
    requireAdmin(),
    async (c) => {
      const token = await getServiceToken(c.env.DB, c.req.param("id"));
      if (!token) throw new GatewayError("NOT_FOUND", { message: "No such service credential" });
      const now = Date.now();
      const actor = c.get("caller").actor;
      await c.env.DB.batch([
        revokeServiceTokenStatement(c.env.DB, token.id, nowIso(now)),
        auditStatement(c.env.DB, { actor, action: "service_token.revoke", targetType: "service_token", targetId: token.id }, now),
      ]);
      forgetServiceToken(token.prefix);
      return callerJson(c, { id: token.id, revoked: true as const });
    },
  );
