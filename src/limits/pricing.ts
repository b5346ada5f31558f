/**
 * @module
 * What a product call costs in credits: its product's cost rules (the first
 * that matches the method and the canonical path decides; none: 1), matched
 * like scope rules (src/auth/scopes.ts). Rate-limit windows count calls,
 * whatever they cost; credits count cost.
 */
import { firstMatchingRule } from "../auth/scopes";
import type { Product } from "../db/products";

export interface CostRule {
  method?: string | undefined;
  path?: string | undefined;
  cost: number;
}

/** A call that no rule prices costs one credit. */
export const DEFAULT_CALL_COST = 1;

/** Most credits one call may cost up front, and most usage one answer may report. */
export const MAX_CALL_COST = 1_000_000_000;

export function callCost(product: Pick<Product, "costRules" | "caseSensitiveRules" | "strictTrailingSlash">, method: string, relativePath: string): number {
  if (product.costRules.length === 0) return DEFAULT_CALL_COST;
  const rule = firstMatchingRule(product.costRules, method, relativePath, {
    caseSensitive: product.caseSensitiveRules,
    strictTrailingSlash: product.strictTrailingSlash,
  });
  return rule?.cost ?? DEFAULT_CALL_COST;
}

/**
 * The usage an origin reported in the product's usage header: a whole number
 * of credits, 0 to MAX_CALL_COST. Anything else (negative, fractional, text,
 * several values) is no report: undefined, and the caller logs it.
 */
export function reportedUsage(value: string | null): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const usage = Number(text);
  return usage <= MAX_CALL_COST ? usage : undefined;
}
