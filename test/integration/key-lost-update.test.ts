import { abortAllDurableObjects } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { cacheKeys } from "../../src/auth/key-cache";
import { getKey } from "../../src/db/keys";
import { limiterNames } from "../../src/limits/names";
import type { CredentialState } from "../../src/limits/windows";
import { adminToken, api, auditRows, userToken, type ApiAnswer } from "../helpers/api";
import { expectRefusal } from "../helpers/expect";
import { createKey, createProduct, send } from "../helpers/harness";
import { limiter, storedKeyState, storedState } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * Security review F4: a PATCH writes only the columns it names, and only if
 * the key is still at the version it read; a write that lost a race answers
 * 409 CONFLICT (412 with If-Match) and writes and audits nothing. The key's
 * Durable Object takes a state only if it is newer than the one it holds,
 * and never leaves `revoked`, so late state syncs cannot undo a revocation.
 */

useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
});

const keyPath = (id: string) => `/api/v1/keys/${id}`;
const keyRow = (id: string) => env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(id).first<Record<string, unknown>>();

/** The key's audit rows in commit order (rowid), with details parsed. */
async function auditInCommitOrder(id: string) {
  const { results } = await env.DB.prepare("SELECT actor, action, details FROM audit_log WHERE target_id = ? ORDER BY rowid")
    .bind(id)
    .all<{ actor: string; action: string; details: string | null }>();
  return results.map((row) => ({ ...row, details: row.details === null ? null : (JSON.parse(row.details) as Record<string, unknown>) }));
}

/** Runs `competitor` to completion after the next request has read the key and before its D1 batch runs. */
function runBeforeNextBatch(competitor: () => Promise<ApiAnswer>): { answer: () => ApiAnswer } {
  const realBatch = env.DB.batch.bind(env.DB);
  let answer: ApiAnswer | undefined;
  vi.spyOn(env.DB, "batch").mockImplementationOnce(async (statements) => {
    vi.mocked(env.DB.batch).mockImplementation(realBatch);
    answer = await competitor();
    return realBatch(statements);
  });
  return {
    answer: () => {
      expect(answer, "the competitor ran").toBeDefined();
      return answer!;
    },
  };
}

/** The key's state as its lineage's object holds it (a key not rotated from another is its own lineage). */
const objectState = (id: string, lineageId = id) => storedKeyState(limiterNames.key(lineageId), id);

/** Everything a refused or lost write must leave alone. */
async function snapshot(id: string) {
  return { row: await keyRow(id), object: await objectState(id), audit: await auditRows(id) };
}

async function ownedKey() {
  const { user } = await createUser();
  const { record } = await createKey({ ownerId: user.id });
  return { user, record, asOwner: await userToken(user) };
}

describe("a PATCH that lost a race writes nothing (deterministic interleavings)", () => {
  it("the owner's name-only PATCH that read the key before the admin's PATCH answers 409; the admin's change stands", async () => {
    const { record, asOwner } = await ownedKey();
    const adminPatch = { rateLimitPerMinute: 5, ipAllowlist: ["10.1.0.0/16"], status: "inactive" };
    const admin = runBeforeNextBatch(() => api("PATCH", keyPath(record.id), adminToken(), adminPatch));

    const owner = await api("PATCH", keyPath(record.id), asOwner, { name: "lost" });
    expect(admin.answer().status, JSON.stringify(admin.answer().body)).toBe(200);
    expect(owner.status, JSON.stringify(owner.body)).toBe(409);
    expect(owner.body.code).toBe("CONFLICT");

    const row = await keyRow(record.id);
    expect(row).toMatchObject({ name: record.name, rate_limit_per_minute: 5, ip_allowlist: '["10.1.0.0/16"]', status: "inactive" });
    expect(row!.version, "one write: the admin's").toBe(record.version + 1);
    expect((await auditRows(record.id)).map((entry) => [entry.actor, entry.action, entry.details])).toEqual([
      ["admin_token", "key.deactivate", JSON.stringify(adminPatch)],
    ]);
    expect(await objectState(record.id)).toMatchObject({ status: "inactive", version: record.version + 1 });
    expect(admin.answer().body).toMatchObject({ ...adminPatch, name: record.name, version: record.version + 1 });
  });

  it("the admin's PATCH that read the key before the owner's rename answers 409 and applies when repeated", async () => {
    const { record, asOwner } = await ownedKey();
    const owner = runBeforeNextBatch(() => api("PATCH", keyPath(record.id), asOwner, { name: "renamed first" }));

    const lost = await api("PATCH", keyPath(record.id), adminToken(), { status: "inactive", rateLimitPerMinute: 3 });
    expect(owner.answer().status).toBe(200);
    expect(lost.status, JSON.stringify(lost.body)).toBe(409);
    expect(await keyRow(record.id)).toMatchObject({ name: "renamed first", status: "active", rate_limit_per_minute: null, version: record.version + 1 });
    expect((await auditRows(record.id)).map((entry) => entry.action)).toEqual(["key.update"]);

    const repeated = await api("PATCH", keyPath(record.id), adminToken(), { status: "inactive", rateLimitPerMinute: 3 });
    expect(repeated.status, JSON.stringify(repeated.body)).toBe(200);
    expect(repeated.body).toMatchObject({ name: "renamed first", status: "inactive", rateLimitPerMinute: 3, version: record.version + 2 });
  });

  it("with If-Match naming the version it read, the lost race is 412 CONFLICT, nothing written", async () => {
    const { record, asOwner } = await ownedKey();
    const read = await api("GET", keyPath(record.id), asOwner);
    const etag = read.headers.get("ETag");
    expect(etag).toBe(`"${record.version}"`);
    const admin = runBeforeNextBatch(() => api("PATCH", keyPath(record.id), adminToken(), { ipAllowlist: ["10.2.0.0/16"] }));

    const owner = await api("PATCH", keyPath(record.id), { ...asOwner, "If-Match": etag! }, { name: "lost" });
    expect(admin.answer().status).toBe(200);
    expect(owner.status, JSON.stringify(owner.body)).toBe(412);
    expect(owner.body.code).toBe("CONFLICT");
    expect(await keyRow(record.id)).toMatchObject({ name: record.name, ip_allowlist: '["10.2.0.0/16"]' });
    expect((await auditRows(record.id)).map((entry) => entry.actor)).toEqual(["admin_token"]);
  });
});

/** The calls that tell an object a key's state. */
const STATE_SYNCS = new Set<PropertyKey>(["setState", "setKeyState"]);

/**
 * A RATE_LIMITER binding for one request whose state syncs (to any object)
 * wait until released; everything else reaches the real objects at once.
 */
function holdingLimiter() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let arrive!: (state: CredentialState) => void;
  const reached = new Promise<CredentialState>((resolve) => (arrive = resolve));
  const namespace = {
    getByName: (name: string) => {
      const stub = env.RATE_LIMITER.getByName(name);
      return new Proxy(stub, {
        get(target, property) {
          if (STATE_SYNCS.has(property)) {
            return async (...args: unknown[]) => {
              arrive(args.at(-1) as CredentialState);
              await gate;
              // Called on the stub itself: an RPC method's own .apply would be a remote call.
              return (target as unknown as Record<PropertyKey, (...args: unknown[]) => Promise<unknown>>)[property]!(...args);
            };
          }
          const value: unknown = Reflect.get(target, property);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    },
  };
  return { namespace, reached, release };
}

function patchWith(namespace: unknown, id: string, patch: Record<string, unknown>): Promise<Response> {
  return send(keyPath(id), { method: "PATCH", headers: adminToken(), body: patch, env: { RATE_LIMITER: namespace } });
}

describe("the key's Durable Object when state syncs arrive out of order", () => {
  it("a revoke whose state reaches the object before an earlier reactivation's leaves the object revoked", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    expect((await api("PATCH", keyPath(record.id), adminToken(), { status: "inactive" })).status).toBe(200);

    const held = holdingLimiter();
    const reactivating = patchWith(held.namespace, record.id, { status: "active" });
    // The reactivation is in D1; its state is on its way to the object, held back.
    expect(await held.reached).toMatchObject({ status: "active" });
    const revoked = await api("DELETE", keyPath(record.id), adminToken());
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    held.release();
    const reactivated = await reactivating;
    expect(reactivated.status, await reactivated.clone().text()).toBe(200);

    expect((await keyRow(record.id))!.status).toBe("revoked");
    expect(await objectState(record.id)).toMatchObject({ status: "revoked" });
    // Another isolate may still hold the row as active: the object decides.
    cacheKeys(record.prefix, [{ ...record, status: "active", ownerLimited: false }], 60, Date.now());
    await expectRefusal(await send(`${product.pathPrefix}/a`, { key }), 401, "API_KEY_INACTIVE", { presented: key });
  });

  it("an older PATCH's state arriving after a newer one's is ignored: the object matches D1", async () => {
    const { record } = await createKey();
    const held = holdingLimiter();
    const older = patchWith(held.namespace, record.id, { status: "inactive" });
    expect(await held.reached).toMatchObject({ status: "inactive", version: record.version + 1 });
    const newer = await api("PATCH", keyPath(record.id), adminToken(), { status: "active" });
    expect(newer.status, JSON.stringify(newer.body)).toBe(200);
    held.release();
    expect((await older).status).toBe(200);

    const row = await keyRow(record.id);
    expect(row).toMatchObject({ status: "active", version: record.version + 2 });
    expect(await objectState(record.id)).toMatchObject({ status: "active", version: record.version + 2 });
  });

  it("deleting the owner revokes a key even when an edit's newer state reached the object first", async () => {
    const { user, record } = await ownedKey();
    // The edit commits after the user deletion read the user's keys, before its batch revokes them.
    const edit = runBeforeNextBatch(() => api("PATCH", keyPath(record.id), adminToken(), { name: "edited meanwhile" }));
    const deleted = await api("DELETE", `/api/v1/admin/users/${user.id}`, adminToken());
    expect(edit.answer().status, JSON.stringify(edit.answer().body)).toBe(200);
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    expect(await keyRow(record.id)).toMatchObject({ status: "revoked", name: "edited meanwhile" });
    expect(await objectState(record.id), "D1 says revoked: so must the object").toMatchObject({ status: "revoked" });
  });

  it("an object's own state (setState): an equal or older version is ignored, also after eviction; revoked is final", async () => {
    const name = limiterNames.key(crypto.randomUUID());
    await limiter(name).setState({ status: "inactive", notAfter: null, version: 4 });
    await abortAllDurableObjects();
    await limiter(name).setState({ status: "active", notAfter: null, version: 4 });
    await limiter(name).setState({ status: "active", notAfter: null, version: 3 });
    expect(await limiter(name).getState()).toEqual({ status: "inactive", notAfter: null, version: 4 });
    await limiter(name).setState({ status: "revoked", notAfter: null, version: 2 });
    await limiter(name).setState({ status: "active", notAfter: null, version: 9 });
    expect(await limiter(name).getState(), "revoked is final, whatever version comes later").toMatchObject({ status: "revoked" });
    expect(await storedState(name)).toMatchObject({ status: "revoked", version: "4" });
  });
});

describe("owner and admin PATCH the same key 50 times each, concurrently", () => {
  it("D1, the object and the audit log agree; every 200 is in the row unless a later 200 changed the field; a 409 wrote nothing", async () => {
    const { record, asOwner } = await ownedKey();
    const initial = (await api("GET", keyPath(record.id), adminToken())).body;
    type Sent = { side: "owner" | "admin"; patch: Record<string, unknown> } & ApiAnswer;
    // Each side keeps LANES PATCHes in flight (50 in all), so reads and writes of both sides interleave all the time.
    const LANES = 4;
    const patchInLanes = async (side: Sent["side"], headers: Record<string, string>, patches: Record<string, unknown>[]) => {
      const answers: Sent[] = [];
      const queue = [...patches];
      const lane = async () => {
        for (let patch = queue.shift(); patch; patch = queue.shift()) {
          answers.push({ side, patch, ...(await api("PATCH", keyPath(record.id), headers, patch)) });
        }
      };
      await Promise.all(Array.from({ length: LANES }, lane));
      return answers;
    };
    const ownerPatches = Array.from({ length: 50 }, (_, i) => ({ name: `owner-${i}` }));
    const adminPatches = Array.from({ length: 50 }, (_, i) => ({
      rateLimitPerMinute: i + 1,
      ipAllowlist: [`10.${i}.0.0/16`],
      status: i % 2 === 0 ? "inactive" : "active",
    }));
    const answers = (await Promise.all([patchInLanes("owner", asOwner, ownerPatches), patchInLanes("admin", adminToken(), adminPatches)])).flat();

    for (const answer of answers) expect([200, 409], `${answer.side} ${JSON.stringify(answer.patch)}: ${JSON.stringify(answer.body)}`).toContain(answer.status);
    const won = answers.filter((answer) => answer.status === 200);
    const lost = answers.filter((answer) => answer.status === 409);
    console.log(
      `owner 200s: ${won.filter((a) => a.side === "owner").length}, admin 200s: ${won.filter((a) => a.side === "admin").length}, 409s: ${lost.length}`,
    );
    expect(won.filter((answer) => answer.side === "admin").length, "the admin got some 200s").toBeGreaterThan(0);
    expect(won.filter((answer) => answer.side === "owner").length, "the owner got some 200s").toBeGreaterThan(0);

    // One audit row per 200, none per 409: each patch's values are distinct, so its details identify it.
    const canonical = (value: unknown) => JSON.stringify(Object.entries(value as object).sort());
    const audit = await auditInCommitOrder(record.id);
    expect(audit.map((entry) => canonical(entry.details)).sort()).toEqual(won.map((answer) => canonical(answer.patch)).sort());
    for (const answer of lost) expect(answer.body.code).toBe("CONFLICT");

    // Every 200 answered with the row as its write left it: the replay of the audit log (commit order, rowid) up to
    // its own entry, never a merge with a stale read. A lost update shows here even when a later write hides it.
    const edited = (view: Record<string, unknown>) => ({
      name: view.name,
      rateLimitPerMinute: view.rateLimitPerMinute,
      ipAllowlist: view.ipAllowlist,
      status: view.status,
    });
    const answerOf = new Map(won.map((answer) => [canonical(answer.patch), answer]));
    let replayed = edited(initial);
    for (const [index, entry] of audit.entries()) {
      replayed = { ...replayed, ...entry.details };
      const answer = answerOf.get(canonical(entry.details))!;
      expect(edited(answer.body), `the answer to write #${index + 1} (${answer.side} ${JSON.stringify(answer.patch)})`).toEqual(replayed);
      expect(entry.actor).toBe(answer.side === "admin" ? "admin_token" : `user:${record.ownerId}`);
    }
    // Each of those writes made exactly one version, in commit order, and said so in its ETag.
    for (const [index, entry] of audit.entries()) {
      const answer = answerOf.get(canonical(entry.details))!;
      expect(answer.body.version, `the version of write #${index + 1}`).toBe((initial.version as number) + index + 1);
      expect(answer.headers.get("ETag")).toBe(`"${answer.body.version}"`);
    }

    const final = (await getKey(env.DB, record.id)) as unknown as Record<string, unknown> & { status: string; version: number };
    expect(edited(final), "the row is the replay of the audit log").toEqual(replayed);
    expect(final.version).toBe((initial.version as number) + won.length);
    // Spelled out: every field an admin 200 set is in the row unless a later 200 set it again.
    for (const [index, entry] of audit.entries()) {
      if (entry.actor !== "admin_token") continue;
      for (const [field, value] of Object.entries(entry.details!)) {
        const overwritten = audit.slice(index + 1).some((later) => field in later.details!);
        if (!overwritten) expect(final[field], `${field} set by the admin's write #${index + 1}`).toEqual(value);
      }
    }
    const told = { status: final!.status, notAfter: null, version: final!.version };
    expect(await objectState(record.id), "the key's object").toEqual(told);
    expect(await storedKeyState(limiterNames.user(record.ownerId!), record.id), "the owner's object, which also holds it").toEqual(told);
  });
});

describe("versions, ETag and If-Match", () => {
  it("GET and PATCH carry the key's version as a strong ETag; If-Match must name it, or be *", async () => {
    const { record } = await createKey();
    const read = await api("GET", keyPath(record.id), adminToken());
    expect(read.body.version).toBe(record.version);
    expect(read.headers.get("ETag")).toBe(`"${record.version}"`);

    for (const stale of [`"${record.version + 7}"`, `W/"${record.version}"`, "garbage"]) {
      const before = await snapshot(record.id);
      const refused = await api("PATCH", keyPath(record.id), { ...adminToken(), "If-Match": stale }, { name: "nope" });
      expect(refused.status, `If-Match: ${stale}: ${JSON.stringify(refused.body)}`).toBe(412);
      expect(refused.body.code).toBe("CONFLICT");
      expect(await snapshot(record.id), "nothing written or audited").toEqual(before);
    }

    const matched = await api("PATCH", keyPath(record.id), { ...adminToken(), "If-Match": `"999", "${record.version}"` }, { name: "one" });
    expect(matched.status, JSON.stringify(matched.body)).toBe(200);
    expect(matched.headers.get("ETag")).toBe(`"${record.version + 1}"`);
    const any = await api("PATCH", keyPath(record.id), { ...adminToken(), "If-Match": "*" }, { name: "two" });
    expect(any.status).toBe(200);
    expect(any.body).toMatchObject({ name: "two", version: record.version + 2 });
  });

  it("DELETE honours If-Match: a stale one is 412 and the key stays; the current one revokes", async () => {
    const { record } = await createKey();
    const refused = await api("DELETE", keyPath(record.id), { ...adminToken(), "If-Match": `"${record.version + 1}"` });
    expect(refused.status, JSON.stringify(refused.body)).toBe(412);
    expect(refused.body.code).toBe("CONFLICT");
    expect(await keyRow(record.id)).toMatchObject({ status: "active", version: record.version });
    expect(await auditRows(record.id)).toEqual([]);

    const revoked = await api("DELETE", keyPath(record.id), { ...adminToken(), "If-Match": `"${record.version}"` });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect(await keyRow(record.id)).toMatchObject({ status: "revoked", version: record.version + 1 });
    expect(await objectState(record.id)).toMatchObject({ status: "revoked", version: record.version + 1 });
  });

  it("every write to the row moves its version: PATCH, rotation's mark, revoke, and detaching a deleted owner", async () => {
    const { user } = await createUser();
    const { record } = await createKey({ ownerId: user.id });
    const version = async () => (await keyRow(record.id))!.version as number;
    expect(await version()).toBe(record.version);

    await api("PATCH", keyPath(record.id), adminToken(), { name: "edited" });
    expect(await version()).toBe(record.version + 1);

    const rotated = await api("POST", `${keyPath(record.id)}/rotate`, adminToken(), { gracePeriodSeconds: 60 });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201);
    expect(await version()).toBe(record.version + 2);
    expect(await objectState(record.id), "the object has the rotated row's version and grace end").toEqual({
      status: "active",
      notAfter: Date.parse(rotated.body.graceUntil),
      version: record.version + 2,
    });

    const deleted = await api("DELETE", `/api/v1/admin/users/${user.id}`, adminToken());
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    // Revoked (+1) and detached from the deleted owner (+1).
    expect(await keyRow(record.id)).toMatchObject({ status: "revoked", owner_id: null, version: record.version + 4 });
    expect(await objectState(record.id)).toMatchObject({ status: "revoked" });
    expect(await objectState(rotated.body.id, record.lineageId), "the replacement, in its lineage's object").toMatchObject({ status: "revoked" });
  });
});
