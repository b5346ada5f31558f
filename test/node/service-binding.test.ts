import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Miniflare } from "miniflare";
import { unstable_readConfig } from "wrangler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations } from "../../bench/lib/seed.mjs";
import { WORKER_VARS } from "../../bench/lib/workers.mjs";
import { ensureBundle, withTimeout } from "../../scripts/lib/bundled-keygate.mjs";
import { generateSecrets } from "../../scripts/lib/secrets.mjs";

/**
 * A second Worker bound to keygate's KeygateService entrypoint, as an account's
 * own Worker would bind to it (wrangler.toml `services = [{ binding = "KEYGATE",
 * service = "keygate", entrypoint = "KeygateService" }]`): the built bundle and
 * the consumer in one Miniflare, the consumer calling `env.KEYGATE.verify()`
 * over Workers RPC. The keys are made through keygate's own admin API.
 */

const CONSUMER = `
export default {
  async fetch(request, env) {
    const input = await request.json();
    try {
      return Response.json({ ok: true, answer: await env.KEYGATE.verify(input) });
    } catch (error) {
      return Response.json({ ok: false, error: JSON.parse(error.message) });
    }
  },
};`;

/** keygate's own compatibility settings, for both Workers. */
const { compatibility_date: compatibilityDate, compatibility_flags: compatibilityFlags } = unstable_readConfig({ config: "wrangler.toml" });

let mf: Miniflare;
let storage: string;
let adminToken: string;

beforeAll(async () => {
  const bundle = ensureBundle().path;
  const secrets = await generateSecrets();
  adminToken = secrets.ADMIN_TOKEN!;
  storage = mkdtempSync(join(tmpdir(), "keygate-binding-"));
  mf = new Miniflare({
    cf: false,
    host: "127.0.0.1",
    port: 0,
    d1Persist: join(storage, "d1"),
    durableObjectsPersist: join(storage, "do"),
    workers: [
      {
        name: "consumer",
        modules: true,
        script: CONSUMER,
        compatibilityDate,
        serviceBindings: { KEYGATE: { name: "keygate", entrypoint: "KeygateService" } },
      },
      {
        name: "keygate",
        modules: true,
        scriptPath: bundle,
        modulesRoot: dirname(bundle),
        compatibilityDate,
        compatibilityFlags,
        bindings: { ...WORKER_VARS, ...secrets },
        d1Databases: { DB: "keygate-binding-db" },
        durableObjects: { RATE_LIMITER: { className: "RateLimiter", useSQLite: true } },
        queueProducers: { WEBHOOK_QUEUE: "keygate-webhooks" },
      },
    ],
  });
  await withTimeout(mf.ready, 60_000, "starting keygate and its consumer");
  await withTimeout(applyMigrations(await mf.getD1Database("DB", "keygate")), 60_000, "applying the migrations");
}, 120_000);

afterAll(async () => {
  await mf?.dispose();
  if (storage) rmSync(storage, { recursive: true, force: true });
});

async function keygateApi(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const keygate = await mf.getWorker("keygate");
  const response = await keygate.fetch(`http://keygate.test${path}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json", "CF-Connecting-IP": "203.0.113.9" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function consumerVerify(input: unknown): Promise<{ ok: boolean; answer?: Record<string, any>; error?: Record<string, any> }> {
  const response = await mf.dispatchFetch("http://consumer.test/", { method: "POST", body: JSON.stringify(input) });
  return (await response.json()) as { ok: boolean; answer?: Record<string, any>; error?: Record<string, any> };
}

describe("a Worker bound to keygate's KeygateService", () => {
  it("verifies and counts a key over RPC, sees a revocation at once, and gets the request's own errors as coded throws", async () => {
    const created = await keygateApi("POST", "/api/v1/keys", { name: "bound", products: ["*"], scopes: ["read"], rateLimitPerMinute: 2 });
    expect(created.status).toBe(201);
    const { key, id } = created.body as { key: string; id: string };

    const first = await consumerVerify({ key, scopes: ["read"] });
    expect(first).toMatchObject({
      ok: true,
      answer: { valid: true, code: null, keyId: id, scopes: ["read"], limits: { enforced: true, minute: { limit: 2, remaining: 1 } } },
    });
    expect((await consumerVerify({ key, scopes: ["write"] })).answer).toMatchObject({ valid: false, code: "API_KEY_SCOPE_MISSING", requiredScope: "write" });
    expect((await consumerVerify({ key, consume: false })).answer).toMatchObject({ valid: true, limits: { minute: { remaining: 1 } } });
    expect((await consumerVerify({ key })).answer).toMatchObject({ valid: true, limits: { minute: { remaining: 0 } } });
    expect((await consumerVerify({ key })).answer).toMatchObject({ valid: false, code: "RATE_LIMIT_EXCEEDED" });

    // The calls counted through the binding are the key's usage, as the stats show it.
    const stats = await keygateApi("GET", `/api/v1/usage/stats?keyId=${id}`);
    expect(stats.body.keys[0].minute.used).toBe(2);

    expect((await keygateApi("DELETE", `/api/v1/keys/${id}`)).status).toBe(200);
    expect((await consumerVerify({ key })).answer).toMatchObject({ valid: false, code: "API_KEY_INACTIVE", keyId: null });

    expect(await consumerVerify({ key: 42 })).toMatchObject({ ok: false, error: { code: "VALIDATION_FAILED", fields: [{ path: "key" }] } });
    expect(await consumerVerify({ key, product: "no-such-product" })).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
  });
});
