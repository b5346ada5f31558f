import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env";
import { hashPassword } from "../auth/password";
import { auditStatement } from "../db/audit";
import { uniqueViolation } from "../db/constraints";
import { nowIso } from "../db/json";
import { detachOwnerStatement, listKeys, revokeKeyStatement } from "../db/keys";
import {
  deleteUserStatement,
  getUser,
  insertUserStatement,
  listUsers,
  updateUserStatement,
  type UserRecord,
} from "../db/users";
import { GatewayError } from "../errors";
import { callerJson, requireAdmin } from "../middleware/caller";
import { validateJson } from "../middleware/validate";
import { propagateKeyChange } from "./keys";
import { UserCreateSchema, UserPatchSchema } from "./schemas";

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

export const adminUsersRoutes = new Hono<AppEnv>()
  .get("/api/v1/admin/users", requireAdmin(), async (c) => callerJson(c, { users: (await listUsers(c.env.DB)).map(userView) }))

  .post("/api/v1/admin/users", requireAdmin(), validateJson(UserCreateSchema), async (c) => {
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
    };
    await writeUser(c.env.DB, [
      insertUserStatement(c.env.DB, user),
      auditStatement(c.env.DB, { actor: c.get("caller").actor, action: "user.create", targetType: "user", targetId: user.id, details: auditedChanges(body) }, now),
    ]);
    return callerJson(c, userView(user), 201);
  })

  .get("/api/v1/admin/users/:id", requireAdmin(), async (c) => callerJson(c, userView(await userOr404(c))))

  .patch("/api/v1/admin/users/:id", requireAdmin(), validateJson(UserPatchSchema), async (c) => {
    const { password, ...patch } = c.req.valid("json");
    const user = await userOr404(c);
    const now = Date.now();
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
    return callerJson(c, userView(updated));
  })

  /**
   * Deleting a user revokes their keys (each audited) and detaches them, in
   * the same transaction: a key must not outlive the person it was issued to.
   */
  .delete("/api/v1/admin/users/:id", requireAdmin(), async (c) => {
    const db = c.env.DB;
    const actor = c.get("caller").actor;
    const user = await userOr404(c);
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
    for (const key of live) await propagateKeyChange(c.env, { ...key, status: "revoked", ownerId: null });
    return callerJson(c, { id: user.id, deleted: true, revokedKeys: live.map((key) => key.id) });
  });
