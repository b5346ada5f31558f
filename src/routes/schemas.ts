import * as z from "zod"; // namespace import: `{ z }` would bundle every zod locale
import { isValidIpRange } from "../auth/ip-allowlist";
import { KEY_FORMAT_NAMES } from "../auth/key-format";

/**
 * The zod schemas of keygate's own endpoints: the handlers validate with
 * them and GET /openapi.json is generated from them, so the two cannot drift.
 * Request bodies are strict objects: an unknown field is a 400 naming it.
 */

/**
 * keygate's own paths. A product prefix equal to one of them, or under one,
 * could never be reached (own routes take priority), so it is refused.
 */
export const RESERVED_PATHS = [
  "/api/v1/keys",
  "/api/v1/admin",
  "/api/v1/usage",
  "/auth",
  "/.well-known",
  "/openapi.json",
  "/dashboard",
  "/healthz",
] as const;

/** Upper bounds keep a typo from becoming an effectively unlimited key. */
const MAX_PER_MINUTE = 1_000_000;
const MAX_PER_DAY = 1_000_000_000;
/** A rotation's grace period is at most 30 days. */
export const MAX_GRACE_PERIOD_SECONDS = 30 * 86_400;

const perMinute = z.int().min(1).max(MAX_PER_MINUTE);
const perDay = z.int().min(1).max(MAX_PER_DAY);
const name = z.string().trim().min(1).max(200);
const slug = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lowercase letters, digits and dashes (max 63)");
const productList = z.array(z.union([z.literal("*"), slug])).max(100);
const scopeList = z.array(z.string().regex(/^[A-Za-z0-9:._*-]{1,100}$/, "must be letters, digits and : . _ - * (max 100)")).max(100);
const ipAllowlist = z
  .array(z.string().refine(isValidIpRange, "must be an IPv4/IPv6 address or CIDR range"))
  .max(100);
const futureTime = z.iso
  .datetime({ offset: true })
  .refine((value) => Date.parse(value) > Date.now(), "must be in the future")
  .transform((value) => new Date(value).toISOString());
const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

const pathPrefix = z
  .string()
  .regex(/^\/([A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*)?\/?$/, 'must start with "/" and hold only path segments')
  .transform((value) => (value.length > 1 ? value.replace(/\/+$/, "") : value))
  .refine(
    (value) => !RESERVED_PATHS.some((reserved) => value === reserved || value.startsWith(`${reserved}/`)),
    `must not be or lie under one of keygate's own paths (${RESERVED_PATHS.join(", ")})`,
  );

/** Zod's default "Required"-style messages say what is wrong; the path names the field. */
export const KeyCreateSchema = z.strictObject({
  name,
  format: z.enum(KEY_FORMAT_NAMES).optional(),
  env: z.enum(["live", "test"]).optional(),
  ownerId: z.string().min(1).max(100).optional(),
  products: productList.optional(),
  scopes: scopeList.optional(),
  expiresAt: futureTime.optional(),
  rateLimitPerMinute: perMinute.optional(),
  rateLimitPerDay: perDay.optional(),
  ipAllowlist: ipAllowlist.optional(),
});
export type KeyCreateInput = z.infer<typeof KeyCreateSchema>;

/** Every field optional; null clears expiry and limits (back to inheriting). */
export const KeyPatchSchema = z
  .strictObject({
    name: name.optional(),
    ownerId: z.string().min(1).max(100).optional(),
    products: productList.optional(),
    scopes: scopeList.optional(),
    expiresAt: futureTime.nullable().optional(),
    rateLimitPerMinute: perMinute.nullable().optional(),
    rateLimitPerDay: perDay.nullable().optional(),
    ipAllowlist: ipAllowlist.optional(),
    status: z.enum(["active", "inactive"]).optional(),
  })
  .refine((body) => Object.keys(body).length > 0, "must change at least one field");
export type KeyPatchInput = z.infer<typeof KeyPatchSchema>;

export const KeyRotateSchema = z.strictObject({
  gracePeriodSeconds: z.int().min(0).max(MAX_GRACE_PERIOD_SECONDS).optional(),
});

const scopeRule = z.strictObject({
  method: z
    .string()
    .regex(/^[A-Za-z]{1,20}$/, "must be an HTTP method")
    .transform((value) => value.toUpperCase())
    .optional(),
  path: z.string().regex(/^\/\S{0,500}$/, 'must be a glob starting with "/"').optional(),
  scope: z.string().regex(/^[A-Za-z0-9:._-]{1,100}$/, "must be letters, digits and : . _ - (max 100)"),
});

const productFields = {
  name,
  pathPrefix,
  originUrl: httpUrl,
  testOriginUrl: httpUrl.nullable().optional(),
  stripPrefix: z.boolean().optional(),
  authMethods: z.array(z.enum(["api_key", "jwt"])).min(1).max(2).optional(),
  errorFormat: z.enum(["detailed", "compact"]).optional(),
  rateLimitPerMinute: perMinute.nullable().optional(),
  rateLimitPerDay: perDay.nullable().optional(),
  injectAuthMethod: z.boolean().optional(),
  scopeRules: z.array(scopeRule).max(100).optional(),
};

export const ProductCreateSchema = z.strictObject({ slug, ...productFields });
export type ProductCreateInput = z.infer<typeof ProductCreateSchema>;

/** The slug is immutable: keys name products by it. */
export const ProductPatchSchema = z
  .strictObject({
    ...productFields,
    name: name.optional(),
    pathPrefix: pathPrefix.optional(),
    originUrl: httpUrl.optional(),
  })
  .refine((body) => Object.keys(body).length > 0, "must change at least one field");
export type ProductPatchInput = z.infer<typeof ProductPatchSchema>;

const email = z.email().max(254);
const password = z.string().min(8, "must be at least 8 characters").max(1024);
const role = z.enum(["user", "admin"]);

export const UserCreateSchema = z.strictObject({
  email,
  password,
  role: role.optional(),
  products: productList.optional(),
  scopes: scopeList.optional(),
});
export type UserCreateInput = z.infer<typeof UserCreateSchema>;

export const UserPatchSchema = z
  .strictObject({
    email: email.optional(),
    password: password.optional(),
    role: role.optional(),
    products: productList.optional(),
    scopes: scopeList.optional(),
  })
  .refine((body) => Object.keys(body).length > 0, "must change at least one field");
export type UserPatchInput = z.infer<typeof UserPatchSchema>;

const queryInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().min(min).max(max));

export const AuditQuerySchema = z.strictObject({
  limit: queryInt(1, 500).optional(),
  targetType: z.enum(["key", "product", "user"]).optional(),
  targetId: z.string().min(1).max(200).optional(),
});

export const UsageQuerySchema = z.strictObject({
  keyId: z.string().min(1).max(100).optional(),
});

// ---- Responses (documentation; tests parse real responses with them) ----

const authMethod = z.enum(["api_key", "jwt", "admin_token"]);
const isoTime = z.string().describe("ISO 8601 time");

export const KeyViewSchema = z.object({
  id: z.string(),
  prefix: z.string(),
  name: z.string(),
  format: z.enum(KEY_FORMAT_NAMES),
  env: z.enum(["live", "test"]).nullable(),
  ownerId: z.string().nullable(),
  status: z.enum(["active", "inactive", "revoked"]),
  createdAt: isoTime,
  updatedAt: isoTime,
  lastUsedAt: isoTime.nullable(),
  expiresAt: isoTime.nullable(),
  rateLimitPerMinute: z.number().nullable(),
  rateLimitPerDay: z.number().nullable(),
  products: z.array(z.string()),
  scopes: z.array(z.string()),
  ipAllowlist: z.array(z.string()),
  rotatedTo: z.string().nullable(),
  graceUntil: isoTime.nullable(),
});

export const KeyResponseSchema = KeyViewSchema.extend({ authMethod });
export const KeyCreatedSchema = KeyResponseSchema.extend({
  key: z.string().describe("The plaintext key: shown here once, never again"),
});
export const KeyRotatedSchema = KeyCreatedSchema.extend({
  rotatedFrom: z.string(),
  graceUntil: isoTime.describe("When the old key stops working"),
});
export const KeyListSchema = z.object({ authMethod, keys: z.array(KeyViewSchema) });
export const KeyRevokedSchema = z.object({ authMethod, id: z.string(), status: z.literal("revoked") });

export const UserViewSchema = z.object({
  id: z.string(),
  email: z.string(),
  role,
  products: z.array(z.string()),
  scopes: z.array(z.string()),
  createdAt: isoTime,
  updatedAt: isoTime,
});
export const UserResponseSchema = UserViewSchema.extend({ authMethod });
export const UserListSchema = z.object({ authMethod, users: z.array(UserViewSchema) });
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
  testOriginUrl: z.string().nullable(),
  stripPrefix: z.boolean(),
  authMethods: z.array(z.enum(["api_key", "jwt"])),
  errorFormat: z.enum(["detailed", "compact"]),
  rateLimitPerMinute: z.number().nullable(),
  rateLimitPerDay: z.number().nullable(),
  injectAuthMethod: z.boolean(),
  scopeRules: z.array(z.object({ method: z.string().optional(), path: z.string().optional(), scope: z.string() })),
  createdAt: isoTime,
  updatedAt: isoTime,
});
export const ProductResponseSchema = ProductViewSchema.extend({ authMethod });
export const ProductListSchema = z.object({ authMethod, products: z.array(ProductViewSchema) });
export const ProductDeletedSchema = z.object({ authMethod, id: z.string(), slug: z.string(), deleted: z.literal(true) });

export const AuditEntrySchema = z.object({
  id: z.string(),
  at: isoTime,
  actor: z.string().describe('"admin_token" or "user:<id>"'),
  action: z.string().describe("e.g. key.create, key.revoke, product.update"),
  targetType: z.enum(["key", "product", "user"]),
  targetId: z.string(),
  details: z.record(z.string(), z.unknown()).nullable(),
});
export const AuditListSchema = z.object({ authMethod, entries: z.array(AuditEntrySchema) });

const windowSchema = z.object({ limit: z.number(), used: z.number(), remaining: z.number() });
export const UsageStatsSchema = z.object({
  authMethod,
  keys: z.array(
    z.object({
      id: z.string(),
      prefix: z.string(),
      minute: windowSchema.extend({ resetSeconds: z.number() }),
      day: windowSchema,
      last30Days: z.array(z.object({ date: z.string().describe("YYYY-MM-DD (UTC)"), count: z.number() })),
    }),
  ),
});
