import { hashKey, keyEnv, keyPrefix, type KeyFormatName } from "../../src/auth/key-format";
import type { KeyRecord } from "../../src/db/keys";
import type { Product } from "../../src/db/products";

/** The api_keys row for a plaintext key, active and unrestricted unless `overrides` say otherwise. Stores nothing. */
export async function keyRecordFor(key: string, format: KeyFormatName, overrides: Partial<KeyRecord> = {}): Promise<KeyRecord> {
  const now = new Date().toISOString();
  const id = crypto.randomUUID();
  return {
    id,
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
    version: 1,
    rateLimitMode: null,
    statusSetBy: null,
    expiresSetBy: null,
    ...overrides,
    lineageId: overrides.lineageId ?? overrides.id ?? id,
  };
}

export const ORIGIN = "https://origin.test";

export function uniqueSlug(label = "p"): string {
  return `${label}-${crypto.randomUUID().slice(0, 8)}`;
}

/** A products row routed at `/api/<slug>`, accepting keys and JWTs with detailed errors, unless `overrides` say otherwise. Stores nothing. */
export function productRecord(overrides: Partial<Product> = {}): Product {
  const slug = overrides.slug ?? uniqueSlug();
  const now = new Date().toISOString();
  return {
    id: crypto.randomUUID(),
    slug,
    name: `Product ${slug}`,
    pathPrefix: `/api/${slug}`,
    originUrl: `${ORIGIN}/upstream`,
    testOriginUrl: null,
    stripPrefix: false,
    authMethods: ["api_key", "jwt"],
    errorFormat: "detailed",
    rateLimitPerMinute: null,
    rateLimitPerDay: null,
    injectAuthMethod: true,
    scopeRules: [],
    caseSensitiveRules: false,
    strictTrailingSlash: false,
    corsOrigins: [],
    costRules: [],
    usageHeader: null,
    usageReserve: 1,
    rateLimitMode: "exact",
    createdAt: now,
    updatedAt: now,
    ...overrides,
  };
}
