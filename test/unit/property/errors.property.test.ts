import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { verifyApiKey } from "../../../src/auth/api-key";
import { extractCredential } from "../../../src/auth/credentials";
import { hashKey, KEY_FORMAT_NAMES } from "../../../src/auth/key-format";
import { verifyJwt } from "../../../src/auth/jwt";
import { parseConfig } from "../../../src/config";
import type { KeyRecord } from "../../../src/db/keys";
import { ERRORS, errorBody, GatewayError, renderError, type ErrorCode, type ErrorFormat } from "../../../src/errors";
import { keyRecordFor } from "../../helpers/records";

/**
 * The error renderer for every code in the catalogue, with generated
 * messages, details and request ids; and errors raised while judging a
 * generated credential never repeat it.
 */
const RUNS = { numRuns: 300 };
const CODES = Object.keys(ERRORS) as ErrorCode[];
const DETAILED_FIELDS = ["error", "code", "message", "hint", "requestId"];

const code = fc.constantFrom(...CODES);
const format = fc.constantFrom<ErrorFormat>("detailed", "compact");
// Details may even reuse a detailed field's name: errorBody lets the standard fields win.
const details = fc.option(
  fc.dictionary(fc.oneof(fc.constantFrom(...DETAILED_FIELDS), fc.string({ maxLength: 12 })), fc.jsonValue({ maxDepth: 2 }), {
    maxKeys: 4,
  }),
  { nil: undefined },
);
const message = fc.option(fc.string({ unit: "binary", maxLength: 80 }), { nil: undefined });

describe("renderError for every catalogued code", () => {
  it("answers the catalogue's status with a JSON body, JSON content type and the request id", async () => {
    await fc.assert(
      fc.asyncProperty(code, format, message, details, fc.uuid(), async (errorCode, errorFormat, text, extra, requestId) => {
        const error = new GatewayError(errorCode, { message: text, details: extra });
        const response = renderError(error, errorFormat, requestId);
        expect(response.status).toBe(ERRORS[errorCode].status);
        expect(response.headers.get("content-type")).toBe("application/json");
        expect(response.headers.get("x-request-id")).toBe(requestId);
        expect(response.headers.get("www-authenticate") !== null).toBe(ERRORS[errorCode].status === 401);
        const body = JSON.parse(await response.text()) as Record<string, unknown>;
        expect(body).toEqual(JSON.parse(JSON.stringify(errorBody(error, errorFormat, requestId))));
      }),
      RUNS,
    );
  });

  it("gives a compact body exactly one field, error, holding the catalogue's compact text", () => {
    fc.assert(
      fc.property(code, message, details, fc.uuid(), (errorCode, text, extra, requestId) => {
        const spec = ERRORS[errorCode] as { message: string; compact?: string };
        const body = errorBody(new GatewayError(errorCode, { message: text, details: extra }), "compact", requestId);
        expect(Object.keys(body)).toEqual(["error"]);
        expect(body.error).toBe(spec.compact ?? text ?? spec.message);
      }),
      RUNS,
    );
  });

  it("gives a detailed body the code, the message, the hint, the request id and every other detail", () => {
    fc.assert(
      fc.property(code, message, details, fc.uuid(), (errorCode, text, extra, requestId) => {
        const body = errorBody(new GatewayError(errorCode, { message: text, details: extra }), "detailed", requestId);
        expect(body).toMatchObject({ code: errorCode, message: text ?? ERRORS[errorCode].message, hint: ERRORS[errorCode].hint, requestId });
        expect(typeof body.error).toBe("string");
        for (const [name, value] of Object.entries(extra ?? {})) {
          if (!DETAILED_FIELDS.includes(name)) expect(body[name]).toEqual(value);
        }
      }),
      RUNS,
    );
  });
});

describe("errors from judging a presented credential", () => {
  const config = parseConfig(env as unknown as Record<string, unknown>);

  /** A key with a row under its prefix but another hash: reaches the hash comparison. */
  async function decoyRow(key: string): Promise<KeyRecord> {
    return keyRecordFor(key, "ilal", { hash: await hashKey(`${key}-other`), env: "live", name: "decoy" });
  }

  /** What a client sees when it presents `credential` one way or the other. */
  async function refusalFor(credential: string, asBearer: boolean): Promise<GatewayError | undefined> {
    try {
      const parsed = asBearer ? extractCredential(null, `Bearer ${credential}`, KEY_FORMAT_NAMES) : extractCredential(credential, null, KEY_FORMAT_NAMES);
      if (parsed.kind === "jwt") await verifyJwt(parsed.token, config, Date.now());
      else {
        const row = await decoyRow(parsed.key);
        await verifyApiKey(parsed.key, parsed.format, async (prefix) => (prefix === row.prefix ? [row] : []), Date.now());
      }
      return undefined;
    } catch (error) {
      if (error instanceof GatewayError) return error;
      throw error;
    }
  }

  // Long enough that it cannot appear in a body by coincidence ("Unauthorized" holds "auth").
  const credential = fc.oneof(
    fc.string({ unit: "binary-ascii", minLength: 16, maxLength: 120 }),
    fc.stringMatching(/^ilal_(live|test)_[0-9a-f]{40,56}$/),
    fc.stringMatching(/^ila_[A-Za-z0-9]{60,80}$/),
    fc.stringMatching(/^ey[A-Za-z0-9_-]{10,40}\.[A-Za-z0-9_-]{10,60}\.[A-Za-z0-9_-]{0,40}$/),
  );

  it("never repeat the credential, in either format, whichever header carried it", async () => {
    await fc.assert(
      fc.asyncProperty(credential, fc.boolean(), format, async (presented, asBearer, errorFormat) => {
        const needle = presented.replace(/^[ \t]+|[ \t]+$/g, "");
        fc.pre(needle.length >= 12);
        const refusal = await refusalFor(presented, asBearer);
        expect(refusal, "a generated credential is never accepted").toBeDefined();
        const response = renderError(refusal!, errorFormat, crypto.randomUUID());
        const text = await response.text();
        expect(text).not.toContain(needle);
        for (const value of response.headers.values()) expect(value).not.toContain(needle);
      }),
      { numRuns: 200 },
    );
  });
});
