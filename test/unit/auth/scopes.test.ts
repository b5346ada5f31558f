import { describe, expect, it } from "vitest";
import {
  DEFAULT_PATH_MATCH_POLICY,
  globProblem,
  MAX_GLOBSTARS_PER_RULE,
  MAX_RULE_PATH_LENGTH,
  missingScope,
  pathMatchesGlob,
  requiredScopes,
  scopeGranted,
  type MatchMeter,
  type PathMatchPolicy,
  type ScopeRule,
} from "../../../src/auth/scopes";

const STRICT: PathMatchPolicy = { caseSensitive: true, strictTrailingSlash: true };

describe("scopeGranted", () => {
  it("grants an exactly named scope", () => {
    expect(scopeGranted(["read"], "read")).toBe(true);
    expect(scopeGranted(["read"], "write")).toBe(false);
  });

  it("grants everything for *", () => {
    expect(scopeGranted(["*"], "anything:at:all")).toBe(true);
  });

  it("grants everything under prefix: for prefix:*", () => {
    expect(scopeGranted(["defi:*"], "defi:swap")).toBe(true);
    expect(scopeGranted(["defi:*"], "defi:swap:quote")).toBe(true);
  });

  it("does not let prefix:* grant a look-alike prefix or the bare prefix", () => {
    expect(scopeGranted(["defi:*"], "defiant:swap")).toBe(false);
    expect(scopeGranted(["defi:*"], "defi")).toBe(false);
    expect(scopeGranted(["defi:*"], "summarize:run")).toBe(false);
  });

  it("does not treat a * in the middle as a wildcard", () => {
    expect(scopeGranted(["de*"], "defi:swap")).toBe(false);
  });

  it("grants nothing from an empty list", () => {
    expect(scopeGranted([], "read")).toBe(false);
  });
});

describe("pathMatchesGlob", () => {
  it("matches a literal path exactly", () => {
    expect(pathMatchesGlob("/swap", "/swap")).toBe(true);
    expect(pathMatchesGlob("/swap/x", "/swap")).toBe(false);
    expect(pathMatchesGlob("/swapx", "/swap")).toBe(false);
  });

  it("lets * match within one segment only", () => {
    expect(pathMatchesGlob("/users/42", "/users/*")).toBe(true);
    expect(pathMatchesGlob("/users/42/keys", "/users/*")).toBe(false);
  });

  it("lets several * share a segment", () => {
    expect(pathMatchesGlob("/v2-beta3", "/v*-beta*")).toBe(true);
    expect(pathMatchesGlob("/v-beta", "/v*-beta*")).toBe(true);
    expect(pathMatchesGlob("/v2-alpha", "/v*-beta*")).toBe(false);
    expect(pathMatchesGlob("/abcabd", "/*ab*d")).toBe(true);
    expect(pathMatchesGlob("/ab", "/a*b*b")).toBe(false);
  });

  it("lets ** match zero or more whole segments", () => {
    expect(pathMatchesGlob("/admin/a/b/c", "/admin/**")).toBe(true);
    expect(pathMatchesGlob("/admin", "/admin/**")).toBe(true);
    expect(pathMatchesGlob("/public/a", "/admin/**")).toBe(false);
    expect(pathMatchesGlob("/adminx", "/admin/**")).toBe(false);
    expect(pathMatchesGlob("/projects/1/members/2/remove", "/**/projects/**/members/**/remove")).toBe(true);
    expect(pathMatchesGlob("/projects/members/remove", "/**/projects/**/members/**/remove")).toBe(true);
    expect(pathMatchesGlob("/projects/members/remove/x", "/**/projects/**/members/**/remove")).toBe(false);
  });

  it("treats regular-expression characters in a glob literally", () => {
    expect(pathMatchesGlob("/v1.0/x", "/v1.0/*")).toBe(true);
    expect(pathMatchesGlob("/v1x0/x", "/v1.0/*")).toBe(false);
    expect(pathMatchesGlob("/a+b", "/a+b")).toBe(true);
    expect(pathMatchesGlob("/a(b)$", "/a(b)$")).toBe(true);
  });

  it("compares ASCII letters case-insensitively by default (F1: /SWAP, /Swap)", () => {
    expect(pathMatchesGlob("/SWAP", "/swap")).toBe(true);
    expect(pathMatchesGlob("/Admin/X", "/admin/**")).toBe(true);
    expect(pathMatchesGlob("/swap", "/SWAP")).toBe(true);
  });

  it("ignores one trailing slash by default (F1: /swap/, DELETE /items/1/)", () => {
    expect(pathMatchesGlob("/swap/", "/swap")).toBe(true);
    expect(pathMatchesGlob("/items/1/", "/items/*")).toBe(true);
    expect(pathMatchesGlob("/swap", "/swap/")).toBe(true);
    expect(pathMatchesGlob("/swap/", "/swap/")).toBe(true);
  });

  it("still lets * match the empty segment after a trailing slash, as origins route /items/ to /items/*", () => {
    expect(pathMatchesGlob("/items/", "/items/*")).toBe(true);
    expect(pathMatchesGlob("/items/", "/items/*", STRICT)).toBe(true);
    expect(pathMatchesGlob("/items", "/items/*")).toBe(false);
  });

  it("matches the root", () => {
    expect(pathMatchesGlob("/", "/")).toBe(true);
    expect(pathMatchesGlob("/", "/**")).toBe(true);
    expect(pathMatchesGlob("/", "/*")).toBe(true);
    expect(pathMatchesGlob("/", "/a")).toBe(false);
  });

  it("compares exactly under a strict policy", () => {
    expect(pathMatchesGlob("/SWAP", "/swap", STRICT)).toBe(false);
    expect(pathMatchesGlob("/swap/", "/swap", STRICT)).toBe(false);
    expect(pathMatchesGlob("/swap", "/swap/", STRICT)).toBe(false);
    expect(pathMatchesGlob("/swap", "/swap", STRICT)).toBe(true);
    expect(pathMatchesGlob("/SWAP/", "/swap", { caseSensitive: false, strictTrailingSlash: true })).toBe(false);
    expect(pathMatchesGlob("/SWAP/", "/swap", { caseSensitive: true, strictTrailingSlash: false })).toBe(false);
    expect(pathMatchesGlob("/swap/", "/swap", { caseSensitive: true, strictTrailingSlash: false })).toBe(true);
  });

  it("reads an escaped sub-delimiter, ':' or '@' as the character, as decoding origins do", () => {
    expect(pathMatchesGlob("/users/me%3Adelete", "/users/me:delete")).toBe(true);
    expect(pathMatchesGlob("/users/a@b", "/users/a%40b")).toBe(true);
    expect(pathMatchesGlob("/a%2Cb", "/a,b", STRICT)).toBe(true);
    expect(pathMatchesGlob("/a%2Fb", "/a/b")).toBe(false);
  });

  it("keeps other escapes as written, so they only match themselves or a wildcard", () => {
    expect(pathMatchesGlob("/caf%C3%A9", "/caf%C3%A9")).toBe(true);
    expect(pathMatchesGlob("/caf%C3%A9", "/caf%c3%a9")).toBe(true); // hex digits are letters too
    expect(pathMatchesGlob("/swap%20", "/swap")).toBe(false);
    expect(pathMatchesGlob("/swap%20", "/swap*")).toBe(true);
  });
});

describe("pathMatchesGlob work (F6)", () => {
  const RULE = "/**/projects/**/members/**/remove";

  /** A path of `projects/` then `members/` segments, at least `bytes` long, that the rule does not match. */
  function hostilePath(bytes: number): string {
    const pairs = Math.ceil(bytes / 17);
    return `/${"projects/".repeat(pairs)}${"members/".repeat(pairs)}x`;
  }

  function stepsFor(path: string, glob: string): number {
    const meter: MatchMeter = { steps: 0 };
    expect(pathMatchesGlob(path, glob, DEFAULT_PATH_MATCH_POLICY, meter)).toBe(false);
    return meter.steps;
  }

  it("matches a three-** rule against a 15 KB path with work linear in the path length", () => {
    const path = hostilePath(15_000);
    expect(path.length).toBeGreaterThanOrEqual(15_000);
    const started = Date.now();
    const steps = stepsFor(path, RULE);
    // Each character meets each of the rule's 6 segments at most a couple of times.
    expect(steps).toBeLessThanOrEqual(2 * 6 * path.length);
    expect(Date.now() - started).toBeLessThan(1_000); // secondary guard only: the regex took ~9 s
  });

  it("does twice the work, not four or eight times, on a path twice as long", () => {
    const short = stepsFor(hostilePath(4_000), RULE);
    const long = stepsFor(hostilePath(8_000), RULE);
    expect(long / short).toBeLessThan(2.2);
  });

  it("stays linear for * pieces that almost match everywhere (the naive search is quadratic here)", () => {
    const path = `/${"a".repeat(3_000)}c`;
    expect(stepsFor(path, "/*aaaaaaab*c")).toBeLessThanOrEqual(3 * path.length);
    expect(stepsFor(path, "/*a*a*ab*c")).toBeLessThanOrEqual(3 * path.length);
  });
});

describe("globProblem", () => {
  it("accepts ordinary rules", () => {
    for (const glob of ["/", "/swap", "/swap/", "/admin/**", "/**/projects/**/members/**/remove", "/v*-beta*/x", "/users/me:delete", "/caf%C3%A9"]) {
      expect(globProblem(glob), glob).toBeUndefined();
    }
  });

  it(`refuses more than ${MAX_GLOBSTARS_PER_RULE} ** in one rule`, () => {
    expect(globProblem("/**/a/**/b/**/c")).toBeUndefined();
    expect(globProblem("/**/a/**/b/**/c/**")).toMatch(/\*\*/);
  });

  it("refuses ** that is not a whole segment", () => {
    expect(globProblem("/a**b")).toMatch(/segment/);
    expect(globProblem("/**-**-x")).toMatch(/segment/);
    expect(globProblem("/***")).toMatch(/segment/);
  });

  it("refuses an empty rule, one not starting with /, and one too long", () => {
    expect(globProblem("")).toBeDefined();
    expect(globProblem("swap")).toBeDefined();
    expect(globProblem(`/${"a".repeat(MAX_RULE_PATH_LENGTH - 1)}`)).toBeUndefined();
    expect(globProblem(`/${"a".repeat(MAX_RULE_PATH_LENGTH)}`)).toBeDefined();
  });

  it("refuses a rule no canonical request path can match, naming the canonical spelling", () => {
    expect(globProblem("/%61dmin")).toMatch(/\/admin/);
    expect(globProblem("/a//b")).toMatch(/\/a\/b/);
    expect(globProblem("/a/../b")).toBeDefined();
    expect(globProblem("/swap;x")).toBeDefined();
    expect(globProblem("/caf%c3%a9")).toMatch(/%C3%A9/);
    expect(globProblem("/a|b")).toBeDefined();
    expect(globProblem("/a%2Ab")).toMatch(/\*/);
  });
});

describe("requiredScopes", () => {
  const rules: ScopeRule[] = [
    { method: "POST", path: "/swap", scope: "defi:swap" },
    { path: "/admin/**", scope: "defi:admin" },
    { method: "get", scope: "defi:read" },
    { path: "/admin/**", method: "DELETE", scope: "defi:admin" },
  ];

  it("collects the scope of every rule whose method and path match, once each", () => {
    expect(requiredScopes(rules, "POST", "/swap")).toEqual(["defi:swap"]);
    expect(requiredScopes(rules, "GET", "/admin/users")).toEqual(["defi:admin", "defi:read"]);
    expect(requiredScopes(rules, "DELETE", "/admin/users")).toEqual(["defi:admin"]);
  });

  it("compares methods case-insensitively", () => {
    expect(requiredScopes(rules, "Get", "/quote")).toEqual(["defi:read"]);
  });

  it("needs the same scopes for another letter case or a trailing slash (F1)", () => {
    for (const path of ["/swap/", "/SWAP", "/Swap/"]) expect(requiredScopes(rules, "POST", path), path).toEqual(["defi:swap"]);
    expect(requiredScopes(rules, "GET", "/ADMIN/x/")).toEqual(["defi:admin", "defi:read"]);
    expect(requiredScopes(rules, "GET", "/Admin")).toEqual(["defi:admin", "defi:read"]);
  });

  it("compares exactly for a product with a strict policy", () => {
    expect(requiredScopes(rules, "POST", "/swap/", STRICT)).toEqual([]);
    expect(requiredScopes(rules, "POST", "/SWAP", STRICT)).toEqual([]);
    expect(requiredScopes(rules, "POST", "/swap", STRICT)).toEqual(["defi:swap"]);
  });

  it("applies a GET rule to HEAD, which reads the same resource", () => {
    expect(requiredScopes(rules, "HEAD", "/quote")).toEqual(["defi:read"]);
    expect(requiredScopes([{ method: "HEAD", scope: "x" }], "GET", "/quote")).toEqual([]);
  });

  it("needs nothing when no rule matches", () => {
    expect(requiredScopes(rules, "PUT", "/quote")).toEqual([]);
    expect(requiredScopes([], "GET", "/")).toEqual([]);
  });
});

describe("missingScope", () => {
  it("names the first needed scope not granted", () => {
    expect(missingScope(["defi:read"], ["defi:read", "defi:admin"])).toBe("defi:admin");
  });

  it("is undefined when everything needed is granted, via exact names or wildcards", () => {
    expect(missingScope(["defi:*"], ["defi:read", "defi:admin"])).toBeUndefined();
    expect(missingScope(["*"], ["x"])).toBeUndefined();
    expect(missingScope([], [])).toBeUndefined();
  });
});
