import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { limiterNames } from "../../src/limits/names";
import { KeyResponseSchema } from "../../src/routes/schemas";
import { adminToken, api, auditRows, userToken } from "../helpers/api";
import { expectForwarded, expectRefusal } from "../helpers/expect";
import { createProduct, send } from "../helpers/harness";
import { storedKeyState } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * Security review F9: once an admin deactivates a key or sets its expiry,
 * the key's owner cannot lift the deactivation, remove the expiry or move it
 * later (403 FORBIDDEN naming the field, nothing written). The owner may
 * still move an admin's expiry earlier, and deactivate and reactivate a key
 * they deactivated themselves. The key shows who set its status and expiry.
 */

useOrigin();

const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();

/** A user and a key they created themselves through the API. */
async function ownersKey(body: Record<string, unknown> = {}) {
  const { user } = await createUser();
  const asOwner = await userToken(user);
  const created = await api("POST", "/api/v1/keys", asOwner, { name: "owned", ...body });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return { user, asOwner, id: created.body.id as string, key: created.body.key as string };
}

async function patchAs(headers: Record<string, string>, id: string, patch: Record<string, unknown>) {
  const answer = await api("PATCH", `/api/v1/keys/${id}`, headers, patch);
  expect(answer.status, `PATCH ${JSON.stringify(patch)}: ${JSON.stringify(answer.body)}`).toBe(200);
  return answer.body;
}

/** Everything a refused edit must leave alone: the D1 row, the key's object's stored state, the audit log. */
async function snapshot(id: string) {
  return {
    row: await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(id).first(),
    object: await storedKeyState(limiterNames.key(id), id),
    audit: await auditRows(id),
  };
}

async function expectRefusedAndUnchanged(headers: Record<string, string>, id: string, patch: Record<string, unknown>, field: string) {
  const before = await snapshot(id);
  const refused = await api("PATCH", `/api/v1/keys/${id}`, headers, patch);
  expect(refused.status, `PATCH ${JSON.stringify(patch)}: ${JSON.stringify(refused.body)}`).toBe(403);
  expect(refused.body).toMatchObject({ code: "FORBIDDEN", field });
  expect(refused.body.message).toContain(field);
  expect(await snapshot(id), "row, object state and audit log unchanged").toEqual(before);
}

describe("an admin's deactivation binds the key's owner", () => {
  it("the review's reproduction: the owner can no longer lift an admin's deactivation and expiry, and the key stays refused", async () => {
    const product = await createProduct();
    const { id, key, asOwner, user } = await ownersKey();
    await expectForwarded(await send(`${product.pathPrefix}/pools`, { key }), { keyId: id }, { since: "sent" });

    const expiresAt = inDays(1);
    const deactivated = await patchAs(adminToken(), id, { status: "inactive", expiresAt });
    expect(deactivated).toMatchObject({ status: "inactive", expiresAt, statusSetBy: "admin_token", expiresSetBy: "admin_token" });
    await expectRefusal(await send(`${product.pathPrefix}/pools`, { key }), 401, "API_KEY_INACTIVE", { presented: key, since: "sent" });

    await expectRefusedAndUnchanged(asOwner, id, { status: "active", expiresAt: null }, "status");
    await expectRefusedAndUnchanged(asOwner, id, { status: "active" }, "status");
    await expectRefusedAndUnchanged(asOwner, id, { expiresAt: null }, "expiresAt");

    await expectRefusal(await send(`${product.pathPrefix}/pools`, { key }), 401, "API_KEY_INACTIVE", { presented: key, since: "sent" });
    expect((await auditRows(id)).map((row) => [row.actor, row.action])).toEqual([
      [`user:${user.id}`, "key.create"],
      ["admin_token", "key.deactivate"],
    ]);
  });

  it("an admin user's (JWT) deactivation binds the owner too; the key names that admin", async () => {
    const { user: admin } = await createUser({ role: "admin" });
    const { id, asOwner } = await ownersKey();
    expect(await patchAs(await userToken(admin), id, { status: "inactive" })).toMatchObject({ status: "inactive", statusSetBy: `user:${admin.id}` });
    await expectRefusedAndUnchanged(asOwner, id, { status: "active" }, "status");
  });

  it("the owner repeating inactive on an admin-deactivated key keeps it the admin's", async () => {
    const { id, asOwner } = await ownersKey();
    await patchAs(adminToken(), id, { status: "inactive" });
    expect(await patchAs(asOwner, id, { status: "inactive", name: "still off" })).toMatchObject({ status: "inactive", statusSetBy: "admin_token" });
    await expectRefusedAndUnchanged(asOwner, id, { status: "active" }, "status");
  });

  it("the owner deactivates and reactivates a key they deactivated themselves", async () => {
    const product = await createProduct();
    const { id, key, asOwner, user } = await ownersKey();
    expect(await patchAs(asOwner, id, { status: "inactive" })).toMatchObject({ status: "inactive", statusSetBy: `user:${user.id}` });
    await expectRefusal(await send(`${product.pathPrefix}/pools`, { key }), 401, "API_KEY_INACTIVE", { presented: key, since: "sent" });
    expect(await patchAs(asOwner, id, { status: "active" })).toMatchObject({ status: "active", statusSetBy: `user:${user.id}` });
    await expectForwarded(await send(`${product.pathPrefix}/pools`, { key }), { keyId: id }, { since: "sent" });
  });

  it("once an admin lifts their deactivation, the owner may deactivate and reactivate again", async () => {
    const { id, asOwner, user } = await ownersKey();
    await patchAs(adminToken(), id, { status: "inactive" });
    expect(await patchAs(adminToken(), id, { status: "active" })).toMatchObject({ status: "active", statusSetBy: "admin_token" });
    await patchAs(asOwner, id, { status: "inactive" });
    expect(await patchAs(asOwner, id, { status: "active" })).toMatchObject({ status: "active", statusSetBy: `user:${user.id}` });
  });
});

describe("an admin's expiry binds the key's owner", () => {
  it("clearing it or moving it later is 403 naming expiresAt; nothing is written", async () => {
    const { id, asOwner } = await ownersKey();
    const expiresAt = inDays(2);
    await patchAs(adminToken(), id, { expiresAt });
    await expectRefusedAndUnchanged(asOwner, id, { expiresAt: null }, "expiresAt");
    await expectRefusedAndUnchanged(asOwner, id, { expiresAt: inDays(3) }, "expiresAt");
    await expectRefusedAndUnchanged(asOwner, id, { expiresAt: new Date(Date.parse(expiresAt) + 1000).toISOString(), name: "later" }, "expiresAt");
  });

  it("the owner may move it earlier (it stays the admin's, so it cannot go back later)", async () => {
    const { id, asOwner } = await ownersKey();
    const adminExpiry = inDays(2);
    await patchAs(adminToken(), id, { expiresAt: adminExpiry });
    const earlier = inDays(1);
    expect(await patchAs(asOwner, id, { expiresAt: earlier })).toMatchObject({ expiresAt: earlier, expiresSetBy: "admin_token" });
    expect(await patchAs(asOwner, id, { expiresAt: earlier }), "the same time again").toMatchObject({ expiresAt: earlier });
    await expectRefusedAndUnchanged(asOwner, id, { expiresAt: adminExpiry }, "expiresAt");
  });

  it("a key an admin creates for a user with an expiry has it set by the admin, binding the owner", async () => {
    const { user } = await createUser();
    const expiresAt = inDays(5);
    const created = await api("POST", "/api/v1/keys", adminToken(), { name: "issued", ownerId: user.id, expiresAt });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ expiresAt, expiresSetBy: "admin_token", statusSetBy: "admin_token" });
    const asOwner = await userToken(user);
    await expectRefusedAndUnchanged(asOwner, created.body.id, { expiresAt: inDays(6) }, "expiresAt");
    // An active status set by the admin does not stop the owner switching their key off and on.
    await patchAs(asOwner, created.body.id, { status: "inactive" });
    expect(await patchAs(asOwner, created.body.id, { status: "active" })).toMatchObject({ statusSetBy: `user:${user.id}` });
  });

  it("the owner's own expiry stays theirs to extend or clear", async () => {
    const { id, asOwner, user } = await ownersKey({ expiresAt: inDays(1) });
    const read = await api("GET", `/api/v1/keys/${id}`, asOwner);
    expect(KeyResponseSchema.parse(read.body)).toMatchObject({ expiresSetBy: `user:${user.id}`, statusSetBy: `user:${user.id}` });
    expect(await patchAs(asOwner, id, { expiresAt: inDays(4) })).toMatchObject({ expiresSetBy: `user:${user.id}` });
    expect(await patchAs(asOwner, id, { expiresAt: null })).toMatchObject({ expiresAt: null, expiresSetBy: `user:${user.id}` });
  });

  it("after an admin clears the expiry, the owner may set one and move it freely", async () => {
    const { id, asOwner, user } = await ownersKey();
    await patchAs(adminToken(), id, { expiresAt: inDays(1) });
    expect(await patchAs(adminToken(), id, { expiresAt: null })).toMatchObject({ expiresAt: null, expiresSetBy: "admin_token" });
    expect(await patchAs(asOwner, id, { expiresAt: inDays(2) })).toMatchObject({ expiresSetBy: `user:${user.id}` });
    await patchAs(asOwner, id, { expiresAt: inDays(9) });
  });

  it("rotation keeps who set the expiry: the replacement's admin expiry binds the owner as well", async () => {
    const { id, asOwner } = await ownersKey();
    const expiresAt = inDays(3);
    await patchAs(adminToken(), id, { expiresAt });
    const rotated = await api("POST", `/api/v1/keys/${id}/rotate`, asOwner, { gracePeriodSeconds: 60 });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201);
    expect(rotated.body).toMatchObject({ expiresAt, expiresSetBy: "admin_token" });
    await expectRefusedAndUnchanged(asOwner, rotated.body.id, { expiresAt: null }, "expiresAt");
  });
});
