/// <reference types="vite/client" />
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import migration from "../../migrations/0003_key_versions.sql?raw";
import { createKey } from "../helpers/harness";

/**
 * Migration 0003 fills status_set_by and expires_set_by of existing keys from
 * the audit log, so admin decisions made before it still bind owners. The
 * test D1 has the migration applied already; its backfill statements are run
 * again here over rows written as they were before it (set-by unknown).
 */

/** The migration's statements after the backfill marker, comments removed. */
function backfillStatements(): string[] {
  const backfill = migration.slice(migration.indexOf("-- Backfill"));
  return backfill
    .replace(/--[^\n]*/g, "")
    .split(/;\s*(?:\n|$)/)
    .map((statement) => statement.trim())
    .filter((statement) => statement.length > 0);
}

async function audit(targetId: string, at: string, actor: string, action: string, details: Record<string, unknown> | null) {
  await env.DB.prepare("INSERT INTO audit_log (id, at, actor, action, target_type, target_id, details) VALUES (?, ?, ?, ?, 'key', ?, ?)")
    .bind(crypto.randomUUID(), at, actor, action, targetId, details === null ? null : JSON.stringify(details))
    .run();
}

const setBy = async (id: string) =>
  env.DB.prepare("SELECT status_set_by, expires_set_by FROM api_keys WHERE id = ?")
    .bind(id)
    .first<{ status_set_by: string | null; expires_set_by: string | null }>();

describe("migration 0003's backfill of who set a key's status and expiry", () => {
  it("takes them from the audit log, following rotations back for the expiry, and leaves the unknown unknown", async () => {
    expect(backfillStatements()).toHaveLength(2);
    const expiry = "2031-01-01T00:00:00.000Z";
    const owner = "user:owner-1";

    // Deactivated by an admin, expiry set by the owner then moved by an admin.
    const { record: decided } = await createKey({ status: "inactive", expiresAt: expiry });
    await audit(decided.id, "2026-01-01T00:00:00.000Z", owner, "key.create", { name: "a", expiresAt: "2030-01-01T00:00:00.000Z" });
    await audit(decided.id, "2026-01-02T00:00:00.000Z", "admin_token", "key.deactivate", { status: "inactive" });
    await audit(decided.id, "2026-01-03T00:00:00.000Z", "admin_token", "key.update", { expiresAt: expiry });
    await audit(decided.id, "2026-01-04T00:00:00.000Z", owner, "key.update", { name: "renamed" });

    // The owner's key with their own expiry, rotated; an admin changed the old key's expiry only after the rotation.
    const { record: replacement } = await createKey({ expiresAt: expiry, createdAt: "2026-02-02T00:00:00.000Z" });
    const { record: old } = await createKey({ expiresAt: expiry, rotatedTo: replacement.id, createdAt: "2026-02-01T00:00:00.000Z" });
    await audit(old.id, "2026-02-01T00:00:00.000Z", owner, "key.create", { name: "b", expiresAt: expiry });
    await audit(old.id, "2026-02-02T00:00:00.000Z", owner, "key.rotate", { rotatedTo: replacement.id });
    await audit(replacement.id, "2026-02-02T00:00:00.000Z", owner, "key.create", { rotatedFrom: old.id });
    await audit(old.id, "2026-02-03T00:00:00.000Z", "admin_token", "key.update", { expiresAt: expiry });

    // Nothing audited; and an expiry cleared by an admin (no expiry left to bind).
    const { record: unknown } = await createKey({ status: "inactive", expiresAt: expiry });
    const { record: cleared } = await createKey();
    await audit(cleared.id, "2026-03-01T00:00:00.000Z", "admin_token", "key.update", { expiresAt: null });

    for (const statement of backfillStatements()) await env.DB.prepare(statement).run();

    expect(await setBy(decided.id)).toEqual({ status_set_by: "admin_token", expires_set_by: "admin_token" });
    expect(await setBy(old.id)).toEqual({ status_set_by: null, expires_set_by: "admin_token" });
    expect(await setBy(replacement.id), "the replacement copied the old key's expiry as the owner had set it").toEqual({
      status_set_by: null,
      expires_set_by: owner,
    });
    expect(await setBy(unknown.id)).toEqual({ status_set_by: null, expires_set_by: null });
    expect(await setBy(cleared.id)).toEqual({ status_set_by: null, expires_set_by: null });
  });
});
