import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env";
import { hashPassword } from "../auth/password";
import { auditStatement } from "../db/audit";
import { uniqueViolation } from "../db/constraints";
import { nowIso } from "../db/json";
import { detachOwnerStatement, listKeys, revokeKeyStatement } from "../db/keys";
import { deleteUserStatement, getUser, insertUserStatement, listUserPage, updateUserStatement, userGrantVersion, type UserRecord } from "../db/users";
import { GatewayError } from "../errors";
import { invalidateKeyCache } from "../auth/key-cache";
import type { Env } from "../env";
import { applyOwnerLimits, revokeUserTokens, voidUserTokensBefore } from "../limits/client";
import { callerJson, requireAdmin } from "../middleware/caller";
import { validateJson, validateQuery } from "../middleware/validate";
import { describe } from "../openapi/operation";
import { publishEvents } from "../webhooks/events";
import { keyRevokedEvent } from "../webhooks/key-events";
import { DEFAULT_PAGE_SIZE, encodeCursor } from "./cursor";
import { propagateKeyChange } from "./keys";
import { UserCreateSchema, UserDeletedSchema, UserListQuerySchema, UserListSchema, UserPatchSchema, UserResponseSchema, type UserPatchInput } from "./schemas";

/** Users: admin only. Passwords are stored as PBKDF2 hashes and never leave the server, not even hashed. */

export function userView(user: UserRecord) {
  const { passwordHash: _passwordHash, ...view } = user;
  return view;
}

async function userOr404(c: Context<AppEnv>): Promise<UserRecord> {
  const user = await getUser(c.env.DB, c.req.param("id")!);
  if (!user) throw new GatewayError("NOT_FOUND", { message: "No such user" });
  return user;
}

/** Runs a write batch, turning a duplicate email into 409 naming the field. */
async function writeUser(db: D1Database, statements: D1PreparedStatement[]): Promise<void> {
  try {
    await db.batch(statements);
  } catch (error) {
    if (uniqueViolation(error) === "users.email") {
      throw new GatewayError("CONFLICT", { message: "Another user has this email", details: { field: "email" } });
    }
    throw error;
  }
}

/** What the audit log records of a user edit: the password's change, never the password. */
function auditedChanges(patch: { password?: string | undefined }): Record<string, unknown> {
  const { password, ...rest } = patch;
  return password === undefined ? rest : { ...rest, passwordChanged: true };
}

type GrantPatch = Pick<UserPatchInput, "role" | "products" | "scopes">;

/** The fields a user's tokens carry as grants. The password and email grant nothing, so editing them keeps tokens valid. */
function namesGrants(patch: GrantPatch): boolean {
  return patch.role !== undefined || patch.products !== undefined || patch.scopes !== undefined;
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((member) => right.has(member));
}

/** Whether the patch gives a grant a value other than the stored one (lists compared as sets). */
function changesGrants(user: UserRecord, patch: GrantPatch): boolean {
  return (
    (patch.role !== undefined && patch.role !== user.role) ||
    (patch.products !== undefined && !sameMembers(patch.products, user.products)) ||
    (patch.scopes !== undefined && !sameMembers(patch.scopes, user.scopes))
  );
}

/**
 * Tells the user's limiter object before the admin call answers, so the
 * change holds on the user's very next product call. Unreachable is a 503,
 * as for keys (routes/keys.ts propagateKeyChange): never a reported success.
 */
async function reachUserLimiter(userId: string, failure: string, tell: () => Promise<void>): Promise<void> {
  try {
    await tell();
  } catch (error) {
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", { message: failure, cause: error, context: { event: "user_state_sync_failed", userId } });
  }
}

function hasOwnerLimits(user: Pick<UserRecord, "rateLimitPerMinute" | "rateLimitPerDay">): boolean {
  return user.rateLimitPerMinute !== null || user.rateLimitPerDay !== null;
}

/**
 * After the user's owner-level limits were written: their object learns
 * them, and their keys' counting moves into it (or back out), with the
 * current windows' counts. This isolate's cached key rows say where keys
 * count, so they go; other isolates' are answered "moved" until they expire.
 */
async function moveKeyCounting(env: Env, user: UserRecord, lineageIds: string[]): Promise<void> {
  const limits = hasOwnerLimits(user) ? { limitPerMinute: user.rateLimitPerMinute, limitPerDay: user.rateLimitPerDay } : null;
  invalidateKeyCache();
  await reachUserLimiter(user.id, "The limits are saved but have not reached the rate limiter; repeat the request to apply them", () =>
    applyOwnerLimits(env, user.id, limits, lineageIds),
  );
}

export const adminUsersRoutes = new Hono<AppEnv>()
  .get(
    "/api/v1/admin/users",
    describe({
      operationId: "listUsers",
      summary: "List users, oldest first, a page at a time",
      tags: ["admin"],
      responses: [{ status: 200, description: "A page of users; nextCursor is null on the last", schema: UserListSchema }],
    }),
    requireAdmin(),
    validateQuery(UserListQuerySchema),
    async (c) => {
      const query = c.req.valid("query");
      const page = await listUserPage(c.env.DB, { after: query.cursor, limit: query.limit ?? DEFAULT_PAGE_SIZE });
      return callerJson(c, { users: page.rows.map(userView), nextCursor: encodeCursor("users", page.nextAfter) });
    },
  )

  .post(
    "/api/v1/admin/users",
    describe({
      operationId: "createUser",
      summary: "Create a user",
      tags: ["admin"],
      responses: [{ status: 201, description: "The user", schema: UserResponseSchema }],
      errors: ["CONFLICT"],
    }),
    requireAdmin(),
    validateJson(UserCreateSchema),
    async (c) => {
      const body = c.req.valid("json");
      const now = Date.now();
      const user: UserRecord = {
        id: crypto.randomUUID(),
        email: body.email,
        passwordHash: await hashPassword(body.password),
        role: body.role ?? "user",
        products: body.products ?? ["*"],
        scopes: body.scopes ?? ["*"],
        createdAt: nowIso(now),
        updatedAt: nowIso(now),
        rateLimitPerMinute: body.rateLimitPerMinute ?? null,
        rateLimitPerDay: body.rateLimitPerDay ?? null,
        maxActiveKeys: body.maxActiveKeys ?? null,
      };
      await writeUser(c.env.DB, [
        insertUserStatement(c.env.DB, user),
        auditStatement(
          c.env.DB,
          { actor: c.get("caller").actor, action: "user.create", targetType: "user", targetId: user.id, details: auditedChanges(body) },
          now,
        ),
      ]);
      // A new user has no keys yet: only their object needs to know the limits.
      if (hasOwnerLimits(user)) await moveKeyCounting(c.env, user, []);
      return callerJson(c, userView(user), 201);
    },
  )

  .get(
    "/api/v1/admin/users/:id",
    describe({
      operationId: "getUser",
      summary: "Inspect a user",
      tags: ["admin"],
      responses: [{ status: 200, description: "The user", schema: UserResponseSchema }],
      errors: ["NOT_FOUND"],
    }),
    requireAdmin(),
    async (c) => callerJson(c, userView(await userOr404(c))),
  )

  .patch(
    "/api/v1/admin/users/:id",
    describe({
      operationId: "updateUser",
      summary: "Edit a user",
      tags: ["admin"],
      responses: [{ status: 200, description: "The user as written", schema: UserResponseSchema }],
      errors: ["NOT_FOUND", "CONFLICT"],
    }),
    requireAdmin(),
    validateJson(UserPatchSchema),
    async (c) => {
      const { password, ...patch } = c.req.valid("json");
      const user = await userOr404(c);
      const grantsChange = changesGrants(user, patch);
      // A new grant version is strictly newer than the old one, even within one millisecond.
      const now = grantsChange ? Math.max(Date.now(), userGrantVersion(user) + 1) : Date.now();
      const updated: UserRecord = {
        ...user,
        ...patch,
        passwordHash: password === undefined ? user.passwordHash : await hashPassword(password),
        updatedAt: nowIso(now),
      };
      await writeUser(c.env.DB, [
        updateUserStatement(c.env.DB, updated),
        auditStatement(
          c.env.DB,
          { actor: c.get("caller").actor, action: "user.update", targetType: "user", targetId: user.id, details: auditedChanges({ ...patch, password }) },
          now,
        ),
      ]);
      if (patch.rateLimitPerMinute !== undefined || patch.rateLimitPerDay !== undefined) {
        // Naming the limits again (say, repeating a PATCH that got a 503) completes an earlier move.
        const lineages = (await listKeys(c.env.DB, user.id)).filter((key) => key.status !== "revoked").map((key) => key.lineageId);
        await moveKeyCounting(c.env, updated, [...new Set(lineages)]);
      }
      if (namesGrants(patch)) {
        // A change voids the tokens signed before it. Naming the stored grants again
        // (say, repeating a PATCH that got a 503) re-sends the stored version,
        // which completes an earlier change that never reached the object.
        const version = userGrantVersion(grantsChange ? updated : user);
        await reachUserLimiter(user.id, "The change is saved but has not reached the rate limiter; repeat the request to apply it at once", () =>
          voidUserTokensBefore(c.env, user.id, version),
        );
      }
      return callerJson(c, userView(updated));
    },
  )

  /**
   * Deleting a user revokes their keys (each audited) and detaches them, in
   * the same transaction: a key must not outlive the person it was issued to.
   * Their tokens are revoked in their limiter object first: once the row is
   * gone, a repeat of this call is a 404 and could not finish that part.
   */
  .delete(
    "/api/v1/admin/users/:id",
    describe({
      operationId: "deleteUser",
      summary: "Delete a user, revoking their keys",
      tags: ["admin"],
      responses: [{ status: 200, description: "The user is gone; these keys were revoked", schema: UserDeletedSchema }],
      errors: ["NOT_FOUND"],
    }),
    requireAdmin(),
    async (c) => {
      const db = c.env.DB;
      const actor = c.get("caller").actor;
      const user = await userOr404(c);
      await reachUserLimiter(user.id, "The user was not deleted: the rate limiter could not be reached to revoke their tokens; repeat the request", () =>
        revokeUserTokens(c.env, user.id),
      );
      const now = Date.now();
      const live = (await listKeys(db, user.id)).filter((key) => key.status !== "revoked");
      await db.batch([
        ...live.flatMap((key) => [
          revokeKeyStatement(db, key.id, nowIso(now)),
          auditStatement(db, { actor, action: "key.revoke", targetType: "key", targetId: key.id, details: { reason: "owner deleted" } }, now),
        ]),
        detachOwnerStatement(db, user.id),
        deleteUserStatement(db, user.id),
        auditStatement(db, { actor, action: "user.delete", targetType: "user", targetId: user.id, details: { email: user.email } }, now),
      ]);
      // Saved: one key.revoked each, off the request path.
      c.executionCtx.waitUntil(
        publishEvents(
          c.env,
          live.map((key) => keyRevokedEvent(key, actor, now, "owner deleted")),
        ),
      );
      // With the owner they had: while the owner had owner-level limits their keys counted in the owner's object, which must learn it too.
      for (const key of live) await propagateKeyChange(c.env, { ...key, status: "revoked" });
      return callerJson(c, { id: user.id, deleted: true, revokedKeys: live.map((key) => key.id) });
    },
  );
