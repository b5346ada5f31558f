import fc from "fast-check";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { generateWebhookSecret, SECRET_PREFIX, signWebhook, verifyWebhook, webhookHeaders } from "../../src/webhooks/signature";

/**
 * keygate's Standard Webhooks signatures (WebCrypto) against the independent
 * reference library `standardwebhooks` (@stablelib/base64 + fast-sha256), in
 * both directions, for any secret, id and body: the library verifies what
 * keygate signs, keygate verifies what the library signs, both produce the
 * same header, and a changed body or timestamp fails both.
 */

const toBase64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/** A Standard Webhooks secret: "whsec_" + base64 of 24 to 64 random bytes. */
const secretArb = fc.uint8Array({ minLength: 24, maxLength: 64 }).map((bytes) => `${SECRET_PREFIX}${toBase64(bytes)}`);
/** Message ids as senders make them (no "." or space, which the signed content and the header use as separators). */
const idArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
/** Any text body, JSON or not, with non-ASCII characters. */
const bodyArb = fc.oneof(fc.json(), fc.string({ unit: "grapheme", maxLength: 300 }), fc.string({ maxLength: 300 }));
/** A timestamp within the receivers' tolerance of now (the library checks 5 minutes). */
const offsetArb = fc.integer({ min: -240, max: 240 });

const nowSeconds = () => Math.floor(Date.now() / 1000);

function libraryVerifies(secret: string, body: string, headers: Record<string, string>): boolean {
  try {
    new Webhook(secret).verify(body, headers, { jsonParse: false });
    return true;
  } catch {
    return false;
  }
}

describe("webhook signatures: keygate vs the standardwebhooks library", () => {
  it("signs exactly as the library does, and the library verifies keygate's headers", async () => {
    await fc.assert(
      fc.asyncProperty(secretArb, idArb, bodyArb, offsetArb, async (secret, id, body, offset) => {
        const timestamp = nowSeconds() + offset;
        const headers = await webhookHeaders(secret, id, timestamp, body);
        expect(headers["webhook-signature"]).toBe(new Webhook(secret).sign(id, new Date(timestamp * 1000), body));
        expect(headers["webhook-timestamp"]).toBe(String(timestamp));
        expect(libraryVerifies(secret, body, headers)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("verifies what the library signs", async () => {
    await fc.assert(
      fc.asyncProperty(secretArb, idArb, bodyArb, offsetArb, async (secret, id, body, offset) => {
        const timestamp = nowSeconds() + offset;
        const signature = new Webhook(secret).sign(id, new Date(timestamp * 1000), body);
        expect(await verifyWebhook(secret, { id, timestamp: String(timestamp), signature }, body)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it("fails in both when the body, the timestamp or the id changed after signing", async () => {
    await fc.assert(
      fc.asyncProperty(
        secretArb,
        idArb,
        bodyArb,
        fc.string({ minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 120 }),
        async (secret, id, body, extra, shift) => {
          const timestamp = nowSeconds();
          const headers = await webhookHeaders(secret, id, timestamp, body);
          const tamperedBody = body + extra;
          const tamperedTimestamp = { ...headers, "webhook-timestamp": String(timestamp - shift) };
          const tamperedId = { ...headers, "webhook-id": `${id}x` };
          expect(libraryVerifies(secret, tamperedBody, headers)).toBe(false);
          expect(libraryVerifies(secret, body, tamperedTimestamp)).toBe(false);
          expect(libraryVerifies(secret, body, tamperedId)).toBe(false);
          const signature = headers["webhook-signature"]!;
          expect(await verifyWebhook(secret, { id, timestamp: String(timestamp), signature }, tamperedBody)).toBe(false);
          expect(await verifyWebhook(secret, { id, timestamp: String(timestamp - shift), signature }, body)).toBe(false);
          expect(await verifyWebhook(secret, { id: `${id}x`, timestamp: String(timestamp), signature }, body)).toBe(false);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("fails in both under another secret", async () => {
    await fc.assert(
      fc.asyncProperty(secretArb, secretArb, idArb, bodyArb, async (secret, other, id, body) => {
        fc.pre(secret !== other);
        const timestamp = nowSeconds();
        const headers = await webhookHeaders(secret, id, timestamp, body);
        expect(libraryVerifies(other, body, headers)).toBe(false);
        expect(await verifyWebhook(other, { id, timestamp: String(timestamp), signature: headers["webhook-signature"]! }, body)).toBe(false);
      }),
      { numRuns: 50 },
    );
  });

  it("makes secrets the library accepts: whsec_ + base64 of 32 random bytes, never twice the same", async () => {
    const secrets = new Set(Array.from({ length: 50 }, () => generateWebhookSecret()));
    expect(secrets.size).toBe(50);
    for (const secret of secrets) {
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      const signature = await signWebhook(secret, "evt_1", nowSeconds(), "{}");
      expect(libraryVerifies(secret, "{}", { "webhook-id": "evt_1", "webhook-timestamp": String(nowSeconds()), "webhook-signature": signature })).toBe(true);
    }
  });

  it("takes any v1 signature of a space-separated list (a receiver during a secret rotation), and refuses stale timestamps", async () => {
    const secret = generateWebhookSecret();
    const timestamp = nowSeconds();
    const good = await signWebhook(secret, "evt_2", timestamp, "body");
    const header = `v1,${btoa("not the mac")} v2,whatever ${good}`;
    expect(await verifyWebhook(secret, { id: "evt_2", timestamp: String(timestamp), signature: header }, "body")).toBe(true);
    expect(libraryVerifies(secret, "body", { "webhook-id": "evt_2", "webhook-timestamp": String(timestamp), "webhook-signature": header })).toBe(true);
    const stale = timestamp - 301;
    const staleSignature = await signWebhook(secret, "evt_2", stale, "body");
    expect(await verifyWebhook(secret, { id: "evt_2", timestamp: String(stale), signature: staleSignature }, "body")).toBe(false);
    expect(libraryVerifies(secret, "body", { "webhook-id": "evt_2", "webhook-timestamp": String(stale), "webhook-signature": staleSignature })).toBe(false);
    expect(await verifyWebhook(secret, { id: "evt_2", timestamp: "soon", signature: good }, "body")).toBe(false);
  });
});
