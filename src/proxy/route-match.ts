import { listProducts, type Product } from "../db/products";
import { GatewayError } from "../errors";

/**
 * Product routing: the product with the longest path_prefix that the path
 * equals or continues with "/" (so /api/v1/defiX never matches /api/v1/defi).
 * The path is the canonical one (canonicalPath): it is also the path the
 * origin is sent, so no spelling routes one way and is served another.
 */
export function matchProduct(products: readonly Product[], canonicalPath: string): Product | undefined {
  let best: Product | undefined;
  // The best match's trimmed length, kept rather than re-trimmed for every comparison (hot path).
  let bestLength = -1;
  for (const product of products) {
    const prefix = product.pathPrefix.replace(/\/+$/, "");
    const matches = prefix === "" || canonicalPath === prefix || canonicalPath.startsWith(`${prefix}/`);
    if (matches && prefix.length > bestLength) {
      best = product;
      bestLength = prefix.length;
    }
  }
  return best;
}

/** The path the product's rules see: relative to its prefix, always starting with "/". */
export function relativePath(product: Product, path: string): string {
  const rest = path.slice(product.pathPrefix.replace(/\/+$/, "").length);
  return rest.startsWith("/") ? rest : `/${rest}`;
}

// The product list, cached per isolate for PRODUCT_CACHE_TTL_SECONDS (edits in this isolate clear it at once).
let cached: { products: Product[]; expiresAt: number } | undefined;

/** The product list; D1 down is AUTH_BACKEND_UNAVAILABLE (503), never a "no such route". */
export async function loadProducts(db: D1Database, ttlSeconds: number, now: number): Promise<Product[]> {
  if (cached && cached.expiresAt > now) return cached.products;
  let products: Product[];
  try {
    products = await listProducts(db);
  } catch (error) {
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", { cause: error, context: { event: "product_lookup_failed" } });
  }
  cached = { products, expiresAt: now + ttlSeconds * 1000 };
  return products;
}

/** The cached list, or undefined when this isolate holds none (memory only: for answers that must not touch storage). */
export function cachedProducts(now: number): Product[] | undefined {
  return cached && cached.expiresAt > now ? cached.products : undefined;
}

/** Called after a product changes in this isolate, and by tests that write products directly. */
export function invalidateProductCache(): void {
  cached = undefined;
}
