import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env";
import { invalidateKeyCache } from "../auth/key-cache";
import { generateKey, formatHasEnv, hashKey, keyEnv, keyPrefix } from "../auth/key-format";
import { adminDecisionRefusal, decisionSetters, keyFieldRefusal, type KeyEditor } from "../auth/key-permissions";
import { auditStatement } from "../db/audit";
import { nowIso } from "../db/json";
import {
  dropUnclaimedReplacementStatement,
  getKey,
  insertKeyStatement,
  insertKeyWithinOwnerCapStatement,
  listKeyPage,
  markRotatedStatement,
  revokeKeyStatement,
  updateKeyStatement,
  writtenKey,
  type KeyRecord,
} from "../db/keys";
import { getUser } from "../db/users";
import type { Env } from "../env";
import { GatewayError } from "../errors";
import { rehomeLineage, syncKeyState } from "../limits/client";
import { callerJson, requireUser, type Caller } from "../middleware/caller";
import { validateJson, validateQuery, validationError } from "../middleware/validate";
import { describe } from "../openapi/operation";
import { publishEvents } from "../webhooks/events";
import { keyCreatedEvent, keyRevokedEvent, keyRotatedEvent } from "../webhooks/key-events";
import { DEFAULT_PAGE_SIZE, encodeCursor } from "./cursor";
import {
  KeyCreatedSchema,
  KeyCreateSchema,
  KeyListQuerySchema,
  KeyListSchema,
  KeyPatchSchema,
  KeyResponseSchema,
  KeyRevokedSchema,
  KeyRotatedSchema,
  KeyRotateSchema,
  type KeyPatchInput,
} from "./schemas";

const IF_MATCH = { name: "If-Match", description: 'The ETag read (e.g. "3"), or *: write only if the key is still at that version' };
const ETAG = { name: "ETag", on: "success" } as const;

/**
 * The keys API: a user manages their own keys, an admin all of them. The
 * plaintext key is in the answer to create and rotate, and nowhere else.
 * Every write also reaches the key's Durable Object at once, so revocation
 * and deactivation apply on the very next request, whatever isolates cache.
 *
 * Concurrency (security review F4): every write moves the row's `version`, a
 * key's answers carry it as a strong ETag, and a write that judged the row it
 * read (a PATCH, a rotation) happens only if the row is still at that version:
 * a PATCH writes just the columns it names, and one that lost a race answers
 * 409 CONFLICT (412 when it sent If-Match) having written and audited nothing.
 * The key's object is told the row as written (UPDATE … RETURNING), with its
 * version, so late syncs cannot put back an older state.
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
export async function visibleKey(c: Context<AppEnv>, id: string): Promise<KeyRecord> {
  const caller = c.get("caller");
  const key = await getKey(c.env.DB, id);
  if (!key || (!caller.isAdmin && key.ownerId !== caller.user?.id)) throw new GatewayError("NOT_FOUND", { message: "No such key" });
  return key;
}

function assertAllowed(caller: Caller, fields: Parameters<typeof keyFieldRefusal>[1]): void {
  const refusal = keyFieldRefusal(editorOf(caller), fields);
  if (refusal) throw refusal;
}

/** The key's ETag: its version, strong (any write changes it). */
function etagOf(key: Pick<KeyRecord, "version">): string {
  return `"${key.version}"`;
}

/** A key as an answer, with its ETag. */
function keyAnswer(c: Context<AppEnv>, key: KeyRecord): Response {
  c.header("ETag", etagOf(key));
  return callerJson(c, keyView(key));
}

/**
 * If-Match (RFC 9110 section 13.1.1): `*`, or entity tags compared strongly.
 * A list naming none of the key's current ETag is 412 CONFLICT, before
 * anything is judged or written. Returns whether the request named a version,
 * so a race lost afterwards is a 412 too.
 */
function checkIfMatch(c: Context<AppEnv>, key: KeyRecord): boolean {
  const header = c.req.header("If-Match");
  if (header === undefined) return false;
  const tags = header.split(",").map((tag) => tag.trim());
  if (tags.includes("*")) return false;
  if (!tags.includes(etagOf(key))) {
    throw new GatewayError("CONFLICT", {
      status: 412,
      message: `If-Match names no current version of this key; its ETag is ${etagOf(key)}`,
      headers: { ETag: etagOf(key) },
    });
  }
  return true;
}

/** A conditioned write matched no row: say why, from the row as it is now. */
async function lostRace(db: D1Database, id: string, ifMatch: boolean): Promise<GatewayError> {
  const now = await getKey(db, id);
  const status = ifMatch ? 412 : 409;
  if (now?.status === "revoked") return new GatewayError("CONFLICT", { status, message: "A revoked key cannot be changed" });
  return new GatewayError("CONFLICT", {
    status,
    message: "The key changed since it was read; nothing was written. Read it again and retry",
    ...(now ? { headers: { ETag: etagOf(now) } } : {}),
  });
}

/** F9: an owner cannot undo an admin's deactivation or expiry of their key. */
function assertAdminDecisionsKept(caller: Caller, key: KeyRecord, patch: KeyPatchInput): void {
  const refusal = adminDecisionRefusal(editorOf(caller), key, patch);
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
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", {
      message: "The change is saved but has not reached the rate limiter; repeat the request to apply it at once",
      cause: error,
      context: { event: "key_state_sync_failed", keyId: key.id },
    });
  }
}

/** After a key changed hands: its lineage counts where its new owner's keys count (limits/client.ts rehomeLineage). */
async function moveLineageTo(env: Env, key: KeyRecord): Promise<void> {
  const owner = key.ownerId === null ? undefined : await getUser(env.DB, key.ownerId);
  const limited = owner !== undefined && (owner.rateLimitPerMinute !== null || owner.rateLimitPerDay !== null);
  try {
    await rehomeLineage(env, key.lineageId, owner ? { id: owner.id, limited } : null);
  } catch (error) {
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", {
      message: "The change is saved but has not reached the rate limiter; repeat the request to apply it at once",
      cause: error,
      context: { event: "key_state_sync_failed", keyId: key.id },
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

/** Who KEY_DEFAULT_TTL_DAYS is as the setter of an expiry: not the owner, so it binds them like an admin's (auth/key-permissions.ts). */
export const DEFAULT_TTL_SETTER = "config:KEY_DEFAULT_TTL_DAYS";

/**
 * Under KEY_DEFAULT_TTL_DAYS, only an admin may give a key no expiry or one
 * later than the policy's horizon (now + the TTL); a user's explicit expiry
 * must lie within it. Without the var, nothing is refused here.
 */
function ttlRefusal(caller: Caller, ttlDays: number | undefined, expiresAt: string | null | undefined, now: number): GatewayError | undefined {
  if (caller.isAdmin || ttlDays === undefined || expiresAt === undefined) return undefined;
  const horizon = now + ttlDays * 86_400_000;
  const refuse = (message: string) => new GatewayError("FORBIDDEN", { message: `expiresAt: ${message}`, details: { field: "expiresAt" } });
  if (expiresAt === null) return refuse(`keys expire within ${ttlDays} days (KEY_DEFAULT_TTL_DAYS); only an admin may create or keep a key that never expires`);
  if (Date.parse(expiresAt) > horizon) return refuse(`keys expire within ${ttlDays} days (KEY_DEFAULT_TTL_DAYS): at the latest ${nowIso(horizon)}`);
  return undefined;
}

/**
 * A new key's expiry: the one named (null: never), else now + KEY_DEFAULT_TTL_DAYS when set, else none; and who set it.
 */
function newKeyExpiry(caller: Caller, ttlDays: number | undefined, expiresAt: string | null | undefined, now: number) {
  if (expiresAt !== undefined) return { expiresAt, expiresSetBy: caller.actor, defaulted: false };
  if (ttlDays === undefined) return { expiresAt: null, expiresSetBy: null, defaulted: false };
  return { expiresAt: nowIso(now + ttlDays * 86_400_000), expiresSetBy: DEFAULT_TTL_SETTER, defaulted: true };
}

/** Runs a webhook publication after the answer, off the request path (publishEvents never throws). */
function publishInBackground(c: Context<AppEnv>, events: Parameters<typeof publishEvents>[1]): void {
  c.executionCtx.waitUntil(publishEvents(c.env, events));
}

async function newKeyMaterial(format: KeyRecord["format"], env: "live" | "test") {
  const key = generateKey(format, env);
  return { key, prefix: keyPrefix(key), hash: await hashKey(key), env: keyEnv(key, format) };
}

export const keysRoutes = new Hono<AppEnv>()
  .post(
    "/api/v1/keys",
    describe({
      operationId: "createKey",
      summary: "Create a key (the plaintext is in this answer only)",
      tags: ["keys"],
      responses: [{ status: 201, description: "The key, with its plaintext `key`", schema: KeyCreatedSchema }],
      errors: ["CONFLICT"],
      headers: [ETAG],
    }),
    requireUser(),
    validateJson(KeyCreateSchema),
    async (c) => {
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
        throw validationError([{ path: "products", message: 'is required for a key with no owner (name them, or ["*"] for all)' }]);
      }
      // Unless the body says otherwise, a key gets what its owner may use.
      const owner = ownerId === null ? undefined : ownerId === caller.user?.id ? caller.user : await getUser(c.env.DB, ownerId);
      const now = Date.now();
      const ttlDays = c.get("config").keyDefaultTtlDays;
      const ttlProblem = ttlRefusal(caller, ttlDays, body.expiresAt, now);
      if (ttlProblem) throw ttlProblem;
      const expiry = newKeyExpiry(caller, ttlDays, body.expiresAt, now);
      const material = await newKeyMaterial(format, body.env ?? "live");
      const id = crypto.randomUUID();
      const record: KeyRecord = {
        id,
        // A new key starts its own lineage; its rotations continue it.
        lineageId: id,
        rateLimitMode: body.rateLimitMode ?? null,
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
        expiresAt: expiry.expiresAt,
        rateLimitPerMinute: body.rateLimitPerMinute ?? null,
        rateLimitPerDay: body.rateLimitPerDay ?? null,
        ipAllowlist: body.ipAllowlist ?? [],
        // [] only if the owner vanished since it was checked: then no products, never all of them.
        products: body.products ?? owner?.products ?? [],
        scopes: body.scopes ?? owner?.scopes ?? ["*"],
        rotatedTo: null,
        graceUntil: null,
        version: 1,
        // Who set them: the creator (an admin's expiry on a user's key binds that user), or KEY_DEFAULT_TTL_DAYS (binding the owner too).
        statusSetBy: caller.actor,
        expiresSetBy: expiry.expiresSetBy,
      };
      const owned = record.ownerId === null ? undefined : { ...record, ownerId: record.ownerId };
      const [inserted] = await c.env.DB.batch([
        owned ? insertKeyWithinOwnerCapStatement(c.env.DB, owned) : insertKeyStatement(c.env.DB, record),
        auditStatement(
          c.env.DB,
          {
            actor: caller.actor,
            action: "key.create",
            targetType: "key",
            targetId: record.id,
            details: { prefix: record.prefix, ...body, ...(expiry.defaulted ? { expiresAt: record.expiresAt, expiresSetBy: DEFAULT_TTL_SETTER } : {}) },
          },
          now,
        ),
      ]);
      if (inserted?.meta.changes === 0) {
        throw new GatewayError("CONFLICT", {
          message: `The owner already holds as many active keys as their maxActiveKeys (${owner?.maxActiveKeys ?? "set by an admin"}) allows; revoke one first`,
          details: { field: "maxActiveKeys" },
        });
      }
      // This isolate may hold a negative cache entry for the new prefix.
      invalidateKeyCache(record.prefix);
      publishInBackground(c, [keyCreatedEvent(record, caller.actor, now)]);
      c.header("ETag", etagOf(record));
      return callerJson(c, { ...keyView(record), key: material.key }, 201);
    },
  )

  .get(
    "/api/v1/keys",
    describe({
      operationId: "listKeys",
      summary: "List keys, newest first, a page at a time (a user's own; all for admins)",
      tags: ["keys"],
      responses: [{ status: 200, description: "A page of keys; nextCursor is null on the last", schema: KeyListSchema }],
    }),
    requireUser(),
    validateQuery(KeyListQuerySchema),
    async (c) => {
      const caller = c.get("caller");
      const query = c.req.valid("query");
      const page = await listKeyPage(c.env.DB, {
        ownerId: caller.isAdmin ? undefined : caller.user!.id,
        after: query.cursor,
        limit: query.limit ?? DEFAULT_PAGE_SIZE,
      });
      return callerJson(c, { keys: page.rows.map(keyView), nextCursor: encodeCursor("keys", page.nextAfter) });
    },
  )

  .get(
    "/api/v1/keys/:id",
    describe({
      operationId: "getKey",
      summary: "Inspect a key",
      tags: ["keys"],
      responses: [{ status: 200, description: "The key", schema: KeyResponseSchema }],
      errors: ["NOT_FOUND"],
      headers: [ETAG],
    }),
    requireUser(),
    async (c) => keyAnswer(c, await visibleKey(c, c.req.param("id"))),
  )

  .patch(
    "/api/v1/keys/:id",
    describe({
      operationId: "updateKey",
      summary: "Edit, deactivate or reactivate a key (only the fields named; 409 CONFLICT when a concurrent write won)",
      tags: ["keys"],
      responses: [{ status: 200, description: "The key as written", schema: KeyResponseSchema }],
      errors: ["NOT_FOUND", "CONFLICT"],
      headers: [ETAG, { name: "ETag", on: ["CONFLICT"] }],
      requestHeaders: [IF_MATCH],
      otherStatuses: [{ code: "CONFLICT", status: 412, why: "If-Match names no current version, or a write under it lost a race" }],
    }),
    requireUser(),
    validateJson(KeyPatchSchema),
    async (c) => {
      const caller = c.get("caller");
      const patch = presentFields(c.req.valid("json"));
      const key = await visibleKey(c, c.req.param("id"));
      const ifMatch = checkIfMatch(c, key);
      if (key.status === "revoked") throw new GatewayError("CONFLICT", { message: "A revoked key cannot be changed" });
      assertAllowed(caller, patch);
      assertAdminDecisionsKept(caller, key, patch);
      await assertOwnerExists(c.env.DB, patch.ownerId);
      const now = Date.now();
      const ttlProblem = ttlRefusal(caller, c.get("config").keyDefaultTtlDays, patch.expiresAt, now);
      if (ttlProblem) throw ttlProblem;
      const changes = { ...patch, ...decisionSetters(editorOf(caller), caller.actor, key, patch) };
      // Only the named columns, only at the version judged above; the audit row only if that write happened.
      const [result] = await c.env.DB.batch([
        updateKeyStatement(c.env.DB, key.id, key.version, changes, nowIso(now)),
        auditStatement(c.env.DB, { actor: caller.actor, action: patchAction(key, patch), targetType: "key", targetId: key.id, details: patch }, now),
      ]);
      const written = result && writtenKey(result);
      if (!written) throw await lostRace(c.env.DB, key.id, ifMatch);
      await propagateKeyChange(c.env, written);
      // Naming the owner again (say, repeating a PATCH that got a 503) completes an earlier move.
      if (patch.ownerId !== undefined) await moveLineageTo(c.env, written);
      return keyAnswer(c, written);
    },
  )

  // Idempotent: revoking a revoked key answers the same and writes nothing
  // new, but tells the key's object again (repairing a failed earlier attempt).
  // Without If-Match a revocation wins over any concurrent edit.
  .delete(
    "/api/v1/keys/:id",
    describe({
      operationId: "revokeKey",
      summary: "Revoke a key (final; idempotent)",
      tags: ["keys"],
      responses: [{ status: 200, description: "The key is revoked", schema: KeyRevokedSchema }],
      errors: ["NOT_FOUND"],
      headers: [ETAG, { name: "ETag", on: ["CONFLICT"] }],
      requestHeaders: [IF_MATCH],
      otherStatuses: [{ code: "CONFLICT", status: 412, why: "If-Match names no current version, or a write under it lost a race" }],
    }),
    requireUser(),
    async (c) => {
      const caller = c.get("caller");
      const key = await visibleKey(c, c.req.param("id"));
      const ifMatch = checkIfMatch(c, key);
      const now = Date.now();
      const [result] = await c.env.DB.batch([
        revokeKeyStatement(c.env.DB, key.id, nowIso(now), { actor: caller.actor, expectedVersion: ifMatch ? key.version : undefined }),
        auditStatement(c.env.DB, { actor: caller.actor, action: "key.revoke", targetType: "key", targetId: key.id }, now),
      ]);
      const revokedNow = result && writtenKey(result);
      const revoked = revokedNow ?? (await getKey(c.env.DB, key.id));
      // Not revoked by us nor by anyone: an If-Match revocation that lost a race.
      if (revoked?.status !== "revoked") throw await lostRace(c.env.DB, key.id, ifMatch);
      // Saved: the event goes out even if the object below cannot be told (a repeat writes, and publishes, nothing new).
      if (revokedNow) publishInBackground(c, [keyRevokedEvent(revokedNow, caller.actor, now)]);
      await propagateKeyChange(c.env, revoked);
      c.header("ETag", etagOf(revoked));
      return callerJson(c, { id: key.id, status: "revoked" });
    },
  )

  .post(
    "/api/v1/keys/:id/rotate",
    describe({
      operationId: "rotateKey",
      summary: "Replace a key; the old one works until graceUntil",
      tags: ["keys"],
      responses: [{ status: 201, description: "The replacement, with its plaintext `key`", schema: KeyRotatedSchema }],
      errors: ["NOT_FOUND", "CONFLICT"],
    }),
    requireUser(),
    validateJson(KeyRotateSchema, { required: false }),
    async (c) => {
      const caller = c.get("caller");
      const { gracePeriodSeconds = 0 } = c.req.valid("json");
      const key = await visibleKey(c, c.req.param("id"));
      if (key.status !== "active") throw new GatewayError("CONFLICT", { message: `Only an active key can be rotated; this one is ${key.status}` });
      if (key.rotatedTo !== null) throw new GatewayError("CONFLICT", { message: `This key was already rotated to ${key.rotatedTo}` });

      const now = Date.now();
      const graceUntil = nowIso(now + gracePeriodSeconds * 1000);
      const material = await newKeyMaterial(key.format, key.env ?? "live");
      // The replacement keeps the old key's name, owner and policy, and its lineage: one quota, not two.
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
        // A new row; who set its status and expiry (statusSetBy, expiresSetBy) is copied with them.
        version: 1,
      };
      // The mark is conditioned on the version read, so this is the row as written.
      const rotated: KeyRecord = { ...key, rotatedTo: replacement.id, graceUntil, updatedAt: nowIso(now), version: key.version + 1 };
      // Each audit row is guarded by the statement before it: no rotation, no record.
      const [, marked] = await c.env.DB.batch([
        insertKeyStatement(c.env.DB, replacement),
        markRotatedStatement(c.env.DB, key.id, replacement.id, graceUntil, rotated.updatedAt, key.version),
        auditStatement(
          c.env.DB,
          {
            actor: caller.actor,
            action: "key.rotate",
            targetType: "key",
            targetId: key.id,
            details: { rotatedTo: replacement.id, gracePeriodSeconds, graceUntil },
          },
          now,
        ),
        auditStatement(
          c.env.DB,
          {
            actor: caller.actor,
            action: "key.create",
            targetType: "key",
            targetId: replacement.id,
            details: { prefix: replacement.prefix, rotatedFrom: key.id },
          },
          now,
        ),
        // The replacement must exist before the mark (rotated_to references it); if the mark missed, it goes again.
        dropUnclaimedReplacementStatement(c.env.DB, key.id, replacement.id),
      ]);
      // Rotated or revoked by someone else since we read it: nothing of this attempt remains.
      if (marked?.meta.changes === 0) throw new GatewayError("CONFLICT", { message: "The key changed meanwhile; read it and try again" });
      invalidateKeyCache(replacement.prefix);
      publishInBackground(c, [keyRotatedEvent(key, replacement, graceUntil, caller.actor, now)]);
      await propagateKeyChange(c.env, rotated);
      return callerJson(c, { ...keyView(replacement), key: material.key, rotatedFrom: key.id, graceUntil }, 201);
    },
  );
