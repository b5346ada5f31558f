import { createExecutionContext, createMessageBatch, createScheduledController, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import { retryDelaySeconds } from "../../src/webhooks/consumer";
import { eventId, publishEvents, type WebhookEvent, type WebhookMessage } from "../../src/webhooks/events";
import { EXPIRING_KEYS_SQL } from "../../src/webhooks/expiry";
import { adminToken, api, auditRows, userToken } from "../helpers/api";
import { createKey, createProduct, ORIGIN, send, settled } from "../helpers/harness";
import { brokenD1, hangingOrigin } from "../helpers/faults";
import { setClock } from "../helpers/limiter";
import { stubOrigin, type OriginHandler, type ReceivedRequest } from "../helpers/origin";
import { createUser } from "../helpers/users";

/**
 * Signed webhooks (src/webhooks/): the admin API for endpoints; the queue
 * consumer called as the platform calls it (createMessageBatch →
 * worker.queue → getQueueResult: what it acked, what it retried and after how
 * long), with what it queues captured; the keys API's events through the real
 * WEBHOOK_QUEUE, whose consumer the pool runs in this isolate (about a second
 * per hop), to a receiver stub that verifies each signature with the
 * standardwebhooks library; the expiry cron; KEY_DEFAULT_TTL_DAYS.
 */

type Answer = Awaited<ReturnType<typeof api>>;

interface CreatedEndpoint {
  id: string;
  secret: string;
  url: string;
  events: string[];
}

async function createEndpoint(body: Record<string, unknown>): Promise<CreatedEndpoint> {
  const created = await api("POST", "/api/v1/admin/webhooks", adminToken(), body);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body as CreatedEndpoint;
}

const hookUrl = (label: string) => `https://hooks.test/${label}/${crypto.randomUUID()}`;

function expectFieldError(answer: Answer, status: number, code: string, field?: string): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.body.code).toBe(code);
  if (field !== undefined) expect(answer.body.fields.map((f: { path: string }) => f.path)).toContain(field);
}

// Endpoints from one test must not receive another's events.
afterEach(async () => {
  vi.useRealTimers();
  await env.DB.prepare("DELETE FROM webhook_endpoints").run();
});

describe("webhook endpoints: the admin API", () => {
  it("creates (the secret once), lists, reads, edits, rotates the secret and deletes, each change audited without the secret", async () => {
    const url = hookUrl("crud");
    const created = await createEndpoint({ url, description: "billing", events: ["key.created", "credits.low"] });
    expect(created).toMatchObject({ url, description: "billing", events: ["key.created", "credits.low"], enabled: true, createdBy: "admin_token" });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const listed = await api("GET", "/api/v1/admin/webhooks", adminToken());
    expect(listed.status).toBe(200);
    expect(listed.body.endpoints.map((e: { id: string }) => e.id)).toEqual([created.id]);
    const read = await api("GET", `/api/v1/admin/webhooks/${created.id}`, adminToken());
    expect(read.body).toMatchObject({ id: created.id, url, events: ["key.created", "credits.low"] });
    expect(JSON.stringify(listed.body) + JSON.stringify(read.body)).not.toContain(created.secret);

    const patched = await api("PATCH", `/api/v1/admin/webhooks/${created.id}`, adminToken(), { enabled: false, events: ["*"], description: null });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body).toMatchObject({ url, description: null, events: ["*"], enabled: false });
    expect(patched.body.secret).toBeUndefined();

    const rotated = await api("POST", `/api/v1/admin/webhooks/${created.id}/rotate-secret`, adminToken());
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(created.secret);
    const stored = await env.DB.prepare("SELECT secret FROM webhook_endpoints WHERE id = ?").bind(created.id).first<{ secret: string }>();
    expect(stored!.secret).toBe(rotated.body.secret);

    const deleted = await api("DELETE", `/api/v1/admin/webhooks/${created.id}`, adminToken());
    expect(deleted).toMatchObject({ status: 200, body: { id: created.id, deleted: true } });
    expectFieldError(await api("GET", `/api/v1/admin/webhooks/${created.id}`, adminToken()), 404, "NOT_FOUND");
    expectFieldError(await api("DELETE", `/api/v1/admin/webhooks/${created.id}`, adminToken()), 404, "NOT_FOUND");

    const rows = await auditRows(created.id);
    expect(rows.map((row) => [row.actor, row.action, row.target_type])).toEqual([
      ["admin_token", "webhook_endpoint.create", "webhook_endpoint"],
      ["admin_token", "webhook_endpoint.update", "webhook_endpoint"],
      ["admin_token", "webhook_endpoint.rotate_secret", "webhook_endpoint"],
      ["admin_token", "webhook_endpoint.delete", "webhook_endpoint"],
    ]);
    expect(JSON.parse(rows[1]!.details!)).toEqual({ enabled: false, events: ["*"], description: null });
    const details = rows.map((row) => row.details ?? "").join();
    expect(details).not.toContain(created.secret);
    expect(details).not.toContain(rotated.body.secret);
    const audit = await api("GET", `/api/v1/admin/audit?targetType=webhook_endpoint&targetId=${created.id}`, adminToken());
    expect(audit.body.entries).toHaveLength(4);
  });

  it("defaults to every event type; http only to this machine", async () => {
    const local = await createEndpoint({ url: "http://127.0.0.1:9/hook" });
    expect(local.events).toEqual(["*"]);
    expect((await createEndpoint({ url: "http://localhost:8080/x" })).url).toBe("http://localhost:8080/x");
  });

  it("refuses bad input with VALIDATION_FAILED naming the field, and writes nothing", async () => {
    const bad: [unknown, string][] = [
      [{ url: "http://hooks.example.com/x" }, "url"],
      [{ url: "ftp://hooks.example.com/x" }, "url"],
      [{ url: "not a url" }, "url"],
      [{ url: "https://user:pw@hooks.example.com/x" }, "url"],
      [{ url: "https://hooks.example.com/x#frag" }, "url"],
      [{ url: `https://hooks.example.com/${"x".repeat(2000)}` }, "url"],
      [{}, "url"],
      [{ url: "https://hooks.example.com/x", events: [] }, "events"],
      [{ url: "https://hooks.example.com/x", events: ["key.exploded"] }, "events.0"],
      [{ url: "https://hooks.example.com/x", events: ["*", "key.created"] }, "events"],
      [{ url: "https://hooks.example.com/x", secret: "whsec_mine" }, "secret"],
      [{ url: "https://hooks.example.com/x", description: "d".repeat(501) }, "description"],
    ];
    for (const [body, field] of bad) expectFieldError(await api("POST", "/api/v1/admin/webhooks", adminToken(), body), 400, "VALIDATION_FAILED", field);
    const { id } = await createEndpoint({ url: hookUrl("v") });
    expectFieldError(await api("PATCH", `/api/v1/admin/webhooks/${id}`, adminToken(), {}), 400, "VALIDATION_FAILED", "");
    expectFieldError(await api("PATCH", `/api/v1/admin/webhooks/${id}`, adminToken(), { enabled: "yes" }), 400, "VALIDATION_FAILED", "enabled");
    expectFieldError(await api("PATCH", `/api/v1/admin/webhooks/${id}`, adminToken(), { url: "http://evil.example/x" }), 400, "VALIDATION_FAILED", "url");
    expectFieldError(await api("PATCH", "/api/v1/admin/webhooks/nope", adminToken(), { enabled: false }), 404, "NOT_FOUND");
    expectFieldError(await api("POST", "/api/v1/admin/webhooks/nope/rotate-secret", adminToken()), 404, "NOT_FOUND");
    const count = await env.DB.prepare("SELECT count(*) AS n FROM webhook_endpoints").first<{ n: number }>();
    expect(count!.n).toBe(1);
  });

  it("is for admins only", async () => {
    const { user } = await createUser();
    const asUser = await userToken(user);
    expectFieldError(await api("GET", "/api/v1/admin/webhooks", asUser), 403, "FORBIDDEN");
    expectFieldError(await api("POST", "/api/v1/admin/webhooks", asUser, { url: hookUrl("u") }), 403, "FORBIDDEN");
    expectFieldError(await api("GET", "/api/v1/admin/webhooks", {}), 401, "AUTH_MISSING");
    const { key } = await createKey({ products: ["*"] });
    expectFieldError(await api("GET", "/api/v1/admin/webhooks", { "X-API-Key": key }), 403, "FORBIDDEN");
    const count = await env.DB.prepare("SELECT count(*) AS n FROM webhook_endpoints").first<{ n: number }>();
    expect(count!.n).toBe(0);
  });
});

// ---- The consumer, called directly ----

/** A stand-in WEBHOOK_QUEUE that keeps what the consumer queues (a fan-out's deliveries) instead of delivering it. */
function capturingQueue(fail = false) {
  const sent: WebhookMessage[] = [];
  const queue = {
    send: async (body: WebhookMessage) => {
      if (fail) throw new Error("Queue send failed");
      sent.push(body);
    },
    sendBatch: async (messages: Iterable<MessageSendRequest<WebhookMessage>>) => {
      if (fail) throw new Error("Queue send failed");
      for (const message of messages) sent.push(message.body);
    },
  } as unknown as Queue<WebhookMessage>;
  return { queue, sent };
}

function testEvent(overrides: Partial<WebhookEvent> = {}): WebhookEvent {
  return {
    type: "key.created",
    subject: `key:${crypto.randomUUID()}`,
    period: "p1",
    occurredAt: "2026-12-02T10:00:00.000Z",
    data: { keyId: "k1", name: "n" },
    ...overrides,
  };
}

async function eventMessage(event: WebhookEvent): Promise<WebhookMessage> {
  return { kind: "event", id: await eventId(event), event };
}

/** What getQueueResult reports (FetcherQueueResult, declared only in workers-types' experimental entry). */
interface QueueResult {
  outcome: string;
  ackAll: boolean;
  retryBatch: { retry: boolean };
  explicitAcks: string[];
  retryMessages: { msgId: string }[];
}

interface Consumed {
  result: QueueResult;
  /** The options each retried message was retried with, by message id: the pool's getQueueResult (0.15.1) drops delaySeconds. */
  retryOptions: Map<string, QueueRetryOptions | undefined>;
  sent: WebhookMessage[];
  ids: string[];
}

/** One batch through the Worker's queue handler, as the platform delivers it; `attempts` per message (1 = first). */
async function consume(bodies: WebhookMessage[], options: { attempts?: number; vars?: Record<string, unknown>; failSends?: boolean } = {}): Promise<Consumed> {
  const capture = capturingQueue(options.failSends);
  const messages: { id: string; timestamp: Date; attempts: number; body: WebhookMessage }[] = bodies.map((body) => ({
    id: crypto.randomUUID(),
    timestamp: new Date(),
    attempts: options.attempts ?? 1,
    body,
  }));
  const batch = createMessageBatch<WebhookMessage>("keygate-webhooks", messages as Parameters<typeof createMessageBatch<WebhookMessage>>[1]);
  const retryOptions = new Map<string, QueueRetryOptions | undefined>();
  for (const message of batch.messages) {
    const retry = message.retry.bind(message);
    vi.spyOn(message, "retry").mockImplementation((retryWith?: QueueRetryOptions) => {
      retryOptions.set(message.id, retryWith);
      retry(retryWith);
    });
  }
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, WEBHOOK_QUEUE: capture.queue, ...options.vars } as unknown as Env);
  const result = (await getQueueResult(batch, ctx)) as unknown as QueueResult;
  expect(result.ackAll || result.retryBatch.retry, "the consumer decides per message").toBe(false);
  return { result, retryOptions, sent: capture.sent, ids: messages.map((message) => message.id) };
}

/** What a message's attempt came to: acked, or retried after how many seconds. Each message is one or the other. */
function outcome(consumed: Consumed, index = 0): "ack" | { retryIn: number | undefined } {
  const id = consumed.ids[index]!;
  const retried = consumed.result.retryMessages.some((message) => message.msgId === id);
  const acked = consumed.result.explicitAcks.includes(id);
  expect(retried !== acked, `message ${index} is acked or retried, exactly one`).toBe(true);
  return retried ? { retryIn: consumed.retryOptions.get(id)?.delaySeconds } : "ack";
}

/** A receiver: every request to a hooks.test URL, answered by `handler`. */
function receiver(handler: OriginHandler = () => new Response(null, { status: 204 })) {
  const stub = stubOrigin(handler);
  return {
    stub,
    at: (url: string): ReceivedRequest[] => stub.received.filter((request) => request.url === url),
    restore: () => stub.restore(),
  };
}

function headersOf(request: ReceivedRequest): Record<string, string> {
  return Object.fromEntries(request.headers);
}

/** An endpoint at `url` for every event type, and the delivery message the consumer made for it of a fresh key.created. */
async function deliveryFor(url: string) {
  const endpoint = await createEndpoint({ url });
  const event = testEvent();
  const fannedOut = await consume([await eventMessage(event)]);
  const delivery = fannedOut.sent.find((message) => message.kind === "delivery" && message.endpointId === endpoint.id);
  expect(delivery).toBeDefined();
  return { endpoint, event, delivery: delivery! };
}

describe("the queue consumer: events", () => {
  it("fans an event out once per enabled endpoint that subscribes to its type, and acks it", async () => {
    const all = await createEndpoint({ url: hookUrl("all") });
    const created = await createEndpoint({ url: hookUrl("created"), events: ["key.created", "key.revoked"] });
    await createEndpoint({ url: hookUrl("other"), events: ["credits.low"] });
    const paused = await createEndpoint({ url: hookUrl("paused") });
    await api("PATCH", `/api/v1/admin/webhooks/${paused.id}`, adminToken(), { enabled: false });

    const event = testEvent({ data: { keyId: "k-fan", nested: { n: 1 } } });
    const id = await eventId(event);
    const consumed = await consume([await eventMessage(event)]);
    expect(outcome(consumed)).toBe("ack");
    const payload = JSON.stringify({ type: "key.created", timestamp: event.occurredAt, data: event.data });
    expect(consumed.sent).toEqual([
      { kind: "delivery", eventId: id, type: "key.created", endpointId: all.id, payload },
      { kind: "delivery", eventId: id, type: "key.created", endpointId: created.id, payload },
    ]);
    const row = await env.DB.prepare("SELECT * FROM webhook_events WHERE id = ?")
      .bind(await eventId(event))
      .first();
    expect(row).toMatchObject({ type: "key.created", subject: event.subject, period: "p1" });
  });

  it("keeps an event at most once per subject and period: published again, in the same batch or later, it is acked and dropped", async () => {
    await createEndpoint({ url: hookUrl("dedupe") });
    const event = testEvent();
    const twice = await consume([await eventMessage(event), await eventMessage({ ...event, occurredAt: "2026-12-02T11:00:00.000Z" })]);
    expect([outcome(twice, 0), outcome(twice, 1)]).toEqual(["ack", "ack"]);
    expect(twice.sent).toHaveLength(1);
    const later = await consume([await eventMessage(event)]);
    expect(outcome(later)).toBe("ack");
    expect(later.sent).toEqual([]);
    // Another period of the same subject is another event.
    const next = await consume([await eventMessage({ ...event, period: "p2" })]);
    expect(next.sent).toHaveLength(1);
    expect(await eventId({ ...event, period: "p2" })).not.toBe(await eventId(event));
  });

  it("drops an event no endpoint subscribes to without recording it, so an endpoint added later still gets it", async () => {
    await createEndpoint({ url: hookUrl("other"), events: ["credits.low"] });
    const event = testEvent();
    const nobody = await consume([await eventMessage(event)]);
    expect(outcome(nobody)).toBe("ack");
    expect(nobody.sent).toEqual([]);
    expect(
      await env.DB.prepare("SELECT count(*) AS n FROM webhook_events WHERE id = ?")
        .bind(await eventId(event))
        .first("n"),
    ).toBe(0);
    await createEndpoint({ url: hookUrl("late") });
    expect((await consume([await eventMessage(event)])).sent).toHaveLength(1);
  });

  it("gives the claim back and retries when the fan-out cannot be queued", async () => {
    await createEndpoint({ url: hookUrl("queue-down") });
    const event = testEvent();
    const failed = await consume([await eventMessage(event)], { failSends: true, attempts: 2, vars: { WEBHOOK_RETRY_BASE_SECONDS: "5" } });
    expect(outcome(failed)).toEqual({ retryIn: 10 });
    expect(
      await env.DB.prepare("SELECT count(*) AS n FROM webhook_events WHERE id = ?")
        .bind(await eventId(event))
        .first("n"),
    ).toBe(0);
    expect((await consume([await eventMessage(event)])).sent).toHaveLength(1);
  });

  it("retries an event when storage fails, and acks a message it does not know", async () => {
    const broken = await consume([await eventMessage(testEvent())], { vars: { DB: brokenD1().db } });
    expect(outcome(broken)).toEqual({ retryIn: 30 });
    const unknown = await consume([{ kind: "mystery" } as unknown as WebhookMessage]);
    expect(outcome(unknown)).toBe("ack");
  });
});

describe("the queue consumer: deliveries", () => {
  it("POSTs the payload signed in the Standard Webhooks format, and acks a 2xx", async () => {
    const url = hookUrl("deliver");
    const { endpoint, event, delivery } = await deliveryFor(url);
    const hooks = receiver(() => new Response("thanks", { status: 202 }));
    try {
      const before = Math.floor(Date.now() / 1000);
      const consumed = await consume([delivery]);
      expect(outcome(consumed)).toBe("ack");
      const [request] = hooks.at(url);
      expect(hooks.at(url)).toHaveLength(1);
      expect(request!.method).toBe("POST");
      const headers = headersOf(request!);
      expect(headers).toMatchObject({
        "content-type": "application/json",
        "user-agent": "keygate-webhooks",
        "webhook-id": await eventId(event),
      });
      expect(Number(headers["webhook-timestamp"])).toBeGreaterThanOrEqual(before);
      expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      expect(JSON.parse(request!.body)).toEqual({ type: "key.created", timestamp: event.occurredAt, data: event.data });
      // The independent library accepts it with the endpoint's secret.
      expect(new Webhook(endpoint.secret).verify(request!.body, headers)).toEqual(JSON.parse(request!.body));
    } finally {
      hooks.restore();
    }
  });

  it("retries a non-2xx answer with exponential backoff: base · 2^(attempts-1), capped at 12 hours", async () => {
    const url = hookUrl("backoff");
    const { delivery } = await deliveryFor(url);
    const hooks = receiver(() => new Response("down", { status: 500 }));
    try {
      const vars = { WEBHOOK_RETRY_BASE_SECONDS: "30" };
      expect(outcome(await consume([delivery], { attempts: 1, vars }))).toEqual({ retryIn: 30 });
      expect(outcome(await consume([delivery], { attempts: 2, vars }))).toEqual({ retryIn: 60 });
      expect(outcome(await consume([delivery], { attempts: 5, vars }))).toEqual({ retryIn: 480 });
      expect(outcome(await consume([delivery], { attempts: 20, vars }))).toEqual({ retryIn: 43_200 });
      expect(outcome(await consume([delivery], { attempts: 3, vars: { WEBHOOK_RETRY_BASE_SECONDS: "1" } }))).toEqual({ retryIn: 4 });
      expect(hooks.at(url)).toHaveLength(5);
      // Every attempt has the same webhook-id and body.
      expect(new Set(hooks.at(url).map((request) => request.headers.get("webhook-id"))).size).toBe(1);
      expect(new Set(hooks.at(url).map((request) => request.body)).size).toBe(1);
      hooks.stub.reply(() => new Response(null, { status: 200 }));
      expect(outcome(await consume([delivery], { attempts: 3, vars }))).toBe("ack");
    } finally {
      hooks.restore();
    }
    expect([1, 2, 3, 10, 11, 30].map((attempts) => retryDelaySeconds(30, attempts))).toEqual([30, 60, 120, 15_360, 30_720, 43_200]);
    expect(retryDelaySeconds(0, 4)).toBe(0);
  });

  it("retries a redirect, a network error and a timeout, logging one line per failure without the secret", async () => {
    const url = hookUrl("faults");
    const { endpoint, delivery } = await deliveryFor(url);
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const hooks = receiver(() => new Response(null, { status: 302, headers: { Location: "https://elsewhere.test/" } }));
    try {
      expect(outcome(await consume([delivery]))).toEqual({ retryIn: 30 });
      hooks.stub.reply(() => Promise.reject(new TypeError("Network connection lost.")));
      expect(outcome(await consume([delivery], { attempts: 2 }))).toEqual({ retryIn: 60 });
      hooks.stub.reply(hangingOrigin);
      const started = Date.now();
      expect(outcome(await consume([delivery], { attempts: 3, vars: { WEBHOOK_TIMEOUT_MS: "150" } }))).toEqual({ retryIn: 120 });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(hooks.stub.received.map((request) => request.url)).toEqual([url, url, url]);
      const lines = errors.mock.calls
        .map(([line]) => JSON.parse(String(line)) as Record<string, unknown>)
        .filter((line) => line.event === "webhook_delivery_failed");
      expect(lines.map(({ status, error, attempt, retryInSeconds }) => ({ status, error, attempt, retryInSeconds }))).toEqual([
        { status: 302, error: undefined, attempt: 1, retryInSeconds: 30 },
        { status: undefined, error: "TypeError: Network connection lost.", attempt: 2, retryInSeconds: 60 },
        { status: undefined, error: "timeout", attempt: 3, retryInSeconds: 120 },
      ]);
      const eventIdSent = delivery.kind === "delivery" ? delivery.eventId : "";
      expect(lines.every((line) => line.endpointId === endpoint.id && line.eventId === eventIdSent && line.type === "key.created")).toBe(true);
      expect(JSON.stringify(errors.mock.calls)).not.toContain(endpoint.secret.slice("whsec_".length));
    } finally {
      hooks.restore();
      errors.mockRestore();
    }
  });

  it("acks and drops a delivery whose endpoint was deleted, disabled or unsubscribed meanwhile", async () => {
    const hooks = receiver();
    try {
      const deleted = await deliveryFor(hookUrl("gone"));
      await api("DELETE", `/api/v1/admin/webhooks/${deleted.endpoint.id}`, adminToken());
      expect(outcome(await consume([deleted.delivery]))).toBe("ack");

      const disabled = await deliveryFor(hookUrl("off"));
      await api("PATCH", `/api/v1/admin/webhooks/${disabled.endpoint.id}`, adminToken(), { enabled: false });
      expect(outcome(await consume([disabled.delivery]))).toBe("ack");

      const unsubscribed = await deliveryFor(hookUrl("unsub"));
      await api("PATCH", `/api/v1/admin/webhooks/${unsubscribed.endpoint.id}`, adminToken(), { events: ["credits.low"] });
      expect(outcome(await consume([unsubscribed.delivery]))).toBe("ack");
      expect(hooks.stub.received).toEqual([]);
    } finally {
      hooks.restore();
    }
  });

  it("signs with the secret in force at the attempt: after rotate-secret, the new one", async () => {
    const url = hookUrl("rotated");
    const { endpoint, delivery } = await deliveryFor(url);
    const rotated = await api("POST", `/api/v1/admin/webhooks/${endpoint.id}/rotate-secret`, adminToken());
    const hooks = receiver();
    try {
      expect(outcome(await consume([delivery]))).toBe("ack");
      const [request] = hooks.at(url);
      expect(() => new Webhook(rotated.body.secret).verify(request!.body, headersOf(request!))).not.toThrow();
      expect(() => new Webhook(endpoint.secret).verify(request!.body, headersOf(request!))).toThrow();
    } finally {
      hooks.restore();
    }
  });
});

// ---- Through the real queue: the pool runs WEBHOOK_QUEUE's consumer (wrangler.toml) in this isolate ----

interface Verified {
  id: string;
  type: string;
  data: Record<string, any>;
}

/** Waits (bounded) until `url` received `count` deliveries; each must verify with `secret` (standardwebhooks). */
async function receivedAt(hooks: ReturnType<typeof receiver>, url: string, secret: string, count: number): Promise<Verified[]> {
  await vi.waitUntil(() => hooks.at(url).length >= count, { timeout: 20_000, interval: 100 });
  return hooks.at(url).map((request) => {
    const headers = headersOf(request);
    const payload = new Webhook(secret).verify(request.body, headers) as { type: string; data: Record<string, any> };
    return { id: headers["webhook-id"]!, type: payload.type, data: payload.data };
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the keys API's events, through WEBHOOK_QUEUE", () => {
  it("key.created, key.rotated and key.revoked reach a subscribed endpoint, signed, after the answers", async () => {
    const url = hookUrl("keys");
    const { secret } = await createEndpoint({ url, events: ["key.created", "key.rotated", "key.revoked"] });
    const hooks = receiver();
    try {
      const { user } = await createUser();
      const asUser = await userToken(user);
      const created = await api("POST", "/api/v1/keys", asUser, { name: "hooked" });
      expect(created.status).toBe(201);
      const rotated = await api("POST", `/api/v1/keys/${created.body.id}/rotate`, asUser, { gracePeriodSeconds: 60 });
      expect(rotated.status).toBe(201);
      const revoked = await api("DELETE", `/api/v1/keys/${rotated.body.id}`, adminToken());
      expect(revoked.status).toBe(200);
      // A repeated revocation writes nothing and publishes nothing.
      expect((await api("DELETE", `/api/v1/keys/${rotated.body.id}`, adminToken())).status).toBe(200);

      const events = await receivedAt(hooks, url, secret, 3);
      const byType = Object.fromEntries(events.map((event) => [event.type, event]));
      expect(Object.keys(byType).sort()).toEqual(["key.created", "key.revoked", "key.rotated"]);
      expect(byType["key.created"]!.data).toMatchObject({
        keyId: created.body.id,
        lineageId: created.body.id,
        prefix: created.body.prefix,
        name: "hooked",
        ownerId: user.id,
        actor: `user:${user.id}`,
      });
      expect(byType["key.created"]!.id).toBe(await eventId({ type: "key.created", subject: `key:${created.body.id}`, period: created.body.id }));
      expect(byType["key.rotated"]!.data).toMatchObject({ keyId: created.body.id, replacementKeyId: rotated.body.id, graceUntil: rotated.body.graceUntil });
      expect(byType["key.revoked"]!.data).toMatchObject({ keyId: rotated.body.id, lineageId: created.body.id, actor: "admin_token" });
      const bodies = hooks
        .at(url)
        .map((request) => request.body)
        .join();
      expect(bodies).not.toContain(created.body.key);
      expect(bodies).not.toContain(rotated.body.key);
      await sleep(2_500);
      expect(hooks.at(url)).toHaveLength(3);
    } finally {
      hooks.restore();
    }
  });

  it("deleting a user publishes key.revoked for each key it revoked", async () => {
    const url = hookUrl("user-delete");
    const { secret } = await createEndpoint({ url, events: ["key.revoked"] });
    const hooks = receiver();
    try {
      const { user } = await createUser();
      const one = await createKey({ ownerId: user.id, products: ["*"] });
      const two = await createKey({ ownerId: user.id, products: ["*"] });
      await createKey({ ownerId: user.id, products: ["*"], status: "revoked" });
      const deleted = await api("DELETE", `/api/v1/admin/users/${user.id}`, adminToken());
      expect(deleted.status).toBe(200);
      const events = await receivedAt(hooks, url, secret, 2);
      expect(events.map((event) => event.data.keyId).sort()).toEqual([one.record.id, two.record.id].sort());
      expect(events.every((event) => event.type === "key.revoked" && event.data.reason === "owner deleted")).toBe(true);
    } finally {
      hooks.restore();
    }
  });

  it("publishEvents twice with the same event delivers it once; a queue it cannot reach is logged, never thrown", async () => {
    const url = hookUrl("publish");
    const { secret } = await createEndpoint({ url });
    const hooks = receiver();
    try {
      const event = testEvent({ type: "quota.daily_exhausted", subject: `user:${crypto.randomUUID()}`, period: "2026-12-02", data: { limit: 10 } });
      await publishEvents(env as unknown as Env, [event]);
      await publishEvents(env as unknown as Env, [event, { ...event, occurredAt: "2026-12-02T23:00:00.000Z" }]);
      const [delivered] = await receivedAt(hooks, url, secret, 1);
      expect(delivered).toMatchObject({ id: await eventId(event), type: "quota.daily_exhausted", data: { limit: 10 } });
      await sleep(2_500);
      expect(hooks.at(url)).toHaveLength(1);
    } finally {
      hooks.restore();
    }
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      await expect(publishEvents({ ...env, WEBHOOK_QUEUE: capturingQueue(true).queue } as unknown as Env, [testEvent()])).resolves.toBeUndefined();
      await expect(publishEvents({ ...env, WEBHOOK_QUEUE: undefined } as unknown as Env, [testEvent()])).resolves.toBeUndefined();
      const lines = errors.mock.calls.map(([line]) => JSON.parse(String(line)) as { event: string; types: string[] });
      expect(lines.map((line) => [line.event, line.types])).toEqual([
        ["webhook_publish_failed", ["key.created"]],
        ["webhook_publish_failed", ["key.created"]],
      ]);
    } finally {
      errors.mockRestore();
    }
  });
});

// ---- The cron: key.expiring ----

const DAY_MS = 86_400_000;

async function scheduled(now: number, overrides: Record<string, unknown> = {}): Promise<WebhookMessage[]> {
  const capture = capturingQueue();
  const controller = createScheduledController({ scheduledTime: now, cron: "17 * * * *" });
  const ctx = createExecutionContext();
  await worker.scheduled(controller, { ...env, WEBHOOK_QUEUE: capture.queue, ...overrides } as unknown as Env);
  await waitOnExecutionContext(ctx);
  return capture.sent;
}

describe("usage events of product calls, through WEBHOOK_QUEUE", () => {
  it("credits.low, credits.exhausted and quota.daily_exhausted reach a subscribed endpoint once each, signed, named by the key's lineage", async () => {
    const url = hookUrl("usage");
    const { secret } = await createEndpoint({ url, events: ["credits.low", "credits.exhausted", "quota.daily_exhausted"] });
    const hooks = receiver((request) => (request.url.startsWith(ORIGIN) ? Response.json({ ok: true }) : new Response(null, { status: 204 })));
    try {
      const product = await createProduct({ rateLimitPerMinute: 100, rateLimitPerDay: 1000 });
      const { key, record } = await createKey({ rateLimitPerDay: 3 });
      expect((await api("PUT", `/api/v1/keys/${record.id}/credits`, adminToken(), { balance: 3, lowThreshold: 1 })).status).toBe(200);
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await settled(send(`${product.pathPrefix}/u`, { key }))).status);
      expect(statuses).toEqual([200, 200, 200, 402, 402]);

      const events = await receivedAt(hooks, url, secret, 3);
      const byType = Object.fromEntries(events.map((event) => [event.type, event]));
      expect(Object.keys(byType).sort()).toEqual(["credits.exhausted", "credits.low", "quota.daily_exhausted"]);
      expect(byType["credits.low"]!.data).toMatchObject({ keyId: record.id, lineageId: record.lineageId, scope: "key", balance: 1, threshold: 1 });
      expect(byType["credits.exhausted"]!.data).toMatchObject({ keyId: record.id, balance: 0, quota: 3 });
      expect(byType["quota.daily_exhausted"]!.data).toMatchObject({ keyId: record.id, limit: 3 });
      expect(byType["credits.exhausted"]!.id).toBe(await eventId({ type: "credits.exhausted", subject: `key:${record.lineageId}`, period: "1" }));
      await sleep(2_500);
      expect(hooks.at(url), "the refused calls announce nothing more").toHaveLength(3);
    } finally {
      hooks.restore();
    }
  });
});

describe("the cron's key.expiring", () => {
  it("warns once of each active key expiring within KEY_EXPIRING_WARNING_DAYS, again when its expiry moves", async () => {
    // A fake present, far from other tests' keys.
    const now = setClock("2040-03-01T12:00:00.000Z");
    const at = (days: number) => new Date(now + days * DAY_MS).toISOString();
    const soon = await createKey({ expiresAt: at(3), name: "soon" });
    const edge = await createKey({ expiresAt: at(7), name: "edge" });
    const later = await createKey({ expiresAt: at(7.5) });
    const past = await createKey({ expiresAt: at(-0.1) });
    const inactive = await createKey({ expiresAt: at(2), status: "inactive" });
    const revoked = await createKey({ expiresAt: at(2), status: "revoked" });
    const replacement = await createKey({ expiresAt: at(2) });
    const rotatedAway = await createKey({ expiresAt: at(2), rotatedTo: replacement.record.id, graceUntil: at(1) });
    const never = await createKey({ expiresAt: null });
    const mine = new Set([soon, edge, later, past, inactive, revoked, replacement, rotatedAway, never].map(({ record }) => `key:${record.lineageId}`));
    const ours = (sent: WebhookMessage[]) => sent.filter((message) => message.kind === "event" && mine.has(message.event.subject));

    const first = ours(await scheduled(now));
    expect(first.map((message) => message.kind === "event" && message.event.data.keyId)).toEqual([replacement.record.id, soon.record.id, edge.record.id]);
    const [warning] = first;
    expect(warning).toMatchObject({
      kind: "event",
      event: {
        type: "key.expiring",
        subject: `key:${replacement.record.lineageId}`,
        period: at(2),
        occurredAt: new Date(now).toISOString(),
        data: { keyId: replacement.record.id, expiresAt: at(2), expiresInSeconds: 2 * 86_400 },
      },
    });

    // Delivered (the consumer records them): the next run publishes none of them again.
    const url = hookUrl("expiring");
    const { secret } = await createEndpoint({ url, events: ["key.expiring"] });
    const fannedOut = await consume(first);
    expect(fannedOut.sent.filter((message) => message.kind === "delivery")).toHaveLength(3);
    expect(ours(await scheduled(now + 3_600_000))).toEqual([]);

    // A moved expiry is another period: warned again.
    const moved = await api("PATCH", `/api/v1/keys/${soon.record.id}`, adminToken(), { expiresAt: at(4) });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    const again = ours(await scheduled(now + 7_200_000));
    expect(again.map((message) => message.kind === "event" && [message.event.data.keyId, message.event.period])).toEqual([[soon.record.id, at(4)]]);

    const hooks = receiver();
    try {
      const delivered = await consume(fannedOut.sent.slice(0, 1));
      expect(outcome(delivered)).toBe("ack");
      expect(() => new Webhook(secret).verify(hooks.at(url)[0]!.body, headersOf(hooks.at(url)[0]!))).not.toThrow();
    } finally {
      hooks.restore();
    }
  });

  it("reads one range of api_keys_expiring, soonest first, at most EXPIRY_SCAN_LIMIT keys", async () => {
    const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${EXPIRING_KEYS_SQL}`).bind("2040-01-01", "2040-01-08", 500).all<{ detail: string }>();
    const plan = results.map((row) => row.detail).join("\n");
    expect(plan).toMatch(/SEARCH api_keys USING INDEX api_keys_expiring \(expires_at>\? AND expires_at<\?\)/);
    expect(plan).toMatch(/webhook_events USING (COVERING )?INDEX webhook_events_subject/);
    expect(plan).not.toMatch(/TEMP B-TREE/);
  });

  it("honours KEY_EXPIRING_WARNING_DAYS", async () => {
    const now = setClock("2041-06-01T00:00:00.000Z");
    const inTen = await createKey({ expiresAt: new Date(now + 10 * DAY_MS).toISOString() });
    const subject = `key:${inTen.record.lineageId}`;
    const subjects = (sent: WebhookMessage[]) => sent.map((message) => message.kind === "event" && message.event.subject);
    expect(subjects(await scheduled(now))).not.toContain(subject);
    expect(subjects(await scheduled(now, { KEY_EXPIRING_WARNING_DAYS: "14" }))).toContain(subject);
  });
});

// ---- KEY_DEFAULT_TTL_DAYS ----

const TTL = { KEY_DEFAULT_TTL_DAYS: "30" };

describe("KEY_DEFAULT_TTL_DAYS", () => {
  it("gives a new key without expiresAt an expiry of now + the TTL, set by the policy; an admin's null means never", async () => {
    const now = setClock(new Date().toISOString());
    const ttlExpiry = new Date(now + 30 * DAY_MS).toISOString();
    const { user } = await createUser();
    const asUser = await userToken(user);

    const own = await api("POST", "/api/v1/keys", asUser, { name: "default" }, { env: TTL });
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    expect(own.body).toMatchObject({ expiresAt: ttlExpiry, expiresSetBy: "config:KEY_DEFAULT_TTL_DAYS" });
    const audit = await auditRows(own.body.id);
    expect(JSON.parse(audit[0]!.details!)).toMatchObject({ expiresAt: ttlExpiry, expiresSetBy: "config:KEY_DEFAULT_TTL_DAYS" });

    const byAdmin = await api("POST", "/api/v1/keys", adminToken(), { name: "a", ownerId: user.id }, { env: TTL });
    expect(byAdmin.body.expiresAt).toBe(ttlExpiry);
    const forever = await api("POST", "/api/v1/keys", adminToken(), { name: "forever", ownerId: user.id, expiresAt: null }, { env: TTL });
    expect(forever.status).toBe(201);
    expect(forever.body).toMatchObject({ expiresAt: null, expiresSetBy: "admin_token" });
    const far = new Date(now + 400 * DAY_MS).toISOString();
    expect((await api("POST", "/api/v1/keys", adminToken(), { name: "far", ownerId: user.id, expiresAt: far }, { env: TTL })).body.expiresAt).toBe(far);

    // The policy's expiry binds the owner as an admin's does: earlier yes, later or never no.
    expect((await api("PATCH", `/api/v1/keys/${own.body.id}`, asUser, { expiresAt: new Date(now + 40 * DAY_MS).toISOString() }, { env: TTL })).status).toBe(
      403,
    );
    const earlier = await api("PATCH", `/api/v1/keys/${own.body.id}`, asUser, { expiresAt: new Date(now + 10 * DAY_MS).toISOString() }, { env: TTL });
    expect(earlier.status, JSON.stringify(earlier.body)).toBe(200);

    // A rotation's replacement keeps the old key's expiry and who set it.
    const rotated = await api("POST", `/api/v1/keys/${byAdmin.body.id}/rotate`, asUser, {}, { env: TTL });
    expect(rotated.body).toMatchObject({ expiresAt: ttlExpiry, expiresSetBy: "config:KEY_DEFAULT_TTL_DAYS" });
  });

  it("refuses a user a key that never expires or expires later than the TTL (403 FORBIDDEN naming expiresAt), writing nothing", async () => {
    const now = setClock(new Date().toISOString());
    const { user } = await createUser();
    const asUser = await userToken(user);
    const refusals = [
      await api("POST", "/api/v1/keys", asUser, { name: "never", expiresAt: null }, { env: TTL }),
      await api("POST", "/api/v1/keys", asUser, { name: "late", expiresAt: new Date(now + 31 * DAY_MS).toISOString() }, { env: TTL }),
    ];
    for (const refused of refusals) {
      expect(refused.status, JSON.stringify(refused.body)).toBe(403);
      expect(refused.body).toMatchObject({ code: "FORBIDDEN", field: "expiresAt" });
    }
    expect(await env.DB.prepare("SELECT count(*) AS n FROM api_keys WHERE owner_id = ?").bind(user.id).first("n")).toBe(0);
    const within = await api("POST", "/api/v1/keys", asUser, { name: "ok", expiresAt: new Date(now + 29 * DAY_MS).toISOString() }, { env: TTL });
    expect(within.status).toBe(201);
    expect(within.body.expiresSetBy).toBe(`user:${user.id}`);
    // Nor may the user remove or extend their own expiry past the horizon afterwards.
    const removed = await api("PATCH", `/api/v1/keys/${within.body.id}`, asUser, { expiresAt: null }, { env: TTL });
    expect(removed.status).toBe(403);
    expect(removed.body.field).toBe("expiresAt");
  });

  it("is off by default: keys without expiresAt never expire, and a user's explicit null is accepted", async () => {
    const { user } = await createUser();
    const asUser = await userToken(user);
    const plain = await api("POST", "/api/v1/keys", asUser, { name: "plain" });
    expect(plain.body).toMatchObject({ expiresAt: null, expiresSetBy: null });
    const explicit = await api("POST", "/api/v1/keys", asUser, { name: "explicit", expiresAt: null });
    expect(explicit.status).toBe(201);
    expect(explicit.body.expiresAt).toBeNull();
    const patched = await api("PATCH", `/api/v1/keys/${explicit.body.id}`, asUser, { expiresAt: null });
    expect(patched.status).toBe(200);
  });
});
