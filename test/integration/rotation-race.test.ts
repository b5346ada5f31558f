import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { adminToken, api, auditRows } from "../helpers/api";
import { createKey } from "../helpers/harness";

/** A rotation that loses a race answers 409 and leaves no replacement row behind. */
afterEach(() => vi.restoreAllMocks());

const rowsNamed = async (name: string) =>
  (await env.DB.prepare("SELECT id, rotated_to FROM api_keys WHERE name = ?").bind(name).all<{ id: string; rotated_to: string | null }>()).results;

describe("rotating a key that another request rotates meanwhile", () => {
  it("answers 409 and stores no second replacement", async () => {
    const { record } = await createKey({ name: `race-${crypto.randomUUID()}` });
    // The other rotation commits after this request has read the key, just before its batch runs.
    const realBatch = env.DB.batch.bind(env.DB);
    let competitor: { id: string } | undefined;
    vi.spyOn(env.DB, "batch").mockImplementationOnce(async (statements) => {
      vi.mocked(env.DB.batch).mockImplementation(realBatch);
      const other = await api("POST", `/api/v1/keys/${record.id}/rotate`, adminToken(), {});
      expect(other.status, JSON.stringify(other.body)).toBe(201);
      competitor = other.body as { id: string };
      return realBatch(statements);
    });

    const late = await api("POST", `/api/v1/keys/${record.id}/rotate`, adminToken(), {});
    expect(late.status, JSON.stringify(late.body)).toBe(409);
    expect(late.body.code).toBe("CONFLICT");

    const rows = await rowsNamed(record.name);
    expect(rows.map((row) => row.id).sort()).toEqual([record.id, competitor!.id].sort());
    expect(rows.find((row) => row.id === record.id)?.rotated_to).toBe(competitor!.id);
    expect((await auditRows(record.id)).filter((row) => row.action === "key.rotate")).toHaveLength(1);
  });

  it("concurrent rotations: one 201, the rest 409, exactly one replacement", async () => {
    const { record } = await createKey({ name: `race-${crypto.randomUUID()}` });
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => api("POST", `/api/v1/keys/${record.id}/rotate`, adminToken(), { gracePeriodSeconds: 60 })),
    );
    expect(answers.map((answer) => answer.status).sort(), JSON.stringify(answers.map((answer) => answer.body))).toEqual([
      201, 409, 409, 409, 409, 409, 409, 409,
    ]);
    const winner = answers.find((answer) => answer.status === 201)!.body as { id: string };
    expect((await rowsNamed(record.name)).map((row) => row.id).sort()).toEqual([record.id, winner.id].sort());
  });
});
