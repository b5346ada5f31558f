import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWorker } from "../../bench/lib/build.mjs";
import { METER_PATH, meteredWorker } from "../../bench/lib/meter.mjs";
import { makeKeys, PRODUCT_PREFIX, seedDatabase } from "../../bench/lib/seed.mjs";
import { startKeygate, startWorker } from "../../bench/lib/workers.mjs";
import { usdPerMillionRequests } from "../../bench/prices.mjs";
import { generateSecrets } from "../../scripts/lib/secrets.mjs";

/**
 * Issue 14: the bench's cost counters, run in CI. The bundle `wrangler deploy`
 * would ship, behind bench/lib/meter.mjs, in programmatic Miniflare: what one
 * request costs in Durable Object calls, rows read and written in the objects,
 * and D1 queries and rows, counted from the platform's own cursors and result
 * metadata. The counter is checked first against a Worker whose costs are
 * known by construction (bench/workers/bare-proxy-do.js).
 */

type Tally = { doCalls: number; doRowsRead: number; doRowsWritten: number; d1Queries: number; d1RowsRead: number; d1RowsWritten: number };
type Worker = { url: string; dispose(): Promise<void>; mf: Pick<import("miniflare").Miniflare, "getD1Database"> };

const ORIGIN_BODY = JSON.stringify({ ok: true, origin: "bench" });
let origin: Server;
let originUrl: string;
let bundle: string;
let secrets: Record<string, string>;
const started: Worker[] = [];

beforeAll(async () => {
  origin = createServer((request, response) => {
    request.resume();
    request.on("end", () => response.writeHead(200, { "content-type": "application/json" }).end(ORIGIN_BODY));
  });
  await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
  originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  bundle = buildWorker();
  secrets = await generateSecrets();
}, 120_000);

afterAll(async () => {
  for (const worker of started) await worker.dispose();
  await new Promise((resolve) => origin.close(resolve));
});

async function start(starting: Promise<Worker>): Promise<Worker> {
  const worker = await starting;
  started.push(worker);
  return worker;
}

const meter = async (worker: Worker): Promise<Tally> => (await fetch(`${worker.url}${METER_PATH}`)).json() as Promise<Tally>;

/** Sends `count` requests one after another, cycling through the header sets; returns their statuses and bodies. */
async function send(worker: Worker, headers: Record<string, string>[], count: number) {
  const answers: { status: number; body: string }[] = [];
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${worker.url}${PRODUCT_PREFIX}/items`, { headers: headers[i % headers.length] });
    answers.push({ status: response.status, body: await response.text() });
  }
  return answers;
}

describe("bench cost counters", () => {
  it("count what a Worker with known costs does: one object call, one row written per increment", async () => {
    const worker = await start(
      startWorker({
        scriptPath: meteredWorker("bare-proxy-do", new URL("../../bench/workers/bare-proxy-do.js", import.meta.url).pathname, ["Counter"]),
        bindings: { ORIGIN_URL: originUrl },
        durableObjects: { COUNTER: "Counter" },
      }),
    );
    await send(worker, [{ "x-api-key": "a" }], 2); // the object's CREATE TABLE is not a request's cost
    await meter(worker);
    const answers = await send(worker, [{ "x-api-key": "a" }, { "x-api-key": "b" }], 20);
    const tally = await meter(worker);
    expect(answers.every((a) => a.status === 200 && a.body === ORIGIN_BODY)).toBe(true);
    // 20 increments: 20 calls; b's first call also created its table (a schema write), a's were all upserts.
    expect(tally.doCalls).toBe(20);
    expect(tally.doRowsWritten).toBeGreaterThanOrEqual(20);
    expect(tally.doRowsWritten).toBeLessThanOrEqual(22);
    expect(tally.d1Queries).toBe(0);
    expect(await meter(worker), "a read resets the tally").toEqual({
      doCalls: 0,
      doRowsRead: 0,
      doRowsWritten: 0,
      d1Queries: 0,
      d1RowsRead: 0,
      d1RowsWritten: 0,
    });
  }, 60_000);

  it("a warm API-key call costs 1 object call, at most 1 row written and no D1; a cold one 1 D1 query more", async () => {
    const keys = await makeKeys(3);
    const headers = keys.map(({ key }: { key: string }) => ({ "x-api-key": key }));
    const metered = meteredWorker("keygate", bundle, ["RateLimiter"]);
    const warm = await start(startKeygate(metered, secrets));
    const cold = await start(startKeygate(metered, secrets, { KEY_CACHE_TTL_SECONDS: "0" }));
    for (const worker of [warm, cold]) await seedDatabase(await worker.mf.getD1Database("DB"), originUrl, keys);

    const counted = async (worker: Worker, calls: number) => {
      await send(worker, headers, headers.length * 2); // each key cached and its object made
      await meter(worker);
      const answers = await send(worker, headers, calls);
      return { answers, tally: await meter(worker) };
    };
    const expected = JSON.stringify({ ok: true, origin: "bench", authMethod: "api_key" });

    const hot = await counted(warm, 30);
    expect(hot.answers.filter((a) => a.status !== 200 || a.body !== expected)).toEqual([]);
    expect(hot.tally).toMatchObject({ doCalls: 30, d1Queries: 0, d1RowsRead: 0, d1RowsWritten: 0 });
    expect(hot.tally.doRowsWritten, "one ledger row per admission: durable, and no more").toBe(30);

    const lookedUp = await counted(cold, 30);
    expect(lookedUp.answers.filter((a) => a.status !== 200 || a.body !== expected)).toEqual([]);
    expect(lookedUp.tally).toMatchObject({ doCalls: 30, d1Queries: 30, d1RowsWritten: 0 });
    expect(lookedUp.tally.d1RowsRead).toBeGreaterThanOrEqual(30);
    expect(lookedUp.tally.doRowsWritten).toBeLessThanOrEqual(30);

    // Priced from the price table: the counted operations of the warm path, CPU aside, within the 1.5 USD per million.
    const perCall = (n: number) => n / 30;
    const price = usdPerMillionRequests({
      cpuMs: 0,
      doCalls: perCall(hot.tally.doCalls),
      doRowsRead: perCall(hot.tally.doRowsRead),
      doRowsWritten: perCall(hot.tally.doRowsWritten),
      d1RowsRead: 0,
      d1RowsWritten: 0,
    });
    expect(price).toBeLessThanOrEqual(1.5);
  }, 120_000);
});
