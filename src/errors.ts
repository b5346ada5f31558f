/**
 * The one error catalogue. Every refusal keygate makes is a GatewayError with
 * a code from here, rendered by renderError — detailed or compact.
 */

export type ErrorFormat = "detailed" | "compact";

type ErrorStatus = 400 | 401 | 402 | 403 | 404 | 405 | 409 | 412 | 413 | 429 | 500 | 502 | 503 | 504;

interface ErrorSpec {
  status: ErrorStatus;
  /** Statuses the code is also answered with, when a request asks for it (CONFLICT: 412 under If-Match, SPEC section 4). */
  alsoStatus?: readonly ErrorStatus[];
  message: string;
  hint: string;
  /** What the compact format says; defaults to `message`. */
  compact?: string;
}

const INVALID_KEY = "Invalid or inactive API key";

export const ERRORS = {
  AUTH_MISSING: {
    status: 401,
    message: "No credentials provided",
    hint: "Send an API key in the X-API-Key header, or a key or JWT as Authorization: Bearer <token>",
    compact: "No API key provided",
  },
  AUTH_HEADER_MALFORMED: {
    status: 401,
    message: "The credential header could not be parsed",
    hint: "Send exactly one X-API-Key header with the bare key, or Authorization: Bearer <token>",
    compact: INVALID_KEY,
  },
  API_KEY_FORMAT_INVALID: {
    status: 401,
    message: "API key format is invalid",
    hint: "Check that the key was copied completely, without extra characters",
    compact: INVALID_KEY,
  },
  API_KEY_PREFIX_NOT_FOUND: {
    status: 401,
    message: "API key not found",
    hint: "Create a key in the dashboard or through POST /api/v1/keys",
    compact: INVALID_KEY,
  },
  API_KEY_HASH_MISMATCH: {
    status: 401,
    message: "API Key hash verification failed",
    hint: "Ensure you are using the exact key returned at creation time",
    compact: INVALID_KEY,
  },
  API_KEY_INACTIVE: {
    status: 401,
    message: "API key is inactive or revoked",
    hint: "Reactivate the key or create a new one",
    compact: INVALID_KEY,
  },
  API_KEY_EXPIRED: {
    status: 401,
    message: "API key has expired",
    hint: "Use the key that replaced it, or create a new one",
    compact: INVALID_KEY,
  },
  IP_NOT_ALLOWED: {
    status: 403,
    message: "Requests from this IP address are not allowed for this API key",
    hint: "Add the address to the key's IP allowlist",
  },
  API_KEY_PRODUCT_FORBIDDEN: {
    status: 403,
    message: "Your API key does not have access to this product",
    hint: "Grant the key access to this product, or use a key that has it",
  },
  API_KEY_SCOPE_MISSING: {
    status: 403,
    message: "Your API key lacks a scope this call requires",
    hint: "Grant the key the scope named in `requiredScope`",
  },
  JWT_SCOPE_MISSING: {
    status: 403,
    message: "Your token lacks a scope this call requires",
    hint: "Request a token that carries the scope named in `requiredScope`",
  },
  AUTH_METHOD_NOT_ALLOWED: {
    status: 403,
    message: "This product does not accept this kind of credential",
    hint: "Use a credential type this product allows",
  },
  FORBIDDEN: {
    status: 403,
    message: "You are not allowed to do this",
    hint: "Sign in as an admin or as the owner of the resource",
  },
  CORS_ORIGIN_NOT_ALLOWED: {
    status: 403,
    message: "This origin may not call this product from a browser (CORS)",
    hint: "An admin adds the page's exact origin (scheme://host[:port]) to the product's corsOrigins",
  },
  JWT_MALFORMED: { status: 401, message: "The token is not a well-formed JWT", hint: "Send a compact JWS" },
  JWT_EXPIRED: { status: 401, message: "The token has expired", hint: "Obtain a new token" },
  JWT_NOT_YET_VALID: { status: 401, message: "The token is not valid yet", hint: "Check the nbf/iat claims and your clock" },
  JWT_SIGNATURE_INVALID: { status: 401, message: "The token's signature is invalid", hint: "Obtain a new token from the issuer" },
  JWT_CLAIM_INVALID: { status: 401, message: "A token claim is missing or invalid", hint: "Check exp, iss and aud" },
  JWT_ALG_NOT_ALLOWED: { status: 401, message: "The token's algorithm is not allowed", hint: "Sign tokens with an allowed algorithm" },
  JWT_KEY_NOT_FOUND: { status: 401, message: "No key is known for this token", hint: "Check the token's kid and the issuer's JWKS" },
  INVALID_CREDENTIALS: { status: 401, message: "Email or password is incorrect", hint: "Check your email and password" },
  SERVICE_CREDENTIAL_INVALID: {
    status: 401,
    message: "The service credential is invalid",
    hint: "Use a service credential (kgsvc_…) an admin issued through POST /api/v1/admin/service-tokens",
  },
  RATE_LIMIT_EXCEEDED: { status: 429, message: "Rate limit exceeded", hint: "Wait until the minute window resets (Retry-After)" },
  DAILY_QUOTA_EXCEEDED: { status: 429, message: "Daily quota exceeded", hint: "Wait until the UTC day resets (Retry-After)" },
  CREDITS_EXHAUSTED: {
    status: 402,
    message: "The key's credits are used up",
    hint: "Ask for a top-up, or wait for the next refill (Retry-After, when the credits refill)",
  },
  AUTH_THROTTLED: { status: 429, message: "Too many failed authentication attempts", hint: "Wait before trying again (Retry-After)" },
  PATH_INVALID: {
    status: 400,
    message: "The request path cannot be put in canonical form",
    hint: "Send a plain path: no ';' parameters, backslashes, encoded slashes, controls or double encoding",
  },
  ROUTE_NOT_FOUND: { status: 404, message: "No route matches this path", hint: "Check the path against the products' path prefixes" },
  NOT_FOUND: { status: 404, message: "Resource not found", hint: "Check the id" },
  METHOD_NOT_ALLOWED: { status: 405, message: "Method not allowed", hint: "Check the endpoint table" },
  CONFLICT: {
    status: 409,
    alsoStatus: [412],
    message: "The request conflicts with the resource's current state",
    hint: "Read the resource again and retry (a concurrent write won), or use another value for the unique field",
  },
  VALIDATION_FAILED: { status: 400, message: "The request body is invalid", hint: "Fix the named fields and try again" },
  PAYLOAD_TOO_LARGE: { status: 413, message: "Request body is too large", hint: "Send a smaller body" },
  AUTH_BACKEND_UNAVAILABLE: {
    status: 503,
    message: "Authentication backend is unavailable",
    hint: "Retry shortly; your credential was not judged",
  },
  ORIGIN_UNAVAILABLE: { status: 502, message: "The origin could not be reached", hint: "Retry shortly" },
  ORIGIN_TIMEOUT: { status: 504, message: "The origin did not answer in time", hint: "Retry shortly" },
  CONFIG_INVALID: { status: 500, message: "The gateway is misconfigured", hint: "The operator must fix the named variable" },
  INTERNAL_ERROR: { status: 500, message: "Internal error", hint: "Retry; report the requestId if it persists" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

const STATUS_TITLES: Record<ErrorSpec["status"], string> = {
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  412: "Precondition Failed",
  413: "Payload Too Large",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

export interface GatewayErrorOptions {
  /** Replaces the catalogue message (e.g. to name a bad config variable). */
  message?: string;
  /** Extra top-level fields for the detailed body (e.g. requiredScope, fields). */
  details?: Record<string, unknown>;
  /** Extra response headers (Retry-After, rate-limit headers). */
  headers?: Record<string, string>;
  /** One of the code's `alsoStatus` instead of its status (CONFLICT's 412 when the client sent If-Match). */
  status?: ErrorStatus;
  /** What failed underneath (a D1 or Durable Object error, a fetch failure): logged by onError, never shown. */
  cause?: unknown;
  /** Fields for that log line (an event name, a product, a limiter), never shown to the client. */
  context?: Record<string, unknown>;
}

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: ErrorStatus;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string>;
  readonly context: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, options: GatewayErrorOptions = {}) {
    const spec: ErrorSpec = ERRORS[code];
    super(options.message ?? spec.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.code = code;
    if (options.status !== undefined && options.status !== spec.status && !spec.alsoStatus?.includes(options.status)) {
      throw new TypeError(`${code} is never answered with ${options.status}`);
    }
    this.status = options.status ?? spec.status;
    this.details = options.details;
    this.headers = { ...options.headers };
    this.context = options.context;
  }
}

export function isGatewayError(value: unknown): value is GatewayError {
  return value instanceof GatewayError;
}

/** The JSON body of an error, in either format. Never includes a credential. */
export function errorBody(err: GatewayError, format: ErrorFormat, requestId: string): Record<string, unknown> {
  const spec: ErrorSpec = ERRORS[err.code];
  if (format === "compact") return { error: spec.compact ?? err.message };
  const body: Record<string, unknown> = { error: STATUS_TITLES[err.status], code: err.code, message: err.message, hint: spec.hint, requestId };
  // Details follow, and never overwrite the fields every client relies on. Defined, not assigned:
  // a detail named "__proto__" is a field like any other, never the body's prototype.
  for (const [name, value] of Object.entries(err.details ?? {})) {
    if (!Object.hasOwn(body, name)) Object.defineProperty(body, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return body;
}

export function renderError(err: GatewayError, format: ErrorFormat, requestId: string, extraHeaders?: HeadersInit): Response {
  const headers = new Headers(extraHeaders);
  headers.set("Content-Type", "application/json");
  headers.set("X-Request-Id", requestId);
  for (const [name, value] of Object.entries(err.headers)) headers.set(name, value);
  if (err.status === 401) headers.set("WWW-Authenticate", 'Bearer realm="keygate"');
  return new Response(JSON.stringify(errorBody(err, format, requestId)), { status: err.status, headers });
}
