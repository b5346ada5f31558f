import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env";
import { invalidateKeyCache } from "../auth/key-cache";
import { generateKey, formatHasEnv, hashKey, keyEnv, keyPrefix } from "../auth/key-format";
import { keyFieldRefusal, type KeyEditor } from "../auth/key-permissions";
import { auditStatement } from "../db/audit";
import { nowIso } from "../db/json";
import {
  dropUnclaimedReplacementStatement,
  getKey,
  insertKeyStatement,
  listKeys,
  markRotatedStatement,
  revokeKeyStatement,
  updateKeyStatement,
  type KeyRecord,
} from "../db/keys";
import { getUser } from "../db/users";
import type { Env } from "../env";
import { GatewayError } from "../errors";
import { syncKeyState } from "../limits/client";
import { callerJson, requireUser, type Caller } from "../middleware/caller";
import { validateJson, validationError } from "../middleware/validate";
import { KeyCreateSchema, KeyPatchSchema, KeyRotateSchema, type KeyPatchInput } from "./schemas";

/**
 * The keys API: a user manages their own keys, an admin all of them. The
 * plaintext key is in the answer to create and rotate, and nowhere else.
 * Every write also reaches the key's Durable Object at once, so revocation
 * and deactivation apply on the very next request, whatever isolates cache.
 */

/** What the API shows of a key: everything but the hash. */
export function keyView(key: KeyRecord) {
  const { hash: _hash, ...view } = key;
  return view;
}

function editorOf(caller: Caller): KeyEditor {
  return {
    isAdmin: caller.isAdmin,
    userId: caller.user?.id ?? null,
    products: caller.user?.products ?? [],
    scopes: caller.user?.scopes ?? [],
  };
}

/** A key the caller may see; someone else's is "not found", so ids do not leak. */
async function visibleKey(c: Context<AppEnv>, id: string): Promise<KeyRecord> {
  const caller = c.get("caller");
  const key = await getKey(c.env.DB, id);
  if (!key || (!caller.isAdmin && key.ownerId !== caller.user?.id)) throw new GatewayError("NOT_FOUND", { message: "No such key" });
  return key;
}

function assertAllowed(caller: Caller, fields: Parameters<typeof keyFieldRefusal>[1]): void {
  const refusal = keyFieldRefusal(editorOf(caller), fields);
  if (refusal) throw refusal;
}

async function assertOwnerExists(db: D1Database, ownerId: string | undefined): Promise<void> {
  if (ownerId !== undefined && !(await getUser(db, ownerId))) {
    throw validationError([{ path: "ownerId", message: "No user has this id" }]);
  }
}

/**
 * After a key row changed in D1: drop this isolate's cached rows for its
 * prefix and tell the key's Durable Object its state. If the object cannot be
 * told, the change is saved but not yet instant everywhere: say so (503), and
 * repeating the request applies it.
 */
export async function propagateKeyChange(env: Env, key: KeyRecord): Promise<void> {
  invalidateKeyCache(key.prefix);
  try {
    await syncKeyState(env, key);
  } catch (error) {
    console.error(JSON.stringify({ event: "key_state_sync_failed", keyId: key.id, error: String(error) }));
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", {
      message: "The change is saved but has not reached the rate limiter; repeat the request to apply it at once",
    });
  }
}

/** A status edit is its own audit action, so deactivations stand out in the log. */
function patchAction(key: KeyRecord, patch: KeyPatchInput): string {
  if (patch.status === "inactive" && key.status !== "inactive") return "key.deactivate";
  if (patch.status === "active" && key.status !== "active") return "key.reactivate";
  return "key.update";
}

/** Only the fields a patch names; `null` stays (it clears), absent ones go. */
function presentFields<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)) as Partial<T>;
}

async function newKeyMaterial(format: KeyRecord["format"], env: "live" | "test") {
  const key = generateKey(format, env);
  return { key, prefix: keyPrefix(key), hash: await hashKey(key), env: keyEnv(key, format) };
}

export const keysRoutes = new Hono<AppEnv>()
  .post("/api/v1/keys", requireUser(), validateJson(KeyCreateSchema), async (c) => {
    const caller = c.get("caller");
    const body = c.req.valid("json");
    assertAllowed(caller, body);
    await assertOwnerExists(c.env.DB, body.ownerId);
    const format = body.format ?? "ilal";
    if (body.env !== undefined && !formatHasEnv(format)) {
      throw validationError([{ path: "env", message: `keys of format ${format} have no environment` }]);
    }
    const ownerId = body.ownerId ?? caller.user?.id ?? null;
    // A key with no owner (ADMIN_TOKEN, no ownerId) has nobody to inherit from, and
    // defaulting to every product made `keys create --name ci` an all-access key.
    if (ownerId === null && body.products === undefined) {
      throw validationError([{ path: "products", message: "is required for a key with no owner (name them, or [\"*\"] for all)" }]);
    }
    // Unless the body says otherwise, a key gets what its owner may use.
    const owner = ownerId === null ? undefined : ownerId === caller.user?.id ? caller.user : await getUser(c.env.DB, ownerId);
    const now = Date.now();
    const material = await newKeyMaterial(format, body.env ?? "live");
    const record: KeyRecord = {
      id: crypto.randomUUID(),
      prefix: material.prefix,
      hash: material.hash,
      format,
      env: material.env,
      name: body.name,
      ownerId,
      status: "active",
      createdAt: nowIso(now),
      updatedAt: nowIso(now),
      lastUsedAt: null,
      expiresAt: body.expiresAt ?? null,
      rateLimitPerMinute: body.rateLimitPerMinute ?? null,
      rateLimitPerDay: body.rateLimitPerDay ?? null,
      ipAllowlist: body.ipAllowlist ?? [],
      // [] only if the owner vanished since it was checked: then no products, never all of them.
      products: body.products ?? owner?.products ?? [],
      scopes: body.scopes ?? owner?.scopes ?? ["*"],
      rotatedTo: null,
      graceUntil: null,
    };
    await c.env.DB.batch([
      insertKeyStatement(c.env.DB, record),
      auditStatement(
        c.env.DB,
        { actor: caller.actor, action: "key.create", targetType: "key", targetId: record.id, details: { prefix: record.prefix, ...body } },
        now,
      ),
    ]);
    // This isolate may hold a negative cache entry for the new prefix.
    invalidateKeyCache(record.prefix);
    return callerJson(c, { ...keyView(record), key: material.key }, 201);
  })

  .get("/api/v1/keys", requireUser(), async (c) => {
    const caller = c.get("caller");
    const keys = await listKeys(c.env.DB, caller.isAdmin ? undefined : caller.user!.id);
    return callerJson(c, { keys: keys.map(keyView) });
  })

  .get("/api/v1/keys/:id", requireUser(), async (c) => {
    return callerJson(c, keyView(await visibleKey(c, c.req.param("id"))));
  })

  .patch("/api/v1/keys/:id", requireUser(), validateJson(KeyPatchSchema), async (c) => {
    const caller = c.get("caller");
    const patch = presentFields(c.req.valid("json"));
    const key = await visibleKey(c, c.req.param("id"));
    if (key.status === "revoked") throw new GatewayError("CONFLICT", { message: "A revoked key cannot be changed" });
    assertAllowed(caller, patch);
    await assertOwnerExists(c.env.DB, patch.ownerId);
    const now = Date.now();
    const updated: KeyRecord = { ...key, ...patch, updatedAt: nowIso(now) };
    const [result] = await c.env.DB.batch([
      updateKeyStatement(c.env.DB, updated),
      auditStatement(c.env.DB, { actor: caller.actor, action: patchAction(key, patch), targetType: "key", targetId: key.id, details: patch }, now),
    ]);
    // The update skips revoked rows: the key was revoked since we read it.
    if (result?.meta.changes === 0) throw new GatewayError("CONFLICT", { message: "A revoked key cannot be changed" });
    await propagateKeyChange(c.env, updated);
    return callerJson(c, keyView(updated));
  })

  // Idempotent: revoking a revoked key answers the same and writes nothing
  // new, but tells the key's object again (repairing a failed earlier attempt).
  .delete("/api/v1/keys/:id", requireUser(), async (c) => {
    const caller = c.get("caller");
    const key = await visibleKey(c, c.req.param("id"));
    const now = Date.now();
    await c.env.DB.batch([
      revokeKeyStatement(c.env.DB, key.id, nowIso(now)),
      auditStatement(c.env.DB, { actor: caller.actor, action: "key.revoke", targetType: "key", targetId: key.id }, now),
    ]);
    await propagateKeyChange(c.env, { ...key, status: "revoked" });
    return callerJson(c, { id: key.id, status: "revoked" });
  })

  .post("/api/v1/keys/:id/rotate", requireUser(), validateJson(KeyRotateSchema), async (c) => {
    const caller = c.get("caller");
    const { gracePeriodSeconds = 0 } = c.req.valid("json");
    const key = await visibleKey(c, c.req.param("id"));
    if (key.status !== "active") throw new GatewayError("CONFLICT", { message: `Only an active key can be rotated; this one is ${key.status}` });
    if (key.rotatedTo !== null) throw new GatewayError("CONFLICT", { message: `This key was already rotated to ${key.rotatedTo}` });

    const now = Date.now();
    const graceUntil = nowIso(now + gracePeriodSeconds * 1000);
    const material = await newKeyMaterial(key.format, key.env ?? "live");
    // The replacement keeps the old key's name, owner and policy.
    const replacement: KeyRecord = {
      ...key,
      id: crypto.randomUUID(),
      prefix: material.prefix,
      hash: material.hash,
      createdAt: nowIso(now),
      updatedAt: nowIso(now),
      lastUsedAt: null,
      rotatedTo: null,
      graceUntil: null,
    };
    const rotated: KeyRecord = { ...key, rotatedTo: replacement.id, graceUntil, updatedAt: nowIso(now) };
    // Each audit row is guarded by the statement before it: no rotation, no record.
    const [, marked] = await c.env.DB.batch([
      insertKeyStatement(c.env.DB, replacement),
      markRotatedStatement(c.env.DB, key.id, replacement.id, graceUntil, rotated.updatedAt),
      auditStatement(
        c.env.DB,
        { actor: caller.actor, action: "key.rotate", targetType: "key", targetId: key.id, details: { rotatedTo: replacement.id, gracePeriodSeconds, graceUntil } },
        now,
      ),
      auditStatement(
        c.env.DB,
        { actor: caller.actor, action: "key.create", targetType: "key", targetId: replacement.id, details: { prefix: replacement.prefix, rotatedFrom: key.id } },
        now,
      ),
      // The replacement must exist before the mark (rotated_to references it); if the mark missed, it goes again.
      dropUnclaimedReplacementStatement(c.env.DB, key.id, replacement.id),
    ]);
    // Rotated or revoked by someone else since we read it: nothing of this attempt remains.
    if (marked?.meta.changes === 0) throw new GatewayError("CONFLICT", { message: "The key changed meanwhile; read it and try again" });
    invalidateKeyCache(replacement.prefix);
    await propagateKeyChange(c.env, rotated);
    return callerJson(c, { ...keyView(replacement), key: material.key, rotatedFrom: key.id, graceUntil }, 201);
  });
