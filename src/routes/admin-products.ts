import { Hono, type Context } from "hono";
import type { AppEnv } from "../app-env";
import { auditStatement } from "../db/audit";
import { uniqueViolation } from "../db/constraints";
import { nowIso } from "../db/json";
import { deleteProductStatement, getProduct, insertProductStatement, listProductPage, updateProductStatement, type Product } from "../db/products";
import { GatewayError } from "../errors";
import { callerJson, requireAdmin } from "../middleware/caller";
import { validateJson, validateQuery } from "../middleware/validate";
import { describe } from "../openapi/operation";
import { invalidateProductCache } from "../proxy/route-match";
import { DEFAULT_PAGE_SIZE, encodeCursor } from "./cursor";
import { ProductCreateSchema, ProductDeletedSchema, ProductListQuerySchema, ProductListSchema, ProductPatchSchema, ProductResponseSchema } from "./schemas";

/** Products: admin only. Every write drops this isolate's product cache; others follow within KEY_CACHE_TTL_SECONDS. */

const UNIQUE_FIELDS: Record<string, string> = { "products.slug": "slug", "products.path_prefix": "pathPrefix" };

async function productOr404(c: Context<AppEnv>): Promise<Product> {
  const product = await getProduct(c.env.DB, c.req.param("idOrSlug")!);
  if (!product) throw new GatewayError("NOT_FOUND", { message: "No such product" });
  return product;
}

/** Runs a write batch, turning a duplicate slug or path prefix into 409 naming the field. */
async function writeProduct(db: D1Database, statements: D1PreparedStatement[]): Promise<void> {
  try {
    await db.batch(statements);
  } catch (error) {
    const field = UNIQUE_FIELDS[uniqueViolation(error) ?? ""];
    if (field) throw new GatewayError("CONFLICT", { message: `Another product has this ${field}`, details: { field } });
    throw error;
  } finally {
    invalidateProductCache();
  }
}

export const adminProductsRoutes = new Hono<AppEnv>()
  .get(
    "/api/v1/admin/products",
    describe({
      operationId: "listProducts",
      summary: "List products by slug, a page at a time",
      tags: ["admin"],
      responses: [{ status: 200, description: "A page of products; nextCursor is null on the last", schema: ProductListSchema }],
    }),
    requireAdmin(),
    validateQuery(ProductListQuerySchema),
    async (c) => {
      const query = c.req.valid("query");
      const page = await listProductPage(c.env.DB, { after: query.cursor, limit: query.limit ?? DEFAULT_PAGE_SIZE });
      return callerJson(c, { products: page.rows, nextCursor: encodeCursor("products", page.nextAfter) });
    },
  )

  .post(
    "/api/v1/admin/products",
    describe({
      operationId: "createProduct",
      summary: "Create a product",
      tags: ["admin"],
      responses: [{ status: 201, description: "The product", schema: ProductResponseSchema }],
      errors: ["CONFLICT"],
    }),
    requireAdmin(),
    validateJson(ProductCreateSchema),
    async (c) => {
      const body = c.req.valid("json");
      const now = Date.now();
      const product: Product = {
        id: crypto.randomUUID(),
        slug: body.slug,
        name: body.name,
        pathPrefix: body.pathPrefix,
        originUrl: body.originUrl,
        testOriginUrl: body.testOriginUrl ?? null,
        stripPrefix: body.stripPrefix ?? false,
        authMethods: body.authMethods ?? ["api_key", "jwt"],
        errorFormat: body.errorFormat ?? "detailed",
        rateLimitPerMinute: body.rateLimitPerMinute ?? null,
        rateLimitPerDay: body.rateLimitPerDay ?? null,
        injectAuthMethod: body.injectAuthMethod ?? true,
        scopeRules: body.scopeRules ?? [],
        caseSensitiveRules: body.caseSensitiveRules ?? false,
        strictTrailingSlash: body.strictTrailingSlash ?? false,
        corsOrigins: body.corsOrigins ?? [],
        costRules: body.costRules ?? [],
        usageHeader: body.usageHeader ?? null,
        usageReserve: body.usageReserve ?? 1,
        rateLimitMode: body.rateLimitMode ?? "exact",
        createdAt: nowIso(now),
        updatedAt: nowIso(now),
      };
      await writeProduct(c.env.DB, [
        insertProductStatement(c.env.DB, product),
        auditStatement(c.env.DB, { actor: c.get("caller").actor, action: "product.create", targetType: "product", targetId: product.id, details: body }, now),
      ]);
      return callerJson(c, product, 201);
    },
  )

  .get(
    "/api/v1/admin/products/:idOrSlug",
    describe({
      operationId: "getProduct",
      summary: "Inspect a product",
      tags: ["admin"],
      responses: [{ status: 200, description: "The product", schema: ProductResponseSchema }],
      errors: ["NOT_FOUND"],
    }),
    requireAdmin(),
    async (c) => callerJson(c, await productOr404(c)),
  )

  .patch(
    "/api/v1/admin/products/:idOrSlug",
    describe({
      operationId: "updateProduct",
      summary: "Edit a product (the slug is immutable)",
      tags: ["admin"],
      responses: [{ status: 200, description: "The product as written", schema: ProductResponseSchema }],
      errors: ["NOT_FOUND", "CONFLICT"],
    }),
    requireAdmin(),
    validateJson(ProductPatchSchema),
    async (c) => {
      const patch = c.req.valid("json");
      const product = await productOr404(c);
      const now = Date.now();
      const updated: Product = { ...product, ...patch, updatedAt: nowIso(now) };
      await writeProduct(c.env.DB, [
        updateProductStatement(c.env.DB, updated),
        auditStatement(c.env.DB, { actor: c.get("caller").actor, action: "product.update", targetType: "product", targetId: product.id, details: patch }, now),
      ]);
      return callerJson(c, updated);
    },
  )

  // Keys naming the slug keep it: recreating the product restores their access.
  .delete(
    "/api/v1/admin/products/:idOrSlug",
    describe({
      operationId: "deleteProduct",
      summary: "Delete a product",
      tags: ["admin"],
      responses: [{ status: 200, description: "The product is gone", schema: ProductDeletedSchema }],
      errors: ["NOT_FOUND"],
    }),
    requireAdmin(),
    async (c) => {
      const product = await productOr404(c);
      await writeProduct(c.env.DB, [
        deleteProductStatement(c.env.DB, product.id),
        auditStatement(c.env.DB, {
          actor: c.get("caller").actor,
          action: "product.delete",
          targetType: "product",
          targetId: product.id,
          details: { slug: product.slug },
        }),
      ]);
      return callerJson(c, { id: product.id, slug: product.slug, deleted: true });
    },
  );
