import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateKey, hashKey, keyPrefix } from "../../src/auth/key-format";
import { call, createKey, createProduct, json } from "../helpers/harness";
import { stubOrigin } from "../helpers/origin";

/**
 * SPEC section 2: keys come from crypto.getRandomValues, D1 holds only a
 * lookup prefix and the SHA-256 of each key, and the plaintext is never
 * stored or logged. Proved by scanning every column of every row of every
 * table after creating keys each way the code can.
 */

const ADMIN = { Authorization: `Bearer ${env.ADMIN_TOKEN}`, "Content-Type": "application/json" };

afterEach(() => {
  vi.restoreAllMocks();
});

/** Every value of every row of every table of the database, as text. */
async function everyStoredValue(): Promise<string[]> {
  const { results: tables } = await env.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
  ).all<{ name: string }>();
  expect(tables.map((table) => table.name)).toContain("api_keys");
  const values: string[] = [];
  for (const { name } of tables) {
    const { results } = await env.DB.prepare(`SELECT * FROM "${name}"`).all<Record<string, unknown>>();
    for (const row of results) for (const value of Object.values(row)) if (value !== null) values.push(String(value));
  }
  return values;
}

/** The part of a key that makes it secret: everything after its lookup prefix. */
function secretPart(key: string): string {
  return key.slice(keyPrefix(key).length);
}

function expectNowhere(plaintexts: string[], haystack: string[]): void {
  for (const key of plaintexts) {
    const secret = secretPart(key);
    const found = haystack.find((value) => value.includes(key) || value.includes(secret));
    expect(found, `plaintext of ${keyPrefix(key)}… found in storage`).toBeUndefined();
  }
}

async function createThroughApi(body: Record<string, unknown>): Promise<{ id: string; key: string; prefix: string }> {
  const response = await call("/api/v1/keys", { method: "POST", headers: ADMIN, body: JSON.stringify(body) });
  const created = await json(response);
  expect(response.status, JSON.stringify(created)).toBe(201);
  return created as { id: string; key: string; prefix: string };
}

describe("what D1 holds for a key", () => {
  it("stores prefix and hash exactly as SPEC section 2 says, for keys made by the harness", async () => {
    const made = await Promise.all([
      ...Array.from({ length: 10 }, () => createKey({ format: "ilal", env: "live" })),
      ...Array.from({ length: 10 }, () => createKey({ format: "ilal", env: "test" })),
      ...Array.from({ length: 10 }, () => createKey({ format: "ila" })),
    ]);
    for (const { key, record } of made) {
      const row = await env.DB.prepare("SELECT prefix, hash, format, env FROM api_keys WHERE id = ?")
        .bind(record.id)
        .first<{ prefix: string; hash: string; format: string; env: string | null }>();
      expect(row).not.toBeNull();
      expect(row!.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(row!.hash).toBe(await hashKey(key));
      if (row!.format === "ilal") {
        expect(row!.prefix).toMatch(/^ilal_(live|test)_[0-9a-f]{8}$/);
        expect(row!.env).toBe(key.startsWith("ilal_test_") ? "test" : "live");
      } else {
        expect(row!.prefix).toMatch(/^ila_[A-Za-z0-9]{8}$/);
        expect(row!.env).toBeNull();
      }
      expect(key.startsWith(row!.prefix)).toBe(true);
    }
    expectNowhere(
      made.map(({ key }) => key),
      await everyStoredValue(),
    );
  });

  it("stores the SHA-256 of the key's UTF-8 bytes, checked against an independent digest", async () => {
    const { key, record } = await createKey({ format: "ila" });
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
    expect(record.hash).toBe([...digest].map((byte) => byte.toString(16).padStart(2, "0")).join(""));
  });

  it("keeps no plaintext anywhere in D1 after keys are created, rotated and used through the API", async () => {
    const product = await createProduct();
    stubOrigin();
    const random = vi.spyOn(crypto, "getRandomValues");
    const plaintexts: string[] = [];
    for (const body of [
      { name: "live ilal", products: [product.slug] },
      { name: "test ilal", format: "ilal", env: "test", products: [product.slug] },
      { name: "ila", format: "ila", products: [product.slug] },
    ]) {
      const created = await createThroughApi(body);
      expect(created.key.startsWith(created.prefix)).toBe(true);
      plaintexts.push(created.key);

      const rotated = await call(`/api/v1/keys/${created.id}/rotate`, {
        method: "POST",
        headers: ADMIN,
        body: JSON.stringify({ gracePeriodSeconds: 60 }),
      });
      const replacement = await json(rotated);
      expect(rotated.status, JSON.stringify(replacement)).toBe(201);
      plaintexts.push(replacement.key as string);

      const used = await call(`${product.pathPrefix}/x`, { headers: { "X-API-Key": replacement.key as string } });
      expect(used.status, await used.text()).toBe(200);
    }
    expect(random).toHaveBeenCalled();
    expect(new Set(plaintexts).size).toBe(plaintexts.length);
    expectNowhere(plaintexts, await everyStoredValue());
  });

  it("never shows the plaintext again after creation", async () => {
    const created = await createThroughApi({ name: "shown once", products: [] });
    for (const path of [`/api/v1/keys/${created.id}`, "/api/v1/keys"]) {
      const response = await call(path, { headers: ADMIN });
      const text = await response.text();
      expect(response.status, text).toBe(200);
      expect(text).toContain(created.prefix);
      expect(text).not.toContain(secretPart(created.key));
    }
  });

  it("logs no plaintext while creating and using keys", async () => {
    const logged: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        logged.push(args.map(String).join(" "));
      });
    }
    const product = await createProduct();
    stubOrigin();
    const created = await createThroughApi({ name: "quiet", products: [product.slug] });
    const sibling = created.key.slice(0, -1) + (created.key.endsWith("0") ? "1" : "0");
    await call(`${product.pathPrefix}/x`, { headers: { "X-API-Key": created.key } });
    await call(`${product.pathPrefix}/x`, { headers: { "X-API-Key": sibling } });
    await call(`${product.pathPrefix}/x`, { headers: { Authorization: `Bearer ${created.key}, x` } });
    expectNowhere([created.key, sibling], logged);
  });

  it("makes distinct keys and prefixes across many generations", async () => {
    const keys = Array.from({ length: 1000 }, (_, i) => generateKey(i % 2 === 0 ? "ilal" : "ila"));
    expect(new Set(keys).size).toBe(keys.length);
    // 8 random characters per prefix: collisions among 1000 are possible but vanishingly rare.
    expect(new Set(keys.map(keyPrefix)).size).toBeGreaterThan(995);
  });
});
