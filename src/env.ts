import type { RateLimiter } from "./limits/rate-limiter";
import type { WebhookMessage } from "./webhooks/events";

/** The Worker's bindings (wrangler.toml) and secrets. Vars are read through config.ts. */
export interface Env {
  DB: D1Database;
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  ASSETS: Fetcher;
  /** Webhook events and their deliveries (src/webhooks/): this Worker produces and consumes them. */
  WEBHOOK_QUEUE: Queue<WebhookMessage>;
  ADMIN_TOKEN?: string;
  JWT_SIGNING_KEY?: string;
  JWT_SECRET?: string;
  ORIGIN_SIGNING_SECRET?: string;
  [variable: string]: unknown;
}
