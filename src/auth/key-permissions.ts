import { GatewayError } from "../errors";
import { scopeGranted } from "./scopes";

/**
 * Who may set what on an API key (SPEC section 7). Pure: the caller's role
 * and grants go in, a refusal (or none) comes out.
 *
 * Admins may set anything. A user may create and edit their own keys, but not
 * set limits or IP allowlists, not give a key to someone else, and not grant
 * a key products or scopes beyond their own user row's; nor undo an admin's
 * deactivation or expiry of their key (adminDecisionRefusal).
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
  rateLimitMode?: string | null | undefined;
}

const ADMIN_ONLY_FIELDS = ["rateLimitPerMinute", "rateLimitPerDay", "ipAllowlist", "rateLimitMode"] as const;

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

// ---- An admin's deactivation and expiry bind the key's owner (security review F9). ----

/** A key's status and expiry as read, with who set them ("admin_token", "user:<id>", or null: not known). */
export interface KeyDecisions {
  ownerId: string | null;
  status: "active" | "inactive" | "revoked";
  statusSetBy: string | null;
  expiresAt: string | null;
  expiresSetBy: string | null;
}

export interface DecisionFields {
  status?: "active" | "inactive" | undefined;
  expiresAt?: string | null | undefined;
}

/**
 * Whether someone other than the key's owner set it. Only admins can edit a
 * key that is not theirs, so that someone was an admin (and stays one for
 * this rule, whatever their role later). Not known (null) binds no one.
 */
export function setByAnotherThanOwner(setBy: string | null, ownerId: string | null): boolean {
  return setBy !== null && (ownerId === null || setBy !== `user:${ownerId}`);
}

/**
 * An owner may deactivate and reactivate their key, and set, move or clear
 * its expiry, except where an admin decided: a key an admin deactivated stays
 * inactive, and an admin's expiry may only move earlier.
 */
export function adminDecisionRefusal(editor: KeyEditor, key: KeyDecisions, fields: DecisionFields): GatewayError | undefined {
  if (editor.isAdmin) return undefined;
  if (fields.status === "active" && key.status === "inactive" && setByAnotherThanOwner(key.statusSetBy, key.ownerId)) {
    return forbidden("status", "an admin deactivated this key; only an admin may reactivate it");
  }
  if (fields.expiresAt !== undefined && key.expiresAt !== null && setByAnotherThanOwner(key.expiresSetBy, key.ownerId)) {
    if (fields.expiresAt === null) return forbidden("expiresAt", "an admin set this expiry; only an admin may remove it");
    if (Date.parse(fields.expiresAt) > Date.parse(key.expiresAt)) {
      return forbidden("expiresAt", `an admin set this expiry; you may only move it earlier than ${key.expiresAt}`);
    }
  }
  return undefined;
}

/**
 * Who a permitted edit records as having set the status and the expiry: the
 * editor, except where an owner leaves an admin's decision standing (repeating
 * its status, or moving its expiry earlier). Then it stays the admin's, so the
 * owner cannot afterwards undo it as their own.
 */
export function decisionSetters(editor: KeyEditor, actor: string, key: KeyDecisions, fields: DecisionFields): { statusSetBy?: string; expiresSetBy?: string } {
  const setters: { statusSetBy?: string; expiresSetBy?: string } = {};
  if (fields.status !== undefined && (editor.isAdmin || fields.status !== key.status)) setters.statusSetBy = actor;
  const adminExpiry = key.expiresAt !== null && setByAnotherThanOwner(key.expiresSetBy, key.ownerId);
  if (fields.expiresAt !== undefined && (editor.isAdmin || !adminExpiry)) setters.expiresSetBy = actor;
  return setters;
}
