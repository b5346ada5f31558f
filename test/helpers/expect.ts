import { expect } from "vitest";
import { GatewayError } from "../../src/errors";
import { activeOrigin, receivedBeforeSending, type OriginStub, type ReceivedRequest } from "./origin";

/**
 * The gateway's contract, asserted one way everywhere: a refusal is JSON with
 * its code and the request's X-Request-Id, carries WWW-Authenticate on a 401
 * and only there, never repeats the credential, and reaches no origin; a
 * forwarded call reaches the origin once, with the caller's identity. And, for
 * unit tests, the GatewayError a function refuses with.
 */

const REQUEST_ID = /^[0-9a-f-]{36}$/;

export interface CallExpectations {
  /** A credential the answer must not repeat, in its body or in any header. */
  presented?: string;
  /** The URLs other than the origin the gateway fetched meanwhile (a JWKS), exactly, in order; none by default. */
  fetched?: string[];
  /** The stub to read; by default the one in place of global fetch (stubOrigin(), useOrigin()). */
  origin?: OriginStub;
  /**
   * Which of the stub's requests are this call's: those after the first `since` (`origin.received.length`
   * read before sending), or, with "sent", those since send() sent it (earlier calls of the test are
   * asserted on their own). By default every request the stub received counts.
   */
  since?: number | "sent";
  /** Names the call in failure messages, in a loop. */
  label?: string;
}

function stubFor(helper: string, given: OriginStub | undefined): OriginStub {
  const stub = given ?? activeOrigin();
  if (!stub) throw new Error(`${helper}: no origin stub is in place, so what reached the origin cannot be shown (useOrigin() or stubOrigin() first)`);
  return stub;
}

function sinceOf(response: Response, options: CallExpectations, helper: string): number {
  if (options.since !== "sent") return options.since ?? 0;
  const before = receivedBeforeSending(response);
  if (before === undefined) throw new Error(`${helper}: since "sent" needs a response from send() made while an origin stub was in place`);
  return before;
}

function parseJson(text: string, where: string): Record<string, any> {
  try {
    return JSON.parse(text) as Record<string, any>;
  } catch {
    throw new Error(`${where}: expected JSON, got ${text.slice(0, 300)}`);
  }
}

/** What every refusal carries, whatever its format: X-Request-Id, WWW-Authenticate on a 401 only, no credential, no origin call. */
function expectRefusalFrame(response: Response, text: string, status: number, options: CallExpectations, stub: OriginStub): void {
  const label = options.label ? `${options.label}: ` : "";
  expect(response.status, `${label}${text.slice(0, 500)}`).toBe(status);
  expect(response.headers.get("content-type"), `${label}content-type`).toMatch(/^application\/json/);
  expect(response.headers.get("x-request-id"), `${label}X-Request-Id`).toMatch(REQUEST_ID);
  if (status === 401) expect(response.headers.get("www-authenticate"), `${label}a 401 invites authentication`).toMatch(/^Bearer/);
  else expect(response.headers.get("www-authenticate"), `${label}only a 401 carries WWW-Authenticate`).toBeNull();
  if (options.presented) {
    expect(text, `${label}the body repeats the credential`).not.toContain(options.presented);
    for (const [name, value] of response.headers) expect(value, `${label}${name} repeats the credential`).not.toContain(options.presented);
  }
  expect(
    stub.received.slice(sinceOf(response, options, "expectRefusal")).map((request) => request.url),
    `${label}a refused call must not reach the origin`,
  ).toEqual(options.fetched ?? []);
}

/** A refusal in the detailed format, as the SPEC describes it; returns the body for further checks. */
export async function expectRefusal(response: Response, status: number, code: string | RegExp, options: CallExpectations = {}): Promise<Record<string, any>> {
  const stub = stubFor("expectRefusal", options.origin);
  const text = await response.text();
  expectRefusalFrame(response, text, status, options, stub);
  const label = options.label ? `${options.label}: ` : "";
  const body = parseJson(text, `${label}expectRefusal`);
  if (typeof code === "string") expect(body.code, `${label}${text}`).toBe(code);
  else expect(body.code, `${label}${text}`).toMatch(code);
  expect(Object.keys(body)).toEqual(expect.arrayContaining(["error", "code", "message", "hint", "requestId"]));
  expect(typeof body.error).toBe("string");
  expect(typeof body.message).toBe("string");
  expect(typeof body.hint).toBe("string");
  expect(body.requestId, `${label}the body's requestId is the header's`).toBe(response.headers.get("x-request-id"));
  return body;
}

/** A refusal in the compact format: exactly `{"error": message}`, with the same frame as a detailed one. */
export async function expectCompactRefusal(response: Response, status: number, message: string, options: CallExpectations = {}): Promise<void> {
  const stub = stubFor("expectCompactRefusal", options.origin);
  const text = await response.text();
  expectRefusalFrame(response, text, status, options, stub);
  expect(text, options.label).toBe(JSON.stringify({ error: message }));
}

export type Caller = { keyId: string } | { subject: string };

/**
 * A call the gateway forwarded: 200 with its request id, answered by the echo
 * origin (authMethod injected), which it reached exactly once with the
 * caller's identity (an API key's id, or a JWT's subject) and nothing of the
 * other kind. Returns the body and the request the origin received.
 */
export async function expectForwarded(
  response: Response,
  caller: Caller,
  options: Omit<CallExpectations, "presented"> = {},
): Promise<{ body: Record<string, any>; upstream: ReceivedRequest }> {
  const stub = stubFor("expectForwarded", options.origin);
  const label = options.label ? `${options.label}: ` : "";
  const text = await response.text();
  expect(response.status, `${label}${text.slice(0, 500)}`).toBe(200);
  const body = parseJson(text, `${label}expectForwarded`);
  const method = "keyId" in caller ? "api_key" : "jwt";
  expect(response.headers.get("x-auth-method"), `${label}X-Auth-Method`).toBe(method);
  expect(response.headers.get("x-request-id"), `${label}X-Request-Id`).toMatch(REQUEST_ID);
  expect(body.authMethod, `${label}authMethod injected into the origin's answer`).toBe(method);
  const received = stub.received.slice(sinceOf(response, options, "expectForwarded"));
  const calls = received.filter((request) => stub.calls().includes(request));
  expect(
    received.filter((request) => !calls.includes(request)).map((request) => request.url),
    `${label}fetches other than the origin`,
  ).toEqual(options.fetched ?? []);
  expect(calls, `${label}the origin is reached once`).toHaveLength(1);
  const upstream = calls[0]!;
  expect(upstream.headers.get("x-auth-method")).toBe(method);
  if ("keyId" in caller) {
    expect(upstream.headers.get("x-auth-key-id")).toBe(caller.keyId);
    expect(upstream.headers.get("x-auth-subject")).toBeNull();
  } else {
    expect(upstream.headers.get("x-auth-subject")).toBe(caller.subject);
    expect(upstream.headers.get("x-auth-key-id")).toBeNull();
  }
  return { body, upstream };
}

/** The GatewayError `run` (a promise, or a function, sync or async) refuses with; fails when it succeeds or throws anything else. */
export async function refusal(run: Promise<unknown> | (() => unknown)): Promise<GatewayError> {
  try {
    await (typeof run === "function" ? run() : run);
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error("expected a refusal (a GatewayError), but it succeeded");
}

/** The code of the GatewayError `run` refuses with. */
export async function refusalCode(run: Promise<unknown> | (() => unknown)): Promise<string> {
  return (await refusal(run)).code;
}
