import type { ScopeRule } from "../auth/scopes";
import type { CostRule } from "../limits/pricing";
import type { RateLimitMode } from "./keys";
import type { ErrorFormat } from "../errors";
import { parseJsonList } from "./json";
import { pageQuery, readPage, type Condition, type Page, type SqlQuery } from "./page";

export type AuthMethod = "api_key" | "jwt";

/** A products row, in camelCase with its lists parsed. */
export interface Product {
  id: string;
  slug: string;
  name: string;
  pathPrefix: string;
  originUrl: string;
  testOriginUrl: string | null;
  stripPrefix: boolean;
  authMethods: AuthMethod[];
  errorFormat: ErrorFormat;
  rateLimitPerMinute: number | null;
  rateLimitPerDay: number | null;
  injectAuthMethod: boolean;
  scopeRules: ScopeRule[];
  /** Scope rules match the path's case exactly (default: case-insensitively). */
  caseSensitiveRules: boolean;
  /** A trailing slash makes a different path for the rules (default: one is ignored). */
  strictTrailingSlash: boolean;
  /** Browser origins admitted cross-origin (src/proxy/cors.ts): exact origins, or ["*"]; [] = none. */
  corsOrigins: string[];
  /** The first rule matching a call gives its cost in credits; none matches: 1 (src/limits/pricing.ts). */
  costRules: CostRule[];
  /** The response header the origin reports a call's metered usage in, or null. */
  usageHeader: string | null;
  /** With a usage header: the least balance a call needs to be admitted. */
  usageReserve: number;
  /** How its keys' calls are counted, unless a key says otherwise. */
  rateLimitMode: RateLimitMode;
  createdAt: string;
  updatedAt: string;
}

interface ProductRow {
  id: string;
  slug: string;
  name: string;
  path_prefix: string;
  origin_url: string;
  test_origin_url: string | null;
  strip_prefix: number;
  auth_methods: string;
  error_format: ErrorFormat;
  rate_limit_per_minute: number | null;
  rate_limit_per_day: number | null;
  inject_auth_method: number;
  scope_rules: string;
  case_sensitive_rules: number;
  strict_trailing_slash: number;
  cors_origins: string;
  cost_rules: string;
  usage_header: string | null;
  usage_reserve: number;
  rate_limit_mode: RateLimitMode;
  created_at: string;
  updated_at: string;
}

export function rowToProduct(row: ProductRow): Product {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    pathPrefix: row.path_prefix,
    originUrl: row.origin_url,
    testOriginUrl: row.test_origin_url,
    stripPrefix: row.strip_prefix === 1,
    authMethods: parseJsonList<AuthMethod>(row.auth_methods),
    errorFormat: row.error_format,
    rateLimitPerMinute: row.rate_limit_per_minute,
    rateLimitPerDay: row.rate_limit_per_day,
    injectAuthMethod: row.inject_auth_method === 1,
    scopeRules: parseJsonList<ScopeRule>(row.scope_rules),
    caseSensitiveRules: row.case_sensitive_rules === 1,
    strictTrailingSlash: row.strict_trailing_slash === 1,
    corsOrigins: parseJsonList<string>(row.cors_origins),
    costRules: parseJsonList<CostRule>(row.cost_rules),
    usageHeader: row.usage_header,
    usageReserve: row.usage_reserve,
    rateLimitMode: row.rate_limit_mode,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Every product: what routing loads (src/proxy/route-match.ts). The admin list pages with listProductPage. */
export async function listProducts(db: D1Database): Promise<Product[]> {
  const { results } = await db.prepare("SELECT * FROM products ORDER BY slug").all<ProductRow>();
  return results.map(rowToProduct);
}

export interface ProductPageQuery {
  /** The slug of the last product of the previous page. */
  after?: ProductPosition | undefined;
  limit: number;
}

/** GET /api/v1/admin/products: by slug (unique and immutable, so a total order); one range of the slug's UNIQUE index. */
export function productPageQuery(query: ProductPageQuery): SqlQuery {
  const conditions: Condition[] = query.after ? [{ sql: "slug > ?", params: [...query.after] }] : [];
  return pageQuery("products", conditions, "slug", query.limit);
}

export type ProductPosition = readonly [slug: string];

export function listProductPage(db: D1Database, query: ProductPageQuery): Promise<Page<Product, ProductPosition>> {
  return readPage(db, productPageQuery(query), query.limit, rowToProduct, (row: ProductRow) => [row.slug] as const);
}

export async function getProduct(db: D1Database, idOrSlug: string): Promise<Product | undefined> {
  const row = await db.prepare("SELECT * FROM products WHERE id = ?1 OR slug = ?1").bind(idOrSlug).first<ProductRow>();
  return row ? rowToProduct(row) : undefined;
}

/** The columns an edit may change, as SQL values, in one order for INSERT and UPDATE. */
const EDITABLE_COLUMNS =
  "name, path_prefix, origin_url, test_origin_url, strip_prefix, auth_methods, error_format, rate_limit_per_minute, rate_limit_per_day, inject_auth_method, scope_rules, case_sensitive_rules, strict_trailing_slash, cors_origins, cost_rules, usage_header, usage_reserve, rate_limit_mode";

function editableValues(product: Product): (string | number | null)[] {
  return [
    product.name,
    product.pathPrefix,
    product.originUrl,
    product.testOriginUrl,
    product.stripPrefix ? 1 : 0,
    JSON.stringify(product.authMethods),
    product.errorFormat,
    product.rateLimitPerMinute,
    product.rateLimitPerDay,
    product.injectAuthMethod ? 1 : 0,
    JSON.stringify(product.scopeRules),
    product.caseSensitiveRules ? 1 : 0,
    product.strictTrailingSlash ? 1 : 0,
    JSON.stringify(product.corsOrigins),
    JSON.stringify(product.costRules),
    product.usageHeader,
    product.usageReserve,
    product.rateLimitMode,
  ];
}

export function insertProductStatement(db: D1Database, product: Product): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO products (id, slug, ${EDITABLE_COLUMNS}, created_at, updated_at) VALUES (?, ?, ${EDITABLE_COLUMNS.split(", ")
        .map(() => "?")
        .join(", ")}, ?, ?)`,
    )
    .bind(product.id, product.slug, ...editableValues(product), product.createdAt, product.updatedAt);
}

export function updateProductStatement(db: D1Database, product: Product): D1PreparedStatement {
  const assignments = EDITABLE_COLUMNS.split(", ")
    .map((column) => `${column} = ?`)
    .join(", ");
  return db.prepare(`UPDATE products SET ${assignments}, updated_at = ? WHERE id = ?`).bind(...editableValues(product), product.updatedAt, product.id);
}

export function deleteProductStatement(db: D1Database, id: string): D1PreparedStatement {
  return db.prepare("DELETE FROM products WHERE id = ?").bind(id);
}
