import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { globProblem, missingScope, requiredScopes, scopeGranted, type PathMatchPolicy, type ScopeRule } from "../../../src/auth/scopes";
import { canonicalPath } from "../../../src/proxy/canonical-path";

/**
 * Review finding F1, as a property: whatever spelling of a path a client
 * sends, if keygate forwards it, no origin that normalizes paths the way a
 * common framework does routes it to a handler whose rule needs a scope the
 * credential lacks. The origin's handlers sit at the rules' globs, and the
 * origin is sent the canonical path keygate judged.
 */
const RUNS = { numRuns: 1000 };

/** The protected routes of the review's reproductions. */
const FIXED_RULES: ScopeRule[] = [
  { method: "POST", path: "/swap", scope: "defi:swap" },
  { method: "GET", path: "/admin", scope: "adm:read" },
  { method: "GET", path: "/admin/**", scope: "adm:read" },
  { method: "DELETE", path: "/items/*", scope: "adm:delete" },
  { method: "POST", path: "/users/me:delete", scope: "users:delete" },
];
const GENERATED_SCOPES = ["g:one", "g:two", "g:three"];
const ALL_SCOPES = [...new Set([...FIXED_RULES.map((rule) => rule.scope), ...GENERATED_SCOPES])];
const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE"];

// ---- origins: how each reads the path it is sent, and how it routes ----

/** A glob as a route regex: `**` any number of whole segments, `*` any run without "/". */
function routeSource(glob: string): string {
  return glob
    .slice(1)
    .split("/")
    .map((segment) => (segment === "**" ? "(?:/[^/]*)*" : `/${segment.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")}`))
    .join("");
}

/** A route with a trailing slash or without matches a path with one or without (Express's strict:false, Spring's trailing-slash match). */
function lenientSlashRoute(glob: string, flags: string): RegExp {
  const bare = glob.length > 1 && glob.endsWith("/") ? glob.slice(0, -1) : glob;
  return new RegExp(`^${routeSource(bare)}/?$`, flags);
}

function decodeOnce(path: string): string | undefined {
  try {
    return decodeURIComponent(path);
  } catch {
    return undefined; // the origin answers 400
  }
}

/** Tomcat-style normalization after decoding: a backslash is "/", "//" collapses, dot segments resolve; above the root is a 400. */
function resolveSegments(path: string): string | undefined {
  const parts = path.replace(/\\/g, "/").split("/").slice(1);
  const kept: string[] = [];
  for (const part of parts) {
    if (part === "..") {
      if (kept.length === 0) return undefined;
      kept.pop();
    } else if (part !== "." && part !== "") kept.push(part);
  }
  const last = parts[parts.length - 1];
  const trailing = last === "" || last === "." || last === "..";
  return `/${kept.join("/")}${trailing && kept.length > 0 ? "/" : ""}`;
}

/** A pre-2008 Java-style decoder: overlong two-byte forms (%C0%AE) read as the ASCII character they spell. */
function decodeOverlong(path: string): string {
  return path.replace(/%(C[01])%([89AB][0-9A-F])/gi, (_escape, lead: string, trail: string) =>
    String.fromCharCode(((parseInt(lead, 16) & 0x1f) << 6) | (parseInt(trail, 16) & 0x3f)),
  );
}

interface Origin {
  name: string;
  /** The path as the framework routes it, or undefined if it refuses the request. */
  reads(forwarded: string): string | undefined;
  /** Does the handler at this glob serve that path? (The glob is read as the framework reads its own routes.) */
  routes(path: string, glob: string): boolean;
}

const ORIGINS: Origin[] = [
  {
    name: "Express defaults (raw path, case-insensitive, one trailing slash ignored)",
    reads: (forwarded) => forwarded,
    routes: (path, glob) => lenientSlashRoute(glob, "i").test(path),
  },
  {
    name: "Spring on Tomcat (;params stripped, \\ and %5C as /, decoded once, dots resolved, trailing-slash match)",
    reads: (forwarded) => {
      const stripped = forwarded
        .split("/")
        .map((segment) => segment.split(";")[0])
        .join("/")
        .replace(/%5c/gi, "/");
      const decoded = decodeOnce(stripped);
      return decoded === undefined ? undefined : resolveSegments(decoded);
    },
    routes: (path, glob) => {
      const route = decodeOnce(glob);
      return route !== undefined && lenientSlashRoute(route, "").test(path);
    },
  },
  {
    name: "decode once, then resolve dots, exact match",
    reads: (forwarded) => {
      const decoded = decodeOnce(forwarded);
      return decoded === undefined ? undefined : resolveSegments(decoded);
    },
    routes: (path, glob) => {
      const route = decodeOnce(glob);
      return route !== undefined && new RegExp(`^${routeSource(route)}$`).test(path);
    },
  },
  {
    name: "IIS / ASP.NET Core (decoded once, \\ as /, dots resolved, case-insensitive, trailing slash ignored)",
    reads: (forwarded) => {
      const decoded = decodeOnce(forwarded);
      return decoded === undefined ? undefined : resolveSegments(decoded);
    },
    routes: (path, glob) => {
      const route = decodeOnce(glob);
      return route !== undefined && lenientSlashRoute(route, "i").test(path);
    },
  },
  {
    name: "a legacy chain (overlong UTF-8 read as ASCII, decoded twice by a proxy and the app, dots resolved, case-insensitive, trailing slash ignored)",
    reads: (forwarded) => {
      const once = decodeOnce(decodeOverlong(forwarded));
      const twice = once === undefined ? undefined : decodeOnce(decodeOverlong(once));
      return twice === undefined ? undefined : resolveSegments(twice);
    },
    routes: (path, glob) => {
      const route = decodeOnce(glob);
      return route !== undefined && lenientSlashRoute(route, "i").test(path);
    },
  },
];

function methodRoutes(ruleMethod: string | undefined, method: string): boolean {
  return !ruleMethod || ruleMethod === method || (ruleMethod === "GET" && method === "HEAD");
}

// ---- generators ----

const ruleSegment = fc.constantFrom("swap", "admin", "items", "users", "me:delete", "a@b", "x", "1", "v*", "*", "**");
const generatedRule = fc
  .record({
    method: fc.constantFrom("GET", "POST", "DELETE", "PUT", undefined),
    path: fc
      .tuple(fc.array(ruleSegment, { minLength: 1, maxLength: 3 }), fc.boolean())
      .map(([segments, slash]) => `/${segments.join("/")}${slash ? "/" : ""}`)
      .filter((glob) => globProblem(glob) === undefined),
    scope: fc.constantFrom(...GENERATED_SCOPES),
  })
  .map((rule): ScopeRule => (rule.method ? rule : { path: rule.path, scope: rule.scope }));

/** Words of the rules in every case and several encodings. */
const word = fc.constantFrom(
  "swap",
  "SWAP",
  "Swap",
  "%73wap",
  "%53WAP",
  "sw%61p",
  "admin",
  "Admin",
  "ADMIN",
  "%61dmin",
  "%2561dmin",
  "%41dmin",
  "items",
  "Items",
  "1",
  "x",
  "users",
  "me:delete",
  "me%3Adelete",
  "ME%3adelete",
  "a@b",
  "a%40b",
  "v2",
);
/** Decorations the review found forwarded, and other spellings origins read differently. */
const decoration = fc.constantFrom(
  "",
  ".",
  "..",
  "%2e",
  "%2E%2E",
  "%2e%2e",
  ".%2e",
  ";x",
  ";jsessionid=1",
  "%3Bx",
  "\\",
  "%5C",
  "%5c",
  "%2F",
  "%2f",
  "%00",
  "%09",
  "%20",
  "%23",
  "%3F",
  "%252F",
  "%25",
  ".json",
  "%C0%AE",
  "%c0%ae%c0%ae",
  "%c3%a9",
  "~",
  "%7E",
  "*",
);
// Mostly plain words, so that many paths are spellings of a protected route.
const segment = fc.oneof(
  { weight: 8, arbitrary: word },
  { weight: 1, arbitrary: decoration },
  { weight: 3, arbitrary: fc.tuple(word, decoration).map(([a, b]) => a + b) },
  { weight: 1, arbitrary: fc.tuple(decoration, word).map(([a, b]) => a + b) },
);
const rawPath = fc
  .tuple(fc.array(segment, { minLength: 1, maxLength: 3 }), fc.constantFrom("", "/", "//"))
  .map(([segments, tail]) => `/${segments.join("/")}${tail}`);

/** A word spelled another way, letter by letter: upper case, or escaped with either hex case; perhaps decorated. */
function respelled(word: string): fc.Arbitrary<string> {
  const way = fc.constantFrom("as is", "as is", "as is", "upper", "escaped", "escaped, lower hex");
  return fc
    .tuple(
      fc.array(way, { minLength: word.length, maxLength: word.length }),
      fc.oneof({ weight: 2, arbitrary: fc.constant("") }, { weight: 1, arbitrary: decoration }),
    )
    .map(([ways, tail]) => {
      const letters = [...word].map((letter, i) => {
        const hex = letter.charCodeAt(0).toString(16).toUpperCase();
        if (ways[i] === "upper") return letter.toUpperCase();
        if (ways[i] === "escaped") return `%${hex}`;
        if (ways[i] === "escaped, lower hex") return `%${hex.toLowerCase()}`;
        return letter;
      });
      return letters.join("") + tail;
    });
}

/** The protected routes of FIXED_RULES, by method and segments. */
const TARGETS = [
  { method: "POST", segments: ["swap"] },
  { method: "GET", segments: ["admin"] },
  { method: "GET", segments: ["admin", "users"] },
  { method: "DELETE", segments: ["items", "1"] },
  { method: "POST", segments: ["users", "me:delete"] },
];
const targetedRequest = fc
  .constantFrom(...TARGETS)
  .chain((target) =>
    fc.tuple(
      fc.constantFrom(target.method, target.method, "HEAD"),
      fc.constantFrom("", "", "/x/%2e%2e", "/x/.%2E", "/", "/."),
      fc.tuple(...target.segments.map(respelled)),
      fc.constantFrom("", "/", "//"),
    ),
  )
  .map(([method, lead, segments, tail]) => ({ method, raw: `${lead}/${segments.join("/")}${tail}` }));
const request = fc.oneof(fc.record({ method: fc.constantFrom(...METHODS), raw: rawPath }), targetedRequest);

/** What workerd hands keygate for that request line. */
const asParsed = (raw: string) => new URL(`https://gw.test${raw}`).pathname;

// ---- the property ----

function assertNoOriginBypass(
  rules: ScopeRule[],
  granted: string[],
  method: string,
  raw: string,
  policy: PathMatchPolicy | undefined,
  origins: Origin[],
): void {
  const canonical = canonicalPath(asParsed(raw));
  if (!canonical.ok) return; // refused: never reaches an origin
  if (missingScope(granted, requiredScopes(rules, method, canonical.path, policy)) !== undefined) return; // 403
  for (const origin of origins) {
    const read = origin.reads(canonical.path);
    if (read === undefined) continue;
    for (const rule of rules) {
      if (!methodRoutes(rule.method, method)) continue;
      if (rule.path && !origin.routes(read, rule.path)) continue;
      expect(
        scopeGranted(granted, rule.scope),
        `${method} ${raw} forwarded as ${canonical.path}; ${origin.name} reads ${read} and routes it to ${rule.method ?? "*"} ${rule.path} (${rule.scope}) with only [${granted.join(", ")}]`,
      ).toBe(true);
    }
  }
}

describe("a forwarded path reaches no handler whose scope the credential lacks (F1)", () => {
  it("under the default policy, for Express, Spring/Tomcat, decode-once, IIS-style and legacy double-decoding origins", () => {
    fc.assert(
      fc.property(fc.array(generatedRule, { maxLength: 3 }), fc.subarray(ALL_SCOPES), request, (extra, granted, { method, raw }) =>
        assertNoOriginBypass([...FIXED_RULES, ...extra], granted, method, raw, undefined, ORIGINS),
      ),
      RUNS,
    );
  });

  it("under a strict policy, for an origin that decodes once and matches exactly", () => {
    const strict: PathMatchPolicy = { caseSensitive: true, strictTrailingSlash: true };
    const exact = ORIGINS.filter((origin) => origin.name.startsWith("decode once"));
    fc.assert(
      fc.property(fc.array(generatedRule, { maxLength: 3 }), fc.subarray(ALL_SCOPES), request, (extra, granted, { method, raw }) =>
        assertNoOriginBypass([...FIXED_RULES, ...extra], granted, method, raw, strict, exact),
      ),
      { numRuns: 300 },
    );
  });

  it("refuses (400) or denies (403) every spelling of a protected route the review found forwarded", () => {
    const forwarded = (method: string, raw: string) => {
      const canonical = canonicalPath(asParsed(raw));
      return canonical.ok && missingScope(["defi:read"], requiredScopes(FIXED_RULES, method, canonical.path)) === undefined;
    };
    for (const raw of [
      "/swap/",
      "/SWAP",
      "/Swap",
      "/Swap/",
      "/swap;x",
      "/swap%09",
      "/swap/.",
      "/swap%2F",
      "/swap%00",
      "/swap%252F",
      "/swap/..;/swap",
      "/swap%3F",
      "/swap%23",
    ]) {
      expect(forwarded("POST", raw), raw).toBe(false);
    }
    for (const raw of ["/Admin", "/ADMIN/x", "/admin;jsessionid=1", "/.;/admin", "/admin%5Cx", "/%2561dmin", "/%c0%ae%c0%ae/admin"]) {
      expect(forwarded("GET", raw), raw).toBe(false);
    }
    expect(forwarded("DELETE", "/items/1/")).toBe(false);
    expect(forwarded("POST", "/users/me%3Adelete")).toBe(false);
  });

  it("holds for the review's reproductions", () => {
    const granted = ["defi:read"];
    const spellings = [
      "/swap/",
      "/SWAP",
      "/Swap",
      "/Swap/",
      "/swap;x",
      "/swap%20",
      "/swap%09",
      "/swap.",
      "/swap/.",
      "/swap%2F",
      "/swap%00",
      "/swap%252F",
      "/swap/..;/swap",
      "/swap%3F",
      "/swap%23",
      "/%73wap",
    ];
    for (const raw of spellings) assertNoOriginBypass(FIXED_RULES, granted, "POST", raw, undefined, ORIGINS);
    for (const raw of ["/Admin", "/ADMIN/x", "/admin;jsessionid=1", "/.;/admin", "/admin%5Cx", "/%2561dmin", "/%c0%ae%c0%ae/admin", "/x/%2e%2e/admin"]) {
      assertNoOriginBypass(FIXED_RULES, granted, "GET", raw, undefined, ORIGINS);
    }
    for (const raw of ["/items/1/", "/ITEMS/1", "/items/", "/items//1"]) assertNoOriginBypass(FIXED_RULES, granted, "DELETE", raw, undefined, ORIGINS);
  });
});
