import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { cachedKeys, cacheKeys, invalidateKeyCache, KEY_CACHE_MAX_ENTRIES, keyCacheSize } from "../../src/auth/key-cache";
import { createKey, createProduct, json, send } from "../helpers/harness";
import { signToken } from "../helpers/jwt";
import { useOrigin } from "../helpers/origin";

/**
 * What requests cost in round trips. The Worker under exports.default.fetch
 * receives the very `env` object imported here (and an env with overrides
 * holds the same bindings), so spying on its bindings observes the Worker's
 * own D1 statements and Durable Object calls; each test first checks that the
 * meter does see a cold request's queries.
 */
const origin = useOrigin();

interface RoundTrips {
  /** SQL of every D1 statement prepared or executed. */
  d1: string[];
  /** Durable Object stubs created (get / getByName). */
  stubs: number;
  /** RPC methods called on those stubs, in order. */
  rpc: string[];
  /** crypto.subtle.importKey calls (HMAC origin key, JWT verification keys). */
  keyImports: number;
}

/** Starts counting; `take()` returns what was counted since the last take and starts afresh. */
function meterRoundTrips(): { take(): RoundTrips } {
  let counted: RoundTrips = { d1: [], stubs: 0, rpc: [], keyImports: 0 };
  const prepare = env.DB.prepare.bind(env.DB);
  const exec = env.DB.exec.bind(env.DB);
  vi.spyOn(env.DB, "prepare").mockImplementation((sql) => (counted.d1.push(sql), prepare(sql)));
  vi.spyOn(env.DB, "exec").mockImplementation((sql) => (counted.d1.push(sql), exec(sql)));

  const namespace = env.RATE_LIMITER;
  const countingStub = <T extends object>(stub: T): T => {
    counted.stubs += 1;
    return new Proxy(stub, {
      get(target, property) {
        const member = Reflect.get(target, property);
        if (typeof member !== "function" || typeof property !== "string") return member;
        // Reflect.apply: `member.apply` would itself be an RPC property of the stub.
        return (...args: unknown[]) => (counted.rpc.push(property), Reflect.apply(member, target, args));
      },
    });
  };
  const get = namespace.get.bind(namespace);
  const getByName = namespace.getByName.bind(namespace);
  vi.spyOn(namespace, "get").mockImplementation((id, options) => countingStub(get(id, options)));
  vi.spyOn(namespace, "getByName").mockImplementation((name, options) => countingStub(getByName(name, options)));

  const importKey = crypto.subtle.importKey.bind(crypto.subtle);
  vi.spyOn(crypto.subtle, "importKey").mockImplementation(((...args: Parameters<typeof importKey>) => {
    counted.keyImports += 1;
    return importKey(...args);
  }) as typeof importKey);

  return {
    take() {
      const taken = counted;
      counted = { d1: [], stubs: 0, rpc: [], keyImports: 0 };
      return taken;
    },
  };
}

describe("hot path: a warm authenticated request", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("with an API key makes no D1 query, one Durable Object call and imports no key", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const meter = meterRoundTrips();
    const first = await send(`${product.pathPrefix}/warm`, { key });
    expect(first.status, JSON.stringify(await json(first))).toBe(200);
    expect(
      meter.take().d1.filter((sql) => /FROM api_keys\b.*\bWHERE api_keys\.prefix = \?/s.test(sql)),
      "the cold request looked the key up",
    ).toHaveLength(1);

    const response = await send(`${product.pathPrefix}/warm`, { key });
    const body = await json(response);
    const { keyImports, ...roundTrips } = meter.take();

    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(roundTrips).toEqual({ d1: [], stubs: 1, rpc: ["check"] });
    expect(keyImports).toBe(0);
    // The one call counted the request: the second of the minute.
    expect(response.headers.get("X-RateLimit-Remaining")).toBe(String(Number(first.headers.get("X-RateLimit-Remaining")) - 1));
    expect(origin.received).toHaveLength(2);
  });

  it("with a revoked but still cached API key is refused by that same single Durable Object call", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    const meter = meterRoundTrips();
    const first = await send(`${product.pathPrefix}/warm`, { key });
    expect(first.status).toBe(200);
    expect(
      meter.take().d1.filter((sql) => /FROM api_keys\b.*\bWHERE api_keys\.prefix = \?/s.test(sql)),
      "the cold request looked the key up",
    ).toHaveLength(1);
    // The D1 row stays active and cached: only the key's object knows.
    await env.RATE_LIMITER.getByName(`key:${record.id}`).setKeyState(record.id, { status: "revoked", notAfter: null });
    meter.take();

    // Without a client address: from one, the refusal also counts as that address's failed authentication, one more object call (auth-throttle.test.ts).
    const response = await send(`${product.pathPrefix}/warm`, { key, ip: null });
    const body = await json(response);
    const { keyImports: _, ...roundTrips } = meter.take();

    expect(response.status, JSON.stringify(body)).toBe(401);
    expect(body.code).toBe("API_KEY_INACTIVE");
    expect(roundTrips).toEqual({ d1: [], stubs: 1, rpc: ["check"] });
    expect(origin.received).toHaveLength(1);
  });

  it("with an ES256 JWT makes no D1 query, one Durable Object call and imports no key", async () => {
    const product = await createProduct();
    const token = await signToken({ products: ["*"], scope: "read" });
    const headers = { Authorization: `Bearer ${token}` };
    const meter = meterRoundTrips();
    const first = await send(`${product.pathPrefix}/warm`, { headers });
    expect(first.status, JSON.stringify(await json(first))).toBe(200);
    // The product was just created, so the cold request reloaded the product list.
    expect(
      meter.take().d1.filter((sql) => /FROM products/.test(sql)),
      "the cold request read the products",
    ).toHaveLength(1);

    const response = await send(`${product.pathPrefix}/warm`, { headers });
    const body = await json(response);
    const { keyImports, ...roundTrips } = meter.take();

    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(response.headers.get("X-Auth-Method")).toBe("jwt");
    expect(roundTrips).toEqual({ d1: [], stubs: 1, rpc: ["check"] });
    // Verification keys are imported once per isolate, not per request.
    expect(keyImports).toBe(0);
  });
});

describe("hot path: a cold request (caches switched off)", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("makes exactly one D1 query for the key and one for the product list, every time", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    // The same bindings with caching switched off; one env object, so config is parsed once.
    const uncached = { KEY_CACHE_TTL_SECONDS: "0", PRODUCT_CACHE_TTL_SECONDS: "0" };

    const meter = meterRoundTrips();
    for (const attempt of [1, 2]) {
      const response = await send(`${product.pathPrefix}/cold`, { key, env: uncached });
      const body = await json(response);

      const { d1, rpc } = meter.take();
      expect(response.status, `attempt ${attempt}: ${JSON.stringify(body)}`).toBe(200);
      expect(
        d1.map((sql) => /\bFROM (\w+)/.exec(sql)?.[1]),
        `attempt ${attempt}: ${d1.join(" | ")}`,
      ).toEqual(["products", "api_keys"]);
      expect(d1[1]).toMatch(/WHERE api_keys\.prefix = \?/);
      expect(rpc).toEqual(["check"]);
    }
  });
});

describe("hot path: a cold key with the product list cached", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("makes exactly one D1 query, the key's, and one object call", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    const keysUncached = { KEY_CACHE_TTL_SECONDS: "0" }; // one env object for both calls
    expect((await send(`${product.pathPrefix}/cold`, { key, env: keysUncached })).status).toBe(200); // loads the product list into the isolate

    const meter = meterRoundTrips();
    const response = await send(`${product.pathPrefix}/cold`, { key, env: keysUncached });
    const body = await json(response);
    const { d1, rpc } = meter.take();
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(
      d1.map((sql) => /\bFROM (\w+)/.exec(sql)?.[1]),
      d1.join(" | "),
    ).toEqual(["api_keys"]);
    expect(rpc).toEqual(["check"]);
  });
});

describe("hot path: bounded memory and storage", () => {
  afterEach(() => invalidateKeyCache());

  it("keeps the isolate key cache at KEY_CACHE_MAX_ENTRIES across 50,000 distinct prefixes, evicting the least recently used", () => {
    invalidateKeyCache();
    const now = Date.now();
    const prefix = (i: number) => `ilal_live_${i.toString(16).padStart(8, "0")}`;
    cacheKeys(prefix(0), [], 60, now);
    for (let i = 1; i <= 50_000; i++) {
      cacheKeys(prefix(i), [], 60, now);
      if (i % 1000 === 0) {
        // Keep entry 0 the most recently used; it must survive every eviction.
        expect(cachedKeys(prefix(0), now)).toEqual([]);
        expect(keyCacheSize()).toBeLessThanOrEqual(KEY_CACHE_MAX_ENTRIES);
      }
    }
    expect(keyCacheSize()).toBe(KEY_CACHE_MAX_ENTRIES);
    expect(cachedKeys(prefix(0), now)).toEqual([]);
    expect(cachedKeys(prefix(1), now)).toBeUndefined();
    expect(cachedKeys(prefix(50_000 - KEY_CACHE_MAX_ENTRIES), now)).toBeUndefined();
    expect(cachedKeys(prefix(50_000), now)).toEqual([]);
  });

  it("holds the same number of rows in a key's Durable Object after 35 more days of calls", async () => {
    const product = await createProduct();
    const { key, record } = await createKey();
    const stub = env.RATE_LIMITER.getByName(`key:${record.id}`);
    const DAY_MS = 86_400_000;
    // Simulated days start tomorrow, so the usage-flush alarm never falls due during the test.
    const start = Date.now() - (Date.now() % DAY_MS) + DAY_MS;

    /** Two calls in one minute and one in the next, every day for 35 days. */
    async function callDaily(firstDay: number) {
      for (let day = firstDay; day < firstDay + 35; day++) {
        for (const offsetMs of [10_000, 20_000, 70_000]) {
          vi.setSystemTime(start + day * DAY_MS + offsetMs);
          const response = await send(`${product.pathPrefix}/daily`, { key });
          expect(response.status, `day ${day}: ${await response.text()}`).toBe(200);
        }
      }
    }
    const rowsPerTable = () =>
      runInDurableObject(stub, (_instance, state) => {
        const tables = state.storage.sql
          .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'")
          .toArray();
        return Object.fromEntries(tables.map(({ name }) => [name, state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM "${name}"`).one().n]));
      });

    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      await callDaily(0);
      const after35Days = await rowsPerTable();
      await callDaily(35);
      const after70Days = await rowsPerTable();

      expect(after70Days).toEqual(after35Days);
      const total = Object.values(after70Days).reduce((sum, n) => sum + n, 0);
      // 31 days of history plus a handful of counter, state and recent-request rows.
      expect(total, JSON.stringify(after70Days)).toBeLessThanOrEqual(45);
      expect(origin.received).toHaveLength(210);
    } finally {
      vi.useRealTimers();
    }
  });
});
