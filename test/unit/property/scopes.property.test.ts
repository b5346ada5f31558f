import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_PATH_MATCH_POLICY, pathMatchesGlob, requiredScopes, scopeGranted, type PathMatchPolicy } from "../../../src/auth/scopes";

/**
 * The scope matcher: `*` grants everything, a scope grants itself, `a:*`
 * grants exactly the scopes under `a:`, and more grants never take one away.
 * The rule matcher (segment automaton) agrees with a regex-built reference
 * on short globs and paths, where backtracking costs nothing.
 */
const RUNS = { numRuns: 400 };

/** A scope name as the admin API accepts them, without wildcards. */
const plain = fc.stringMatching(/^[A-Za-z0-9:._-]{1,24}$/);
/** A namespace for `ns:*`: no colon of its own, so "ns:" is its whole prefix. */
const namespace = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/);
const anyScope = fc.oneof(
  plain,
  fc.string({ maxLength: 30 }),
  fc.constant("*"),
  namespace.map((ns) => `${ns}:*`),
);

describe("scopeGranted", () => {
  it("grants every scope to a credential holding *", () => {
    fc.assert(
      fc.property(fc.array(anyScope, { maxLength: 4 }), anyScope, (others, required) => {
        expect(scopeGranted([...others, "*"], required)).toBe(true);
      }),
      RUNS,
    );
  });

  it("grants a scope to a credential holding exactly it", () => {
    fc.assert(
      fc.property(anyScope, (scope) => {
        expect(scopeGranted([scope], scope)).toBe(true);
      }),
      RUNS,
    );
  });

  it("grants nothing to a credential holding nothing", () => {
    fc.assert(
      fc.property(anyScope, (required) => {
        expect(scopeGranted([], required)).toBe(false);
      }),
      RUNS,
    );
  });

  it("grants under ns:* exactly the scopes that start with ns:", () => {
    fc.assert(
      fc.property(namespace, fc.oneof(plain, fc.string({ maxLength: 30 })), fc.boolean(), (ns, tail, inside) => {
        const required = inside ? `${ns}:${tail}` : tail;
        const expected = required.startsWith(`${ns}:`);
        expect(scopeGranted([`${ns}:*`], required), `${ns}:* → ${required}`).toBe(expected);
      }),
      RUNS,
    );
  });

  it("grants a plain scope only to itself: no prefix, suffix or case variant of it", () => {
    fc.assert(
      fc.property(plain, plain, (granted, required) => {
        expect(scopeGranted([granted], required)).toBe(granted === required);
      }),
      RUNS,
    );
  });

  it("never takes a grant away when more scopes are added", () => {
    fc.assert(
      fc.property(fc.array(anyScope, { maxLength: 4 }), fc.array(anyScope, { maxLength: 4 }), anyScope, (granted, extra, required) => {
        if (scopeGranted(granted, required)) expect(scopeGranted([...granted, ...extra], required)).toBe(true);
      }),
      RUNS,
    );
  });
});

// ---- reference rule matcher: a regular expression per glob (fine on short inputs) ----

const escapeRegExp = (text: string) => text.replace(/[.+?^${}()|[\]\\]/g, "\\$&");

/** `**` as a whole segment is any number of whole segments; `*` is any run without "/". */
function referenceRegExp(glob: string, caseSensitive: boolean): RegExp {
  const source = glob
    .slice(1)
    .split("/")
    .map((segment) => (segment === "**" ? "(?:/[^/]*)*" : `/${escapeRegExp(segment).replace(/\*/g, "[^/]*")}`))
    .join("");
  return new RegExp(`^${source}$`, caseSensitive ? "" : "i");
}

const withoutTrailingSlash = (text: string) => (text.length > 1 && text.endsWith("/") ? text.slice(0, -1) : text);

function referenceMatches(path: string, glob: string, policy: PathMatchPolicy): boolean {
  if (policy.strictTrailingSlash) return referenceRegExp(glob, policy.caseSensitive).test(path);
  // One trailing slash ignored: the path with or without its own, against the glob with or without its own.
  const globs = [glob, withoutTrailingSlash(glob)].map((candidate) => referenceRegExp(candidate, policy.caseSensitive));
  return [path, withoutTrailingSlash(path)].some((candidate) => globs.some((regexp) => regexp.test(candidate)));
}

const policy = fc.record({ caseSensitive: fc.boolean(), strictTrailingSlash: fc.boolean() });
const globPiece = fc.constantFrom("a", "b", "A", "ab", "ba", "x.y", "+", "*", "*", "**");
const globSegment = fc.oneof(
  { weight: 1, arbitrary: fc.constant("**") },
  { weight: 4, arbitrary: fc.array(globPiece, { minLength: 1, maxLength: 3 }).map((pieces) => pieces.join("")) },
);
const glob = fc
  .tuple(fc.array(globSegment, { maxLength: 5 }), fc.boolean())
  .map(([segments, slash]) => `/${segments.join("/")}${slash && segments.length > 0 ? "/" : ""}`);
const pathSegment = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.array(fc.constantFrom("a", "b", "A", "B", "ab", "x.y", "+", "xy"), { minLength: 1, maxLength: 3 }).map((pieces) => pieces.join("")),
  },
  { weight: 1, arbitrary: fc.constant("") },
);
const path = fc
  .tuple(fc.array(pathSegment, { maxLength: 7 }), fc.boolean())
  .map(([segments, slash]) => `/${segments.join("/")}${slash && segments.length > 0 ? "/" : ""}`);

/** Canonical paths hold no empty segment but a trailing one. */
const canonicalShape = path.filter((p) => !p.includes("//"));

describe("pathMatchesGlob against a regex-built reference", () => {
  it("agrees on generated globs and paths, under every policy", () => {
    fc.assert(
      fc.property(path, glob, policy, (p, g, pol) => {
        expect(pathMatchesGlob(p, g, pol), `${p} ~ ${g} ${JSON.stringify(pol)}`).toBe(referenceMatches(p, g, pol));
      }),
      { numRuns: 1000 },
    );
  });

  it("agrees on paths built to match: each ** and * filled with generated text", () => {
    const filler = fc.array(fc.constantFrom("a", "b", "ab", ""), { maxLength: 3 });
    fc.assert(
      fc.property(glob, fc.array(filler, { minLength: 8, maxLength: 8 }), policy, (g, fills, pol) => {
        let next = 0;
        const fill = () => (fills[next++ % fills.length] ?? []).join("");
        const p = g
          .split("/")
          .map((segment) => (segment === "**" ? [fill(), fill()].filter((s) => s !== "").join("/") : segment.replace(/\*+/g, fill)))
          .join("/")
          .replace(/\/\/+/g, "/");
        expect(pathMatchesGlob(p, g, pol), `${p} ~ ${g} ${JSON.stringify(pol)}`).toBe(referenceMatches(p, g, pol));
      }),
      { numRuns: 500 },
    );
  });

  it("needs the same scopes in any letter case, and never fewer with a trailing slash, under the default policy", () => {
    const rules = fc.array(fc.record({ path: glob, scope: fc.constantFrom("s1", "s2", "s3") }), { maxLength: 4 });
    fc.assert(
      fc.property(rules, canonicalShape, (ruleList, p) => {
        const needed = (variant: string) => new Set(requiredScopes(ruleList, "GET", variant, DEFAULT_PATH_MATCH_POLICY));
        const asWritten = needed(p);
        for (const variant of [p.toUpperCase(), p.toLowerCase()]) expect(needed(variant), `${p} vs ${variant}`).toEqual(asWritten);
        if (p === "/") return;
        // "/items/" also matches "/items/*" (an empty last segment), as Express and Spring route it; "/items" does not.
        const bare = needed(withoutTrailingSlash(p));
        const slashed = needed(p.endsWith("/") ? p : `${p}/`);
        for (const scope of bare) expect(slashed.has(scope), `${p}: ${scope}`).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
