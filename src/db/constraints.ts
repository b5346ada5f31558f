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

/**
 * Whether a failed D1 call means the database could not be reached or was
 * overloaded (worth a retry), as opposed to a refused statement. Such a
 * failure is answered 503, like a failed key lookup; anything else stays 500.
 */
export function storageUnavailable(error: unknown): boolean {
  return /^(Error: )?D1_\w*: .*(network connection lost|overloaded|timed? ?out|connection reset|unavailable|internal error)/i.test(String(error));
}
