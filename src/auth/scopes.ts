/**
 * Scopes and scope rules. Pure.
 *
 * A granted scope is an exact string, `*` (everything), or `prefix:*`
 * (everything under `prefix:`). A product's scope rules name the scope a call
 * needs by method and by a path glob relative to the product's prefix, where
 * `*` matches within one path segment and `**` across segments.
 */

export interface ScopeRule {
  method?: string | undefined;
  path?: string | undefined;
  scope: string;
}

export function scopeGranted(granted: readonly string[], required: string): boolean {
  return granted.some((scope) => {
    if (scope === "*" || scope === required) return true;
    return scope.endsWith(":*") && required.startsWith(scope.slice(0, -1));
  });
}

const globCache = new Map<string, RegExp>();

function globToRegExp(glob: string): RegExp {
  let regexp = globCache.get(glob);
  if (!regexp) {
    const source = glob
      .split(/(\*\*|\*)/)
      .map((part) => (part === "**" ? ".*" : part === "*" ? "[^/]*" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")))
      .join("");
    regexp = new RegExp(`^${source}$`);
    globCache.set(glob, regexp);
  }
  return regexp;
}

export function pathMatchesGlob(path: string, glob: string): boolean {
  return globToRegExp(glob).test(path);
}

/** Every scope the call needs: one per matching rule, deduplicated. */
export function requiredScopes(rules: readonly ScopeRule[], method: string, relativePath: string): string[] {
  const needed = new Set<string>();
  for (const rule of rules) {
    if (rule.method && rule.method.toUpperCase() !== method.toUpperCase()) continue;
    if (rule.path && !pathMatchesGlob(relativePath, rule.path)) continue;
    needed.add(rule.scope);
  }
  return [...needed];
}

/** The first needed scope the credential lacks, if any. */
export function missingScope(granted: readonly string[], needed: readonly string[]): string | undefined {
  return needed.find((scope) => !scopeGranted(granted, scope));
}
