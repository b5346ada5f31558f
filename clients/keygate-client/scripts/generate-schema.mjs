// npm run client:generate [-- --from PATH]
//
// Regenerates src/schema.d.ts with openapi-typescript from the document the built Worker
// serves (scripts/export-openapi.mjs; the bundle is rebuilt when older than src/), or from
// a saved document (--from dist/openapi.json). The output goes through Biome's formatter so
// the checked-in file is exactly what this produces: test/node/openapi-tooling.test.ts
// fails when the served document and the checked-in types drift apart.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const packageRoot = fileURLToPath(new URL("../", import.meta.url));
const repoRoot = resolve(packageRoot, "../..");
export const SCHEMA_PATH = join(packageRoot, "src", "schema.d.ts");
export const REGENERATE_COMMAND = "npm run client:generate";

/**
 * Runs a tool of the repository's node_modules/.bin with `input` on stdin; answers its stdout.
 * @param {string} tool @param {string[]} args @param {string} input
 */
function pipeThrough(tool, args, input) {
  const result = spawnSync(join(repoRoot, "node_modules", ".bin", tool), args, {
    cwd: repoRoot,
    input,
    encoding: "utf8",
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`${tool} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stderr}`);
  return result.stdout;
}

/**
 * The types the openapi-typescript CLI makes of `document` (its defaults: the document read
 * from stdin, Redocly's "minimal" rules, no redocly.yaml here), formatted by the repository's
 * Biome configuration. The CLI, not the library: the library's defaults refuse some documents
 * (a duplicate operationId) that the CLI turns into types, and it is the CLI users run.
 * @param {Record<string, unknown>} document an OpenAPI 3.x document
 * @returns {string}
 */
export function generateSchemaTypes(document) {
  const types = pipeThrough("openapi-typescript", [], JSON.stringify(document));
  return pipeThrough("biome", ["format", `--stdin-file-path=${relative(repoRoot, SCHEMA_PATH)}`], types);
}

const isMain = (() => {
  try {
    return resolve(process.argv[1] ?? "") === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
})();

if (isMain) {
  const { values } = parseArgs({ options: { from: { type: "string" } } });
  try {
    const document = values.from
      ? JSON.parse(readFileSync(resolve(values.from), "utf8"))
      : (await import("../../../scripts/export-openapi.mjs").then((module) => module.fetchOpenApiDocument())).document;
    const types = generateSchemaTypes(document);
    writeFileSync(SCHEMA_PATH, types);
    console.log(`${relative(repoRoot, SCHEMA_PATH)}: ${types.split("\n").length - 1} lines from ${values.from ?? "the built Worker's GET /openapi.json"}`);
  } catch (error) {
    console.error(`client:generate: ${/** @type {Error} */ (error).message}`);
    process.exitCode = 1;
  }
}
