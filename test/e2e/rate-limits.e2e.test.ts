// Rate-limit exactness end to end (SPEC section 5): a real `wrangler dev` with its local
// Durable Objects, the seeded demo key, and the recording origin. The seeded products and
// keys set no limits, so RATE_LIMIT_PER_MINUTE_DEFAULT is the key's per-minute limit.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { readJson, useGateway } from './harness';

const LIMIT = 25;
const CONCURRENT = 100;
const PATH = '/api/v1/defi/pools';

const gateway = useGateway({ vars: { RATE_LIMIT_PER_MINUTE_DEFAULT: String(LIMIT) } });

/** Waits for the next UTC minute unless `seconds` are left in this one, so a burst stays in one window. */
async function awaitRoomInMinute(seconds: number): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < seconds * 1000) await sleep(left + 250);
}

describe('rate limits over HTTP (wrangler dev)', () => {
  it(`admits exactly ${LIMIT} of ${CONCURRENT} concurrent calls, and the origin receives exactly ${LIMIT}`, async () => {
    await awaitRoomInMinute(20);
    const reachedBefore = gateway().origin.requests.filter((request) => request.path === PATH).length;

    const responses = await Promise.all(Array.from({ length: CONCURRENT }, () => gateway().fetch(PATH, { headers: { 'X-API-Key': gateway().keys.ilalLive } })));
    const results = await Promise.all(responses.map(async (response) => ({ response, body: await readJson<{ code?: string }>(response) })));

    const admitted = results.filter(({ response }) => response.status === 200);
    const refused = results.filter(({ response }) => response.status === 429);
    expect(admitted.length, `statuses: ${results.map(({ response }) => response.status).join(',')}`).toBe(LIMIT);
    expect(refused).toHaveLength(CONCURRENT - LIMIT);
    expect(new Set(refused.map(({ body }) => body.code))).toEqual(new Set(['RATE_LIMIT_EXCEEDED']));

    const remaining = admitted.map(({ response }) => Number(response.headers.get('x-ratelimit-remaining'))).sort((a, b) => a - b);
    expect(remaining).toEqual(Array.from({ length: LIMIT }, (_, i) => i));
    for (const { response } of refused) {
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(response.headers.get('x-ratelimit-remaining')).toBe('0');
      expect(response.headers.get('ratelimit-policy')).toMatch(new RegExp(`^"minute";q=${LIMIT};w=60, "day";q=\\d+;w=86400$`));
      expect(response.headers.get('ratelimit')).toMatch(/^"minute";r=0;t=\d+, "day";r=\d+;t=\d+$/);
    }

    const reached = gateway().origin.requests.filter((request) => request.path === PATH).length - reachedBefore;
    expect(reached, 'calls that reached the origin').toBe(LIMIT);
  });
});
