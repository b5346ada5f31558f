import { listProducts, type Product } from "../db/products";

/**
 * Product routing: the product with the longest path_prefix that the path
 * equals or continues with "/" (so /api/v1/defiX never matches /api/v1/defi).
 */
export function matchProduct(products: readonly Product[], path: string): Product | undefined {
  let best: Product | undefined;
  for (const product of products) {
    const prefix = product.pathPrefix.replace(/\/+$/, "");
    const matches = prefix === "" || path === prefix || path.startsWith(`${prefix}/`);
    if (matches && (!best || prefix.length > best.pathPrefix.replace(/\/+$/, "").length)) best = product;
  }
  return best;
}

/** The path the product's rules see: relative to its prefix, always starting with "/". */
export function relativePath(product: Product, path: string): string {
  const rest = path.slice(product.pathPrefix.replace(/\/+$/, "").length);
  return rest.startsWith("/") ? rest : `/${rest}`;
}

// The product list, cached per isolate like key rows (KEY_CACHE_TTL_SECONDS).
let cached: { products: Product[]; expiresAt: number } | undefined;

export async function loadProducts(db: D1Database, ttlSeconds: number, now: number): Promise<Product[]> {
  if (cached && cached.expiresAt > now) return cached.products;
  const products = await listProducts(db);
  cached = { products, expiresAt: now + ttlSeconds * 1000 };
  return products;
}

/** Called after a product changes in this isolate, and by tests that write products directly. */
export function invalidateProductCache(): void {
  cached = undefined;
}
