import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalPath, MAX_PATH_BYTES } from "../../../src/proxy/canonical-path";

/** The pathname workerd hands keygate for a request line's raw path. */
const parsed = (raw: string): string => new URL(`https://gw.test${raw}`).pathname;

describe("canonicalPath on accepted paths", () => {
  it.each([
    ["/", "/"],
    ["/swap", "/swap"],
    ["/swap/", "/swap/"],
    ["/api/v1/defi/swap", "/api/v1/defi/swap"],
    ["/SWAP", "/SWAP"], // case is the matcher's business, not the path's
    ["/%61dmin", "/admin"],
    ["/%41DMIN", "/ADMIN"],
    ["/%7Euser/%2D%5F", "/~user/-_"],
    ["/caf%c3%a9", "/caf%C3%A9"],
    ["/caf%C3%A9", "/caf%C3%A9"],
    ["/%E2%82%AC", "/%E2%82%AC"],
    ["/%F0%9F%98%80", "/%F0%9F%98%80"],
    ["/swap%20", "/swap%20"],
    ["/100%25", "/100%25"],
    ["/100%25zz", "/100%25zz"],
    ["/users/me%3adelete", "/users/me%3Adelete"],
    ["/users/a@b.com", "/users/a@b.com"],
    ["/a!$&'()*+,=:@b", "/a!$&'()*+,=:@b"],
    ["//admin///users", "/admin/users"],
    ["//", "/"],
    ["/swap//", "/swap/"],
    ["/a/%2E/b", "/a/b"],
    ["/a/%2e%2e/b", "/b"],
    ["/a/b/%2E%2E", "/a/"],
    ["/a/%2E", "/a/"],
    ["/a/.%2E/b", "/b"],
    ["/x/%2E%2E/admin", "/admin"],
    ["/%2E%2E%2E", "/..."],
    ["/.well-known/x", "/.well-known/x"],
    ["/swap.", "/swap."],
    ["/swap.json", "/swap.json"],
    ["/a/./b/../c", "/a/c"], // literal dot segments, as a caller other than workerd might pass
    ["swap", "/swap"],
    ["", "/"],
  ])("reads %s as %s", (raw, canonical) => {
    expect(canonicalPath(raw)).toEqual({ ok: true, path: canonical });
  });

  it("accepts a path of exactly MAX_PATH_BYTES", () => {
    const path = `/${"a".repeat(MAX_PATH_BYTES - 1)}`;
    expect(canonicalPath(path)).toEqual({ ok: true, path });
  });

  it("sees workerd's parsing first: backslashes are slashes and literal dot segments are gone", () => {
    expect(canonicalPath(parsed("/a\\b"))).toEqual({ ok: true, path: "/a/b" });
    expect(canonicalPath(parsed("/x/../admin"))).toEqual({ ok: true, path: "/admin" });
    expect(canonicalPath(parsed("/swap/."))).toEqual({ ok: true, path: "/swap/" });
    expect(canonicalPath(parsed("/café"))).toEqual({ ok: true, path: "/caf%C3%A9" });
  });
});

describe("canonicalPath on refused paths (F1)", () => {
  it.each([
    ["/swap;x", /;/],
    ["/admin;jsessionid=1", /;/],
    ["/.;/admin", /;/],
    ["/swap/..;/swap", /;/],
    ["/swap%3Bx", /semicolon/],
    ["/admin%5Cx", /backslash/],
    ["/admin%5cx", /backslash/],
    ["/swap%2F", /slash/],
    ["/a%2fb", /slash/],
    ["/swap%3F", /question/],
    ["/swap%23", /number sign/],
    ["/swap%00", /control/],
    ["/swap%09", /control/],
    ["/swap%0A", /control/],
    ["/swap%1f", /control/],
    ["/swap%7F", /control/],
    ["/%2561dmin", /double/],
    ["/swap%252F", /double/],
    ["/a%25%34%31", /double/], // %25 then an escaped "4" and "1": still %2541 once decoded
    ["/a%254%31", /double/],
    ["/%c0%ae%c0%ae/admin", /UTF-8/],
    ["/%C0%AF", /UTF-8/],
    ["/%80", /UTF-8/],
    ["/%e2%82", /UTF-8/],
    ["/%e2%82/x", /UTF-8/],
    ["/%C3%41", /UTF-8/],
    ["/%ED%A0%80", /UTF-8/], // a UTF-16 surrogate
    ["/%F4%90%80%80", /UTF-8/], // beyond U+10FFFF
    ["/%", /%/],
    ["/swap%", /%/],
    ["/swap%2", /%/],
    ["/swap%zz", /%/],
    ["/swap%2/x", /%/],
    ["/%2E%2E", /root/],
    ["/a/%2E%2E/%2E%2E", /root/],
    ["/..", /root/],
    ["/swap ", /character/],
    ['/a"b', /character/],
    ["/a|b", /character/],
    ["/a[b]", /character/],
    ["/a\\b", /character/],
    ["/a^b", /character/],
    ["/café", /character/],
    ["/a\u0000b", /character/],
  ])("refuses %s", (raw, reason) => {
    const result = canonicalPath(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it(`refuses a path longer than ${MAX_PATH_BYTES} bytes`, () => {
    const result = canonicalPath(`/${"a".repeat(MAX_PATH_BYTES)}`);
    expect(result).toEqual({ ok: false, reason: expect.stringMatching(String(MAX_PATH_BYTES)) });
  });

  it("refuses the spellings workerd still passes on", () => {
    for (const raw of ["/swap;x", "/.;/admin", "/admin%5Cx", "/%2561dmin", "/%c0%ae%c0%ae/admin", "/swap%2F", "/swap%00", "/swap%3F", "/swap%23"]) {
      expect(canonicalPath(parsed(raw)).ok, raw).toBe(false);
    }
  });
});

// ---- properties ----

const RUNS = { numRuns: 1000 };

/** Path pieces close to the rules: escapes of every kind, dots, slashes, and a few characters that must be refused. */
const piece = fc.oneof(
  fc.constantFrom("a", "B", "swap", "admin", "1", "-", "_", "~", ".", "..", "", "*", ":", "@", "!", "+"),
  fc.constantFrom("%2E", "%2e", "%2E%2E", "%61", "%41", "%7E", "%3A", "%40", "%20", "%25", "%2561", "%25zz", "%C3%A9", "%c3%a9", "%E2%82%AC"),
  fc.constantFrom("%2F", "%5C", "%3B", "%3F", "%23", "%00", "%09", "%7F", "%C0%AE", "%80", "%e2%82", "%", "%4", ";", " ", "|"),
  fc.integer({ min: 0, max: 255 }).map((byte) => `%${byte.toString(16).padStart(2, "0")}`),
);
const rawPath = fc
  .array(
    fc.array(piece, { maxLength: 4 }).map((pieces) => pieces.join("")),
    { maxLength: 6 },
  )
  .map((segments) => `/${segments.join("/")}`);

describe("canonicalPath properties", () => {
  it("is idempotent: a canonical path is its own canonical form", () => {
    fc.assert(
      fc.property(rawPath, (raw) => {
        const first = canonicalPath(raw);
        if (first.ok) expect(canonicalPath(first.path), raw).toEqual(first);
      }),
      RUNS,
    );
  });

  it("is idempotent on what workerd's URL parser produces, too", () => {
    fc.assert(
      fc.property(rawPath, (raw) => {
        const first = canonicalPath(parsed(raw));
        if (first.ok) expect(canonicalPath(first.path), raw).toEqual(first);
      }),
      RUNS,
    );
  });

  it("yields a path with no empty or dot segment, no ';', and only upper-case escapes of reserved or non-ASCII bytes", () => {
    fc.assert(
      fc.property(rawPath, (raw) => {
        const result = canonicalPath(raw);
        if (!result.ok) return;
        const { path } = result;
        expect(path.startsWith("/")).toBe(true);
        const inner = path.length > 1 && path.endsWith("/") ? path.slice(1, -1) : path.slice(1);
        if (path !== "/") for (const segment of inner.split("/")) expect(["", ".", ".."]).not.toContain(segment);
        expect(path).not.toMatch(/;|%(?![0-9A-F]{2})/);
        for (const [, hex] of path.matchAll(/%([0-9A-F]{2})/g)) expect(String.fromCharCode(parseInt(hex!, 16))).not.toMatch(/[A-Za-z0-9._~-]/);
      }),
      RUNS,
    );
  });

  it("never throws, whatever the input", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 80 }), (raw) => {
        const result = canonicalPath(raw);
        expect(typeof result.ok).toBe("boolean");
      }),
      RUNS,
    );
  });
});
