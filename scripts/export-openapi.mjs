// npm run openapi [-- --out PATH] [--origin URL] [--rebuild] [--url URL]
//
// Writes GET /openapi.json exactly as the built Worker serves it (byte for byte) to
// dist/openapi.json, or PATH. The Worker is the `wrangler deploy --dry-run` bundle in
// dist/ (built first when missing or older than src/; --rebuild forces it), run in a
// programmatic Miniflare on 127.0.0.1 with fresh secrets (scripts/lib/bundled-keygate.mjs).
// The request is addressed to --origin (default http://127.0.0.1:8787, where `npm start`
// and `npm run dev` listen), so the document's `servers`, taken from the request, is the
// same on every run; --origin https://keygate.example.com gives a deployment's document.
// --url reads a keygate that is already running instead. Nothing leaves the machine
// (except with --url). The file is generated: it is not committed.
//
// Also a module: fetchOpenApiDocument() for the tests, exportOpenApi() for other scripts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DIST_DIR, ensureBundle, startBundledKeygate, withTimeout } from './lib/bundled-keygate.mjs';
import { isMainModule, repoRoot } from './lib/paths.mjs';

export const DEFAULT_OUT = resolve(DIST_DIR, 'openapi.json');
export const DEFAULT_ORIGIN = 'http://127.0.0.1:8787';

/**
 * @typedef {{ text: string, document: Record<string, any>, contentType: string | null }} ServedDocument
 * The body as served, parsed, and its Content-Type.
 */

/** @param {{ status: number, text(): Promise<string>, headers: { get(name: string): string | null } }} response @returns {Promise<ServedDocument>} */
async function servedDocument(response) {
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /openapi.json answered ${response.status}: ${text.slice(0, 500)}`);
  return { text, document: JSON.parse(text), contentType: response.headers.get('content-type') };
}

/**
 * GET /openapi.json from a keygate that is already running, over HTTP.
 * @param {string} baseUrl @param {number} [timeoutMs] @returns {Promise<ServedDocument>}
 */
export async function readOpenApi(baseUrl, timeoutMs = 10_000) {
  return servedDocument(await fetch(new URL('/openapi.json', baseUrl), { signal: AbortSignal.timeout(timeoutMs) }));
}

/**
 * The document the built Worker serves: builds the bundle if needed, starts it, sends it
 * GET `origin`/openapi.json (Miniflare's dispatchFetch: the Worker sees that URL), stops it.
 * @param {{ rebuild?: boolean, origin?: string, timeoutMs?: number }} [options] @returns {Promise<ServedDocument>}
 */
export async function fetchOpenApiDocument({ rebuild = false, origin = DEFAULT_ORIGIN, timeoutMs = 60_000 } = {}) {
  const { path } = ensureBundle({ force: rebuild });
  // /openapi.json reads no table: no migrations needed.
  const keygate = await startBundledKeygate({ scriptPath: path, migrate: false, timeoutMs });
  try {
    const response = await withTimeout(keygate.mf.dispatchFetch(new URL('/openapi.json', origin)), timeoutMs, 'GET /openapi.json');
    return await servedDocument(response);
  } finally {
    await keygate.dispose();
  }
}

/**
 * Writes the served document to `out` (default dist/openapi.json); returns its path and the document.
 * @param {{ out?: string, rebuild?: boolean, origin?: string, url?: string }} [options]
 */
export async function exportOpenApi({ out = DEFAULT_OUT, rebuild = false, origin = DEFAULT_ORIGIN, url } = {}) {
  const { text, document } = url ? await readOpenApi(url) : await fetchOpenApiDocument({ rebuild, origin });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text);
  return { out, document, bytes: Buffer.byteLength(text) };
}

if (isMainModule(import.meta.url)) {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, origin: { type: 'string' }, url: { type: 'string' }, rebuild: { type: 'boolean', default: false } },
  });
  try {
    const { out, document, bytes } = await exportOpenApi({
      out: values.out ? resolve(values.out) : DEFAULT_OUT,
      rebuild: values.rebuild,
      origin: values.origin ?? DEFAULT_ORIGIN,
      url: values.url,
    });
    const paths = Object.keys(document.paths ?? {}).length;
    const operations = Object.values(document.paths ?? {}).reduce((count, item) => count + Object.keys(item).length, 0);
    console.log(`${relative(repoRoot, out) || out}: OpenAPI ${document.openapi}, ${paths} paths, ${operations} operations, ${bytes} bytes`);
  } catch (error) {
    console.error(`export-openapi: ${/** @type {Error} */ (error).message}`);
    process.exitCode = 1;
  }
}
