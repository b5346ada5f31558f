// F12: an over-cap chunked body must not break the connection for the request after it.
// keygate used to stop reading at MAX_BODY_BYTES and answer 413; under wrangler dev the next
// POST then failed with a text/plain 503 ("Your worker restarted mid-request"). Now it reads
// and discards the rest (up to drainBoundBytes past the cap, src/middleware/body-limit.ts)
// first. Every request here goes over one keep-alive socket (maxSockets 1), so "the next
// request" is deterministic. A body past the drain bound is still cancelled; under wrangler
// dev the POST after one of those can still get the 503 (not tested: it is wrangler's bug).
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { REQUEST_TIMEOUT_MS, useGateway } from './harness';

const gateway = useGateway();

const MAX_BODY_BYTES = 1_048_576; // wrangler.toml
/** About twice the cap, as in the finding (2.2 MB), and well within the drain bound. */
const OVER_CAP_BYTES = 2_200_000;
const CHUNK_BYTES = 64 * 1024;

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
afterAll(() => agent.destroy());

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/**
 * One request on the shared agent. A Buffer goes with a Content-Length; `chunkedBytes`
 * sends that many bytes with no Content-Length, so Node uses Transfer-Encoding: chunked.
 */
function send(method: string, path: string, headers: Record<string, string>, body: Buffer | { chunkedBytes: number }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, gateway().url);
    const req = request(url, { method, agent, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    if (Buffer.isBuffer(body)) {
      req.end(body);
      return;
    }
    // A JSON-looking start, then filler: the size alone must decide the answer.
    const chunk = Buffer.alloc(CHUNK_BYTES, 'a');
    req.write('{"email":"a@example.com","password":"');
    let sent = 0;
    const writeMore = () => {
      while (sent < body.chunkedBytes) {
        const part = chunk.subarray(0, Math.min(CHUNK_BYTES, body.chunkedBytes - sent));
        sent += part.byteLength;
        if (!req.write(part)) return void req.once('drain', writeMore);
      }
      req.end('"}');
    };
    writeMore();
  });
}

function expectJson(answer: Answer, what: string): Record<string, unknown> {
  expect(answer.headers['content-type'], `${what}: ${answer.status} ${answer.text.slice(0, 200)}`).toMatch(/^application\/json/);
  return JSON.parse(answer.text) as Record<string, unknown>;
}

const json = { 'content-type': 'application/json' };

describe('an over-cap chunked body, then the next request on the same connection (wrangler dev)', () => {
  const login = () => {
    const user = gateway().users.find((u) => u.role === 'user')!;
    return send('POST', '/auth/login', json, Buffer.from(JSON.stringify({ email: user.email, password: user.password })));
  };
  const swap = () => send('POST', '/api/v1/defi/swap', { ...json, 'X-API-Key': gateway().keys.ilalLive }, Buffer.from(JSON.stringify({ amount: '1' })));

  it('POST /auth/login without credentials: 413 JSON, then a login succeeds', async () => {
    const refused = await send('POST', '/auth/login', json, { chunkedBytes: OVER_CAP_BYTES });
    expect(refused.status, refused.text.slice(0, 200)).toBe(413);
    expect(expectJson(refused, 'the 413')).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: `Request body is larger than ${MAX_BODY_BYTES} bytes` });

    const next = await login();
    expect(next.status, next.text.slice(0, 300)).toBe(200);
    expect(expectJson(next, 'the login after it')).toMatchObject({ tokenType: 'Bearer' });

    const after = await swap();
    expect(after.status, after.text.slice(0, 300)).toBe(200);
  });

  it('a product route with a valid key: 413 JSON, nothing forwarded, then a POST is forwarded', async () => {
    const before = gateway().origin.requests.length;
    const refused = await send('POST', '/api/v1/defi/swap', { ...json, 'X-API-Key': gateway().keys.ilalLive }, { chunkedBytes: OVER_CAP_BYTES });
    expect(refused.status, refused.text.slice(0, 200)).toBe(413);
    expect(expectJson(refused, 'the 413')).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(gateway().origin.requests.length, 'the refused body reached the origin').toBe(before);

    const next = await swap();
    expect(next.status, next.text.slice(0, 300)).toBe(200);
    expect(expectJson(next, 'the POST after it')).toMatchObject({ method: 'POST', path: '/api/v1/defi/swap', body: { amount: '1' } });
    expect(gateway().origin.requests.length).toBe(before + 1);

    const again = await login();
    expect(again.status, again.text.slice(0, 300)).toBe(200);
  });

  it('a declared over-cap Content-Length: 413 without reading, and the connection stays usable', async () => {
    // workerd knows where such a body ends, so refusing it unread is safe (no drain needed).
    for (const path of ['/auth/login', '/api/v1/defi/swap']) {
      const refused = await send('POST', path, { ...json, 'X-API-Key': gateway().keys.ilalLive }, Buffer.alloc(OVER_CAP_BYTES, 'a'));
      expect(refused.status, `${path}: ${refused.text.slice(0, 200)}`).toBe(413);
      expect(expectJson(refused, `the 413 from ${path}`)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      const next = await swap();
      expect(next.status, `after ${path}: ${next.text.slice(0, 300)}`).toBe(200);
    }
  });
});
