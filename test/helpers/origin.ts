import { vi } from "vitest";

/**
 * An origin stub that records what reached it. The Worker under test runs in
 * the tests' isolate, so replacing global fetch intercepts its outbound calls
 * (the origin is not our storage; D1 and Durable Objects stay real).
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

export function stubOrigin(handler: OriginHandler = echo) {
  const received: ReceivedRequest[] = [];
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input as RequestInfo, init);
    received.push({
      method: request.method,
      url: request.url,
      headers: new Headers(request.headers),
      body: await request.clone().text(),
    });
    return handler(request);
  });
  return { received, restore: () => spy.mockRestore() };
}
