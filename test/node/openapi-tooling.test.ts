import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSchemaTypes, REGENERATE_COMMAND, SCHEMA_PATH } from "../../clients/keygate-client/scripts/generate-schema.mjs";
import { fetchOpenApiDocument } from "../../scripts/export-openapi.mjs";
import { repoRoot } from "../../scripts/lib/paths.mjs";

/**
 * Issue 15 item 1: GET /openapi.json, exactly as the built Worker serves it (the
 * `wrangler deploy --dry-run` bundle that `npm test` builds first, run in Miniflare by
 * scripts/export-openapi.mjs), through the third-party tools a user would point at it:
 * Redocly's linter (recommended rules: no errors), swagger-parser's validator, and
 * openapi-typescript, whose types must equal the checked-in client's and typecheck a
 * program on that client (strict, skipLibCheck off). Nothing here reaches the network.
 */

const bin = (name: string) => join(repoRoot, "node_modules", ".bin", name);
const CLIENT_DIR = join(repoRoot, "clients", "keygate-client");

let document: Record<string, any>;
let served: string;
let contentType: string | null;
let scratch: string;

beforeAll(async () => {
  ({ document, text: served, contentType } = await fetchOpenApiDocument());
  scratch = mkdtempSync(join(tmpdir(), "keygate-openapi-"));
}, 180_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Runs a repository tool, bounded; its exit status and output. */
function run(tool: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const result = spawnSync(bin(tool), args, {
    cwd,
    encoding: "utf8",
    timeout: 150_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...env },
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

type LintProblem = { ruleId: string; severity: "error" | "warn"; message: string; location: { pointer?: string }[] };

/**
 * `tsc --noEmit` over the client (src/index.ts), these types as src/schema.d.ts, and the
 * example program, with the client's own tsconfig (strict, skipLibCheck off). The copy lives
 * under node_modules/.cache so that openapi-fetch resolves from the repository's node_modules.
 */
function typecheckClient(types: string) {
  const cache = join(repoRoot, "node_modules", ".cache");
  mkdirSync(cache, { recursive: true });
  const root = mkdtempSync(join(cache, "keygate-client-typecheck-"));
  try {
    for (const dir of ["src", "examples"]) cpSync(join(CLIENT_DIR, dir), join(root, dir), { recursive: true });
    writeFileSync(join(root, "src", "schema.d.ts"), types);
    writeFileSync(join(root, "tsconfig.json"), JSON.stringify({ extends: join(CLIENT_DIR, "tsconfig.json"), include: ["src", "examples"] }));
    return run("tsc", ["--noEmit", "-p", join(root, "tsconfig.json")], root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe("GET /openapi.json through third-party tools", () => {
  it("is served as JSON by the built Worker", () => {
    expect(contentType).toMatch(/^application\/json\b/);
    expect(document.openapi).toMatch(/^3\.1\./);
    expect(Object.keys(document.paths ?? {}).length).toBeGreaterThan(0);
    expect(served.length).toBeGreaterThan(1000);
  });

  it("passes `redocly lint` with the recommended rules: 0 errors", () => {
    const file = join(scratch, "openapi.json");
    writeFileSync(file, served);
    // Run where no redocly.yaml is, so the rules are exactly `recommended`; no telemetry, no update check.
    const result = run("redocly", ["lint", file, "--extends=recommended", "--format=json"], scratch, {
      REDOCLY_TELEMETRY: "off",
      REDOCLY_SUPPRESS_UPDATE_NOTICE: "true",
      REDOCLY_SUPPRESS_NOTIFICATIONS: "true",
    });
    let report: { totals: { errors: number; warnings: number }; problems: LintProblem[] };
    try {
      report = JSON.parse(result.stdout);
    } catch {
      throw new Error(`redocly lint printed no JSON report (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
    }
    const errors = report.problems
      .filter((problem) => problem.severity === "error")
      .map((problem) => `${problem.ruleId} at ${problem.location[0]?.pointer ?? "?"}: ${problem.message}`);
    expect(errors, `redocly lint --extends=recommended found ${errors.length} error(s):\n${errors.join("\n")}`).toEqual([]);
    expect(report.totals.errors).toBe(0);
    expect(result.status).toBe(0);
  }, 60_000);

  it("passes @apidevtools/swagger-parser's validate()", async () => {
    // validate() dereferences in place: hand it a copy.
    const api = (await SwaggerParser.validate(structuredClone(document) as never)) as { openapi: string; paths: Record<string, unknown> };
    expect(api.openapi).toBe(document.openapi);
    expect(Object.keys(api.paths)).toEqual(Object.keys(document.paths));
  }, 60_000);

  it("gives openapi-typescript types equal to the checked-in clients/keygate-client/src/schema.d.ts", () => {
    const generated = generateSchemaTypes(document);
    const checkedIn = readFileSync(SCHEMA_PATH, "utf8");
    const got = generated.split("\n");
    const want = checkedIn.split("\n");
    const line = got.findIndex((text, i) => text !== want[i]);
    const at = line === -1 && got.length !== want.length ? Math.min(got.length, want.length) : line;
    expect(
      at === -1 ? undefined : `line ${at + 1}: checked in ${JSON.stringify(want[at])}, served document gives ${JSON.stringify(got[at])}`,
      `clients/keygate-client/src/schema.d.ts does not match GET /openapi.json: run \`${REGENERATE_COMMAND}\` and commit the result`,
    ).toBeUndefined();
  }, 60_000);

  describe("the types typecheck a program on keygate-client (tsc --noEmit, strict, skipLibCheck off)", () => {
    let types: string;
    beforeAll(() => {
      types = generateSchemaTypes(document);
    }, 60_000);

    it("clients/keygate-client/examples/manage-keys.ts: create, list, rotate with and without a body, revoke", () => {
      const result = typecheckClient(types);
      expect(result.stdout + result.stderr, "tsc over keygate-client with the served document's types").toBe("");
      expect(result.status).toBe(0);
    }, 150_000);

    it("and would fail on a document whose operationIds repeat", () => {
      // The check's own control: the served document with two operations sharing one operationId.
      const broken = structuredClone(document);
      const operations = Object.values(broken.paths as Record<string, Record<string, { operationId?: string }>>).flatMap((item) =>
        Object.values(item).filter((operation) => typeof operation === "object" && operation?.operationId),
      );
      expect(operations.length).toBeGreaterThan(1);
      operations[1]!.operationId = operations[0]!.operationId;
      const result = typecheckClient(generateSchemaTypes(broken));
      expect(result.status).not.toBe(0);
      expect(result.stdout).toMatch(/error TS2300: Duplicate identifier/);
    }, 150_000);
  });
});
