import { describe, expect, it } from "vitest";
import { keyFieldRefusal, type KeyEditor } from "../../../src/auth/key-permissions";

const user: KeyEditor = { isAdmin: false, userId: "u1", products: ["alpha", "beta"], scopes: ["defi:*", "read"] };
const admin: KeyEditor = { isAdmin: true, userId: null, products: [], scopes: [] };

describe("keyFieldRefusal", () => {
  it("lets an admin set anything", () => {
    expect(keyFieldRefusal(admin, { ownerId: "u2", products: ["*"], scopes: ["*"], rateLimitPerMinute: 1, ipAllowlist: ["10.0.0.0/8"] })).toBeUndefined();
  });

  it("lets a user narrow to their own products and scopes, wildcards included", () => {
    expect(keyFieldRefusal(user, { ownerId: "u1", products: ["beta"], scopes: ["defi:swap", "defi:*", "read"] })).toBeUndefined();
    expect(keyFieldRefusal({ ...user, products: ["*"], scopes: ["*"] }, { products: ["*"], scopes: ["*"] })).toBeUndefined();
  });

  it.each([
    ["rateLimitPerMinute", { rateLimitPerMinute: 10 }],
    ["rateLimitPerDay", { rateLimitPerDay: null }],
    ["ipAllowlist", { ipAllowlist: [] }],
    ["ownerId", { ownerId: "u2" }],
    ["products", { products: ["gamma"] }],
    ["products", { products: ["*"] }],
    ["scopes", { scopes: ["*"] }],
    ["scopes", { scopes: ["write"] }],
    ["scopes", { scopes: ["def:*"] }],
  ])("refuses a user setting %s (%j) with FORBIDDEN naming it", (field, fields) => {
    const refusal = keyFieldRefusal(user, fields);
    expect(refusal?.code).toBe("FORBIDDEN");
    expect(refusal?.details).toEqual({ field });
  });
});
