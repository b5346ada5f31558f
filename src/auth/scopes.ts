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

/**
 * The path as an origin that decodes and normalizes it would serve it: ASCII
 * percent-escapes decoded (%61 is "a", %2F is "/"), then empty, "." and ".."
 * segments resolved. Rules judge this form, so no spelling of a path
 * (/%61dmin, //admin, /x/..%2Fadmin) needs fewer scopes than the path itself.
 */
export function normalizePath(path: string): string {
  const decoded = path.replace(/%([0-7][0-9a-f])/gi, (_escape, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  const segments: string[] = [];
  for (const segment of decoded.split("/")) {
    if (segment === "..") segments.pop();
    else if (segment !== "" && segment !== ".") segments.push(segment);
  }
  const trailingSlash = decoded.endsWith("/") && segments.length > 0 ? "/" : "";
  return `/${segments.join("/")}${trailingSlash}`;
}

/** A GET rule also covers HEAD: origins answer HEAD with GET's headers, so it reads the same resource. */
function methodMatches(ruleMethod: string, method: string): boolean {
  const rule = ruleMethod.toUpperCase();
  const call = method.toUpperCase();
  return rule === call || (rule === "GET" && call === "HEAD");
}

/** Every scope the call needs: one per matching rule, deduplicated. */
export function requiredScopes(rules: readonly ScopeRule[], method: string, relativePath: string): string[] {
  if (rules.length === 0) return []; // most products: no path to normalize
  const needed = new Set<string>();
  const path = normalizePath(relativePath);
  for (const rule of rules) {
    if (rule.method && !methodMatches(rule.method, method)) continue;
    if (rule.path && !pathMatchesGlob(path, rule.path)) continue;
    needed.add(rule.scope);
  }
  return [...needed];
}

/** The first needed scope the credential lacks, if any. */
export function missingScope(granted: readonly string[], needed: readonly string[]): string | undefined {
  return needed.find((scope) => !scopeGranted(granted, scope));
}
