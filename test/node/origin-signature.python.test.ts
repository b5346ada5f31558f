import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { contentDigest, memoryReplayStore, signOriginRequest, verifyOriginSignature } from "../../src/proxy/origin-signature";

/**
 * docs/verify-origin-signature.py (standard-library Python) accepts what
 * keygate's TypeScript signs, and refuses tampered copies with the same
 * reason as the TypeScript verifier.
 */

const SCRIPT = path.resolve(import.meta.dirname, "../../docs/verify-origin-signature.py");
const SECRET = "python-origin-signing-secret-0123456789";
const CREATED = 1772366400;
const URL_SIGNED = "https://origin.test:8443/upstream/swap%20now?amount=1&to=x";
const BODY = '{"from":"ETH","to":"USDC","amount":"1"}';

const PYTHON_VERSION = spawnSync("python3", ["--version"], { encoding: "utf8" });
const PYTHON_MISSING = PYTHON_VERSION.error !== undefined || PYTHON_VERSION.status !== 0;
if (PYTHON_MISSING) console.warn("origin-signature.python.test.ts: skipped, python3 is not on PATH");
const itWithPython = it.skipIf(PYTHON_MISSING);

interface Described {
  method: string;
  url: string;
  headers: Record<string, string>;
  body_base64?: string;
  now: number;
}

async function signed({ method = "POST", body = BODY as string | null, requestId = "0f0e0d0c-0000-4000-8000-000000000002" } = {}): Promise<Described> {
  const headers = new Headers({
    "X-Auth-Method": "api_key",
    "X-Auth-Key-Id": "6d1f1c9e-0000-4000-8000-000000000001",
    "X-Auth-Env": "live",
    "X-Auth-Scopes": "defi:read defi:swap",
    "X-Auth-Product": "defi",
    "X-Request-Id": requestId,
    "X-Forwarded-For": "203.0.113.7",
    "Content-Type": "application/json",
  });
  if (body !== null) headers.set("Content-Digest", await contentDigest(new TextEncoder().encode(body)));
  await signOriginRequest(SECRET, { method, url: new URL(URL_SIGNED), headers, created: CREATED, nonce: requestId });
  return { method, url: URL_SIGNED, headers: Object.fromEntries(headers), now: CREATED, ...(body === null ? {} : { body_base64: btoa(body) }) };
}

/** The Python verifier's line for each request (one nonce set for the whole list). */
function python(requests: Described[]): string[] {
  const run = spawnSync("python3", [SCRIPT], {
    input: JSON.stringify(requests),
    encoding: "utf8",
    env: { ...process.env, ORIGIN_SIGNING_SECRET: SECRET },
    timeout: 10_000,
  });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout.trimEnd().split("\n");
}

/** The TypeScript verifier's answer for the same description. */
async function typescript(described: Described): Promise<string> {
  const body = described.body_base64 === undefined ? null : atob(described.body_base64);
  const request = new Request(described.url, { method: described.method, headers: described.headers, body });
  const result = await verifyOriginSignature(request, SECRET, { now: described.now * 1000, replayStore: memoryReplayStore(10, () => described.now * 1000) });
  return result.ok ? "ok" : result.reason;
}

function changed(described: Described, change: Partial<Described> & { set?: Record<string, string>; drop?: string[] }): Described {
  const headers = { ...described.headers, ...change.set };
  for (const name of change.drop ?? []) delete headers[name];
  const { set: _set, drop: _drop, ...rest } = change;
  return { ...described, ...rest, headers };
}

describe("docs/verify-origin-signature.py (skipped when python3 is not on PATH)", () => {
  itWithPython("accepts a POST with a body and a GET without one, as keygate signed them", async () => {
    expect(python([await signed(), await signed({ method: "GET", body: null, requestId: "r-2" })])).toEqual(["ok", "ok"]);
  });

  itWithPython("refuses a tampered body", async () => {
    expect(python([changed(await signed(), { body_base64: btoa(BODY.replace('"1"', '"9"')) })])).toEqual(["content-digest does not match the body"]);
  });

  itWithPython("refuses the same request the second time", async () => {
    const request = await signed();
    expect(python([request, request])).toEqual(["ok", "replayed nonce"]);
  });

  itWithPython("gives the TypeScript verifier's reason for each tampered copy", async () => {
    const post = await signed();
    const get = await signed({ method: "GET", body: null });
    const cases: Described[] = [
      changed(post, { url: URL_SIGNED.replace("origin.test", "other.test") }),
      changed(post, { url: URL_SIGNED.replace(":8443", "") }),
      changed(post, { url: URL_SIGNED.replace("swap%20now", "sw%61p%20now") }),
      changed(post, { url: URL_SIGNED.replace("amount=1", "amount=1000") }),
      changed(post, { method: "PUT" }),
      changed(post, { set: { "x-auth-scopes": "*" } }),
      changed(post, { set: { X_Auth_Subject: "admin" } }),
      changed(post, { set: { "x.auth.subject": "admin" } }),
      changed(post, { drop: ["content-digest"] }),
      changed(post, { drop: ["x-auth-key-id"] }),
      changed(get, { body_base64: btoa(BODY), method: "POST" }),
      changed(post, { now: CREATED + 61 }),
      changed(post, { now: CREATED - 61 }),
      changed(post, { set: { signature: "keygate=:AAAA:" } }),
      changed(post, { set: { "signature-input": post.headers["signature-input"]!.replace("hmac-sha256", "hmac-sha512") } }),
      changed(post, { set: { "signature-input": post.headers["signature-input"]!.replace(/;nonce="[^"]*"/, "") } }),
      changed(post, { set: { "signature-input": `${post.headers["signature-input"]}, ${post.headers["signature-input"]}` } }),
      changed(post, { drop: ["signature"] }),
      // Last: a refused request does not use up the nonce, so the genuine one still passes.
      post,
    ];
    const expected = [];
    for (const described of cases) expected.push(await typescript(described));
    expect(python(cases)).toEqual(expected);
    expect(expected.at(-1)).toBe("ok");
    expect(new Set(expected).size, "the cases should exercise different checks").toBeGreaterThan(10);
  });
});
