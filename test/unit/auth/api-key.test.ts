import { describe, expect, it } from "vitest";
import { keyNotAfter, verifyApiKey, type KeyLookup } from "../../../src/auth/api-key";
import { generateKey, keyPrefix } from "../../../src/auth/key-format";
import type { KeyRecord } from "../../../src/db/keys";
import { GatewayError } from "../../../src/errors";
import { keyRecordFor } from "../../helpers/records";

const NOW = Date.parse("2026-03-01T12:00:00.000Z");
const BEFORE = "2026-03-01T11:59:59.999Z";
const AFTER = "2026-03-01T12:00:00.001Z";

function record(key: string, overrides: Partial<KeyRecord> = {}): Promise<KeyRecord> {
  return keyRecordFor(key, key.startsWith("ilal_") ? "ilal" : "ila", { name: "k", createdAt: BEFORE, updatedAt: BEFORE, ...overrides });
}

/** An in-memory key table that records every prefix it was asked for. */
function memoryLookup(rows: KeyRecord[]): KeyLookup & { asked: string[] } {
  const asked: string[] = [];
  const lookup = async (prefix: string) => {
    asked.push(prefix);
    return rows.filter((row) => row.prefix === prefix);
  };
  return Object.assign(lookup, { asked });
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GatewayError) return error.code;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("verifyApiKey", () => {
  it("returns the row of a valid active key, found by its prefix", async () => {
    const key = generateKey("ilal");
    const row = await record(key);
    const lookup = memoryLookup([row]);
    await expect(verifyApiKey(key, "ilal", lookup, NOW)).resolves.toBe(row);
    expect(lookup.asked).toEqual([keyPrefix(key)]);
  });

  it("verifies ila keys the same way", async () => {
    const key = generateKey("ila");
    const row = await record(key);
    await expect(verifyApiKey(key, "ila", memoryLookup([row]), NOW)).resolves.toBe(row);
  });

  it("refuses a key of no known format without asking storage", async () => {
    const lookup = memoryLookup([]);
    expect(await refusal(verifyApiKey("sk_live_abc", undefined, lookup, NOW))).toBe("API_KEY_FORMAT_INVALID");
    expect(lookup.asked).toEqual([]);
  });

  it("refuses a known prefix with the wrong shape without asking storage", async () => {
    const key = generateKey("ilal");
    const lookup = memoryLookup([await record(key)]);
    expect(await refusal(verifyApiKey(key.toUpperCase().replace("ILAL_LIVE_", "ilal_live_"), "ilal", lookup, NOW))).toBe("API_KEY_FORMAT_INVALID");
    expect(await refusal(verifyApiKey(key.slice(0, -1), "ilal", lookup, NOW))).toBe("API_KEY_FORMAT_INVALID");
    expect(lookup.asked).toEqual([]);
  });

  it("is API_KEY_PREFIX_NOT_FOUND when no row has the prefix", async () => {
    const lookup = memoryLookup([await record(generateKey("ilal"))]);
    expect(await refusal(verifyApiKey(generateKey("ilal"), "ilal", lookup, NOW))).toBe("API_KEY_PREFIX_NOT_FOUND");
  });

  it("is API_KEY_HASH_MISMATCH when rows share the prefix but none has the hash", async () => {
    const key = generateKey("ilal");
    const sibling = key.slice(0, -4) + (key.endsWith("0000") ? "1111" : "0000");
    const lookup = memoryLookup([await record(key)]);
    expect(keyPrefix(sibling)).toBe(keyPrefix(key));
    expect(await refusal(verifyApiKey(sibling, "ilal", lookup, NOW))).toBe("API_KEY_HASH_MISMATCH");
  });

  it("picks the matching row among several that share a prefix", async () => {
    const key = generateKey("ilal");
    const sibling = key.slice(0, -4) + (key.endsWith("0000") ? "1111" : "0000");
    const rows = [await record(sibling), await record(key), await record(`${sibling.slice(0, -1)}f`)];
    await expect(verifyApiKey(key, "ilal", memoryLookup(rows), NOW)).resolves.toBe(rows[1]);
  });

  it("ignores a stored hash of the wrong length rather than matching it", async () => {
    const key = generateKey("ilal");
    const row = await record(key);
    const broken = { ...row, hash: row.hash.slice(0, 62) };
    expect(await refusal(verifyApiKey(key, "ilal", memoryLookup([broken]), NOW))).toBe("API_KEY_HASH_MISMATCH");
  });

  it.each(["inactive", "revoked"] as const)("is API_KEY_INACTIVE for a %s key", async (status) => {
    const key = generateKey("ilal");
    expect(await refusal(verifyApiKey(key, "ilal", memoryLookup([await record(key, { status })]), NOW))).toBe("API_KEY_INACTIVE");
  });

  it("checks status before expiry", async () => {
    const key = generateKey("ilal");
    const row = await record(key, { status: "revoked", expiresAt: BEFORE });
    expect(await refusal(verifyApiKey(key, "ilal", memoryLookup([row]), NOW))).toBe("API_KEY_INACTIVE");
  });

  it("is API_KEY_EXPIRED once expires_at has passed, and not a millisecond before", async () => {
    const key = generateKey("ilal");
    expect(await refusal(verifyApiKey(key, "ilal", memoryLookup([await record(key, { expiresAt: BEFORE })]), NOW))).toBe("API_KEY_EXPIRED");
    expect(await refusal(verifyApiKey(key, "ilal", memoryLookup([await record(key, { expiresAt: new Date(NOW).toISOString() })]), NOW))).toBe(
      "API_KEY_EXPIRED",
    );
    const row = await record(key, { expiresAt: AFTER });
    await expect(verifyApiKey(key, "ilal", memoryLookup([row]), NOW)).resolves.toBe(row);
  });

  it("is API_KEY_EXPIRED once a rotation's grace_until has passed", async () => {
    const key = generateKey("ilal");
    const lapsed = await record(key, { graceUntil: BEFORE, rotatedTo: crypto.randomUUID() });
    expect(await refusal(verifyApiKey(key, "ilal", memoryLookup([lapsed]), NOW))).toBe("API_KEY_EXPIRED");
    const inGrace = await record(key, { graceUntil: AFTER, rotatedTo: crypto.randomUUID() });
    await expect(verifyApiKey(key, "ilal", memoryLookup([inGrace]), NOW)).resolves.toBe(inGrace);
  });
});

describe("keyNotAfter", () => {
  it("is the earlier of expiry and grace end, or null for neither", () => {
    expect(keyNotAfter({ expiresAt: null, graceUntil: null })).toBeNull();
    expect(keyNotAfter({ expiresAt: AFTER, graceUntil: null })).toBe(Date.parse(AFTER));
    expect(keyNotAfter({ expiresAt: AFTER, graceUntil: BEFORE })).toBe(Date.parse(BEFORE));
  });
});
