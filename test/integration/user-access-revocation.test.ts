import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { limiterNames } from "../../src/limits/names";
import { adminToken, api } from "../helpers/api";
import { expectRefusal } from "../helpers/expect";
import { unreachableLimiter } from "../helpers/faults";
import { createProduct, json, send } from "../helpers/harness";
import { storedCounters } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * F10: deleting a user, or changing their role, products or scopes, makes
 * the tokens they hold refused on their very next product call, with no D1
 * query on that call: their limiter object (`user:<id>`) is revoked, or
 * learns the grant version below which tokens are void.
 */

const origin = useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
});

const VOIDED = "The token's user has been deleted or their access changed; sign in again";

async function login(email: string, password: string): Promise<string> {
  const response = await send("/auth/login", { method: "POST", body: { email, password } });
  const body = await json(response);
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body.token as string;
}

/** A user who signed in and made one product call; the product's list and the token's keys are now warm in this isolate. */
async function signedInUser() {
  const product = await createProduct();
  const { user, password } = await createUser();
  const token = await login(user.email, password);
  const first = await send(`${product.pathPrefix}/a`, { jwt: token });
  expect(first.status, await first.clone().text()).toBe(200);
  return { product, user, password, token };
}

/** Calls the gateway, recording D1 statements and limiter objects asked for meanwhile. */
async function callMetered(path: string, token: string) {
  const prepare = vi.spyOn(env.DB, "prepare");
  const getByName = vi.spyOn(env.RATE_LIMITER, "getByName");
  const response = await send(path, { jwt: token });
  const d1 = prepare.mock.calls.map(([sql]) => sql);
  const objects = getByName.mock.calls.map(([name]) => name);
  prepare.mockRestore();
  getByName.mockRestore();
  return { response, d1, objects };
}

async function expectVoided(path: string, token: string, userId: string) {
  const { response, d1, objects } = await callMetered(path, token);
  const body = await expectRefusal(response, 401, "JWT_CLAIM_INVALID", { presented: token, since: "sent" });
  expect(body.message).toBe(VOIDED);
  expect(response.headers.get("X-RateLimit-Remaining"), "an unauthenticated caller sees no limits").toBeNull();
  expect(d1, "D1 statements on the refused call").toEqual([]);
  const [addresses, credentials] = [objects.filter((name) => name.startsWith("ip:")), objects.filter((name) => !name.startsWith("ip:"))];
  expect(credentials, "one credential's object: the user's").toEqual([limiterNames.user(userId)]);
  expect(addresses, "the refusal counts as a failed authentication of the address").toHaveLength(1);
}

describe("a deleted user's tokens", () => {
  it("are refused on the very next product call, reaching no origin and counting nothing", async () => {
    const { product, user, token } = await signedInUser();

    const deleted = await api("DELETE", `/api/v1/admin/users/${user.id}`, adminToken());
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);

    await expectVoided(`${product.pathPrefix}/a`, token, user.id);
    expect(origin.received, "only the call before the deletion").toHaveLength(1);
    expect((await storedCounters(limiterNames.user(user.id))).day?.count, "the refused call was not counted").toBe(1);
  });

  it("are refused when the product would refuse the call anyway: the user, not the product, is the answer", async () => {
    const { user, token } = await signedInUser();
    const keysOnly = await createProduct({ authMethods: ["api_key"] });
    await api("DELETE", `/api/v1/admin/users/${user.id}`, adminToken());

    const response = await send(`${keysOnly.pathPrefix}/a`, { jwt: token });
    const body = await expectRefusal(response, 401, "JWT_CLAIM_INVALID", { presented: token, since: "sent" });
    expect(body.message).toBe(VOIDED);
  });

  it("keep working, and the user stays, when the user's object cannot be reached: 503, repeat to delete", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const { product, user, token } = await signedInUser();

    const refused = await send(`/api/v1/admin/users/${user.id}`, {
      method: "DELETE",
      headers: adminToken(),
      env: { RATE_LIMITER: unreachableLimiter().namespace },
    });
    await expectRefusal(refused, 503, "AUTH_BACKEND_UNAVAILABLE", { since: "sent" });
    expect(await env.DB.prepare("SELECT count(*) AS n FROM users WHERE id = ?").bind(user.id).first("n"), "not deleted").toBe(1);
    expect((await send(`${product.pathPrefix}/a`, { jwt: token })).status).toBe(200);

    expect((await api("DELETE", `/api/v1/admin/users/${user.id}`, adminToken())).status).toBe(200);
    await expectVoided(`${product.pathPrefix}/a`, token, user.id);
  });
});

describe("a user whose access changed", () => {
  it.each<[string, (slug: string) => Record<string, unknown>]>([
    ["lower scopes", () => ({ scopes: ["read"] })],
    ["fewer products", (slug) => ({ products: [slug] })],
    ["another role", () => ({ role: "admin" })],
  ])("after %s: the old token is refused on the next call, and a fresh sign-in's token works", async (_label, patchFor) => {
    const { product, user, password, token } = await signedInUser();

    const patched = await api("PATCH", `/api/v1/admin/users/${user.id}`, adminToken(), patchFor(product.slug));
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);

    await expectVoided(`${product.pathPrefix}/a`, token, user.id);
    const fresh = await send(`${product.pathPrefix}/a`, { jwt: await login(user.email, password) });
    expect(fresh.status, await fresh.clone().text()).toBe(200);
    expect(origin.received, "the first call and the fresh token's").toHaveLength(2);
  });

  it("keeps tokens valid when only the password or the email changes (they grant nothing)", async () => {
    const { product, user, token } = await signedInUser();

    for (const patch of [{ password: `pw-${crypto.randomUUID()}` }, { email: `renamed-${crypto.randomUUID().slice(0, 8)}@example.com` }]) {
      const patched = await api("PATCH", `/api/v1/admin/users/${user.id}`, adminToken(), patch);
      expect(patched.status, JSON.stringify(patched.body)).toBe(200);
      const response = await send(`${product.pathPrefix}/a`, { jwt: token });
      expect(response.status, `${Object.keys(patch)[0]}: ${await response.clone().text()}`).toBe(200);
    }
  });

  it("keeps tokens signed after the last change valid when a PATCH names the stored grants again", async () => {
    const { product, user, token } = await signedInUser();

    const same = await api("PATCH", `/api/v1/admin/users/${user.id}`, adminToken(), { scopes: user.scopes, role: user.role });
    expect(same.status, JSON.stringify(same.body)).toBe(200);
    expect((await send(`${product.pathPrefix}/a`, { jwt: token })).status).toBe(200);
  });

  it("answers 503 with the change saved when the object cannot be told, and a repeat of the PATCH voids the old token", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const { product, user, password, token } = await signedInUser();
    const lower = { scopes: ["read"] };

    const refused = await send(`/api/v1/admin/users/${user.id}`, {
      method: "PATCH",
      headers: adminToken(),
      body: lower,
      env: { RATE_LIMITER: unreachableLimiter().namespace },
    });
    const body = await expectRefusal(refused, 503, "AUTH_BACKEND_UNAVAILABLE", { since: "sent" });
    expect(body.message).toMatch(/saved.*repeat/);
    // A token signed in this window already carries the new grants: the repeat keeps it.
    const between = await login(user.email, password);

    // The stored row already holds the new scopes; repeating still applies the change.
    expect((await api("PATCH", `/api/v1/admin/users/${user.id}`, adminToken(), lower)).status).toBe(200);
    await expectVoided(`${product.pathPrefix}/a`, token, user.id);
    expect((await send(`${product.pathPrefix}/a`, { jwt: between })).status).toBe(200);
  });

  it("voids tokens of two changes within one millisecond: each change gets a newer grant version", async () => {
    const { product, user, password } = await signedInUser();
    const now = Date.now();
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(now);
      expect((await api("PATCH", `/api/v1/admin/users/${user.id}`, adminToken(), { scopes: ["read", "write"] })).status).toBe(200);
      const between = await login(user.email, password);
      expect((await api("PATCH", `/api/v1/admin/users/${user.id}`, adminToken(), { scopes: ["read"] })).status).toBe(200);
      const response = await send(`${product.pathPrefix}/a`, { jwt: between });
      expect(response.status, await response.clone().text()).toBe(401);
    } finally {
      vi.useRealTimers();
    }
  });
});
