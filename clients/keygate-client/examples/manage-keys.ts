/**
 * A small program on keygate-client: create a key, list keys page by page, rotate it with
 * a grace period and then without a body, revoke it, and read a missing key. It uses both
 * the helpers and the raw openapi-fetch calls, so `tsc` over it (strict, skipLibCheck off)
 * checks the types generated from GET /openapi.json the way a real client would use them.
 * test/node/keygate-client.test.ts runs it against a real keygate.
 */
import { createKeygateClient, KeygateError, type KeygateClientOptions } from "../src/index";

export interface ManageKeysReport {
  created: { id: string; prefix: string };
  listed: number;
  rotatedWithGrace: { from: string; to: string; graceUntil: string };
  rotatedWithoutBody: { from: string; to: string; keyLength: number };
  revoked: string[];
  missing: { status: number; code: string };
}

export async function manageKeys(options: KeygateClientOptions): Promise<ManageKeysReport> {
  const keygate = createKeygateClient(options);

  const created = await keygate.createKey({ name: "example key", env: "test", products: ["*"], scopes: ["reports:read"] });
  const plaintext: string = created.key; // shown this once

  let listed = 0;
  for await (const key of keygate.allKeys({ limit: 2 })) {
    const status: "active" | "inactive" | "revoked" = key.status;
    if (status !== "revoked") listed += 1;
  }

  // With a body, through the helper: the old key keeps working for 60 s.
  const first = await keygate.rotateKey(created.id, { gracePeriodSeconds: 60 });
  // Without a body, through the raw client: keygate's defaults.
  const { data: second, error, response } = await keygate.POST("/api/v1/keys/{id}/rotate", { params: { path: { id: first.id } } });
  if (error !== undefined) throw new KeygateError(response.status, error, response.headers.get("X-Request-Id"));

  const revoked: string[] = [];
  for (const id of [created.id, first.id]) revoked.push((await keygate.revokeKey(id)).id);
  const current = await keygate.getKey(second.id);
  const { data: gone } = await keygate.DELETE("/api/v1/keys/{id}", {
    params: { path: { id: second.id }, header: { "If-Match": `"${current.version}"` } },
  });
  if (gone) revoked.push(gone.id);

  let missing = { status: 0, code: "" };
  try {
    await keygate.getKey("00000000-0000-4000-8000-000000000000");
  } catch (failure) {
    if (!(failure instanceof KeygateError)) throw failure;
    missing = { status: failure.status, code: failure.code };
  }

  return {
    created: { id: created.id, prefix: plaintext.slice(0, created.prefix.length) },
    listed,
    rotatedWithGrace: { from: first.rotatedFrom, to: first.id, graceUntil: first.graceUntil },
    rotatedWithoutBody: { from: second.rotatedFrom, to: second.id, keyLength: second.key.length },
    revoked,
    missing,
  };
}
