import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { scopeGranted } from "../../../src/auth/scopes";

/**
 * The scope matcher: `*` grants everything, a scope grants itself, `a:*`
 * grants exactly the scopes under `a:`, and more grants never take one away.
 */
const RUNS = { numRuns: 400 };

/** A scope name as the admin API accepts them, without wildcards. */
const plain = fc.stringMatching(/^[A-Za-z0-9:._-]{1,24}$/);
/** A namespace for `ns:*`: no colon of its own, so "ns:" is its whole prefix. */
const namespace = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/);
const anyScope = fc.oneof(plain, fc.string({ maxLength: 30 }), fc.constant("*"), namespace.map((ns) => `${ns}:*`));

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
