// Soak (issue #8): bounded concurrent load on a real `wrangler dev` for SOAK_SECONDS (default 60)
// while keys are created, rotated and revoked through the admin API. At the end:
//  - no key was admitted over its per-minute limit in any window;
//  - no key was admitted for a request that started after its revocation (or its rotation's
//    grace end) was answered;
//  - every admitted request reached the origin exactly once, and nothing else reached it.
import { describe, expect, it } from 'vitest';
import { readJson, useGateway } from './harness';

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const CONCURRENCY = 16;
/** Hard bound on the number of product calls, whatever the machine's speed. */
const MAX_REQUESTS = 40 * 1000;
const LIMIT_PER_MINUTE = 50;
const INITIAL_KEYS = 4;
/** One admin action (create, rotate, revoke) every this many ms. */
const ADMIN_EVERY_MS = 1500;
const PATH = '/api/v1/defi/soak';
const MINUTE_MS = 60_000;

// The soak hammers revoked keys from one address on purpose: the failed-auth throttle is not under test here.
const gateway = useGateway({ vars: { AUTH_FAILURE_LIMIT_PER_MINUTE: '1000000' } });

interface PoolKey {
  id: string;
  key: string;
  /** Client time at which the gateway answered the revocation; no admission may start after it. */
  deadAfter?: number;
  how?: 'revoked' | 'rotated';
}

interface Outcome {
  keyId: string;
  startedAt: number;
  endedAt: number;
  status: number;
  code: string | undefined;
  requestId: string | null;
  remaining: number;
  resetSeconds: number;
}

function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return gateway().fetch(path, {
    method,
    headers: { Authorization: `Bearer ${gateway().secrets.ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function createKey(name: string): Promise<PoolKey> {
  const response = await admin('POST', '/api/v1/keys', { name, products: ['defi'], scopes: ['defi:*'], rateLimitPerMinute: LIMIT_PER_MINUTE });
  const body = await readJson<{ id: string; key: string }>(response);
  expect(response.status, JSON.stringify(body)).toBe(201);
  return { id: body.id, key: body.key };
}

/** The admin side of the soak: create, rotate without grace, revoke, rotate with a short grace, over and over. */
async function churn(pool: PoolKey[], until: number, log: string[]): Promise<void> {
  const actions = ['create', 'rotate0', 'revoke', 'rotate3'] as const;
  for (let step = 0; Date.now() < until; step++) {
    await new Promise((resolve) => setTimeout(resolve, ADMIN_EVERY_MS));
    const live = pool.filter((key) => key.deadAfter === undefined);
    const action = actions[step % actions.length]!;
    if (action === 'create' || live.length < 2) {
      pool.push(await createKey(`soak-${step}`));
      log.push('create');
      continue;
    }
    const victim = live[Math.floor(Math.random() * live.length)]!;
    if (action === 'revoke') {
      const response = await admin('DELETE', `/api/v1/keys/${victim.id}`);
      expect(response.status, await response.text()).toBe(200);
      victim.deadAfter = Date.now();
      victim.how = 'revoked';
      log.push('revoke');
    } else {
      const graceSeconds = action === 'rotate0' ? 0 : 3;
      const response = await admin('POST', `/api/v1/keys/${victim.id}/rotate`, { gracePeriodSeconds: graceSeconds });
      const body = await readJson<{ id: string; key: string; graceUntil: string }>(response);
      expect(response.status, JSON.stringify(body)).toBe(201);
      // With no grace the old key is dead once the answer arrives; with grace, from graceUntil (same machine clock).
      victim.deadAfter = Math.max(Date.now(), Date.parse(body.graceUntil));
      victim.how = 'rotated';
      pool.push({ id: body.id, key: body.key });
      log.push(`rotate(${graceSeconds}s)`);
    }
  }
}

async function load(pool: PoolKey[], until: number, outcomes: Outcome[]): Promise<void> {
  let issued = 0;
  const worker = async () => {
    while (Date.now() < until && issued < MAX_REQUESTS) {
      issued += 1;
      const target = pool[Math.floor(Math.random() * pool.length)]!;
      const startedAt = Date.now();
      const response = await gateway().fetch(PATH, { headers: { 'X-API-Key': target.key } });
      const body = await readJson<{ code?: string }>(response);
      outcomes.push({
        keyId: target.id,
        startedAt,
        endedAt: Date.now(),
        status: response.status,
        code: body.code,
        requestId: response.headers.get('x-request-id'),
        remaining: Number(response.headers.get('x-ratelimit-remaining')),
        resetSeconds: Number(response.headers.get('x-ratelimit-reset')),
      });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/**
 * The minute window (its end, epoch ms) the limiter counted an admission in. The object's clock
 * read `now` somewhere in [startedAt, endedAt] and answered Reset = ceil((windowEnd - now) / 1000),
 * so windowEnd lies in (startedAt + Reset s - 1 s, endedAt + Reset s]: one minute boundary.
 */
function windowEnd(outcome: Outcome): number {
  const latest = outcome.endedAt + outcome.resetSeconds * 1000;
  const end = Math.floor(latest / MINUTE_MS) * MINUTE_MS;
  expect(end, `window of ${outcome.requestId} is ambiguous`).toBeGreaterThan(outcome.startedAt + outcome.resetSeconds * 1000 - 1000);
  return end;
}

function tally<T>(items: T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(keyOf(item), [...(groups.get(keyOf(item)) ?? []), item]);
  return groups;
}

describe('soak under key churn (wrangler dev)', () => {
  it(
    `keeps limits, revocations and exactly-once forwarding over ${SOAK_SECONDS} s of ${CONCURRENCY} concurrent clients`,
    async () => {
      const pool: PoolKey[] = [];
      for (let i = 0; i < INITIAL_KEYS; i++) pool.push(await createKey(`soak-initial-${i}`));
      const originBefore = gateway().origin.requests.length;
      const outcomes: Outcome[] = [];
      const adminLog: string[] = [];
      const until = Date.now() + SOAK_SECONDS * 1000;

      await Promise.all([load(pool, until, outcomes), churn(pool, until, adminLog)]);

      const admitted = outcomes.filter((outcome) => outcome.status === 200);
      const refusedBy = tally(
        outcomes.filter((outcome) => outcome.status !== 200),
        (outcome) => `${outcome.status} ${outcome.code}`,
      );
      console.log(
        `soak: ${SOAK_SECONDS} s, ${CONCURRENCY} clients, ${outcomes.length} requests, ${admitted.length} admitted, refused: ` +
          ([...refusedBy].map(([reason, items]) => `${reason}=${items.length}`).join(', ') || 'none') +
          `; admin: ${adminLog.length} actions (${[...tally(adminLog, (action) => action)].map(([action, items]) => `${action}=${items.length}`).join(', ')}), ${pool.length} keys`,
      );

      // Every refusal is one the churn explains (limits, revoked keys, rotated keys past their grace), or a
      // lost connection to the origin: seen intermittently (1-2 in ~6,000 calls), most likely workerd reusing
      // a keep-alive socket the demo origin is closing (keepAliveTimeout 1 s); keygate does not retry the
      // fetch. Check 3 proves such a request never reached the origin.
      const explained = ['429 RATE_LIMIT_EXCEEDED', '401 API_KEY_INACTIVE', '401 API_KEY_EXPIRED', '502 ORIGIN_UNAVAILABLE'];
      expect([...refusedBy.keys()].filter((reason) => !explained.includes(reason))).toEqual([]);
      expect(admitted.length, 'the soak admitted calls at all').toBeGreaterThan(0);
      expect(adminLog.length, 'keys were churned meanwhile').toBeGreaterThanOrEqual(Math.min(4, Math.floor(SOAK_SECONDS / 2)));

      // 1. No key over its limit in any minute window; each admission in a window saw its own count.
      for (const [window, items] of tally(admitted, (outcome) => `${outcome.keyId}@${windowEnd(outcome)}`)) {
        expect(items.length, `admissions of ${window}`).toBeLessThanOrEqual(LIMIT_PER_MINUTE);
        expect(new Set(items.map((outcome) => outcome.remaining)).size, `distinct Remaining values in ${window}`).toBe(items.length);
      }

      // 2. No admission for a request that started after its key's revocation or rotation took effect.
      const deadAfter = new Map(pool.filter((key) => key.deadAfter !== undefined).map((key) => [key.id, key]));
      const late = admitted.filter((outcome) => {
        const key = deadAfter.get(outcome.keyId);
        return key !== undefined && outcome.startedAt > key.deadAfter!;
      });
      expect(
        late.map(
          (outcome) => `${outcome.keyId} ${deadAfter.get(outcome.keyId)!.how} at ${deadAfter.get(outcome.keyId)!.deadAfter}, started ${outcome.startedAt}`,
        ),
      ).toEqual([]);

      // 3. Exactly once: the origin's X-Request-Ids are exactly the admitted responses' ids, each once.
      const reached = gateway()
        .origin.requests.slice(originBefore)
        .filter((request) => request.path === PATH);
      const reachedIds = reached.map((request) => String(request.headers['x-request-id']));
      const reachedCount = tally(reachedIds, (id) => id);
      expect(
        [...reachedCount].filter(([, items]) => items.length > 1).map(([id]) => id),
        'forwarded more than once',
      ).toEqual([]);
      const admittedIds = new Set(admitted.map((outcome) => String(outcome.requestId)));
      expect(
        admitted.filter((outcome) => !reachedCount.has(String(outcome.requestId))).map((outcome) => outcome.requestId),
        'admitted but never forwarded',
      ).toEqual([]);
      expect(
        reachedIds.filter((id) => !admittedIds.has(id)),
        'forwarded but not admitted',
      ).toEqual([]);
      expect(reached.length).toBe(admitted.length);
    },
    SOAK_SECONDS * 1000 + 120_000,
  );
});
