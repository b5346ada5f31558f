import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env";
import { changeOutsideD1AuditStatement, type AuditInput } from "../db/audit";
import type { KeyRecord } from "../db/keys";
import { getUser } from "../db/users";
import { GatewayError } from "../errors";
import { keyCredits, ownerCredits, type CreditOperation } from "../limits/client";
import type { CreditView } from "../limits/rate-limiter";
import { callerJson, requireAdmin, requireUser } from "../middleware/caller";
import { validateJson } from "../middleware/validate";
import { describe } from "../openapi/operation";
import { visibleKey } from "./keys";
import { CreditsSetSchema, CreditsTopUpSchema, KeyCreditsSchema, OwnerCreditsSchema } from "./schemas";

/**
 * Credits of a key (its rotation lineage: a rotation's keys share one balance)
 * and of an owner (shared by the owner's keys while the owner has owner-level
 * limits, so their calls count in the owner's object). Balances live in the
 * rate limiter's objects, beside the windows they are decided with
 * (src/limits/credits.ts): an admin's change is made there, then audited.
 * Owners read their keys' credits; only admins change them.
 */

const LIMITER_UNREACHABLE = "Rate limiter is unavailable; nothing was changed";

/** A balance operation on the objects; an unreachable object is a 503 (nothing changed, or a read that could not be made). */
async function onLimiter(operation: () => Promise<CreditView | null>): Promise<CreditView | null> {
  try {
    return await operation();
  } catch (error) {
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", { message: LIMITER_UNREACHABLE, cause: error, context: { event: "rate_limiter_failed" } });
  }
}

/**
 * Records a change already made in the object. If the audit row cannot be
 * written, the change stands: its one JSON log line is then its record, and
 * the answer says so (503), so the admin knows to look.
 */
async function audit(c: Context<AppEnv>, input: Omit<AuditInput, "actor">): Promise<void> {
  const entry: AuditInput = { ...input, actor: c.get("caller").actor };
  try {
    await changeOutsideD1AuditStatement(c.env.DB, entry).run();
  } catch (error) {
    console.error(JSON.stringify({ event: "credits_audit_failed", ...entry, error: String(error) }));
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", {
      message: "The credits were changed but the audit log could not be written; the change is in the logs",
    });
  }
}

/** A revoked key is final, as for every other write to it. */
function assertChangeable(key: KeyRecord): void {
  if (key.status === "revoked") throw new GatewayError("CONFLICT", { message: "A revoked key cannot be changed" });
}

function keyAnswer(c: Context<AppEnv>, key: KeyRecord, credits: CreditView | null): Response {
  return callerJson(c, { keyId: key.id, lineageId: key.lineageId, credits });
}

/** A top-up needs a balance to add to: a key or owner without one draws on no credits, and setting one is a decision of its own (PUT). */
function toppedUpOr409(credits: CreditView | null): CreditView {
  if (!credits) throw new GatewayError("CONFLICT", { message: "There is no balance to top up: set one first (PUT …/credits)" });
  return credits;
}

async function ownerOr404(c: Context<AppEnv>) {
  const user = await getUser(c.env.DB, c.req.param("id")!);
  if (!user) throw new GatewayError("NOT_FOUND", { message: "No such user" });
  return user;
}

const KEY_ERRORS = ["NOT_FOUND", "AUTH_BACKEND_UNAVAILABLE"] as const;

export const creditsRoutes = new Hono<AppEnv>()
  .get(
    "/api/v1/keys/:id/credits",
    describe({
      operationId: "getKeyCredits",
      summary: "A key's credits (its rotation lineage's balance)",
      tags: ["keys"],
      responses: [{ status: 200, description: "The balance, or null when the key draws on none", schema: KeyCreditsSchema }],
      errors: [...KEY_ERRORS],
    }),
    requireUser(),
    async (c) => {
      const key = await visibleKey(c, c.req.param("id"));
      return keyAnswer(c, key, await onLimiter(() => keyCredits(c.env, key, { read: true })));
    },
  )

  .put(
    "/api/v1/keys/:id/credits",
    describe({
      operationId: "setKeyCredits",
      summary: "Set a key's credits: balance, refill, low threshold (admins)",
      tags: ["keys"],
      responses: [{ status: 200, description: "The balance as set", schema: KeyCreditsSchema }],
      errors: [...KEY_ERRORS, "CONFLICT"],
    }),
    requireAdmin(),
    validateJson(CreditsSetSchema),
    async (c) => {
      const setting = c.req.valid("json");
      const key = await visibleKey(c, c.req.param("id"));
      assertChangeable(key);
      const credits = await onLimiter(() => keyCredits(c.env, key, { set: setting }));
      await audit(c, { action: "key.credits.set", targetType: "key", targetId: key.id, details: setting });
      return keyAnswer(c, key, credits);
    },
  )

  .post(
    "/api/v1/keys/:id/credits/top-up",
    describe({
      operationId: "topUpKeyCredits",
      summary: "Add credits to a key's balance (admins)",
      tags: ["keys"],
      responses: [{ status: 200, description: "The balance after the top-up", schema: KeyCreditsSchema }],
      errors: [...KEY_ERRORS, "CONFLICT"],
    }),
    requireAdmin(),
    validateJson(CreditsTopUpSchema),
    async (c) => {
      const { amount } = c.req.valid("json");
      const key = await visibleKey(c, c.req.param("id"));
      assertChangeable(key);
      const credits = toppedUpOr409(await onLimiter(() => keyCredits(c.env, key, { topUp: amount })));
      await audit(c, { action: "key.credits.top_up", targetType: "key", targetId: key.id, details: { amount, balance: credits.balance } });
      return keyAnswer(c, key, credits);
    },
  )

  .delete(
    "/api/v1/keys/:id/credits",
    describe({
      operationId: "removeKeyCredits",
      summary: "Remove a key's balance: its calls draw on no credits again (admins)",
      tags: ["keys"],
      responses: [{ status: 200, description: "The key, with credits null", schema: KeyCreditsSchema }],
      errors: [...KEY_ERRORS],
    }),
    requireAdmin(),
    async (c) => {
      const key = await visibleKey(c, c.req.param("id"));
      await onLimiter(() => keyCredits(c.env, key, { set: null }));
      await audit(c, { action: "key.credits.remove", targetType: "key", targetId: key.id });
      return keyAnswer(c, key, null);
    },
  )

  .get(
    "/api/v1/admin/users/:id/credits",
    describe({
      operationId: "getOwnerCredits",
      summary: "An owner's shared credits",
      tags: ["admin"],
      responses: [{ status: 200, description: "The balance, or null", schema: OwnerCreditsSchema }],
      errors: [...KEY_ERRORS],
    }),
    requireAdmin(),
    async (c) => {
      const user = await ownerOr404(c);
      return callerJson(c, { userId: user.id, credits: await onLimiter(() => ownerCredits(c.env, user.id, { read: true })) });
    },
  )

  .put(
    "/api/v1/admin/users/:id/credits",
    describe({
      operationId: "setOwnerCredits",
      summary: "Set an owner's shared credits (the owner needs owner-level limits: their keys then count in one object)",
      tags: ["admin"],
      responses: [{ status: 200, description: "The balance as set", schema: OwnerCreditsSchema }],
      errors: [...KEY_ERRORS, "CONFLICT"],
    }),
    requireAdmin(),
    validateJson(CreditsSetSchema),
    async (c) => ownerChange(c, { set: c.req.valid("json") }, "user.credits.set", c.req.valid("json")),
  )

  .post(
    "/api/v1/admin/users/:id/credits/top-up",
    describe({
      operationId: "topUpOwnerCredits",
      summary: "Add credits to an owner's shared balance",
      tags: ["admin"],
      responses: [{ status: 200, description: "The balance after the top-up", schema: OwnerCreditsSchema }],
      errors: [...KEY_ERRORS, "CONFLICT"],
    }),
    requireAdmin(),
    validateJson(CreditsTopUpSchema),
    async (c) => ownerChange(c, { topUp: c.req.valid("json").amount }, "user.credits.top_up", c.req.valid("json")),
  )

  .delete(
    "/api/v1/admin/users/:id/credits",
    describe({
      operationId: "removeOwnerCredits",
      summary: "Remove an owner's shared balance",
      tags: ["admin"],
      responses: [{ status: 200, description: "The owner, with credits null", schema: OwnerCreditsSchema }],
      errors: [...KEY_ERRORS],
    }),
    requireAdmin(),
    async (c) => ownerChange(c, { set: null }, "user.credits.remove", undefined),
  );

/**
 * An owner's balance binds only calls counted in the owner's object, which
 * holds while the owner has owner-level limits: setting one without them
 * would be a balance nothing draws on, so it is refused (409).
 */
async function ownerChange(c: Context<AppEnv>, operation: CreditOperation, action: string, details: Record<string, unknown> | undefined): Promise<Response> {
  const user = await ownerOr404(c);
  if ("set" in operation && operation.set !== null && user.rateLimitPerMinute === null && user.rateLimitPerDay === null) {
    throw new GatewayError("CONFLICT", {
      message: "Owner credits bind the calls counted in the owner's object: give the user owner-level limits first (PATCH /api/v1/admin/users/:id)",
    });
  }
  const changed = await onLimiter(() => ownerCredits(c.env, user.id, operation));
  const credits = "topUp" in operation ? toppedUpOr409(changed) : changed;
  await audit(c, {
    action,
    targetType: "user",
    targetId: user.id,
    ...(details ? { details: { ...details, ...(credits ? { balance: credits.balance } : {}) } } : {}),
  });
  return callerJson(c, { userId: user.id, credits });
}
