import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { adminToken, api, auditRows, userToken } from "../helpers/api";
import { expectRefusal } from "../helpers/expect";
import { createKey, createProduct, json, send, settled } from "../helpers/harness";
import { limiter, setClock, storedLedger } from "../helpers/limiter";
import { useOrigin } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * Credits (issue 16): a key's balance is decided with its minute and day
 * windows in one synchronous run of its object, so concurrent calls admit
 * exactly min(N, credits, window room); refused calls consume nothing;
 * a product's cost rules price calls; a metered product's origin reports
 * usage in a header that keygate strips and debits afterwards.
 */
const origin = useOrigin();
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** Mid-minute, early in the UTC day: no window ends during a test. */
function freezeClock(): void {
  const now = Date.now();
  setClock(new Date(now - (now % 86_400_000) + 3_600_000 + 20_000).toISOString());
}

async function setCredits(keyId: string, body: Record<string, unknown>) {
  const answer = await api("PUT", `/api/v1/keys/${keyId}/credits`, adminToken(), body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body;
}

async function creditsOf(keyId: string) {
  const answer = await api("GET", `/api/v1/keys/${keyId}/credits`, adminToken());
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body.credits as { balance: number; quota: number; usedToday: number; nextRefillAt: string | null } | null;
}

function statusCounts(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

describe("credits: exact under concurrency", () => {
  it("N concurrent calls with C credits admit exactly C; the rest are 402 CREDITS_EXHAUSTED, consume nothing and reach no origin", async () => {
    freezeClock();
    const product = await createProduct({ rateLimitPerMinute: 1000, rateLimitPerDay: 100_000 });
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 7 });

    const responses = await Promise.all(Array.from({ length: 24 }, () => settled(send(`${product.pathPrefix}/x`, { key }))));
    expect(statusCounts(responses.map((r) => r.status))).toEqual({ 200: 7, 402: 17 });
    expect(origin.calls()).toHaveLength(7);
    const refused = responses.find((r) => r.status === 402)!;
    expect(await json(refused)).toMatchObject({ code: "CREDITS_EXHAUSTED", message: "The key's credits are used up" });
    expect(refused.headers.get("x-credits-remaining")).toBe("0");
    expect(refused.headers.get("retry-after"), "no refill: no time to wait for").toBeNull();

    expect(await creditsOf(record.id)).toMatchObject({ balance: 0, usedToday: 7 });
    const ledger = await storedLedger(`key:${record.lineageId}`);
    const day = Object.entries(ledger!.counters).find(([name]) => name === "day")![1];
    expect(day[1], "refused calls count in no window").toBe(7);
  });

  it("property: admitted = min(N, credits, minute room) for any N, credits and minute limit", async () => {
    freezeClock();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 20 }), async (n, credits, perMinute) => {
        const product = await createProduct({ rateLimitPerMinute: 1000, rateLimitPerDay: 100_000 });
        const { key, record } = await createKey({ rateLimitPerMinute: perMinute });
        await setCredits(record.id, { balance: credits });
        const responses = await Promise.all(Array.from({ length: n }, () => settled(send(`${product.pathPrefix}/p`, { key }))));
        const admitted = responses.filter((r) => r.status === 200).length;
        expect(admitted).toBe(Math.min(n, credits, perMinute));
        const codes = new Set(await Promise.all(responses.filter((r) => r.status !== 200).map(async (r) => (await json(r)).code)));
        for (const code of codes) expect(["CREDITS_EXHAUSTED", "RATE_LIMIT_EXCEEDED"]).toContain(code);
        expect((await creditsOf(record.id))!.balance).toBe(credits - admitted);
      }),
      { numRuns: 8 },
    );
  });

  it("a call refused by the minute window, a scope rule or a bad body consumes no credits", async () => {
    freezeClock();
    const product = await createProduct({ rateLimitPerMinute: 1000, scopeRules: [{ path: "/admin/**", scope: "admin" }] });
    const { key, record } = await createKey({ rateLimitPerMinute: 2, scopes: ["read"] });
    await setCredits(record.id, { balance: 10 });
    await expectRefusal(await settled(send(`${product.pathPrefix}/admin/x`, { key })), 403, "API_KEY_SCOPE_MISSING");
    expect((await settled(send(`${product.pathPrefix}/a`, { key }))).status).toBe(200);
    expect((await settled(send(`${product.pathPrefix}/a`, { key }))).status).toBe(200);
    expect((await settled(send(`${product.pathPrefix}/a`, { key }))).status).toBe(429);
    expect(await creditsOf(record.id)).toMatchObject({ balance: 8, usedToday: 2 });
  });

  it("a rotation's keys draw on one balance", async () => {
    freezeClock();
    const product = await createProduct();
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 3 });
    const rotated = await api("POST", `/api/v1/keys/${record.id}/rotate`, adminToken(), { gracePeriodSeconds: 3600 });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201);
    const statuses = [];
    for (const k of [key, rotated.body.key, key, rotated.body.key]) statuses.push((await settled(send(`${product.pathPrefix}/r`, { key: k }))).status);
    expect(statuses).toEqual([200, 200, 200, 402]);
    expect((await creditsOf(rotated.body.id))!.balance).toBe(0);
  });
});

describe("credits: headers", () => {
  it("report the balance in X-Credits-Remaining and as a 'credits' policy of the IETF pair", async () => {
    setClock("2031-03-10T12:00:30Z");
    const product = await createProduct({ rateLimitPerMinute: 10, rateLimitPerDay: 100 });
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 50, refill: { amount: 50, interval: "day" } });
    const response = await settled(send(`${product.pathPrefix}/h`, { key }));
    expect(response.status).toBe(200);
    expect(response.headers.get("x-credits-remaining")).toBe("49");
    expect(response.headers.get("ratelimit-policy")).toBe('"minute";q=10;w=60, "day";q=100;w=86400, "credits";q=50;w=86400');
    expect(response.headers.get("ratelimit")).toBe('"minute";r=9;t=30, "day";r=99;t=43170, "credits";r=49;t=43170');
  });

  it("a key without credits carries no credits headers", async () => {
    freezeClock();
    const product = await createProduct();
    const { key } = await createKey();
    const response = await settled(send(`${product.pathPrefix}/h`, { key }));
    expect(response.status).toBe(200);
    expect(response.headers.get("x-credits-remaining")).toBeNull();
    expect(response.headers.get("ratelimit-policy")).not.toContain("credits");
  });

  it("a refused call with a refill says when the credits come back (Retry-After)", async () => {
    setClock("2031-03-10T23:00:00Z");
    const product = await createProduct();
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 0, refill: { amount: 5, interval: "day" } });
    const response = await settled(send(`${product.pathPrefix}/h`, { key }));
    await expectRefusal(response, 402, "CREDITS_EXHAUSTED");
    expect(response.headers.get("retry-after")).toBe("3600");
  });
});

describe("credits: per-call cost", () => {
  it("the first matching cost rule prices a call; no match costs 1; windows count calls, not cost", async () => {
    freezeClock();
    const product = await createProduct({
      rateLimitPerMinute: 100,
      costRules: [
        { method: "POST", path: "/summarize", cost: 5 },
        { path: "/free/**", cost: 0 },
      ],
    });
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 12 });
    const post = () => settled(send(`${product.pathPrefix}/summarize`, { key, method: "POST", body: { text: "x" } }));
    expect((await post()).headers.get("x-credits-remaining")).toBe("7");
    expect((await settled(send(`${product.pathPrefix}/summarize`, { key }))).headers.get("x-credits-remaining"), "GET: no rule, 1").toBe("6");
    expect((await post()).headers.get("x-credits-remaining")).toBe("1");
    const refused = await post();
    await expectRefusal(refused, 402, "CREDITS_EXHAUSTED", { since: "sent" });
    expect(refused.headers.get("x-credits-remaining")).toBe("1");
    const free = await settled(send(`${product.pathPrefix}/free/thing`, { key }));
    expect(free.status).toBe(200);
    expect(free.headers.get("x-credits-remaining")).toBe("1");
    expect(free.headers.get("x-ratelimit-remaining"), "four calls admitted, whatever they cost").toBe("96");
    expect(await creditsOf(record.id)).toMatchObject({ balance: 1, usedToday: 11 });
  });

  it("cost rules are validated by the admin API", async () => {
    const bad = await api("POST", "/api/v1/admin/products", adminToken(), {
      slug: `p-${crypto.randomUUID().slice(0, 8)}`,
      name: "P",
      pathPrefix: `/p-${crypto.randomUUID().slice(0, 8)}`,
      originUrl: "https://origin.test",
      costRules: [{ path: "/x", cost: -1 }],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("VALIDATION_FAILED");
  });
});

describe("credits: usage the origin reports", () => {
  async function meteredProduct() {
    return createProduct({ rateLimitPerMinute: 1000, usageHeader: "X-Usage-Cost" });
  }

  it("is stripped from the answer and debited afterwards; it may go below zero, and a negative balance refuses the next call", async () => {
    freezeClock();
    const product = await meteredProduct();
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 100 });
    origin.reply(() => Response.json({ tokens: 120 }, { headers: { "X-Usage-Cost": "120" } }));
    const response = await settled(send(`${product.pathPrefix}/chat`, { key }));
    expect(response.status).toBe(200);
    expect(response.headers.get("x-usage-cost"), "the usage header never reaches the client").toBeNull();
    expect(response.headers.get("x-credits-remaining"), "the admission's cost of 1, before the usage").toBe("99");
    await vi.waitFor(async () => expect((await creditsOf(record.id))!.balance).toBe(-21), { timeout: 5000 });
    expect((await creditsOf(record.id))!.usedToday).toBe(121);

    const next = await settled(send(`${product.pathPrefix}/chat`, { key }));
    await expectRefusal(next, 402, "CREDITS_EXHAUSTED", { since: "sent" });
    expect(next.headers.get("x-credits-remaining")).toBe("-21");
    expect(origin.calls()).toHaveLength(1);
  });

  it("a streamed answer's usage (in its head) is debited, and the stream reaches the client whole", async () => {
    freezeClock();
    const product = await meteredProduct();
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 1000 });
    origin.reply(() => {
      const chunks = ["data: one\n\n", "data: two\n\n", "data: [DONE]\n\n"];
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const chunk = chunks.shift();
          if (chunk === undefined) return controller.close();
          await new Promise((resolve) => setTimeout(resolve, 5));
          controller.enqueue(new TextEncoder().encode(chunk));
        },
      });
      return new Response(stream, { headers: { "Content-Type": "text/event-stream", "X-Usage-Cost": "300" } });
    });
    const response = await send(`${product.pathPrefix}/stream`, { key });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-usage-cost")).toBeNull();
    expect(await response.text()).toBe("data: one\n\ndata: two\n\ndata: [DONE]\n\n");
    await vi.waitFor(async () => expect((await creditsOf(record.id))!.balance).toBe(1000 - 1 - 300), { timeout: 5000 });
  });

  it("a malformed or negative usage value is ignored and logged, never a 500", async () => {
    freezeClock();
    const product = await meteredProduct();
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 50 });
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    for (const value of ["-5", "12.5", "lots", "1e3", "99999999999"]) {
      origin.reply(() => new Response("ok", { headers: { "X-Usage-Cost": value } }));
      const response = await settled(send(`${product.pathPrefix}/bad`, { key }));
      expect(response.status, value).toBe(200);
      expect(response.headers.get("x-usage-cost"), value).toBeNull();
    }
    const lines = logged.mock.calls
      .map(([line]) => JSON.parse(String(line)) as Record<string, unknown>)
      .filter((line) => line.event === "usage_report_invalid");
    expect(lines.map((line) => line.value)).toEqual(["-5", "12.5", "lots", "1e3", "99999999999"]);
    expect((await creditsOf(record.id))!.balance, "only the five admissions' cost").toBe(45);
  });

  it("a metered product admits only with the reserve: a balance below it is refused", async () => {
    freezeClock();
    const product = await createProduct({ usageHeader: "X-Usage-Cost", usageReserve: 10 });
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 9 });
    await expectRefusal(await settled(send(`${product.pathPrefix}/r`, { key })), 402, "CREDITS_EXHAUSTED");
    await api("POST", `/api/v1/keys/${record.id}/credits/top-up`, adminToken(), { amount: 1 });
    expect((await settled(send(`${product.pathPrefix}/r`, { key }))).status).toBe(200);
  });
});

describe("credits: refill", () => {
  it("a monthly refill on the 31st refills on the last day of shorter months, across month and year boundaries", async () => {
    setClock("2031-01-15T10:00:00Z");
    const product = await createProduct({ rateLimitPerDay: 100_000 });
    const { key, record } = await createKey();
    const set = await setCredits(record.id, { balance: 3, refill: { amount: 3, interval: "month", dayOfMonth: 31 } });
    expect(set.credits.nextRefillAt).toBe("2031-01-31T00:00:00.000Z");
    const spend = async () => {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await settled(send(`${product.pathPrefix}/m`, { key }))).status);
      return statuses;
    };
    expect(await spend()).toEqual([200, 200, 200, 402]);
    vi.setSystemTime(new Date("2031-01-30T23:59:59Z"));
    expect((await settled(send(`${product.pathPrefix}/m`, { key }))).status, "a second before the refill").toBe(402);
    vi.setSystemTime(new Date("2031-01-31T00:00:00Z"));
    expect(await spend()).toEqual([200, 200, 200, 402]);
    expect((await creditsOf(record.id))!.nextRefillAt).toBe("2031-02-28T00:00:00.000Z");
    vi.setSystemTime(new Date("2031-02-28T00:00:01Z"));
    expect(await spend()).toEqual([200, 200, 200, 402]);
    vi.setSystemTime(new Date("2031-12-31T12:00:00Z"));
    expect(await spend(), "months without calls: one refill, not the sum").toEqual([200, 200, 200, 402]);
    expect((await creditsOf(record.id))!.nextRefillAt).toBe("2032-01-31T00:00:00.000Z");
  });

  it("debt from reported usage carries over a refill", async () => {
    setClock("2031-04-10T10:00:00Z");
    const product = await createProduct({ usageHeader: "X-Usage-Cost" });
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 10, refill: { amount: 100, interval: "day" } });
    origin.reply(() => new Response("ok", { headers: { "X-Usage-Cost": "49" } }));
    expect((await settled(send(`${product.pathPrefix}/d`, { key }))).status).toBe(200);
    await vi.waitFor(async () => expect((await creditsOf(record.id))!.balance).toBe(-40), { timeout: 5000 });
    vi.setSystemTime(new Date("2031-04-11T00:00:00Z"));
    expect((await creditsOf(record.id))!.balance).toBe(60);
  });
});

describe("credits: the admin API", () => {
  it("admins set, top up, read and remove credits; every change is audited", async () => {
    freezeClock();
    const { record } = await createKey();
    const set = await setCredits(record.id, { balance: 100, refill: { amount: 100, interval: "month" }, lowThreshold: 10 });
    expect(set).toMatchObject({ keyId: record.id, lineageId: record.lineageId, credits: { balance: 100, quota: 100, lowThreshold: 10, usedToday: 0 } });
    const topped = await api("POST", `/api/v1/keys/${record.id}/credits/top-up`, adminToken(), { amount: 25 });
    expect(topped.status).toBe(200);
    expect(topped.body.credits).toMatchObject({ balance: 125, quota: 125 });
    const removed = await api("DELETE", `/api/v1/keys/${record.id}/credits`, adminToken());
    expect(removed.body).toMatchObject({ credits: null });
    expect(await creditsOf(record.id)).toBeNull();
    const noBalance = await api("POST", `/api/v1/keys/${record.id}/credits/top-up`, adminToken(), { amount: 5 });
    expect(noBalance.status).toBe(409);
    expect(noBalance.body.code).toBe("CONFLICT");

    const rows = await auditRows(record.id);
    expect(rows.map((row) => [row.actor, row.action])).toEqual([
      ["admin_token", "key.credits.set"],
      ["admin_token", "key.credits.top_up"],
      ["admin_token", "key.credits.remove"],
    ]);
    expect(JSON.parse(rows[1]!.details!)).toEqual({ amount: 25, balance: 125 });
  });

  it("an owner reads their key's credits but cannot change them; others see no such key", async () => {
    const { user } = await createUser();
    const { user: stranger } = await createUser();
    const { record } = await createKey({ ownerId: user.id });
    await setCredits(record.id, { balance: 5 });
    const read = await api("GET", `/api/v1/keys/${record.id}/credits`, await userToken(user));
    expect(read.status).toBe(200);
    expect(read.body.credits.balance).toBe(5);
    const change = await api("PUT", `/api/v1/keys/${record.id}/credits`, await userToken(user), { balance: 1000 });
    expect(change.status).toBe(403);
    const foreign = await api("GET", `/api/v1/keys/${record.id}/credits`, await userToken(stranger));
    expect(foreign.status).toBe(404);
    expect((await creditsOf(record.id))!.balance).toBe(5);
  });

  it("bad bodies are 400 VALIDATION_FAILED and change nothing", async () => {
    const { record } = await createKey();
    await setCredits(record.id, { balance: 5 });
    for (const body of [
      { balance: -1 },
      { balance: 1.5 },
      { balance: 5, refill: { amount: 0, interval: "day" } },
      { balance: 5, refill: { amount: 5, interval: "week" } },
      { balance: 5, refill: { amount: 5, interval: "day", dayOfMonth: 3 } },
      { balance: 5, refill: { amount: 5, interval: "month", dayOfMonth: 32 } },
      { balance: 5, extra: true },
    ]) {
      const answer = await api("PUT", `/api/v1/keys/${record.id}/credits`, adminToken(), body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.code).toBe("VALIDATION_FAILED");
    }
    const top = await api("POST", `/api/v1/keys/${record.id}/credits/top-up`, adminToken(), { amount: 0 });
    expect(top.status).toBe(400);
    expect((await creditsOf(record.id))!.balance).toBe(5);
    expect((await auditRows(record.id)).map((row) => row.action)).toEqual(["key.credits.set"]);
  });

  it("a revoked key's credits cannot be changed", async () => {
    const { record } = await createKey();
    const revoked = await api("DELETE", `/api/v1/keys/${record.id}`, adminToken());
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    const answer = await api("PUT", `/api/v1/keys/${record.id}/credits`, adminToken(), { balance: 5 });
    expect(answer.status).toBe(409);
  });
});

describe("credits: owners", () => {
  it("an owner's credits are shared by their keys, decided with the keys' own balances", async () => {
    freezeClock();
    const { user } = await createUser();
    const product = await createProduct({ rateLimitPerMinute: 1000 });
    const keys = await Promise.all([0, 1].map(() => createKey({ ownerId: user.id })));
    const refused = await api("PUT", `/api/v1/admin/users/${user.id}/credits`, adminToken(), { balance: 5 });
    expect(refused.status, "no owner-level limits: nothing would draw on it").toBe(409);
    expect((await api("PATCH", `/api/v1/admin/users/${user.id}`, adminToken(), { rateLimitPerDay: 1000 })).status).toBe(200);
    expect((await api("PUT", `/api/v1/admin/users/${user.id}/credits`, adminToken(), { balance: 5 })).status).toBe(200);
    await setCredits(keys[0]!.record.id, { balance: 2 });

    const responses = await Promise.all(Array.from({ length: 12 }, (_, i) => settled(send(`${product.pathPrefix}/o`, { key: keys[i % 2]!.key }))));
    expect(responses.filter((r) => r.status === 200)).toHaveLength(5);
    const firstKeyAdmitted = responses.filter((r, i) => i % 2 === 0 && r.status === 200).length;
    expect(firstKeyAdmitted, "the first key is held to its own balance of 2 too").toBe(2);
    expect((await creditsOf(keys[0]!.record.id))!.balance).toBe(0);
    const owner = await api("GET", `/api/v1/admin/users/${user.id}/credits`, adminToken());
    expect(owner.body.credits.balance).toBe(0);
    expect((await auditRows(user.id)).map((row) => row.action)).toContain("user.credits.set");
  });

  it("a key's balance moves with its counts when its owner gets owner-level limits, and back", async () => {
    freezeClock();
    const { user } = await createUser();
    const product = await createProduct();
    const { key, record } = await createKey({ ownerId: user.id });
    await setCredits(record.id, { balance: 4 });
    expect((await settled(send(`${product.pathPrefix}/m`, { key }))).status).toBe(200);
    expect((await api("PATCH", `/api/v1/admin/users/${user.id}`, adminToken(), { rateLimitPerDay: 1000 })).status).toBe(200);
    expect((await settled(send(`${product.pathPrefix}/m`, { key }))).status).toBe(200);
    expect((await creditsOf(record.id))!.balance).toBe(2);
    expect((await storedLedger(`user:${user.id}`))!.counters).toHaveProperty(`lineage:${record.lineageId}:day`);
    expect((await api("PATCH", `/api/v1/admin/users/${user.id}`, adminToken(), { rateLimitPerDay: null })).status).toBe(200);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await settled(send(`${product.pathPrefix}/m`, { key }))).status);
    expect(statuses).toEqual([200, 200, 402]);
  });
});

describe("credits: storage", () => {
  it("the balance lives in the ledger row an admission writes anyway; a credits refusal changes nothing", async () => {
    freezeClock();
    const product = await createProduct();
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 1 });
    const name = `key:${record.lineageId}`;
    expect((await settled(send(`${product.pathPrefix}/s`, { key }))).status).toBe(200);
    const ledger = await storedLedger(name);
    expect(ledger).toMatchObject({ credits: { "": { balance: 0, quota: 1 } } });
    await expectRefusal(await settled(send(`${product.pathPrefix}/s`, { key })), 402, "CREDITS_EXHAUSTED", { since: "sent" });
    expect(await storedLedger(name)).toEqual(ledger);
  });
});

describe("credits: usage stats", () => {
  it("show credits used per day and the balance", async () => {
    freezeClock();
    const product = await createProduct({ costRules: [{ cost: 3 }] });
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 20 });
    for (let i = 0; i < 2; i++) expect((await settled(send(`${product.pathPrefix}/u`, { key }))).status).toBe(200);
    const stats = await api("GET", `/api/v1/usage/stats?keyId=${record.id}`, adminToken());
    expect(stats.status).toBe(200);
    const entry = stats.body.keys[0];
    expect(entry.credits).toMatchObject({ balance: 14, usedToday: 6 });
    expect(entry.last30Days.at(-1)).toMatchObject({ count: 2, creditsUsed: 6 });
  });
});

describe("credits: the verify API", () => {
  it("counts the cost the service names and reports the balance", async () => {
    freezeClock();
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 10 });
    const token = await api("POST", "/api/v1/admin/service-tokens", adminToken(), { name: "billing" });
    expect(token.status).toBe(201);
    const verify = (cost: number) => api("POST", "/api/v1/keys/verify", { Authorization: `Bearer ${token.body.token}` }, { key, cost });
    const first = await verify(6);
    expect(first.body).toMatchObject({ valid: true, limits: { credits: { balance: 4, quota: 10, refillSeconds: null } } });
    const second = await verify(6);
    expect(second.body).toMatchObject({ valid: false, code: "CREDITS_EXHAUSTED", limits: { credits: { balance: 4 } } });
    expect((await creditsOf(record.id))!.balance).toBe(4);
  });
});

describe("credits: usage events", () => {
  it("the limiter reports each crossing once per epoch: credits.low, credits.exhausted, and again after a top-up", async () => {
    freezeClock();
    const name = `key:${crypto.randomUUID()}`;
    const stub = limiter(name);
    await stub.setCredits({}, { balance: 5, lowThreshold: 3 });
    const check = () => stub.check({ requestId: crypto.randomUUID(), limitPerMinute: 100, limitPerDay: 1000, consume: true });
    const seen: [string, string, string][] = [];
    for (let i = 0; i < 7; i++) {
      const decision = await check();
      for (const event of "events" in decision ? (decision.events ?? []) : []) seen.push([decision.outcome, event.type, event.period]);
    }
    expect(seen).toEqual([
      ["admitted", "credits.low", "1"],
      ["admitted", "credits.exhausted", "1"],
    ]);
    await stub.topUpCredits({}, 4);
    for (let i = 0; i < 5; i++) {
      const decision = await check();
      for (const event of "events" in decision ? (decision.events ?? []) : []) seen.push([decision.outcome, event.type, event.period]);
    }
    expect(seen.slice(2)).toEqual([
      ["admitted", "credits.low", "2"],
      ["admitted", "credits.exhausted", "2"],
    ]);
  });

  it("the admission that uses up a day's quota reports quota.daily_exhausted, once", async () => {
    setClock("2031-05-05T10:00:00Z");
    const stub = limiter(`key:${crypto.randomUUID()}`);
    const types: string[] = [];
    for (let i = 0; i < 5; i++) {
      const decision = await stub.check({ requestId: crypto.randomUUID(), limitPerMinute: 100, limitPerDay: 3, consume: true });
      types.push(`${decision.outcome}:${("events" in decision ? (decision.events ?? []) : []).map((e) => `${e.type}@${e.period}`).join(",")}`);
    }
    expect(types).toEqual(["admitted:", "admitted:", "admitted:quota.daily_exhausted@2031-05-05", "daily_quota_exceeded:", "daily_quota_exceeded:"]);
  });

  it("the gateway queues the crossings' events off the request path, named by the key's lineage", async () => {
    freezeClock();
    const product = await createProduct({ usageHeader: "X-Usage-Cost" });
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 2, lowThreshold: 1 });
    const queued: unknown[] = [];
    const queue = {
      send: async (body: unknown) => void queued.push(body),
      sendBatch: async (messages: { body: unknown }[]) => void queued.push(...messages.map((m) => m.body)),
    };
    const overrides = { WEBHOOK_QUEUE: queue };
    expect((await settled(send(`${product.pathPrefix}/e`, { key, env: overrides }))).status).toBe(200);
    origin.reply(() => new Response("ok", { headers: { "X-Usage-Cost": "5" } }));
    expect((await settled(send(`${product.pathPrefix}/e`, { key, env: overrides }))).status).toBe(200);
    const events = queued.map((body) => (body as { event: { type: string; subject: string; period: string; data: Record<string, unknown> } }).event);
    expect(events.map((event) => [event.type, event.subject, event.period])).toEqual([
      ["credits.low", `key:${record.lineageId}`, "1"],
      ["credits.exhausted", `key:${record.lineageId}`, "1"],
    ]);
    // Exhausted by the second admission (1 → 0); its reported usage (0 → -5) crosses nothing new.
    expect(events[1]!.data).toMatchObject({ keyId: record.id, lineageId: record.lineageId, scope: "key", balance: 0 });
  });
});

describe("credits: metered products' configuration", () => {
  it("a usage header must be a header name keygate can strip without breaking the answer", async () => {
    for (const usageHeader of ["Content-Length", "set-cookie", "X-RateLimit-Remaining", "X-Credits-Remaining", "not a header", ""]) {
      const answer = await api("POST", "/api/v1/admin/products", adminToken(), {
        slug: `p-${crypto.randomUUID().slice(0, 8)}`,
        name: "P",
        pathPrefix: `/p-${crypto.randomUUID().slice(0, 8)}`,
        originUrl: "https://origin.test",
        usageHeader,
      });
      expect(answer.status, usageHeader).toBe(400);
      expect(answer.body.code).toBe("VALIDATION_FAILED");
    }
    const accepted = await api("POST", "/api/v1/admin/products", adminToken(), {
      slug: `p-${crypto.randomUUID().slice(0, 8)}`,
      name: "P",
      pathPrefix: `/p-${crypto.randomUUID().slice(0, 8)}`,
      originUrl: "https://origin.test",
      usageHeader: "X-Usage-Tokens",
      usageReserve: 100,
      costRules: [{ method: "post", path: "/chat/**", cost: 10 }],
    });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(201);
    expect(accepted.body).toMatchObject({ usageHeader: "X-Usage-Tokens", usageReserve: 100, costRules: [{ method: "POST", path: "/chat/**", cost: 10 }] });
  });
});

describe("credits: usage reported through the API (the end of a stream)", () => {
  async function serviceToken(): Promise<Record<string, string>> {
    const token = await api("POST", "/api/v1/admin/service-tokens", adminToken(), { name: `metering-${crypto.randomUUID().slice(0, 8)}` });
    expect(token.status).toBe(201);
    return { Authorization: `Bearer ${token.body.token}` };
  }

  it("an origin that learns a stream's cost at its end reports it with the call's request id and key id; a repeat debits nothing", async () => {
    freezeClock();
    const product = await createProduct({ usageHeader: "X-Usage-Cost" });
    const { key, record } = await createKey();
    await setCredits(record.id, { balance: 500 });
    origin.reply(() => new Response("data: tokens\n\n", { headers: { "Content-Type": "text/event-stream" } }));
    const response = await send(`${product.pathPrefix}/stream`, { key });
    expect(await response.text()).toBe("data: tokens\n\n");
    const upstream = origin.calls().at(-1)!;
    const report = { keyId: upstream.headers.get("x-auth-key-id"), requestId: upstream.headers.get("x-request-id"), amount: 120 };
    const service = await serviceToken();

    const first = await api("POST", "/api/v1/usage/report", service, report);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toEqual({ authMethod: "service_token", keyId: record.id, requestId: report.requestId, debited: true, balance: 500 - 1 - 120 });
    const again = await api("POST", "/api/v1/usage/report", service, report);
    expect(again.body).toMatchObject({ debited: false, balance: 379 });
    expect(await creditsOf(record.id)).toMatchObject({ balance: 379, usedToday: 121 });
  });

  it("refuses a missing or bad credential, an unknown key and a bad body, debiting nothing", async () => {
    const { record } = await createKey();
    await setCredits(record.id, { balance: 50 });
    const report = { keyId: record.id, requestId: crypto.randomUUID(), amount: 5 };
    expect((await api("POST", "/api/v1/usage/report", {}, report)).body.code).toBe("AUTH_MISSING");
    expect((await api("POST", "/api/v1/usage/report", adminToken(), report)).status).toBe(401);
    const service = await serviceToken();
    expect((await api("POST", "/api/v1/usage/report", service, { ...report, keyId: crypto.randomUUID() })).status).toBe(404);
    for (const body of [
      { ...report, amount: -1 },
      { ...report, amount: 1.5 },
      { ...report, requestId: "" },
      { keyId: record.id, amount: 3 },
    ]) {
      const answer = await api("POST", "/api/v1/usage/report", service, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.code).toBe("VALIDATION_FAILED");
    }
    expect((await creditsOf(record.id))!.balance).toBe(50);
  });
});
