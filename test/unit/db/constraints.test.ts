import { describe, expect, it } from "vitest";
import { storageUnavailable, uniqueViolation } from "../../../src/db/constraints";

describe("storageUnavailable: which D1 failures are worth a retry", () => {
  it.each([
    ["D1_ERROR: Network connection lost.", true],
    ["Error: D1_ERROR: D1 DB is overloaded. Requests queued for too long.", true],
    ["D1_ERROR: Internal error while starting up D1 DB storage caused object to be reset.", true],
    ["D1_ERROR: UNIQUE constraint failed: products.slug: SQLITE_CONSTRAINT", false],
    ['D1_ERROR: near "SELEC": syntax error: SQLITE_ERROR', false],
    ["TypeError: Cannot read properties of undefined", false],
  ])("%s → %s", (message, expected) => {
    expect(storageUnavailable(new Error(message.replace(/^Error: /, "")))).toBe(expected);
  });
});

describe("uniqueViolation", () => {
  it("names the unique column a write collided with, and nothing for other failures", () => {
    expect(uniqueViolation(new Error("D1_ERROR: UNIQUE constraint failed: products.slug: SQLITE_CONSTRAINT"))).toBe("products.slug");
    expect(uniqueViolation(new Error("D1_ERROR: Network connection lost."))).toBeUndefined();
  });
});
