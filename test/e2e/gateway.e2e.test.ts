// The gateway end to end: real wrangler dev, local D1 seeded by scripts/seed.mjs, and a
// recording origin, so each test can check both the client's answer and what (if anything)
// reached the origin. SPEC.md sections 1-4, 7, 8.
import { describe, expect, it } from 'vitest';
import { memoryReplayStore, verifyOriginSignature } from '../../src/proxy/origin-signature';
import { readJson, useGateway } from './harness';

const gateway = useGateway();

/** Call the gateway; every response, success or error, must carry X-Request-Id. */
async function call(path: string, init?: RequestInit): Promise<Response> {
  const response = await gateway().fetch(path, init);
  expect(response.headers.get('x-request-id'), `X-Request-Id on ${init?.method ?? 'GET'} ${path}`).toBeTruthy();
  return response;
}

/** Run `action` and check the origin received nothing meanwhile. */
async function expectNothingForwarded<T>(action: () => Promise<T>): Promise<T> {
  const before = gateway().origin.requests.length;
  const result = await action();
  expect(gateway().origin.requests.slice(before), 'requests that reached the origin').toEqual([]);
  return result;
}

const jsonBody = (value: unknown): RequestInit => ({
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(value),
});

/** A key of valid ila shape that was never issued. */
const UNKNOWN_ILA_KEY = `ila_${'Zz9'.repeat(24)}`;

describe('keygate over HTTP (wrangler dev)', () => {
  it('(a) GET /healthz answers 200 {status: ok}', async () => {
    const response = await call('/healthz');
    expect(response.status).toBe(200);
    expect(await readJson(response)).toMatchObject({ status: 'ok' });
  });

  it('(b) ila key in X-API-Key: POST /api/summarize is forwarded, signed, and authMethod injected', async () => {
    const response = await call('/api/summarize', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'X-API-Key': gateway().keys.ila,
        // Client-sent identity headers must never reach the origin.
        'X-Auth-Key-Id': 'forged',
        'X-Auth-Scopes': 'admin:*',
      },
      body: JSON.stringify({ inputs: { text: 'hello' } }),
    });
    const body = await readJson(response);
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(response.headers.get('x-auth-method')).toBe('api_key');
    expect(body).toMatchObject({
      origin: 'demo',
      authMethod: 'api_key',
      method: 'POST',
      path: '/api/summarize',
      body: { inputs: { text: 'hello' } },
    });

    const seen = gateway().origin.last()!;
    expect(seen.path).toBe('/api/summarize');
    expect(seen.headers['x-api-key']).toBeUndefined();
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers['x-auth-key-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.headers['x-auth-signature']).toBeUndefined();
    // The origin's view, verified with the verifier keygate ships (RFC 9421 + Content-Digest).
    const asReceived = new Request(`${gateway().origin.url}${seen.path}`, {
      method: seen.method,
      headers: Object.entries(seen.headers).flatMap(([name, value]) => (typeof value === 'string' ? [[name, value] as [string, string]] : [])),
      body: JSON.stringify(seen.body),
    });
    const verdict = await verifyOriginSignature(asReceived, gateway().secrets.ORIGIN_SIGNING_SECRET!, { replayStore: memoryReplayStore() });
    expect(verdict, JSON.stringify(verdict)).toMatchObject({ ok: true, identity: { 'x-auth-product': 'summarize' } });
    expect(seen.headers['x-auth-method']).toBe('api_key');
    expect(seen.headers['x-auth-product']).toBe('summarize');
    expect(seen.headers['x-auth-scopes']).not.toBe('admin:*');
    expect(seen.headers['x-request-id']).toBe(response.headers.get('x-request-id'));
  });

  it('(c) ilal_live key as Bearer: GET /api/v1/defi/pools reaches the live origin', async () => {
    const response = await call('/api/v1/defi/pools?chain=eth', {
      headers: { Authorization: `Bearer ${gateway().keys.ilalLive}` },
    });
    const body = await readJson(response);
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(response.headers.get('x-auth-method')).toBe('api_key');
    expect(response.headers.get('x-ratelimit-limit')).toMatch(/^\d+$/);
    expect(response.headers.get('x-ratelimit-remaining')).toMatch(/^\d+$/);
    expect(body).toMatchObject({ authMethod: 'api_key', path: '/api/v1/defi/pools', query: { chain: 'eth' } });

    const seen = gateway().origin.last()!;
    expect(seen.path).toBe('/api/v1/defi/pools');
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers['x-auth-env']).toBe('live');
    expect(seen.headers['x-auth-product']).toBe('defi');
  });

  it('(d) ilal_test key is forwarded to the product test_origin_url (/sandbox)', async () => {
    const response = await call('/api/v1/defi/pools', {
      headers: { Authorization: `Bearer ${gateway().keys.ilalTest}` },
    });
    const body = await readJson(response);
    expect(response.status, JSON.stringify(body)).toBe(200);
    const seen = gateway().origin.last()!;
    expect(seen.path).toBe('/sandbox/api/v1/defi/pools');
    expect(seen.headers['x-auth-env']).toBe('test');
  });

  it('(e) ilal_test key on POST /api/v1/defi/swap: 403 API_KEY_SCOPE_MISSING, origin sees nothing', async () => {
    const response = await expectNothingForwarded(() =>
      call('/api/v1/defi/swap', {
        method: 'POST',
        headers: { Authorization: `Bearer ${gateway().keys.ilalTest}`, 'content-type': 'application/json' },
        body: JSON.stringify({ from: 'ETH', to: 'USDC', amount: '1' }),
      }),
    );
    expect(response.status).toBe(403);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = await readJson(response);
    expect(body).toMatchObject({ code: 'API_KEY_SCOPE_MISSING' });
    expect(typeof body.error).toBe('string');
    expect(typeof body.message).toBe('string');
    expect(body.requestId).toBe(response.headers.get('x-request-id'));
  });

  it('(f) no credentials on a compact product: 401 {"error":"No API key provided"} + WWW-Authenticate', async () => {
    const response = await expectNothingForwarded(() => call('/api/summarize', { method: 'POST', ...jsonBody({ inputs: { text: 'hello' } }) }));
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await readJson(response)).toEqual({ error: 'No API key provided' });
  });

  it('(g) unknown ila key (valid format): 401 compact {"error":"Invalid or inactive API key"}', async () => {
    const response = await expectNothingForwarded(() =>
      call('/api/summarize', {
        method: 'POST',
        headers: { 'X-API-Key': UNKNOWN_ILA_KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: { text: 'hello' } }),
      }),
    );
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await readJson(response)).toEqual({ error: 'Invalid or inactive API key' });
  });

  it('(h) malformed key on a detailed product: 401 API_KEY_FORMAT_INVALID with requestId, key not echoed', async () => {
    const malformed = 'ilal_live_not-hex-and-too-short';
    const response = await expectNothingForwarded(() => call('/api/v1/defi/pools', { headers: { 'X-API-Key': malformed } }));
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const text = await response.text();
    expect(text).not.toContain(malformed);
    const body = JSON.parse(text);
    expect(body).toMatchObject({ error: 'Unauthorized', code: 'API_KEY_FORMAT_INVALID' });
    expect(typeof body.message).toBe('string');
    expect(body.requestId).toBe(response.headers.get('x-request-id'));
  });

  it('(i) a path no product serves: 404 ROUTE_NOT_FOUND', async () => {
    // With a valid key, so the answer is the routing decision whatever order the checks run in.
    const response = await expectNothingForwarded(() => call('/no/such/product', { headers: { 'X-API-Key': gateway().keys.ila } }));
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await readJson(response)).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
  });

  it('(j) the seeded demo user can sign in (POST /auth/login): password hash format matches', async () => {
    const user = gateway().users.find((u) => u.role === 'user')!;
    const response = await call('/auth/login', {
      method: 'POST',
      ...jsonBody({ email: user.email, password: user.password }),
    });
    const body = await readJson(response);
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ tokenType: 'Bearer' });
    expect(String(body.token).split('.')).toHaveLength(3);

    const wrong = await call('/auth/login', { method: 'POST', ...jsonBody({ email: user.email, password: 'nope-nope' }) });
    expect(wrong.status).toBe(401);
  });

  it('(k) ADMIN_TOKEN reads the seeded products from the admin API', async () => {
    const response = await call('/api/v1/admin/products', {
      headers: { Authorization: `Bearer ${gateway().secrets.ADMIN_TOKEN}` },
    });
    const text = await response.text();
    expect(response.status, text).toBe(200);
    expect(text).toContain('"summarize"');
    expect(text).toContain('"defi"');
  });
});
