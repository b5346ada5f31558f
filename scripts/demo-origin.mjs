// A stand-in origin API for local demos and the e2e tests: it answers every request with
// JSON echoing what it received, so you can see exactly what keygate forwarded.
//
//   node scripts/demo-origin.mjs [port]      (or DEMO_ORIGIN_PORT; default 8788)
//
// Binds 127.0.0.1 only.
import { createServer } from 'node:http';
import { isMainModule } from './lib/paths.mjs';

export const DEFAULT_DEMO_ORIGIN_PORT = 8788;

/**
 * @typedef {object} OriginRequest  what the origin received
 * @property {string} method
 * @property {string} path                 pathname, without the query
 * @property {Record<string, string | string[]>} query
 * @property {Record<string, string | string[] | undefined>} headers  lowercase names
 * @property {unknown} body                parsed JSON when it is JSON, else text, null when empty
 */

/** @param {URLSearchParams} searchParams */
function queryObject(searchParams) {
  /** @type {Record<string, string | string[]>} */
  const query = {};
  for (const [name, value] of searchParams) {
    const seen = query[name];
    query[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return query;
}

/** @param {string} text @param {string} [contentType] */
function parseBody(text, contentType = '') {
  if (!text) return null;
  if (/\bjson\b/i.test(contentType)) {
    try {
      return JSON.parse(text);
    } catch {
      // declared JSON but is not: echo it as text
    }
  }
  return text;
}

/** @param {import('node:http').IncomingMessage} req */
async function readRequest(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const url = new URL(req.url ?? '/', 'http://origin.invalid');
  /** @type {OriginRequest} */
  const record = {
    method: req.method ?? 'GET',
    path: url.pathname,
    query: queryObject(url.searchParams),
    headers: { ...req.headers },
    body: parseBody(Buffer.concat(chunks).toString('utf8'), req.headers['content-type']),
  };
  return record;
}

/**
 * @typedef {object} DemoOrigin
 * @property {number} port
 * @property {string} url      e.g. http://127.0.0.1:8788
 * @property {import('node:http').Server} server
 * @property {() => Promise<void>} close
 */

/**
 * Start the echo origin. Port 0 picks a free port (read it back from `.port`).
 * @param {number} [port]
 * @param {{ host?: string, onRequest?: (request: OriginRequest) => void }} [options]
 *   onRequest sees every request (the e2e tests record them)
 * @returns {Promise<DemoOrigin>}
 */
export function startDemoOrigin(port = DEFAULT_DEMO_ORIGIN_PORT, { host = '127.0.0.1', onRequest } = {}) {
  const server = createServer(async (req, res) => {
    try {
      const record = await readRequest(req);
      onRequest?.(record);
      const payload = JSON.stringify({ origin: 'demo', ...record });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
    } catch (error) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ origin: 'demo', error: String(error) }));
    }
  });
  // Keep-alive sockets from workerd would otherwise hold close() open.
  server.keepAliveTimeout = 1_000;

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const actual = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
      resolve({
        port: actual,
        url: `http://${host}:${actual}`,
        server,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

if (isMainModule(import.meta.url)) {
  const port = Number(process.argv[2] ?? process.env.DEMO_ORIGIN_PORT ?? DEFAULT_DEMO_ORIGIN_PORT);
  startDemoOrigin(port).then(
    (origin) => {
      console.log(`demo origin listening on ${origin.url}`);
      const stop = () => origin.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (error) => {
      console.error(`demo origin could not listen on 127.0.0.1:${port}: ${error.message}`);
      process.exit(1);
    },
  );
}
