// Signed webhooks end to end: a real `wrangler dev` (its local queue runs WEBHOOK_QUEUE's producer and
// consumer, as wrangler.toml declares them) delivering to a local Node receiver on 127.0.0.1 that
// verifies every signature with the independent `standardwebhooks` library and answers 500 twice,
// then 200: the queue's retries with backoff (WEBHOOK_RETRY_BASE_SECONDS=1: 1 s, then 2 s).
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJson, useGateway } from './harness';

const gateway = useGateway({ vars: { WEBHOOK_RETRY_BASE_SECONDS: '1' } });

interface Attempt {
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
  /** The library's verdict, with the endpoint's secret: the payload, or why it refused. */
  verified: { type: string; data: Record<string, unknown> } | { error: string };
}

/** A webhook receiver: answers each attempt with the next status of `statuses` (the last one after that), verifying it first. */
function startReceiver(statuses: number[]) {
  const attempts: Attempt[] = [];
  let secret: string | undefined;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let verified: Attempt['verified'];
      try {
        if (!secret) throw new Error('no secret yet');
        verified = new Webhook(secret).verify(body, request.headers as Record<string, string>) as Attempt['verified'];
      } catch (error) {
        verified = { error: String(error) };
      }
      const status = statuses[Math.min(attempts.length, statuses.length - 1)]!;
      attempts.push({ at: Date.now(), headers: request.headers, body, status, verified });
      response.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'try again');
    });
  });
  return {
    attempts,
    setSecret: (value: string) => {
      secret = value;
    },
    listen: () =>
      new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`))),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const receiver = startReceiver([500, 500, 200]);
let receiverUrl: string;
beforeAll(async () => {
  receiverUrl = await receiver.listen();
});
afterAll(() => receiver.close());

async function admin(method: string, path: string, body?: unknown) {
  const response = await gateway().fetch(path, {
    method,
    headers: { Authorization: `Bearer ${gateway().secrets.ADMIN_TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await readJson<Record<string, any>>(response) };
}

describe('webhooks over wrangler dev and its local queue', () => {
  it('delivers key.created signed, retried with backoff after two 500s: exactly 3 attempts with one webhook-id', async () => {
    const endpoint = await admin('POST', '/api/v1/admin/webhooks', { url: receiverUrl, events: ['key.created'], description: 'e2e' });
    expect(endpoint.status, JSON.stringify(endpoint.body)).toBe(201);
    receiver.setSecret(endpoint.body.secret);

    const created = await admin('POST', '/api/v1/keys', { name: 'hooked', products: ['*'] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const answeredAt = Date.now();

    const deadline = Date.now() + 40_000;
    while (!receiver.attempts.some((attempt) => attempt.status === 200) && Date.now() < deadline) await sleep(200);
    const summary = () => JSON.stringify(receiver.attempts.map(({ at, status, verified }) => ({ at, status, verified })));
    expect(
      receiver.attempts.map((attempt) => attempt.status),
      `${summary()}\n${gateway().output()}`,
    ).toEqual([500, 500, 200]);
    // Nothing after the success.
    await sleep(3_000);
    expect(receiver.attempts, summary()).toHaveLength(3);

    const [first, second, third] = receiver.attempts as [Attempt, Attempt, Attempt];
    for (const attempt of receiver.attempts) {
      expect(attempt.verified, attempt.body).toMatchObject({
        type: 'key.created',
        data: { keyId: created.body.id, prefix: created.body.prefix, name: 'hooked' },
      });
      expect(attempt.headers['content-type']).toBe('application/json');
      expect(attempt.headers['user-agent']).toBe('keygate-webhooks');
      expect(attempt.headers['webhook-id']).toBe(first.headers['webhook-id']);
      expect(attempt.body).toBe(first.body);
      expect(attempt.body).not.toContain(created.body.key);
    }
    expect(first.headers['webhook-id']).toMatch(/^evt_[0-9a-f]{32}$/);
    // Off the request path: the answer came first. Each attempt is signed at its own time.
    expect(first.at).toBeGreaterThanOrEqual(answeredAt - 50);
    expect(Number(third.headers['webhook-timestamp'])).toBeGreaterThan(Number(first.headers['webhook-timestamp']));
    // Local Miniflare honours the retry's delaySeconds (1 s, then 2 s; plus up to max_batch_timeout).
    expect(second.at - first.at, summary()).toBeGreaterThanOrEqual(900);
    expect(third.at - second.at, summary()).toBeGreaterThanOrEqual(1_900);

    // A signature made with another secret does not verify.
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(first.body, first.headers as Record<string, string>)).toThrow();
  });
});
