/**
 * @module
 * What the limiter's decisions tell the usage-event webhooks, and debiting
 * usage the origin reported after a call. Both run off the request path
 * (ctx.waitUntil): an answer never waits for them, and their failures are
 * logged, never answered.
 */
import { countingPlace, limiterName, type Principal } from "../auth/principal";
import type { Env } from "../env";
import { publishEvents, type WebhookEvent } from "../webhooks/events";
import { limiterStub } from "./client";
import { limiterNames } from "./names";
import type { DebitResult } from "./rate-limiter";
import type { LimitEvent } from "./windows";

/** The webhook events of the limiter's crossings: the subject is the key's lineage (or the token's subject), or its owner. */
export function webhookEvents(principal: Principal, events: readonly LimitEvent[], now: number): WebhookEvent[] {
  const key = principal.method === "api_key" ? principal.key : undefined;
  return events.map((event) => {
    const owner = event.scope === "owner" && key?.ownerId ? key.ownerId : undefined;
    return {
      type: event.type,
      subject: owner ? limiterNames.user(owner) : limiterName(principal),
      period: event.period,
      occurredAt: new Date(now).toISOString(),
      data: {
        ...(key ? { keyId: key.id, lineageId: key.lineageId, ownerId: key.ownerId } : { subject: limiterName(principal) }),
        scope: owner ? "owner" : "key",
        ...event.data,
      },
    };
  });
}

/** Queues the crossings' webhook events; a no-op without any. */
export function announce(env: Env, principal: Principal, events: readonly LimitEvent[] | undefined, now = Date.now()): Promise<void> {
  if (!events || events.length === 0) return Promise.resolve();
  return publishEvents(env, webhookEvents(principal, events, now));
}

/**
 * Debits usage the origin reported from the credits the call drew on, where
 * the call counts (moved: the other object, once). `requestId` makes it
 * idempotent (a report through the API). Throws when the object cannot be reached.
 */
export async function debitReportedUsage(env: Env, principal: Principal, amount: number, requestId?: string): Promise<DebitResult> {
  const place = countingPlace(principal);
  const input = { amount, ...(requestId === undefined ? {} : { requestId }) };
  const first: DebitResult = await limiterStub(env, place.name).debit({ ...input, ...(place.lineageId ? { lineageId: place.lineageId } : {}) });
  if (first.outcome !== "moved") return first;
  const other = countingPlace(principal, true);
  return limiterStub(env, other.name).debit({ ...input, redirected: true, ...(other.lineageId ? { lineageId: other.lineageId } : {}) });
}

/**
 * The proxy's debit of a usage header, after the answer: announces the
 * crossings; never throws (a lost debit under-charges one call and is logged).
 */
export async function debitUsage(env: Env, principal: Principal, amount: number, requestId: string): Promise<void> {
  try {
    const result = await debitReportedUsage(env, principal, amount);
    if (result.outcome === "debited") await announce(env, principal, result.events);
  } catch (error) {
    console.error(JSON.stringify({ event: "usage_debit_failed", requestId, limiter: limiterName(principal), amount, error: String(error) }));
  }
}
