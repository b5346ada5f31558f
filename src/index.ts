import { app } from "./app";

export { KeygateService } from "./keygate-service";
export { RateLimiter } from "./limits/rate-limiter";

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<import("./env").Env>;
