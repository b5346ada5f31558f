// Credits exactness end to end (issue 16): a real `wrangler dev`, its local Durable Objects and
// D1, the recording origin. A key created and credited through the admin API; a concurrent
// burst larger than its balance admits exactly the balance, and the origin receives exactly that.
import { describe, expect, it } from 'vitest';
import { readJson, useGateway } from './harness';

const CREDITS = 13;
const CONCURRENT = 60;
const PATH = '/api/v1/defi/pools';

const gateway = useGateway({ vars: { RATE_LIMIT_PER_MINUTE_DEFAULT: '1000' } });

function admin(path: string, method: string, body?: unknown): Promise<Response> {
  return gateway().fetch(path, {
    method,
    headers: { Authorization: `Bearer ${gateway().secrets.ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe('credits over HTTP (wrangler dev)', () => {
  it(`admits exactly ${CREDITS} of ${CONCURRENT} concurrent calls; the rest are 402 CREDITS_EXHAUSTED and reach no origin`, async () => {
    const created = await admin('/api/v1/keys', 'POST', { name: 'credits e2e', products: ['defi'], scopes: ['defi:*'] });
    expect(created.status).toBe(201);
    const { id, key } = await readJson<{ id: string; key: string }>(created);
    const set = await admin(`/api/v1/keys/${id}/credits`, 'PUT', { balance: CREDITS, lowThreshold: 3 });
    expect(set.status).toBe(200);

    const reachedBefore = gateway().origin.requests.filter((request) => request.path === PATH).length;
    const responses = await Promise.all(Array.from({ length: CONCURRENT }, () => gateway().fetch(PATH, { headers: { 'X-API-Key': key } })));
    const results = await Promise.all(responses.map(async (response) => ({ response, body: await readJson<{ code?: string }>(response) })));

    const admitted = results.filter(({ response }) => response.status === 200);
    const refused = results.filter(({ response }) => response.status === 402);
    expect(admitted.length, `statuses: ${results.map(({ response }) => response.status).join(',')}`).toBe(CREDITS);
    expect(refused).toHaveLength(CONCURRENT - CREDITS);
    expect(new Set(refused.map(({ body }) => body.code))).toEqual(new Set(['CREDITS_EXHAUSTED']));
    const balances = admitted.map(({ response }) => Number(response.headers.get('x-credits-remaining'))).sort((a, b) => a - b);
    expect(balances, 'each admission left a distinct balance').toEqual(Array.from({ length: CREDITS }, (_, i) => i));
    for (const { response } of refused) expect(response.headers.get('x-credits-remaining')).toBe('0');

    const reached = gateway().origin.requests.filter((request) => request.path === PATH).length - reachedBefore;
    expect(reached, 'calls that reached the origin').toBe(CREDITS);

    const read = await readJson<{ credits: { balance: number; usedToday: number } }>(await admin(`/api/v1/keys/${id}/credits`, 'GET'));
    expect(read.credits).toMatchObject({ balance: 0, usedToday: CREDITS });
  });
});
