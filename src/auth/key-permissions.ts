import { GatewayError } from "../errors";
import { scopeGranted } from "./scopes";

/**
 * Who may set what on an API key (SPEC section 7). Pure: the caller's role
 * and grants go in, a refusal (or none) comes out.
 *
 * Admins may set anything. A user may create and edit their own keys, but not
 * set limits or IP allowlists, not give a key to someone else, and not grant
 * a key products or scopes beyond their own user row's.
 */
export interface KeyEditor {
  isAdmin: boolean;
  userId: string | null;
  products: readonly string[];
  scopes: readonly string[];
}

export interface KeyPolicyFields {
  ownerId?: string | undefined;
  products?: readonly string[] | undefined;
  scopes?: readonly string[] | undefined;
  rateLimitPerMinute?: number | null | undefined;
  rateLimitPerDay?: number | null | undefined;
  ipAllowlist?: readonly string[] | undefined;
}

const ADMIN_ONLY_FIELDS = ["rateLimitPerMinute", "rateLimitPerDay", "ipAllowlist"] as const;

function forbidden(field: string, message: string): GatewayError {
  return new GatewayError("FORBIDDEN", { message: `${field}: ${message}`, details: { field } });
}

/** Whether a product grant covers `slug` ("*" is covered only by "*"). */
function productGranted(granted: readonly string[], slug: string): boolean {
  return granted.includes("*") || granted.includes(slug);
}

export function keyFieldRefusal(editor: KeyEditor, fields: KeyPolicyFields): GatewayError | undefined {
  if (editor.isAdmin) return undefined;
  for (const field of ADMIN_ONLY_FIELDS) {
    if (fields[field] !== undefined) return forbidden(field, "only admins may set this");
  }
  if (fields.ownerId !== undefined && fields.ownerId !== editor.userId) {
    return forbidden("ownerId", "only admins may give a key to another user");
  }
  const extraProduct = fields.products?.find((slug) => !productGranted(editor.products, slug));
  if (extraProduct !== undefined) return forbidden("products", `you do not have access to "${extraProduct}"`);
  const extraScope = fields.scopes?.find((scope) => !scopeGranted(editor.scopes, scope));
  if (extraScope !== undefined) return forbidden("scopes", `you do not hold the scope "${extraScope}"`);
  return undefined;
}
