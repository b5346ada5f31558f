import { type Config, getConfig } from "../config";
import { nowIso } from "../db/json";
import type { Env } from "../env";
import { chunks, type DeliveryMessage, type EventMessage, MAX_MESSAGES_PER_SEND, type WebhookMessage } from "./events";
import { webhookHeaders } from "./signature";
import { claimEvent, getEndpoint, releaseEvent, subscribedEndpoints, subscribes } from "./store";

/**
 * The WEBHOOK_QUEUE consumer (this Worker's `queue` handler). Two kinds of
 * message share the queue:
 *
 *  - an event (publishEvents): recorded in webhook_events by its id, and only
 *    if it was not there yet (the same type, subject and period published
 *    again is acked and dropped: at most once), fanned out as one delivery
 *    message per enabled endpoint that subscribes to its type (an event no
 *    endpoint subscribes to is dropped unrecorded);
 *  - a delivery: one signed POST to one endpoint. A 2xx acks it; any other
 *    status, a timeout or a network error retries it with exponential backoff
 *    (the queue's max_retries bounds the attempts, then its dead-letter queue
 *    keeps it). An endpoint deleted, disabled or unsubscribed meanwhile drops it.
 *
 * Each message is acked or retried on its own, so one slow or failing
 * endpoint never holds back another's delivery. Every failure is one JSON log
 * line, never with the secret.
 */

/** Queues refuse a retry delay over 12 hours. */
export const MAX_RETRY_DELAY_SECONDS = 43_200;

/** The wait before attempt `attempts + 1`: base, 2·base, 4·base, …, at most MAX_RETRY_DELAY_SECONDS. */
export function retryDelaySeconds(baseSeconds: number, attempts: number): number {
  return Math.min(baseSeconds * 2 ** Math.max(0, attempts - 1), MAX_RETRY_DELAY_SECONDS);
}

export const USER_AGENT = "keygate-webhooks";

function log(line: Record<string, unknown>): void {
  console.error(JSON.stringify(line));
}

export async function handleWebhookBatch(batch: MessageBatch<WebhookMessage>, env: Env): Promise<void> {
  let config: Config;
  try {
    config = getConfig(env);
  } catch (error) {
    log({ event: "webhook_batch_failed", queue: batch.queue, messages: batch.messages.length, cause: String(error) });
    batch.retryAll();
    return;
  }
  await Promise.all(batch.messages.map((message) => handleMessage(message, env, config)));
}

async function handleMessage(message: Message<WebhookMessage>, env: Env, config: Config): Promise<void> {
  const body = message.body;
  try {
    if (body?.kind === "event") await fanOut(message as Message<EventMessage>, env);
    else if (body?.kind === "delivery") await deliver(message as Message<DeliveryMessage>, env, config);
    else {
      log({ event: "webhook_message_unknown", messageId: message.id });
      message.ack();
    }
  } catch (error) {
    // Storage or the queue failed underneath: nothing was decided, so try again later.
    const delaySeconds = retryDelaySeconds(config.webhookRetryBaseSeconds, message.attempts);
    log({
      event: "webhook_message_failed",
      kind: body?.kind,
      messageId: message.id,
      attempt: message.attempts,
      retryInSeconds: delaySeconds,
      cause: String(error),
    });
    message.retry({ delaySeconds });
  }
}

/** The Standard Webhooks payload: {type, timestamp, data}. */
export function webhookPayload(event: EventMessage["event"]): string {
  return JSON.stringify({ type: event.type, timestamp: event.occurredAt, data: event.data });
}

async function fanOut(message: Message<EventMessage>, env: Env): Promise<void> {
  const { id, event } = message.body;
  const endpoints = await subscribedEndpoints(env.DB, event.type);
  if (endpoints.length === 0) {
    // Nobody listens: nothing is recorded, so an endpoint added later still gets the event if it is published again.
    message.ack();
    return;
  }
  if (!(await claimEvent(env.DB, { id, type: event.type, subject: event.subject, period: event.period }, nowIso()))) {
    message.ack(); // published before: dropped
    return;
  }
  const payload = webhookPayload(event);
  const deliveries = endpoints.map(
    (endpoint): MessageSendRequest<WebhookMessage> => ({
      body: { kind: "delivery", eventId: id, type: event.type, endpointId: endpoint.id, payload },
      contentType: "json",
    }),
  );
  try {
    for (const slice of chunks(deliveries, MAX_MESSAGES_PER_SEND)) await env.WEBHOOK_QUEUE.sendBatch(slice);
  } catch (error) {
    // Not fanned out after all: give the claim back so the retry can (if that fails too, the event is lost, and logged).
    await releaseEvent(env.DB, id).catch((releaseError: unknown) =>
      log({ event: "webhook_event_lost", eventId: id, type: event.type, cause: String(error), releaseCause: String(releaseError) }),
    );
    throw error;
  }
  message.ack();
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
}

async function deliver(message: Message<DeliveryMessage>, env: Env, config: Config): Promise<void> {
  const { eventId, type, endpointId, payload } = message.body;
  const endpoint = await getEndpoint(env.DB, endpointId);
  if (!endpoint || !subscribes(endpoint, type)) {
    log({ event: "webhook_delivery_dropped", eventId, type, endpointId, reason: endpoint ? "endpoint disabled or unsubscribed" : "endpoint deleted" });
    message.ack();
    return;
  }
  // Signed at each attempt with the time of the attempt: the receiver's 5-minute tolerance holds for a retry hours later.
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = {
    ...(await webhookHeaders(endpoint.secret, eventId, timestamp, payload)),
    "content-type": "application/json",
    "user-agent": USER_AGENT,
  };
  let failure: Record<string, unknown>;
  try {
    const response = await fetch(endpoint.url, {
      method: "POST",
      headers,
      body: payload,
      // A redirect is an answer, not a new target: a 3xx is a failed attempt.
      redirect: "manual",
      signal: AbortSignal.timeout(config.webhookTimeoutMs),
    });
    await response.body?.cancel();
    if (response.status >= 200 && response.status < 300) {
      message.ack();
      return;
    }
    failure = { status: response.status };
  } catch (error) {
    failure = isTimeout(error) ? { error: "timeout", timeoutMs: config.webhookTimeoutMs } : { error: String(error) };
  }
  const delaySeconds = retryDelaySeconds(config.webhookRetryBaseSeconds, message.attempts);
  log({ event: "webhook_delivery_failed", eventId, type, endpointId, attempt: message.attempts, ...failure, retryInSeconds: delaySeconds });
  message.retry({ delaySeconds });
}
