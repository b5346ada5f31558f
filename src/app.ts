import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "./app-env";
import { storageUnavailable } from "./db/constraints";
import { GatewayError, isGatewayError, renderError } from "./errors";
import { ownBodyLimit } from "./middleware/body-limit";
import { loadConfig } from "./middleware/config";
import { requestId } from "./middleware/request-id";
import { publicCors } from "./proxy/cors";
import { handleProductCall } from "./gateway";
import { adminAuditRoutes } from "./routes/admin-audit";
import { adminProductsRoutes } from "./routes/admin-products";
import { adminServiceTokensRoutes } from "./routes/admin-service-tokens";
import { adminUsersRoutes } from "./routes/admin-users";
import { adminWebhooksRoutes } from "./routes/admin-webhooks";
import { authRoutes } from "./routes/auth";
import { creditsRoutes } from "./routes/credits";
import { dashboardRoutes } from "./routes/dashboard";
import { healthRoutes } from "./routes/health";
import { keysRoutes } from "./routes/keys";
import { answerOtherMethods } from "./routes/method-not-allowed";
import { openapiRoutes } from "./routes/openapi";
import { usageRoutes } from "./routes/usage";
import { usageReportRoutes } from "./routes/usage-report";
import { verifyRoutes } from "./routes/verify";

/**
 * keygate: request id → configuration → CORS of the public documents → keygate's own endpoints (they take
 * priority; their bodies capped at MAX_BODY_BYTES; other methods on their paths are 405) → everything else is a
 * product call: authenticate → rate-limit → forward. Every error, ours or not, leaves through onError as JSON.
 * Each own route carries its own OpenAPI description (src/openapi/), so /openapi.json is read off this router.
 */
export const app = new Hono<AppEnv>();

app.use(requestId());
app.use(loadConfig());
app.route("/", healthRoutes);
// Public documents, readable from any origin; product CORS lives in the product pipeline.
for (const path of ["/.well-known/jwks.json", "/openapi.json"]) app.use(path, publicCors());
for (const path of ["/auth/*", "/api/v1/keys", "/api/v1/keys/*", "/api/v1/usage/report", "/api/v1/admin/*"]) app.use(path, ownBodyLimit());
app.route("/", authRoutes);
app.route("/", verifyRoutes);
app.route("/", creditsRoutes);
app.route("/", keysRoutes);
app.route("/", usageRoutes);
app.route("/", usageReportRoutes);
app.route("/", adminUsersRoutes);
app.route("/", adminProductsRoutes);
app.route("/", adminAuditRoutes);
app.route("/", adminServiceTokensRoutes);
app.route("/", adminWebhooksRoutes);
app.route(
  "/",
  openapiRoutes(() => app.routes),
);
app.route("/", dashboardRoutes);
answerOtherMethods(app);

app.all("*", handleProductCall);

app.onError((err, c) => {
  const error = toGatewayError(err);
  if (error.status >= 500) logFailure(err, error, c.get("requestId"));
  return renderError(error, c.get("errorFormat") ?? "detailed", c.get("requestId") ?? crypto.randomUUID(), c.get("corsHeaders"));
});

/**
 * The one log line of a failed request (every 5xx, and only those: a client's
 * mistake is its answer, not an incident): the request id, the code, what
 * failed underneath and where, and a stack for anything unexpected.
 */
function logFailure(err: unknown, error: GatewayError, requestId: string | undefined): void {
  const thrown = isGatewayError(err) ? err : undefined;
  const cause = thrown ? thrown.cause : err;
  console.error(
    JSON.stringify({
      event: "error",
      ...thrown?.context,
      requestId,
      status: error.status,
      code: error.code,
      message: error.message,
      ...(cause === undefined ? {} : { cause: String(cause) }),
      ...(thrown ? {} : { stack: (err as Error | undefined)?.stack }),
    }),
  );
}

function toGatewayError(err: unknown): GatewayError {
  if (isGatewayError(err)) return err;
  if (storageUnavailable(err)) return new GatewayError("AUTH_BACKEND_UNAVAILABLE", { message: "Storage is unavailable; retry shortly", cause: err });
  if (err instanceof HTTPException && err.status === 413) return new GatewayError("PAYLOAD_TOO_LARGE");
  if (err instanceof HTTPException && err.status === 400) return new GatewayError("VALIDATION_FAILED", { message: err.message });
  return new GatewayError("INTERNAL_ERROR");
}
