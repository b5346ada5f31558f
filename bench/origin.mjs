// The benchmark's origin: a tiny JSON API on 127.0.0.1, in its own process so
// it never competes with the load generator for one event loop. Prints its
// port on stdout once listening.
//
// It also checks what a gateway sent it, so a gateway that skipped work would
// fail the bench: it keeps each request's method, URL and headers (cheap, the
// same for every contender) and, when asked at GET /__origin-stats?scenario=<id>, verifies
// every signed one that scenario sent with an independent RFC 9421 implementation
// (http-message-signatures) and ORIGIN_SIGNING_SECRET from its environment,
// and checks the identity headers the signature must cover.
import { createServer } from 'node:http';
import { createVerifier, httpbis } from 'http-message-signatures';

/** What every call answers; bench/lib/load.mjs checks for it (with authMethod spliced in through keygate). */
const BODY = JSON.stringify({ ok: true, origin: 'bench' });
/** Kept in step with bench/lib/load.mjs. */
const STATS_PATH = '/__origin-stats';
/** A bound on what is kept between two reads: a sample's worth of requests many times over. */
const MAX_KEPT = 500_000;
const secret = process.env.ORIGIN_SIGNING_SECRET;

/**
 * Requests kept since the last read, by the scenario that sent them (the
 * bench's x-bench-scenario header, passed on by every contender): a request a
 * contender was still forwarding when its sample ended is not the next one's.
 * @type {Map<string, { method: string, url: string, headers: Record<string, string | string[] | undefined> }[]>}
 */
let kept = new Map();
let keptCount = 0;
let unkept = 0;

/** The identity headers each principal's signature must cover (SPEC section 8). */
const IDENTITY = {
  api_key: ['x-auth-method', 'x-auth-key-id', 'x-auth-env', 'x-auth-scopes', 'x-auth-product', 'x-request-id'],
  jwt: ['x-auth-method', 'x-auth-subject', 'x-auth-issuer', 'x-auth-env', 'x-auth-scopes', 'x-auth-product', 'x-request-id'],
};

async function verify(request) {
  const method = request.headers['x-auth-method'];
  const required = IDENTITY[method];
  if (!required) return `x-auth-method is ${JSON.stringify(method)}`;
  const missing = required.filter((name) => !request.headers[name]);
  if (missing.length > 0) return `missing ${missing.join(', ')}`;
  const verified = await httpbis.verifyMessage(
    {
      keyLookup: async (params) =>
        params.keyid === 'keygate' ? { id: 'keygate', algs: ['hmac-sha256'], verify: createVerifier(secret, 'hmac-sha256') } : null,
      requiredFields: ['@method', '@authority', '@path', '@query', ...required],
      requiredParams: ['created', 'nonce', 'keyid', 'alg'],
    },
    request,
  );
  return verified ? null : 'signature does not verify';
}

/** Verifies what `scenario` sent since the last read, then forgets everything kept. */
async function stats(scenario) {
  const requests = kept.get(scenario) ?? [];
  const notKept = unkept;
  kept = new Map();
  keptCount = 0;
  unkept = 0;
  let signed = 0;
  let verified = 0;
  const failures = {};
  for (const request of requests) {
    if (!request.headers.signature) continue;
    signed += 1;
    const failure = secret ? await verify(request).catch((error) => String(error)) : 'no ORIGIN_SIGNING_SECRET';
    if (failure === null) verified += 1;
    else failures[failure] = (failures[failure] ?? 0) + 1;
  }
  return { requests: requests.length + notKept, notKept, signed, verified, failures };
}

const server = createServer((request, response) => {
  if (request.url.startsWith(STATS_PATH)) {
    stats(new URL(request.url, 'http://origin').searchParams.get('scenario') ?? '').then((body) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    });
    return;
  }
  if (keptCount < MAX_KEPT) {
    const scenario = String(request.headers['x-bench-scenario'] ?? '');
    if (!kept.has(scenario)) kept.set(scenario, []);
    kept.get(scenario).push({ method: request.method, url: `http://${request.headers.host}${request.url}`, headers: request.headers });
    keptCount += 1;
  } else unkept += 1;
  // Drain any request body before answering, as a real API would.
  request.resume();
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
    response.end(BODY);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
