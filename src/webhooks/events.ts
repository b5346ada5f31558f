import type { Env } from "../env";

/**
 * Webhook events: what happened, to what, in which period. Publishing only
 * puts each event on the WEBHOOK_QUEUE (one message each, never waiting for
 * an endpoint); the queue's consumer (consumer.ts) keeps each event at most
 * once, fans it out to the endpoints that subscribe to its type, and delivers
 * each copy signed, with retries and backoff.
 */
export const WEBHOOK_EVENT_TYPES = [
  "key.created",
  "key.rotated",
  "key.revoked",
  "key.expiring",
  "credits.low",
  "credits.exhausted",
  "quota.daily_exhausted",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export interface WebhookEvent {
  type: WebhookEventType;
  /** What the event is about, e.g. "key:<lineage or key id>" or "user:<id>". */
  subject: string;
  /**
   * The period the event is unique in for its subject: e.g. the UTC day "2026-12-02" for quota.daily_exhausted, a credits
   * epoch number as text for credits.*, the key's expiresAt for key.expiring, the key id for key.created.
   */
  period: string;
  /** When it happened (ISO 8601). */
  occurredAt: string;
  /** The payload's `data` object (ids, balance, threshold, …). Never a secret. */
  data: Record<string, unknown>;
}

/** The queue's two kinds of message (one queue, one consumer: this Worker). */
export interface EventMessage {
  kind: "event";
  /** eventId(event): the dedupe key and every delivery's webhook-id. */
  id: string;
  event: WebhookEvent;
}

export interface DeliveryMessage {
  kind: "delivery";
  eventId: string;
  type: WebhookEventType;
  endpointId: string;
  /** The JSON body, as text: byte for byte the same on every attempt. */
  payload: string;
}

export type WebhookMessage = EventMessage | DeliveryMessage;

/** Queues.sendBatch takes at most 100 messages (and 256 KB) per call. */
export const MAX_MESSAGES_PER_SEND = 100;

/** `list` in slices of at most `size`. */
export function chunks<T>(list: readonly T[], size: number): T[][] {
  const slices: T[][] = [];
  for (let i = 0; i < list.length; i += size) slices.push(list.slice(i, i + size));
  return slices;
}

/**
 * The event's id: "evt_" + the first 128 bits of SHA-256 over (type, subject,
 * period), in hex. The same event published twice has one id, which is how
 * the consumer keeps it at most once.
 */
export async function eventId(event: Pick<WebhookEvent, "type" | "subject" | "period">): Promise<string> {
  const input = new TextEncoder().encode(JSON.stringify([event.type, event.subject, event.period]));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  return `evt_${[...digest.subarray(0, 16)].map((byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Queues the events for delivery (one queue message per event; sendBatch).
 * Never throws: a failure is logged as one JSON line and dropped. Callers run
 * it in ctx.waitUntil, off the request path.
 */
export async function publishEvents(env: Env, events: readonly WebhookEvent[]): Promise<void> {
  for (const slice of chunks(events, MAX_MESSAGES_PER_SEND)) {
    try {
      const messages = await Promise.all(
        slice.map(
          async (event): Promise<MessageSendRequest<WebhookMessage>> => ({ body: { kind: "event", id: await eventId(event), event }, contentType: "json" }),
        ),
      );
      await env.WEBHOOK_QUEUE.sendBatch(messages);
    } catch (error) {
      console.error(
        JSON.stringify({
          event: "webhook_publish_failed",
          types: [...new Set(slice.map((event) => event.type))],
          subjects: slice.map((event) => event.subject),
          cause: String(error),
        }),
      );
    }
  }
}
