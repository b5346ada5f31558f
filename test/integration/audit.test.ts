import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AuditListSchema } from "../../src/routes/schemas";
import { adminToken, api, rowCount, userToken } from "../helpers/api";
import { createKey, createProduct, ORIGIN, uniqueSlug } from "../helpers/harness";
import { createUser } from "../helpers/users";

/** The audit log through its own endpoint: who did what to which target, and when. */
async function auditOf(targetId: string, query = "") {
  const answer = await api("GET", `/api/v1/admin/audit?targetId=${encodeURIComponent(targetId)}${query}`, adminToken());
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return AuditListSchema.parse(answer.body).entries;
}

describe("audit log", () => {
  it("every key mutation writes one entry, newest first, naming actor, action, target and time", async () => {
    const { user } = await createUser();
    const asUser = await userToken(user);
    const started = Date.now();
    const created = await api("POST", "/api/v1/keys", asUser, { name: "audited" });
    const id = created.body.id as string;
    await api("PATCH", `/api/v1/keys/${id}`, asUser, { name: "renamed" });
    await api("PATCH", `/api/v1/keys/${id}`, adminToken(), { status: "inactive" });
    await api("PATCH", `/api/v1/keys/${id}`, adminToken(), { status: "active" });
    const rotated = await api("POST", `/api/v1/keys/${id}/rotate`, asUser, { gracePeriodSeconds: 60 });
    await api("DELETE", `/api/v1/keys/${id}`, adminToken());
    await api("DELETE", `/api/v1/keys/${id}`, adminToken()); // idempotent: no second entry

    const entries = await auditOf(id);
    expect(entries.map((e) => [e.actor, e.action, e.targetType])).toEqual([
      ["admin_token", "key.revoke", "key"],
      [`user:${user.id}`, "key.rotate", "key"],
      ["admin_token", "key.reactivate", "key"],
      ["admin_token", "key.deactivate", "key"],
      [`user:${user.id}`, "key.update", "key"],
      [`user:${user.id}`, "key.create", "key"],
    ]);
    for (const entry of entries) expect(Date.parse(entry.at)).toBeGreaterThanOrEqual(started - 1000);
    expect(entries[1]!.details).toMatchObject({ rotatedTo: rotated.body.id, gracePeriodSeconds: 60 });
    // The plaintext keys appear in no entry.
    const all = JSON.stringify(await auditOf(rotated.body.id)) + JSON.stringify(entries);
    expect(all).not.toContain(created.body.key);
    expect(all).not.toContain(rotated.body.key);
  });

  it("product and user mutations are audited; a user's password never is", async () => {
    const slug = uniqueSlug("aud");
    const product = await api("POST", "/api/v1/admin/products", adminToken(), { slug, name: "A", pathPrefix: `/api/${slug}`, originUrl: `${ORIGIN}/a` });
    await api("PATCH", `/api/v1/admin/products/${slug}`, adminToken(), { name: "B" });
    await api("DELETE", `/api/v1/admin/products/${slug}`, adminToken());
    expect((await auditOf(product.body.id)).map((e) => e.action)).toEqual(["product.delete", "product.update", "product.create"]);

    const email = `aud-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const user = await api("POST", "/api/v1/admin/users", adminToken(), { email, password: "first secret pw" });
    await api("PATCH", `/api/v1/admin/users/${user.body.id}`, adminToken(), { password: "second secret pw" });
    await api("DELETE", `/api/v1/admin/users/${user.body.id}`, adminToken());
    const entries = await auditOf(user.body.id, "&targetType=user");
    expect(entries.map((e) => e.action)).toEqual(["user.delete", "user.update", "user.create"]);
    expect(entries[1]!.details).toEqual({ passwordChanged: true });
    const stored = await env.DB.prepare("SELECT group_concat(details) AS all_details FROM audit_log").first<{ all_details: string }>();
    expect(stored!.all_details).not.toContain("first secret pw");
    expect(stored!.all_details).not.toContain("second secret pw");
    expect(stored!.all_details).not.toContain("pbkdf2");
  });

  it("a refused or failed mutation writes no entry", async () => {
    const existing = await createProduct();
    const { record } = await createKey();
    await api("DELETE", `/api/v1/keys/${record.id}`, adminToken());
    const before = await rowCount("audit_log");
    const duplicate = await api("POST", "/api/v1/admin/products", adminToken(), {
      slug: existing.slug,
      name: "dup",
      pathPrefix: `/api/${uniqueSlug()}`,
      originUrl: `${ORIGIN}/x`,
    });
    expect(duplicate.status).toBe(409);
    expect((await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { name: "zombie" })).status).toBe(409);
    expect((await api("PATCH", `/api/v1/admin/users/missing`, adminToken(), { role: "admin" })).status).toBe(404);
    expect(await rowCount("audit_log")).toBe(before);
  });

  it("limit and targetType narrow the answer; it is admin only", async () => {
    const { record } = await createKey();
    for (const name of ["a", "b", "c"]) await api("PATCH", `/api/v1/keys/${record.id}`, adminToken(), { name });
    const latest = await auditOf(record.id, "&limit=2");
    expect(latest.map((e) => e.details)).toEqual([{ name: "c" }, { name: "b" }]);
    expect(await auditOf(record.id, "&targetType=product")).toEqual([]);

    const { user } = await createUser();
    const refused = await api("GET", "/api/v1/admin/audit", await userToken(user));
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe("FORBIDDEN");
  });
});
