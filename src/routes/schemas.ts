import * as z from "../zod";
import { isValidIpRange, parseIp } from "../auth/ip-allowlist";
import { ANY_ORIGIN, corsOriginProblem } from "../proxy/cors";
import { KEY_FORMAT_NAMES } from "../auth/key-format";
import { globProblem, MAX_RULE_PATH_LENGTH } from "../auth/scopes";
import { AUDIT_TARGET_TYPES, type AuditPosition } from "../db/audit";
import type { KeyPosition } from "../db/keys";
import type { ProductPosition } from "../db/products";
import type { UserPosition } from "../db/users";
import { MAX_CALL_COST } from "../limits/pricing";
import { cursorParam, MAX_PAGE_SIZE } from "./cursor";

/**
 * The zod schemas of keygate's own endpoints: the handlers validate with
 * them and GET /openapi.json is generated from them, so the two cannot drift.
 * Request bodies are strict objects: an unknown field is a 400 naming it.
 */

/**
 * keygate's own paths. A product prefix equal to one of them, or under one,
 * could never be reached (own routes take priority), so it is refused.
 */
export const RESERVED_PATHS = ["/api/v1/keys", "/api/v1/admin", "/api/v1/usage", "/auth", "/.well-known", "/openapi.json", "/dashboard", "/healthz"] as const;

/** Upper bounds keep a typo from becoming an effectively unlimited key. */
const MAX_PER_MINUTE = 1_000_000;
const MAX_PER_DAY = 1_000_000_000;
/** A rotation's grace period is at most 30 days. */
export const MAX_GRACE_PERIOD_SECONDS = 30 * 86_400;

const perMinute = z.int().check(z.gte(1), z.lte(MAX_PER_MINUTE));
const perDay = z.int().check(z.gte(1), z.lte(MAX_PER_DAY));
const name = z.string().check(z.trim(), z.minLength(1), z.maxLength(200));
const slug = z.string().check(z.regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lowercase letters, digits and dashes (max 63)"));
const productList = z.array(z.union([z.literal("*"), slug])).check(z.maxLength(100));
const scopeList = z.array(z.string().check(z.regex(/^[A-Za-z0-9:._*-]{1,100}$/, "must be letters, digits and : . _ - * (max 100)"))).check(z.maxLength(100));
const ipAllowlist = z.array(z.string().check(z.refine(isValidIpRange, "must be an IPv4/IPv6 address or CIDR range"))).check(z.maxLength(100));
const futureTime = z.pipe(
  z.iso.datetime({ offset: true }).check(z.refine((value) => Date.parse(value) > Date.now(), "must be in the future")),
  z.transform((value: string) => new Date(value).toISOString()),
);
const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

const pathPrefix = z
  .pipe(
    // No "." or ".." segment: URLs arrive with those resolved, so such a prefix could never match (and would dodge RESERVED_PATHS).
    z
      .string()
      .check(
        z.regex(
          /^\/((?!\.\.?(\/|$))[A-Za-z0-9._~-]+(\/(?!\.\.?(\/|$))[A-Za-z0-9._~-]+)*)?\/?$/,
          'must start with "/" and hold only path segments, none of them "." or ".."',
        ),
      ),
    z.transform((value: string) => (value.length > 1 ? value.replace(/\/+$/, "") : value)),
  )
  .check(
    z.refine(
      (value) => !RESERVED_PATHS.some((reserved) => value === reserved || value.startsWith(`${reserved}/`)),
      `must not be or lie under one of keygate's own paths (${RESERVED_PATHS.join(", ")})`,
    ),
  );

const RATE_LIMIT_MODE_DESCRIPTION =
  'How calls are counted: "exact" (each call at the key\'s object; exact headers) or "leased" (Worker isolates admit from calls the object granted in advance: ' +
  "never over the limits, faster and cheaper for hot or far-away keys, remaining counts estimated, revocation within 1 s)";
const rateLimitMode = z.enum(["exact", "leased"]).check(z.describe(RATE_LIMIT_MODE_DESCRIPTION));

/** Zod's default "Required"-style messages say what is wrong; the path names the field. */
export const KeyCreateSchema = z.strictObject({
  name,
  format: z.optional(z.enum(KEY_FORMAT_NAMES)),
  env: z.optional(z.enum(["live", "test"])),
  ownerId: z.optional(z.string().check(z.minLength(1), z.maxLength(100))),
  products: z.optional(productList),
  scopes: z.optional(scopeList),
  // null: never expires, even when KEY_DEFAULT_TTL_DAYS is set (admins only; routes/keys.ts).
  expiresAt: z.optional(z.nullable(futureTime)),
  rateLimitPerMinute: z.optional(perMinute),
  rateLimitPerDay: z.optional(perDay),
  ipAllowlist: z.optional(ipAllowlist),
  rateLimitMode: z.optional(z.nullable(rateLimitMode)),
});
export type KeyCreateInput = z.infer<typeof KeyCreateSchema>;

/** A PATCH must name at least one field. */
const changesSomething = z.refine<object>((body) => Object.keys(body).length > 0, "must change at least one field");

/** Every field optional; null clears expiry and limits (back to inheriting). */
export const KeyPatchSchema = z
  .strictObject({
    name: z.optional(name),
    ownerId: z.optional(z.string().check(z.minLength(1), z.maxLength(100))),
    products: z.optional(productList),
    scopes: z.optional(scopeList),
    expiresAt: z.optional(z.nullable(futureTime)),
    rateLimitPerMinute: z.optional(z.nullable(perMinute)),
    rateLimitPerDay: z.optional(z.nullable(perDay)),
    ipAllowlist: z.optional(ipAllowlist),
    rateLimitMode: z.optional(z.nullable(rateLimitMode)),
    status: z.optional(z.enum(["active", "inactive"])),
  })
  .check(changesSomething);
export type KeyPatchInput = z.infer<typeof KeyPatchSchema>;

export const KeyRotateSchema = z.strictObject({
  gracePeriodSeconds: z.optional(z.int().check(z.gte(0), z.lte(MAX_GRACE_PERIOD_SECONDS))),
});

const ruleMethod = z.optional(
  z.pipe(
    z.string().check(z.regex(/^[A-Za-z]{1,20}$/, "must be an HTTP method")),
    z.transform((value: string) => value.toUpperCase()),
  ),
);
// Linear matching needs bounded globs: at most MAX_GLOBSTARS_PER_RULE "**", each a whole segment, written canonically.
const rulePath = z.optional(
  z.string().check(
    z.maxLength(MAX_RULE_PATH_LENGTH),
    z.superRefine((glob, ctx) => {
      const problem = globProblem(glob);
      if (problem) ctx.addIssue({ code: "custom", message: problem, input: glob });
    }),
  ),
);
const scopeRule = z.strictObject({
  method: ruleMethod,
  path: rulePath,
  scope: z.string().check(z.regex(/^[A-Za-z0-9:._-]{1,100}$/, "must be letters, digits and : . _ - (max 100)")),
});

const RESERVED_USAGE_HEADER =
  /^(content-.*|transfer-encoding|connection|set-cookie|location|etag|cache-control|vary|date|www-authenticate|retry-after|x-request-id|x-auth-.*|x-ratelimit-.*|ratelimit(-policy)?|x-credits-remaining|access-control-.*)$/i;

/** A whole number of credits. */
const creditAmount = z.int().check(z.gte(0), z.lte(MAX_CALL_COST));
const costRule = z.strictObject({ method: ruleMethod, path: rulePath, cost: creditAmount });
const COST_RULES_DESCRIPTION = "What a call costs in credits: the first rule matching its method and path decides; no match costs 1";
/** An HTTP field name (RFC 9110 token), as the origin sends it. */
const usageHeader = z.string().check(
  z.regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, "must be an HTTP header name"),
  // keygate strips the usage header from answers: never one an answer needs, nor one keygate sets itself.
  z.refine((name) => !RESERVED_USAGE_HEADER.test(name), "must not be a header the answer needs or keygate sets (Content-*, Set-Cookie, X-RateLimit-*, …)"),
);
const USAGE_HEADER_DESCRIPTION =
  "The response header the origin reports a call's metered usage in (e.g. X-Usage-Cost): stripped from the answer and debited from the key's credits afterwards; null = none";

const CORS_ORIGINS_DESCRIPTION =
  'Browser origins admitted cross-origin (CORS): exact origins such as "https://app.example.com" (scheme://host[:port]), or ["*"] for any; ' +
  "[] (the default) admits none. keygate answers the preflights itself, without credentials and never counted";

/** Each entry an exact origin, or the list exactly ["*"] (any origin, answered without credentials). */
const corsOrigins = z
  .array(
    z.string().check(
      z.maxLength(300),
      z.superRefine((origin, ctx) => {
        const problem = corsOriginProblem(origin);
        if (problem) ctx.addIssue({ code: "custom", message: problem, input: origin });
      }),
    ),
  )
  .check(
    z.maxLength(100),
    z.refine((list) => !list.includes(ANY_ORIGIN) || list.length === 1, `"${ANY_ORIGIN}" must be the list's only entry`),
    z.describe(CORS_ORIGINS_DESCRIPTION),
  );

const productFields = {
  name,
  pathPrefix,
  originUrl: httpUrl,
  testOriginUrl: z.optional(z.nullable(httpUrl)),
  stripPrefix: z.optional(z.boolean()),
  authMethods: z.optional(z.array(z.enum(["api_key", "jwt"])).check(z.minLength(1), z.maxLength(2))),
  errorFormat: z.optional(z.enum(["detailed", "compact"])),
  rateLimitPerMinute: z.optional(z.nullable(perMinute)),
  rateLimitPerDay: z.optional(z.nullable(perDay)),
  injectAuthMethod: z.optional(z.boolean()),
  scopeRules: z.optional(z.array(scopeRule).check(z.maxLength(100))),
  caseSensitiveRules: z.optional(z.boolean()),
  strictTrailingSlash: z.optional(z.boolean()),
  corsOrigins: z.optional(corsOrigins),
  costRules: z.optional(z.array(costRule).check(z.maxLength(100), z.describe(COST_RULES_DESCRIPTION))),
  usageHeader: z.optional(z.nullable(usageHeader.check(z.describe(USAGE_HEADER_DESCRIPTION)))),
  usageReserve: z.optional(creditAmount.check(z.describe("With a usage header: the least balance a call needs to be admitted (default 1)"))),
  rateLimitMode: z.optional(rateLimitMode),
};

export const ProductCreateSchema = z.strictObject({ slug, ...productFields });
export type ProductCreateInput = z.infer<typeof ProductCreateSchema>;

/** The slug is immutable: keys name products by it. */
export const ProductPatchSchema = z
  .strictObject({
    ...productFields,
    name: z.optional(name),
    pathPrefix: z.optional(pathPrefix),
    originUrl: z.optional(httpUrl),
  })
  .check(changesSomething);
export type ProductPatchInput = z.infer<typeof ProductPatchSchema>;

const email = z.email().check(z.maxLength(254));
const password = z.string().check(z.minLength(8, "must be at least 8 characters"), z.maxLength(1024));
const role = z.enum(["user", "admin"]);

/** Owner-level limits: null clears one. A key count of 0 lets the user hold no keys. */
const maxActiveKeys = z.int().check(z.gte(0), z.lte(100_000));
const ownerLimitFields = {
  rateLimitPerMinute: z.optional(z.nullable(perMinute)),
  rateLimitPerDay: z.optional(z.nullable(perDay)),
  maxActiveKeys: z.optional(z.nullable(maxActiveKeys)),
};

export const UserCreateSchema = z.strictObject({
  email,
  password,
  role: z.optional(role),
  products: z.optional(productList),
  scopes: z.optional(scopeList),
  ...ownerLimitFields,
});
export type UserCreateInput = z.infer<typeof UserCreateSchema>;

export const UserPatchSchema = z
  .strictObject({
    email: z.optional(email),
    password: z.optional(password),
    role: z.optional(role),
    products: z.optional(productList),
    scopes: z.optional(scopeList),
    ...ownerLimitFields,
  })
  .check(changesSomething);
export type UserPatchInput = z.infer<typeof UserPatchSchema>;

/** A whole number in the query string: text on the wire, documented as the integer a client sends (`?limit=5`). */
const queryInt = (min: number, max: number) =>
  z
    .pipe(z.pipe(z.string().check(z.regex(/^\d+$/, "must be a whole number")), z.transform(Number)), z.number().check(z.gte(min), z.lte(max)))
    .check(z.meta({ type: "integer", minimum: min, maximum: max }));

// ---- List pages: ?limit= (default DEFAULT_PAGE_SIZE) and ?cursor= (a nextCursor) ----

const pageLimit = queryInt(1, MAX_PAGE_SIZE);

export const KeyListQuerySchema = z.strictObject({
  limit: z.optional(pageLimit),
  cursor: z.optional(cursorParam<KeyPosition>("keys", ["string", "string"])),
});

export const UserListQuerySchema = z.strictObject({
  limit: z.optional(pageLimit),
  cursor: z.optional(cursorParam<UserPosition>("users", ["string", "string"])),
});

export const ProductListQuerySchema = z.strictObject({
  limit: z.optional(pageLimit),
  cursor: z.optional(cursorParam<ProductPosition>("products", ["string"])),
});

export const AuditQuerySchema = z.strictObject({
  limit: z.optional(pageLimit),
  cursor: z.optional(cursorParam<AuditPosition>("audit", ["string", "integer"])),
  targetType: z.optional(z.enum(AUDIT_TARGET_TYPES)),
  targetId: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
});

export const UsageQuerySchema = z.strictObject({
  keyId: z.optional(z.string().check(z.minLength(1), z.maxLength(100))),
});

// ---- Responses (documentation; tests parse real responses with them) ----

/** A string with the description GET /openapi.json shows for it. */
const described = (description: string) => z.string().check(z.describe(description));

const authMethod = z.enum(["api_key", "jwt", "admin_token"]);
const isoTime = described("ISO 8601 time");
const nextCursor = z.nullable(described("Pass as ?cursor= for the next page; null on the last page"));

export const KeyViewSchema = z.object({
  id: z.string(),
  prefix: z.string(),
  name: z.string(),
  format: z.enum(KEY_FORMAT_NAMES),
  env: z.nullable(z.enum(["live", "test"])),
  ownerId: z.nullable(z.string()),
  status: z.enum(["active", "inactive", "revoked"]),
  createdAt: isoTime,
  updatedAt: isoTime,
  lastUsedAt: z.nullable(isoTime),
  expiresAt: z.nullable(isoTime),
  rateLimitPerMinute: z.nullable(z.number()),
  rateLimitPerDay: z.nullable(z.number()),
  products: z.array(z.string()),
  scopes: z.array(z.string()),
  ipAllowlist: z.array(z.string()),
  rotatedTo: z.nullable(z.string()),
  graceUntil: z.nullable(isoTime),
  lineageId: described("The first key of this key's rotation chain: the keys of a rotation share one quota and one usage record"),
  rateLimitMode: z.nullable(z.enum(["exact", "leased"]).check(z.describe("null: the product's mode"))),
  version: z.int().check(z.describe("Moves with every write to the key; its ETag is this number in quotes. Send it back as If-Match on PATCH or DELETE")),
  statusSetBy: z.nullable(
    described(
      'Who last set the status: "admin_token" or "user:<id>" (null: not known). Set by anyone but the owner (an admin), the owner cannot reactivate the key',
    ),
  ),
  expiresSetBy: z.nullable(
    described(
      'Who last set the expiry: "admin_token" or "user:<id>" (null: not known). Set by anyone but the owner (an admin), the owner may only move it earlier',
    ),
  ),
});

export const KeyResponseSchema = z.extend(KeyViewSchema, { authMethod });
export const KeyCreatedSchema = z.extend(KeyResponseSchema, {
  key: described("The plaintext key: shown here once, never again"),
});
export const KeyRotatedSchema = z.extend(KeyCreatedSchema, {
  rotatedFrom: z.string(),
  graceUntil: described("When the old key stops working"),
});
export const KeyListSchema = z.object({ authMethod, keys: z.array(KeyViewSchema), nextCursor });
export const KeyRevokedSchema = z.object({ authMethod, id: z.string(), status: z.literal("revoked") });

export const UserViewSchema = z.object({
  id: z.string(),
  email: z.string(),
  role,
  products: z.array(z.string()),
  scopes: z.array(z.string()),
  createdAt: isoTime,
  updatedAt: isoTime,
  rateLimitPerMinute: z.nullable(z.number()),
  rateLimitPerDay: z.nullable(z.number()),
  maxActiveKeys: z.nullable(z.number()),
});
export const UserResponseSchema = z.extend(UserViewSchema, { authMethod });
export const UserListSchema = z.object({ authMethod, users: z.array(UserViewSchema), nextCursor });
export const UserDeletedSchema = z.object({
  authMethod,
  id: z.string(),
  deleted: z.literal(true),
  revokedKeys: z.array(z.string()),
});

export const ProductViewSchema = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  pathPrefix: z.string(),
  originUrl: z.string(),
  testOriginUrl: z.nullable(z.string()),
  stripPrefix: z.boolean(),
  authMethods: z.array(z.enum(["api_key", "jwt"])),
  errorFormat: z.enum(["detailed", "compact"]),
  rateLimitPerMinute: z.nullable(z.number()),
  rateLimitPerDay: z.nullable(z.number()),
  injectAuthMethod: z.boolean(),
  scopeRules: z.array(z.object({ method: z.optional(z.string()), path: z.optional(z.string()), scope: z.string() })),
  caseSensitiveRules: z.boolean(),
  strictTrailingSlash: z.boolean(),
  corsOrigins: z.array(z.string()).check(z.describe(CORS_ORIGINS_DESCRIPTION)),
  costRules: z.array(z.object({ method: z.optional(z.string()), path: z.optional(z.string()), cost: z.int() })).check(z.describe(COST_RULES_DESCRIPTION)),
  usageHeader: z.nullable(z.string()).check(z.describe(USAGE_HEADER_DESCRIPTION)),
  usageReserve: z.int(),
  rateLimitMode: z.enum(["exact", "leased"]),
  createdAt: isoTime,
  updatedAt: isoTime,
});
export const ProductResponseSchema = z.extend(ProductViewSchema, { authMethod });
export const ProductListSchema = z.object({ authMethod, products: z.array(ProductViewSchema), nextCursor });
export const ProductDeletedSchema = z.object({ authMethod, id: z.string(), slug: z.string(), deleted: z.literal(true) });

export const AuditEntrySchema = z.object({
  id: z.string(),
  at: isoTime,
  actor: described('"admin_token" or "user:<id>"'),
  action: described("e.g. key.create, key.revoke, product.update"),
  targetType: z.enum(AUDIT_TARGET_TYPES),
  targetId: z.string(),
  details: z.nullable(z.record(z.string(), z.unknown())),
});
export const AuditListSchema = z.object({ authMethod, entries: z.array(AuditEntrySchema), nextCursor });

// ---- credits (src/routes/credits.ts) ----

const creditRefill = z
  .strictObject({
    amount: creditAmount.check(z.gte(1), z.describe("The balance a refill restores")),
    interval: z.enum(["day", "month"]).check(z.describe("day: every day at 00:00 UTC; month: on dayOfMonth at 00:00 UTC")),
    dayOfMonth: z.optional(z.int().check(z.gte(1), z.lte(31), z.describe("For monthly refills (default 1); a shorter month refills on its last day"))),
  })
  .check(z.refine((refill) => refill.interval === "month" || refill.dayOfMonth === undefined, "dayOfMonth is for monthly refills only"));

export const CreditsSetSchema = z.strictObject({
  balance: creditAmount.check(z.describe("The balance from now on")),
  refill: z.optional(z.nullable(creditRefill)),
  lowThreshold: z.optional(z.nullable(creditAmount.check(z.describe("At or below this balance, a credits.low event is sent (once per top-up or refill)")))),
});
export type CreditsSetInput = z.infer<typeof CreditsSetSchema>;

export const CreditsTopUpSchema = z.strictObject({
  amount: creditAmount.check(z.gte(1), z.describe("Credits to add to the balance")),
});

const CreditsViewSchema = z.object({
  balance: z.int().check(z.describe("Credits left; negative after usage the origin reported beyond it (every call is then refused)")),
  quota: z.int().check(z.describe("What the balance was last set, topped up or refilled to")),
  refill: z.nullable(z.object({ amount: z.int(), interval: z.enum(["day", "month"]), dayOfMonth: z.optional(z.int()) })),
  lowThreshold: z.nullable(z.int()),
  nextRefillAt: z.nullable(isoTime),
  usedToday: z.int().check(z.describe("Credits used today (UTC): costs at admission plus reported usage")),
});

export const KeyCreditsSchema = z.object({
  authMethod,
  keyId: z.string(),
  lineageId: described("The rotation lineage: a rotation's keys share one balance"),
  credits: z.nullable(CreditsViewSchema.check(z.describe("null: the key draws on no credits (only its rate limits bind)"))),
});
export const OwnerCreditsSchema = z.object({
  authMethod,
  userId: z.string(),
  credits: z.nullable(CreditsViewSchema.check(z.describe("null: the owner's keys draw on no shared credits"))),
});

export const UsageReportSchema = z.strictObject({
  keyId: z.string().check(z.minLength(1), z.maxLength(100), z.describe("The key the call was made with (the origin's X-Auth-Key-Id)")),
  requestId: z
    .string()
    .check(
      z.minLength(1),
      z.maxLength(200),
      z.describe("The call's request id (the origin's X-Request-Id): a report with an id already reported is not debited again"),
    ),
  amount: creditAmount.check(z.describe("The credits the call used, beyond its cost at admission")),
});
export const UsageReportResponseSchema = z.object({
  authMethod: z.literal("service_token"),
  keyId: z.string(),
  requestId: z.string(),
  debited: z.boolean().check(z.describe("false: this requestId was reported before, so nothing was debited now")),
  balance: z.nullable(z.int().check(z.describe("The key's balance afterwards (may be negative); null when it has none"))),
});

const windowSchema = z.object({ limit: z.number(), used: z.number(), remaining: z.number() });
export const UsageStatsSchema = z.object({
  authMethod,
  keys: z.array(
    z.object({
      id: z.string(),
      prefix: z.string(),
      minute: z.extend(windowSchema, { resetSeconds: z.number() }),
      day: windowSchema,
      last30Days: z.array(
        z.object({
          date: described("YYYY-MM-DD (UTC)"),
          count: z.number(),
          creditsUsed: z.int().check(z.describe("Credits used that day: costs at admission plus usage the origin reported")),
        }),
      ),
      credits: z.nullable(CreditsViewSchema.check(z.describe("The key's balance now; null when it draws on none"))),
    }),
  ),
});

// ---- Service credentials and the verify API ----

export const ServiceTokenCreateSchema = z.strictObject({ name });

export const ServiceTokenViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  prefix: described("The token's public part: how lists and logs name it"),
  createdAt: isoTime,
  createdBy: described('The admin who issued it: "admin_token" or "user:<id>"'),
  revokedAt: z.nullable(isoTime),
});
export const ServiceTokenCreatedSchema = z.extend(ServiceTokenViewSchema, {
  authMethod,
  token: described("The service credential (kgsvc_…), for Authorization: Bearer on POST /api/v1/keys/verify: shown here once, never again"),
});
export const ServiceTokenListSchema = z.object({ authMethod, tokens: z.array(ServiceTokenViewSchema) });
export const ServiceTokenRevokedSchema = z.object({ authMethod, id: z.string(), revoked: z.literal(true) });

export const VerifyRequestSchema = z.strictObject({
  key: z.string().check(z.minLength(1), z.maxLength(512), z.describe("The API key to check, as the client sent it")),
  product: z.optional(slug.check(z.describe("Check access to this product and count the call against its limits"))),
  scopes: z.optional(scopeList.check(z.describe("Scopes the call needs: each must be granted to the key"))),
  consume: z.optional(z.boolean().check(z.describe("Count the call (default true); false only reports the limits"))),
  cost: z.optional(creditAmount.check(z.describe("Credits the call costs, for a key with credits (default 1)"))),
  ip: z.optional(
    z.string().check(
      z.refine((value) => parseIp(value) !== undefined, "must be an IPv4 or IPv6 address"),
      z.describe("The client's address, checked against the key's IP allowlist"),
    ),
  ),
});
export type VerifyRequest = z.infer<typeof VerifyRequestSchema>;

const verifyWindow = z.object({ limit: z.number(), remaining: z.number(), resetSeconds: z.number() });
export const VerifyAnswerSchema = z.object({
  valid: z.boolean(),
  code: z.nullable(described("Why the key was refused: the code a product call would get (API_KEY_*, IP_NOT_ALLOWED, RATE_LIMIT_EXCEEDED…); null when valid")),
  message: z.nullable(z.string()),
  keyId: z.nullable(described("The key, once authenticated (null when the key itself was refused: format, prefix, hash, status, expiry)")),
  ownerId: z.nullable(z.string()),
  name: z.nullable(z.string()),
  env: z.nullable(z.enum(["live", "test"])),
  products: z.array(z.string()),
  scopes: z.array(z.string()),
  expiresAt: z.nullable(isoTime),
  requiredScope: z.nullable(described("API_KEY_SCOPE_MISSING: the scope the key lacks")),
  retryAfter: z.nullable(
    z.number().check(z.describe("RATE_LIMIT_EXCEEDED / DAILY_QUOTA_EXCEEDED: seconds until the window resets; CREDITS_EXHAUSTED: until the next refill")),
  ),
  limits: z.nullable(
    z.object({
      enforced: z.boolean().check(z.describe("false when the limiter was unreachable and RATE_LIMIT_FAILURE_MODE is open")),
      minute: z.nullable(verifyWindow),
      day: z.nullable(verifyWindow),
      credits: z.nullable(
        z
          .object({ balance: z.int(), quota: z.int(), refillSeconds: z.nullable(z.int()) })
          .check(z.describe("The key's credits (the owner's, when theirs are lower); null when it draws on none")),
      ),
    }),
  ),
});
export type VerifyAnswer = z.infer<typeof VerifyAnswerSchema>;
export const VerifyResponseSchema = z.extend(VerifyAnswerSchema, { authMethod: z.literal("service_token") });
