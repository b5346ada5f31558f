/**
 * Which unique column a failed D1 write collided with, e.g. "products.slug"
 * from "UNIQUE constraint failed: products.slug: SQLITE_CONSTRAINT"; undefined
 * for any other error. Lets a route turn a duplicate into 409 CONFLICT without
 * a racy read-before-write.
 */
export function uniqueViolation(error: unknown): string | undefined {
  const match = /UNIQUE constraint failed: ([\w.]+)/.exec(String(error));
  return match?.[1];
}
