import { afterEach, beforeEach, vi } from "vitest";
import { ORIGIN } from "./records";

/**
 * An origin stub that records what reached it. The Worker under test runs in
 * the tests' isolate, so replacing global fetch intercepts its outbound calls
 * (the origin is not our storage; D1 and Durable Objects stay real). It sees
 * every outbound fetch, a remote JWKS included; `calls()` keeps those to the
 * products' origin.
 */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: Headers;
  body: string;
}

export type OriginHandler = (request: Request) => Response | Promise<Response>;

/** Echoes what it received as JSON, like the demo origin. */
export const echo: OriginHandler = async (request) => Response.json({ origin: "stub", method: request.method, url: request.url, body: await request.text() });

export interface OriginStub {
  /** Every request the Worker fetched while the stub was in place, in order. */
  readonly received: ReceivedRequest[];
  /** Those of `received` sent to the products' origin (ORIGIN), not a JWKS or another host. */
  calls(): ReceivedRequest[];
  /** Answers the next requests with `handler` (the stub starts with the one it was made with). */
  reply(handler: OriginHandler): void;
  restore(): void;
}

const stubs: { spy: unknown; stub: OriginStub }[] = [];

export function stubOrigin(handler: OriginHandler = echo): OriginStub {
  const received: ReceivedRequest[] = [];
  let answer = handler;
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input as RequestInfo, init);
    received.push({
      method: request.method,
      url: request.url,
      headers: new Headers(request.headers),
      body: await request.clone().text(),
    });
    return answer(request);
  });
  const stub: OriginStub = {
    received,
    calls: () => received.filter((request) => request.url.startsWith(ORIGIN)),
    reply: (next) => {
      answer = next;
    },
    restore: () => spy.mockRestore(),
  };
  stubs.push({ spy, stub });
  return stub;
}

/**
 * The stub now in place of global fetch, if any: the one expectRefusal and
 * expectForwarded read. A stub restored, by its own restore() or by
 * vi.restoreAllMocks(), is no longer in place and is never answered here.
 */
export function activeOrigin(): OriginStub | undefined {
  for (let i = stubs.length - 1; i >= 0; i--) {
    if (stubs[i]!.spy === globalThis.fetch) return stubs[i]!.stub;
  }
  stubs.length = 0;
  return undefined;
}

const receivedBefore = new WeakMap<Response, number>();

/**
 * Runs `sending` (a call that send() makes), noting how many requests the stub in place had received
 * before it, for expectRefusal's and expectForwarded's `since: "sent"`.
 */
export async function noteSent(sending: () => Promise<Response>): Promise<Response> {
  const before = activeOrigin()?.received.length;
  const response = await sending();
  if (before !== undefined) receivedBefore.set(response, before);
  return response;
}

/** How many requests the active stub had received when send() sent the call `response` answers, if it did. */
export function receivedBeforeSending(response: Response): number | undefined {
  return receivedBefore.get(response);
}

/**
 * An origin stub for every test of the enclosing describe block (or file):
 * made before each test with `handler` (the echo by default), restored after
 * it. The object returned stands for the current test's stub; a test that
 * needs another origin calls `origin.reply(handler)`.
 *
 *   const origin = useOrigin();
 *   it("…", async () => { …; expect(origin.received).toHaveLength(1); });
 */
export function useOrigin(handler: OriginHandler = echo): OriginStub {
  let stub: OriginStub | undefined;
  beforeEach(() => {
    stub = stubOrigin(handler);
  });
  afterEach(() => {
    stub?.restore();
    stub = undefined;
  });
  const current = (): OriginStub => {
    if (!stub) throw new Error("useOrigin() makes its stub before each test: read it inside a test");
    return stub;
  };
  return {
    get received() {
      return current().received;
    },
    calls: () => current().calls(),
    reply: (next) => current().reply(next),
    restore: () => current().restore(),
  };
}
