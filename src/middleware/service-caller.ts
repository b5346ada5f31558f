import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { verifyServiceToken } from "../auth/service-token";
import { assertNotThrottled, recordingAuthFailures } from "../limits/auth-throttle";
import { documented } from "../openapi/operation";

/**
 * A service holding an admin-issued credential (POST /api/v1/admin/service-tokens),
 * as Authorization: Bearer kgsvc_…. A wrong one counts against the caller's
 * address like any failed authentication.
 */
export const requireService = () =>
  documented(
    createMiddleware<AppEnv>(async function service(c, next) {
      const config = c.get("config");
      const ip = c.req.header("cf-connecting-ip") ?? null;
      assertNotThrottled(c.env, config, ip);
      await recordingAuthFailures(c.env, config, ip, () => verifyServiceToken(c.req.header("authorization") ?? null, c.env.DB, config, Date.now()));
      c.header("X-Auth-Method", "service_token");
      await next();
    }),
    {
      security: [{ serviceToken: [] }],
      errors: ["AUTH_THROTTLED", "AUTH_MISSING", "AUTH_HEADER_MALFORMED", "SERVICE_CREDENTIAL_INVALID", "AUTH_BACKEND_UNAVAILABLE"],
      headers: [
        { name: "X-Auth-Method", on: "success" },
        { name: "Retry-After", on: ["AUTH_THROTTLED"] },
      ],
    },
  );
