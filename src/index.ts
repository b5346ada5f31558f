import { app } from "./app";
import type { Env } from "./env";
import { handleWebhookBatch } from "./webhooks/consumer";
import type { WebhookMessage } from "./webhooks/events";
import { runScheduled } from "./webhooks/expiry";

export { KeygateService } from "./keygate-service";
export { RateLimiter } from "./limits/rate-limiter";

export default {
  fetch: app.fetch,
  // WEBHOOK_QUEUE's consumer: fan-out and signed delivery of webhook events (src/webhooks/consumer.ts).
  queue: (batch, env) => handleWebhookBatch(batch, env),
  // [triggers] crons: the key.expiring scan (src/webhooks/expiry.ts).
  scheduled: (controller, env) => runScheduled(controller, env),
} satisfies ExportedHandler<Env, WebhookMessage>;
