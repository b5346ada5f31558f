import { describe, expect, it } from "vitest";
import { missingScope, normalizePath, pathMatchesGlob, requiredScopes, scopeGranted, type ScopeRule } from "../../../src/auth/scopes";

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
  });

  it("lets * match within one segment only", () => {
    expect(pathMatchesGlob("/users/42", "/users/*")).toBe(true);
    expect(pathMatchesGlob("/users/42/keys", "/users/*")).toBe(false);
  });

  it("lets ** match across segments", () => {
    expect(pathMatchesGlob("/admin/a/b/c", "/admin/**")).toBe(true);
    expect(pathMatchesGlob("/public/a", "/admin/**")).toBe(false);
  });

  it("treats regular-expression characters in a glob literally", () => {
    expect(pathMatchesGlob("/v1.0/x", "/v1.0/*")).toBe(true);
    expect(pathMatchesGlob("/v1x0/x", "/v1.0/*")).toBe(false);
    expect(pathMatchesGlob("/a+b", "/a+b")).toBe(true);
  });
});

describe("normalizePath", () => {
  it.each([
    ["/admin/users", "/admin/users"],
    ["/%61dmin/users", "/admin/users"],
    ["/%41DMIN", "/ADMIN"],
    ["//admin///users", "/admin/users"],
    ["/admin%2Fusers", "/admin/users"],
    ["/admin%2fusers", "/admin/users"],
    ["/public/..%2Fadmin", "/admin"],
    ["/a/./b/../c", "/a/c"],
    ["/../../etc", "/etc"],
    ["/users/", "/users/"],
    ["/", "/"],
    ["//", "/"],
  ])("reads %s as %s", (raw, normal) => {
    expect(normalizePath(raw)).toBe(normal);
  });

  it("leaves non-ASCII escapes and invalid escapes as written", () => {
    expect(normalizePath("/caf%C3%A9")).toBe("/caf%C3%A9");
    expect(normalizePath("/100%zz")).toBe("/100%zz");
  });

  it("decodes only once, so a double-encoded escape stays an escape", () => {
    expect(normalizePath("/%2561dmin")).toBe("/%61dmin");
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

  it("judges the normalized path, so another spelling of a path needs the same scopes", () => {
    expect(requiredScopes(rules, "GET", "/%61dmin/users")).toEqual(["defi:admin", "defi:read"]);
    expect(requiredScopes(rules, "POST", "//swap")).toEqual(["defi:swap"]);
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
