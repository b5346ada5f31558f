import { hashKey, keyEnv, keyPrefix, type KeyFormatName } from "../../src/auth/key-format";
import type { KeyRecord } from "../../src/db/keys";

/** The api_keys row for a plaintext key, active and unrestricted unless `overrides` say otherwise. Stores nothing. */
export async function keyRecordFor(key: string, format: KeyFormatName, overrides: Partial<KeyRecord> = {}): Promise<KeyRecord> {
  const now = new Date().toISOString();
  return {
    id: crypto.randomUUID(),
    prefix: keyPrefix(key),
    hash: await hashKey(key),
    format,
    env: keyEnv(key, format),
    name: "test key",
    ownerId: null,
    status: "active",
    createdAt: now,
    updatedAt: now,
    lastUsedAt: null,
    expiresAt: null,
    rateLimitPerMinute: null,
    rateLimitPerDay: null,
    ipAllowlist: [],
    products: ["*"],
    scopes: ["*"],
    rotatedTo: null,
    graceUntil: null,
    ...overrides,
  };
}
