import { afterEach, describe, expect, it, vi } from "vitest";
import { adminToken } from "../helpers/api";
import { expectRefusal } from "../helpers/expect";
import { brokenD1 } from "../helpers/faults";
import { createKey, createProduct, json, send } from "../helpers/harness";
import { useOrigin } from "../helpers/origin";

/**
 * Issue 15 item 6: one failure path. Every 5xx is logged once, by onError, as
 * one JSON line naming the request id, the code and what failed underneath
 * (GatewayError's cause); a client's mistake (4xx) is its answer, not a log.
 */
const origin = useOrigin();
afterEach(() => {
  vi.restoreAllMocks();
});

/** No binding replaced: like the calls that replace one, app.fetch in this isolate. */
const REAL: Record<string, unknown> = {};

/** console.error's lines during `act`, parsed. */
async function loggedBy(act: () => Promise<Response>): Promise<{ response: Response; lines: Record<string, unknown>[] }> {
  const spy = vi.spyOn(console, "error").mockImplementation(() => undefined);
  const response = await act();
  const lines = spy.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>);
  spy.mockRestore();
  return { response, lines };
}

describe("one log line per failed request", () => {
  it("a 503 with storage down: one line with the request id, the code, the event and the D1 error", async () => {
    const product = await createProduct();
    const { key } = await createKey();
    await send(`${product.pathPrefix}/warm`, { env: REAL }); // the product list cached: the key lookup is what meets D1 down
    const { response, lines } = await loggedBy(() => send(`${product.pathPrefix}/x`, { key, env: { DB: brokenD1().db } }));
    const body = await expectRefusal(response, 503, "AUTH_BACKEND_UNAVAILABLE", { presented: key });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ requestId: body.requestId, status: 503, code: "AUTH_BACKEND_UNAVAILABLE" });
    expect(lines[0]!.event).toBe("key_lookup_failed");
    expect(String(lines[0]!.cause)).toContain("D1_ERROR: Network connection lost.");
    expect(lines[0], "an expected failure has a cause, not a stack").not.toHaveProperty("stack");
  });

  it("a 502 from an unreachable origin: one line naming the product, with the fetch error", async () => {
    origin.reply(() => Promise.reject(new TypeError("fetch failed: connection refused")));
    const product = await createProduct();
    const { key } = await createKey();
    const { response, lines } = await loggedBy(() => send(`${product.pathPrefix}/x`, { key, env: REAL }));
    const body = await json(response);
    expect(response.status).toBe(502);
    expect(lines).toEqual([
      {
        event: "origin_failed",
        product: product.slug,
        timedOut: false,
        requestId: body.requestId,
        status: 502,
        code: "ORIGIN_UNAVAILABLE",
        message: body.message,
        cause: "TypeError: fetch failed: connection refused",
      },
    ]);
  });

  it("a client's malformed JSON (400) and a refused key (401) log nothing", async () => {
    const malformed = await loggedBy(() =>
      send("/api/v1/keys", { method: "POST", headers: { ...adminToken(), "Content-Type": "application/json" }, body: "{not json", env: REAL }),
    );
    await expectRefusal(malformed.response, 400, "VALIDATION_FAILED");
    expect(malformed.lines).toEqual([]);

    const product = await createProduct();
    const refused = await loggedBy(() => send(`${product.pathPrefix}/x`, { key: "ilal_live_not-a-key", env: REAL }));
    await expectRefusal(refused.response, 401, "API_KEY_FORMAT_INVALID", { presented: "ilal_live_not-a-key" });
    expect(refused.lines).toEqual([]);
  });
});
