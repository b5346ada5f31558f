import { canonicalPath } from "../proxy/canonical-path";

/**
 * Scopes and scope rules. Pure.
 *
 * A granted scope is an exact string, `*` (everything), or `prefix:*`
 * (everything under `prefix:`). A product's scope rules name the scope a call
 * needs by method and by a path glob relative to the product's prefix. Globs
 * are matched segment by segment against the canonical path (canonical-path.ts):
 * a `**` segment matches zero or more whole segments, and `*` inside a
 * segment matches any run of characters except `/`. Matching is linear in
 * the path's length (no regular expressions, no backtracking; review F6).
 */

export interface ScopeRule {
  method?: string | undefined;
  path?: string | undefined;
  scope: string;
}

/**
 * How a product's origin reads paths. By default keygate assumes the most
 * forgiving common routers (Express, Spring, IIS): letter case does not
 * matter and one trailing slash is ignored, so a rule covers every spelling
 * such an origin serves from the same handler (review F1).
 */
export interface PathMatchPolicy {
  /** Compare ASCII letters exactly (`/SWAP` is not `/swap`). */
  caseSensitive: boolean;
  /** A trailing slash is part of the path (`/swap/` is not `/swap`). */
  strictTrailingSlash: boolean;
}

export const DEFAULT_PATH_MATCH_POLICY: Readonly<PathMatchPolicy> = Object.freeze({ caseSensitive: false, strictTrailingSlash: false });

/** Most `**` segments one rule may hold: more buys nothing a rule needs and only costs matching work. */
export const MAX_GLOBSTARS_PER_RULE = 3;
/** Longest rule glob, in characters. */
export const MAX_RULE_PATH_LENGTH = 500;

/** Counts matching work, for tests that bound it (a step is one state visit or one character compared). */
export interface MatchMeter {
  steps: number;
}

export function scopeGranted(granted: readonly string[], required: string): boolean {
  return granted.some((scope) => {
    if (scope === "*" || scope === required) return true;
    return scope.endsWith(":*") && required.startsWith(scope.slice(0, -1));
  });
}

/**
 * Why an admin may not store this glob, or undefined if it is fine: empty,
 * too long, not starting with "/", not in canonical form (no request path
 * could match it: `/%61dmin`, `//`, `;`, lower-case hex), an escaped `*`,
 * a `**` that is not a whole segment, or more than MAX_GLOBSTARS_PER_RULE.
 */
export function globProblem(glob: string): string | undefined {
  if (glob === "") return "is empty";
  if (!glob.startsWith("/")) return 'must start with "/"';
  if (glob.length > MAX_RULE_PATH_LENGTH) return `is longer than ${MAX_RULE_PATH_LENGTH} characters`;
  const canonical = canonicalPath(glob);
  if (!canonical.ok) return `can match no request path (${canonical.reason})`;
  if (canonical.path !== glob) return `is not in canonical form, so no request path matches it; write it as ${canonical.path}`;
  if (/%2a/i.test(glob)) return "holds %2A; write * (which is always a wildcard)";
  let globstars = 0;
  for (const segment of glob.split("/")) {
    if (segment === "**") globstars++;
    else if (segment.includes("**")) return `uses ** inside the segment "${segment}"; ** must be a whole segment`;
  }
  if (globstars > MAX_GLOBSTARS_PER_RULE) return `has ${globstars} ** segments; at most ${MAX_GLOBSTARS_PER_RULE} are allowed`;
  return undefined;
}

// ---- the form both sides are compared in ----

/**
 * Escapes of the ASCII characters a path may also hold literally (sub-delims
 * but ";", ":" and "@"): origins that decode read `%3A` as ":", so rules
 * compare them decoded, on both sides. Other escapes are compared as written.
 */
const LITERAL_ESCAPE = /%(2[146-9a-c]|3[ad]|40)/gi;

const NON_ASCII = /[^\x00-\x7f]/;

function comparisonForm(text: string, policy: PathMatchPolicy): string {
  const decoded = text.includes("%") ? text.replace(LITERAL_ESCAPE, (_escape, hex: string) => String.fromCharCode(parseInt(hex, 16))) : text;
  if (policy.caseSensitive) return decoded;
  // ASCII letters only: a Unicode fold could turn a rule's "K" (Kelvin) into "k". Canonical paths are ASCII.
  return NON_ASCII.test(decoded) ? decoded.replace(/[A-Z]+/g, (run) => run.toLowerCase()) : decoded.toLowerCase();
}

// ---- compiled globs ----

/** A literal piece between two `*`, with its KMP fallback table so it is found in linear time. */
interface Needle {
  text: string;
  fallback: Int32Array;
}

type GlobSegment =
  | { kind: "globstar" }
  | { kind: "literal"; text: string }
  | { kind: "wildcard"; head: string; middles: Needle[]; tail: string; fixedLength: number };

interface CompiledGlob {
  segments: GlobSegment[];
  /** Segments without the empty one a trailing slash adds (the glob with its trailing slash ignored). */
  bareLength: number;
  /** For a glob without `*` (most rules): its comparison form with and without one trailing slash, compared as strings. */
  literal: { form: string; bare: string } | undefined;
  // Scratch state for the automaton, reused across calls (matching is synchronous): a hot-path allocation saved.
  seen: Int32Array;
  generation: number;
  current: Int32Array;
  next: Int32Array;
}

/** Compiled globs by case mode, then by glob text. */
const compiledGlobs = { sensitive: new Map<string, CompiledGlob>(), insensitive: new Map<string, CompiledGlob>() };
/** Rules are admin-written and few; the bound only stops a pathological product list growing the cache forever. */
const MAX_COMPILED_GLOBS = 4096;

function compiledGlob(glob: string, policy: PathMatchPolicy): CompiledGlob {
  const cache = policy.caseSensitive ? compiledGlobs.sensitive : compiledGlobs.insensitive;
  let compiled = cache.get(glob);
  if (!compiled) {
    const form = rooted(comparisonForm(glob, policy));
    const segments = form.slice(1).split("/").map(compileSegment);
    const trailing = segments.length > 1 && form.endsWith("/");
    compiled = {
      segments,
      bareLength: trailing ? segments.length - 1 : segments.length,
      literal: form.includes("*") ? undefined : { form, bare: trailing ? form.slice(0, -1) : form },
      seen: new Int32Array(segments.length + 1),
      generation: 0,
      current: new Int32Array(segments.length + 1),
      next: new Int32Array(segments.length + 1),
    };
    if (cache.size >= MAX_COMPILED_GLOBS) cache.clear();
    cache.set(glob, compiled);
  }
  return compiled;
}

const rooted = (form: string) => (form.startsWith("/") ? form : `/${form}`);

function compileSegment(segment: string): GlobSegment {
  if (segment === "**") return { kind: "globstar" };
  if (!segment.includes("*")) return { kind: "literal", text: segment };
  const pieces = segment.split("*");
  const head = pieces[0]!;
  const tail = pieces[pieces.length - 1]!;
  const middles = pieces
    .slice(1, -1)
    .filter((piece) => piece !== "")
    .map(needle);
  const fixedLength = head.length + tail.length + middles.reduce((sum, middle) => sum + middle.text.length, 0);
  return { kind: "wildcard", head, middles, tail, fixedLength };
}

function needle(text: string): Needle {
  const fallback = new Int32Array(text.length);
  for (let i = 1, k = 0; i < text.length; i++) {
    while (k > 0 && text.charCodeAt(i) !== text.charCodeAt(k)) k = fallback[k - 1]!;
    if (text.charCodeAt(i) === text.charCodeAt(k)) k++;
    fallback[i] = k;
  }
  return { text, fallback };
}

// ---- matching ----

/** The request path in comparison form, prepared once for all of a product's rules. */
interface PathSubject {
  form: string;
  /** The form without one trailing slash. */
  bare: string;
  /** Not the root, and ends with "/": the last segment is the empty one the slash adds. */
  trailingSlash: boolean;
}

function pathSubject(path: string, policy: PathMatchPolicy): PathSubject {
  const form = rooted(comparisonForm(path, policy));
  const trailingSlash = form.length > 1 && form.endsWith("/");
  return { form, bare: trailingSlash ? form.slice(0, -1) : form, trailingSlash };
}

/**
 * Does the path segment text[start, end) match one non-`**` glob segment?
 * Linear in both lengths, and compared in place (no substring per segment).
 */
function segmentMatches(glob: Exclude<GlobSegment, { kind: "globstar" }>, text: string, start: number, end: number, meter: MatchMeter): boolean {
  const length = end - start;
  if (glob.kind === "literal") {
    if (glob.text.length !== length) {
      meter.steps++;
      return false;
    }
    meter.steps += 1 + length;
    return text.startsWith(glob.text, start);
  }
  meter.steps += 1 + glob.head.length + glob.tail.length;
  if (length < glob.fixedLength || !text.startsWith(glob.head, start) || !text.startsWith(glob.tail, end - glob.tail.length)) return false;
  // Only `*` between the pieces: taking each piece at its leftmost place never loses a match.
  let from = start + glob.head.length;
  const to = end - glob.tail.length;
  for (const middle of glob.middles) {
    const at = indexOfNeedle(text, middle, from, to, meter);
    if (at === -1) return false;
    from = at + middle.text.length;
  }
  return true;
}

/** Knuth–Morris–Pratt: the first index of needle in haystack[from, to), or -1. */
function indexOfNeedle(haystack: string, { text, fallback }: Needle, from: number, to: number, meter: MatchMeter): number {
  let matched = 0;
  for (let i = from; i < to; i++) {
    const code = haystack.charCodeAt(i);
    meter.steps++;
    while (matched > 0 && text.charCodeAt(matched) !== code) {
      matched = fallback[matched - 1]!;
      meter.steps++;
    }
    if (text.charCodeAt(matched) === code) matched++;
    if (matched === text.length) return i - text.length + 1;
  }
  return -1;
}

/**
 * Thompson-style simulation: the set of glob positions reachable after each
 * path segment, never more than one entry per position, so the work is
 * O(path segments × glob segments) state visits plus linear segment matches.
 * Without a strict trailing slash, the path matches with or without its
 * trailing slash, and the glob with or without its own.
 */
function globMatches(glob: CompiledGlob, path: PathSubject, strictTrailingSlash: boolean, meter: MatchMeter): boolean {
  if (glob.literal) {
    const { form, bare } = glob.literal;
    meter.steps += 1 + form.length;
    if (strictTrailingSlash) return path.form === form;
    return path.form === form || path.form === bare || path.bare === form || path.bare === bare;
  }
  const { segments, seen } = glob;
  const end = segments.length;
  const bareEnd = strictTrailingSlash ? end : glob.bareLength;
  if (glob.generation > 0x3fffffff) {
    seen.fill(0);
    glob.generation = 0;
  }
  let current = glob.current;
  let next = glob.next;
  let generation = ++glob.generation;
  let count = addState(glob, current, 0, 0, generation);
  const { form } = path;
  for (let start = 1; ; ) {
    const slash = form.indexOf("/", start);
    const stop = slash === -1 ? form.length : slash;
    // About to take the empty segment a trailing slash adds: the path already matched without it.
    if (slash === -1 && path.trailingSlash && !strictTrailingSlash && (seen[end] === generation || seen[bareEnd] === generation)) return true;
    generation = ++glob.generation;
    let nextCount = 0;
    for (let i = 0; i < count; i++) {
      const position = current[i]!;
      meter.steps++;
      if (position === end) continue;
      const globSegment = segments[position]!;
      if (globSegment.kind === "globstar") nextCount = addState(glob, next, nextCount, position, generation);
      else if (segmentMatches(globSegment, form, start, stop, meter)) nextCount = addState(glob, next, nextCount, position + 1, generation);
    }
    if (nextCount === 0) return false;
    const swap = current;
    current = next;
    next = swap;
    count = nextCount;
    if (slash === -1) break;
    start = slash + 1;
  }
  return seen[end] === generation || seen[bareEnd] === generation;
}

/**
 * Adds a glob position to a state set once, returning the set's new size;
 * a `**` may match nothing, so reaching it also reaches the position after it.
 */
function addState(glob: CompiledGlob, states: Int32Array, count: number, position: number, generation: number): number {
  const { segments, seen } = glob;
  for (let at = position; seen[at] !== generation; at++) {
    seen[at] = generation;
    states[count++] = at;
    if (at === segments.length || segments[at]!.kind !== "globstar") break;
  }
  return count;
}

export function pathMatchesGlob(path: string, glob: string, policy: PathMatchPolicy = DEFAULT_PATH_MATCH_POLICY, meter: MatchMeter = { steps: 0 }): boolean {
  return globMatches(compiledGlob(glob, policy), pathSubject(path, policy), policy.strictTrailingSlash, meter);
}

/** A GET rule also covers HEAD: origins answer HEAD with GET's headers, so it reads the same resource. */
function methodMatches(ruleMethod: string, method: string): boolean {
  const rule = ruleMethod.toUpperCase();
  const call = method.toUpperCase();
  return rule === call || (rule === "GET" && call === "HEAD");
}

type PathRule = { method?: string | undefined; path?: string | undefined };

/**
 * The rules that match the call (method, then path glob), in order. The path
 * is the canonical one (canonicalPath), relative to the product's prefix:
 * the very path the origin is sent. Put into canonical form once, on the
 * first rule with a path.
 */
function* matchingRules<R extends PathRule>(rules: readonly R[], method: string, canonicalRelativePath: string, policy: PathMatchPolicy): Generator<R> {
  const meter: MatchMeter = { steps: 0 };
  let path: PathSubject | undefined;
  for (const rule of rules) {
    if (rule.method && !methodMatches(rule.method, method)) continue;
    if (rule.path) {
      path ??= pathSubject(canonicalRelativePath, policy);
      if (!globMatches(compiledGlob(rule.path, policy), path, policy.strictTrailingSlash, meter)) continue;
    }
    yield rule;
  }
}

/** The first rule that matches the call: for lists where the first match decides (cost rules, src/limits/pricing.ts). */
export function firstMatchingRule<R extends PathRule>(
  rules: readonly R[],
  method: string,
  canonicalRelativePath: string,
  policy: PathMatchPolicy = DEFAULT_PATH_MATCH_POLICY,
): R | undefined {
  for (const rule of matchingRules(rules, method, canonicalRelativePath, policy)) return rule;
  return undefined;
}

/** Every scope the call needs: one per matching rule (scope rules all apply), deduplicated. */
export function requiredScopes(
  rules: readonly ScopeRule[],
  method: string,
  canonicalRelativePath: string,
  policy: PathMatchPolicy = DEFAULT_PATH_MATCH_POLICY,
): string[] {
  if (rules.length === 0) return []; // most products: nothing to prepare
  const needed = new Set<string>();
  for (const rule of matchingRules(rules, method, canonicalRelativePath, policy)) needed.add(rule.scope);
  return [...needed];
}

/** The first needed scope the credential lacks, if any. */
export function missingScope(granted: readonly string[], needed: readonly string[]): string | undefined {
  return needed.find((scope) => !scopeGranted(granted, scope));
}
