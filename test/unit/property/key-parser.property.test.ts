import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { verifyApiKey } from "../../../src/auth/api-key";
import { extractCredential } from "../../../src/auth/credentials";
import { detectKeyFormat, keyPrefix, KEY_FORMAT_NAMES, matchesKeyFormat, type KeyFormatName } from "../../../src/auth/key-format";
import type { KeyRecord } from "../../../src/db/keys";
import { GatewayError } from "../../../src/errors";
import { keyRecordFor } from "../../helpers/records";

/**
 * The key parser (credentials.ts + key-format.ts + api-key.ts) under
 * generated input: no header value makes it throw anything but a
 * GatewayError, and every well-formed key verifies against its own row.
 */
const RUNS = { numRuns: 300 };
const HEX = [..."0123456789abcdef"];
const ALNUM = [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"];

const formatSubset = fc.subarray([...KEY_FORMAT_NAMES], { minLength: 0 });

/** Header-ish text: anything, keys with junk, near-misses of the known prefixes, Bearer forms. */
const hostileText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.string({ unit: "binary-ascii", maxLength: 200 }),
  fc.tuple(fc.constantFrom("ilal_", "ila_", "ilal_live_", "ilal_test_", "ILAL_live_", "ila-"), fc.string({ maxLength: 100 })).map(([a, b]) => a + b),
  fc
    .tuple(fc.constantFrom("Bearer ", "bearer\t", "Basic ", "Bearer  ", " Bearer "), fc.string({ unit: "binary-ascii", maxLength: 120 }))
    .map(([a, b]) => a + b),
);

const hex = (length: number) => fc.string({ unit: fc.constantFrom(...HEX), minLength: length, maxLength: length });
const alnum = (length: number) => fc.string({ unit: fc.constantFrom(...ALNUM), minLength: length, maxLength: length });

/** Keys of the SPEC's shapes, drawn by fast-check (not by crypto, so failures shrink and replay). */
const wellFormedKey: fc.Arbitrary<{ key: string; format: KeyFormatName; random: string }> = fc.oneof(
  fc.tuple(fc.constantFrom("live", "test"), hex(48)).map(([env, random]) => ({ key: `ilal_${env}_${random}`, format: "ilal" as const, random })),
  alnum(72).map((random) => ({ key: `ila_${random}`, format: "ila" as const, random })),
);

function throwsOnlyGatewayErrors(action: () => unknown): void {
  try {
    action();
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(GatewayError);
  }
}

/** An in-memory D1 stand-in: rows by prefix. */
const lookupIn = (rows: KeyRecord[]) => async (prefix: string) => rows.filter((row) => row.prefix === prefix);

describe("extractCredential, detectKeyFormat and matchesKeyFormat on generated input", () => {
  it("throw nothing but GatewayError for any X-API-Key / Authorization pair and any enabled formats", () => {
    fc.assert(
      fc.property(fc.option(hostileText), fc.option(hostileText), formatSubset, (apiKey, authorization, formats) => {
        throwsOnlyGatewayErrors(() => extractCredential(apiKey, authorization, formats));
      }),
      RUNS,
    );
  });

  it("never throw from detectKeyFormat or matchesKeyFormat, and only claim a format whose prefix the text carries", () => {
    fc.assert(
      fc.property(hostileText, formatSubset, (text, formats) => {
        const format = detectKeyFormat(text, formats);
        if (format !== undefined) {
          expect(formats).toContain(format);
          expect(text.startsWith(`${format}_`)).toBe(true);
        }
        for (const name of KEY_FORMAT_NAMES) expect(typeof matchesKeyFormat(text, name)).toBe("boolean");
      }),
      RUNS,
    );
  });

  it("returns a credential free of whitespace, commas and control characters whenever it accepts one", () => {
    fc.assert(
      fc.property(fc.option(hostileText), fc.option(hostileText), (apiKey, authorization) => {
        let credential: ReturnType<typeof extractCredential>;
        try {
          credential = extractCredential(apiKey, authorization, KEY_FORMAT_NAMES);
        } catch {
          return;
        }
        const value = credential.kind === "jwt" ? credential.token : credential.key;
        expect(value).not.toMatch(/[\s,\x00-\x1f\x7f]/);
        expect(value).not.toBe("");
      }),
      RUNS,
    );
  });

  it("treats a well-formed key the same in X-API-Key and as a Bearer token, with any optional whitespace around it", () => {
    fc.assert(
      fc.property(wellFormedKey, fc.constantFrom("", " ", "\t", "  \t"), fc.constantFrom("", " ", "\t "), ({ key, format }, before, after) => {
        expect(extractCredential(`${before}${key}${after}`, null, KEY_FORMAT_NAMES)).toEqual({ kind: "api_key", key, format });
        expect(extractCredential(null, `${before}Bearer ${key}${after}`, KEY_FORMAT_NAMES)).toEqual({ kind: "api_key", key, format });
        expect(matchesKeyFormat(key, format)).toBe(true);
      }),
      RUNS,
    );
  });
});

describe("generated keys against verifyApiKey with an in-memory lookup", () => {
  it("verify against their own row, and keyPrefix is the format text plus the first 8 random characters", async () => {
    await fc.assert(
      fc.asyncProperty(wellFormedKey, async ({ key, format, random }) => {
        const row = await keyRecordFor(key, format);
        expect(keyPrefix(key)).toBe(key.slice(0, key.length - random.length + 8));
        expect(keyPrefix(key).endsWith(random.slice(0, 8))).toBe(true);
        expect(await verifyApiKey(key, format, lookupIn([row]), Date.now())).toBe(row);
      }),
      RUNS,
    );
  });

  it("find their row among others sharing the prefix, and never verify a one-character mutation", async () => {
    await fc.assert(
      fc.asyncProperty(wellFormedKey, fc.nat(), fc.constantFrom(...HEX, ...ALNUM, "_", "-", " ", "\u00e4"), async ({ key, format }, at, replacement) => {
        const row = await keyRecordFor(key, format);
        const position = at % key.length;
        const mutated = key.slice(0, position) + replacement + key.slice(position + 1);
        fc.pre(mutated !== key);
        const sibling = await keyRecordFor(mutated, format); // same prefix when the change is after it
        const lookup = lookupIn([sibling, row]);
        expect(await verifyApiKey(key, format, lookup, Date.now())).toBe(row);

        const onlyOriginal = lookupIn([row]);
        const outcome = await verifyApiKey(mutated, detectKeyFormat(mutated, KEY_FORMAT_NAMES), onlyOriginal, Date.now()).then(
          () => "verified",
          (error: GatewayError) => error.code,
        );
        expect(["API_KEY_FORMAT_INVALID", "API_KEY_PREFIX_NOT_FOUND", "API_KEY_HASH_MISMATCH"]).toContain(outcome);
      }),
      RUNS,
    );
  });

  it("refuse any text with API_KEY_FORMAT_INVALID before the lookup unless it matches its format exactly", async () => {
    await fc.assert(
      fc.asyncProperty(hostileText, async (text) => {
        const format = detectKeyFormat(text, KEY_FORMAT_NAMES);
        fc.pre(format === undefined || !matchesKeyFormat(text, format));
        let looked = false;
        const error = await verifyApiKey(text, format, async () => ((looked = true), []), Date.now()).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(GatewayError);
        expect((error as GatewayError).code).toBe("API_KEY_FORMAT_INVALID");
        expect(looked, "no storage lookup for a malformed key").toBe(false);
      }),
      RUNS,
    );
  });
});
