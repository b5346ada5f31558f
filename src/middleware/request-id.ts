import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { documented } from "../openapi/operation";

/**
 * A fresh id for every request, on every response. A client-sent X-Request-Id
 * is ignored: the rate limiter deduplicates retries by this id, so a
 * client-chosen one could replay an admission.
 */
export const requestId = () =>
  documented(
    createMiddleware<AppEnv>(async function requestId(c, next) {
      const id = crypto.randomUUID();
      c.set("requestId", id);
      c.set("errorFormat", "detailed");
      await next();
      c.res.headers.set("X-Request-Id", id);
    }),
    // Anything unforeseen is a 500 INTERNAL_ERROR (app.ts onError), on any route.
    { headers: [{ name: "X-Request-Id", on: "all" }], errors: ["INTERNAL_ERROR"] },
  );
