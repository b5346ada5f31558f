import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The CLI names a 401 for what it is: the gateway does not know this ADMIN_TOKEN. It says what to
 * check (KEYGATE_URL, ADMIN_TOKEN / .dev.vars) instead of echoing the gateway's generic message.
 */

interface CliModule {
  main(argv: string[], env: NodeJS.ProcessEnv, io: { out: (text: string) => void; err: (text: string) => void }): Promise<number>;
}
// A computed specifier: the node project's tsconfig does not type-check scripts/ (the e2e one does).
const cliModule = path.resolve(import.meta.dirname, "../../scripts/keygate-cli.mjs");
const { main } = (await import(cliModule)) as CliModule;

let server: Server;
let url: string;
const seen: (string | undefined)[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.headers.authorization);
    const forbidden = req.url?.startsWith("/api/v1/usage");
    res
      .writeHead(forbidden ? 403 : 401, { "content-type": "application/json" })
      .end(JSON.stringify(forbidden ? { code: "FORBIDDEN", message: "Only admins may do this" } : { code: "UNAUTHENTICATED", message: "Invalid credentials" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { KEYGATE_URL: url, ADMIN_TOKEN: "a-token-this-gateway-does-not-know" }, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("keygate CLI and a refused admin token", () => {
  it("says 'wrong ADMIN_TOKEN' on a 401, and what to check", async () => {
    const result = await cli(["products", "list"]);
    expect(result.code).toBe(1);
    expect(result.out).toBe("");
    expect(result.err).toContain("wrong ADMIN_TOKEN");
    expect(result.err).toContain(url);
    expect(result.err).toContain("KEYGATE_URL");
    expect(result.err).toContain(".dev.vars");
    // The gateway's own words stay, code included (test/e2e/cli.e2e.test.ts matches on it).
    expect(result.err).toMatch(/^Error: wrong ADMIN_TOKEN: .+ \(UNAUTHENTICATED\)/);
    expect(seen.at(-1)).toBe("Bearer a-token-this-gateway-does-not-know");
  });

  it("leaves other refusals as the gateway worded them", async () => {
    const result = await cli(["usage"]);
    expect(result.code).toBe(1);
    expect(result.err).toBe("Error: Only admins may do this (FORBIDDEN)");
  });
});
