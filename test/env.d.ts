declare namespace Cloudflare {
  interface Env {
    DB: D1Database;
    RATE_LIMITER: DurableObjectNamespace<import("../src/limits/rate-limiter").RateLimiter>;
    ASSETS: Fetcher;
    WEBHOOK_QUEUE: Queue<import("../src/webhooks/events").WebhookMessage>;
    ADMIN_TOKEN: string;
    ORIGIN_SIGNING_SECRET: string;
    JWT_SIGNING_KEY: string;
    JWT_SECRET: string;
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[]; // vitest.config.ts
  }
}

declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import("../src/index");
    durableNamespaces: "RateLimiter";
  }
}
