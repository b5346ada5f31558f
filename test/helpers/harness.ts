import { env, exports } from "cloudflare:workers";
import { generateKey, type KeyEnv, type KeyFormatName } from "../../src/auth/key-format";
import { invalidateKeyCache } from "../../src/auth/key-cache";
import { insertKeyStatement, type KeyRecord } from "../../src/db/keys";
import { insertProductStatement, type Product } from "../../src/db/products";
import { invalidateProductCache } from "../../src/proxy/route-match";
import { keyRecordFor, productRecord } from "./records";

/**
 * Each test builds its own world with unique ids and path prefixes: storage is
 * isolated per file, not per test. Rows go straight into D1 through the
 * project's own query functions.
 */
export const GATEWAY = "https://gateway.test";
export { ORIGIN, uniqueSlug } from "./records";

export async function createProduct(overrides: Partial<Product> = {}): Promise<Product> {
  const product = productRecord(overrides);
  await insertProductStatement(env.DB, product).run();
  invalidateProductCache();
  return product;
}

export interface KeyOptions extends Partial<KeyRecord> {
  format?: KeyFormatName;
  env?: KeyEnv;
}

export async function createKey(options: KeyOptions = {}): Promise<{ key: string; record: KeyRecord }> {
  const format = options.format ?? "ilal";
  const key = generateKey(format, options.env ?? "live");
  const { format: _format, env: _env, ...overrides } = options;
  const record = await keyRecordFor(key, format, overrides);
  await insertKeyStatement(env.DB, record).run();
  invalidateKeyCache(record.prefix);
  return { key, record };
}

/** A CF-Connecting-IP of its own for a call, so the per-IP failed-auth throttle never links unrelated tests. */
export function randomClientIp(): string {
  const [a, b, c] = crypto.getRandomValues(new Uint8Array(3));
  return `10.${a}.${b}.${c}`;
}

/** A request to the gateway, as a client would send it. */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`${GATEWAY}${path}`, init));
}

export async function json(response: Response): Promise<Record<string, any>> {
  const text = await response.text();
  try {
    return JSON.parse(text) as Record<string, any>;
  } catch {
    throw new Error(`expected JSON, got ${response.status} ${response.headers.get("content-type")}: ${text.slice(0, 300)}`);
  }
}
