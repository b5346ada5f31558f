import { describe, expect, it } from "vitest";
import {
  adminDecisionRefusal,
  decisionSetters,
  keyFieldRefusal,
  setByAnotherThanOwner,
  type KeyDecisions,
  type KeyEditor,
} from "../../../src/auth/key-permissions";

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

describe("adminDecisionRefusal and decisionSetters (security review F9)", () => {
  const owner: KeyEditor = { ...user, userId: "u1" };
  const key = (fields: Partial<KeyDecisions> = {}): KeyDecisions => ({
    ownerId: "u1",
    status: "active",
    statusSetBy: "user:u1",
    expiresAt: null,
    expiresSetBy: null,
    ...fields,
  });
  const adminExpiry = key({ expiresAt: "2031-01-01T00:00:00.000Z", expiresSetBy: "admin_token" });

  it("tells who set a decision: anyone but the owner; not known binds no one", () => {
    expect(setByAnotherThanOwner("admin_token", "u1")).toBe(true);
    expect(setByAnotherThanOwner("user:u2", "u1")).toBe(true);
    expect(setByAnotherThanOwner("user:u1", "u1")).toBe(false);
    expect(setByAnotherThanOwner(null, "u1")).toBe(false);
    expect(setByAnotherThanOwner("user:u1", null), "a key with no owner").toBe(true);
  });

  it.each([
    ["status", key({ status: "inactive", statusSetBy: "admin_token" }), { status: "active" as const }],
    ["status", key({ status: "inactive", statusSetBy: "user:admin-7" }), { status: "active" as const }],
    ["expiresAt", adminExpiry, { expiresAt: null }],
    ["expiresAt", adminExpiry, { expiresAt: "2031-01-01T00:00:00.001Z" }],
  ])("refuses the owner undoing an admin's decision: FORBIDDEN naming %s", (field, read, fields) => {
    const refusal = adminDecisionRefusal(owner, read, fields);
    expect(refusal?.code).toBe("FORBIDDEN");
    expect(refusal?.details).toEqual({ field });
    expect(adminDecisionRefusal(admin, read, fields), "an admin may").toBeUndefined();
  });

  it.each([
    ["reactivating their own deactivation", key({ status: "inactive", statusSetBy: "user:u1" }), { status: "active" as const }],
    ["reactivating a deactivation nobody is known to have made", key({ status: "inactive", statusSetBy: null }), { status: "active" as const }],
    ["deactivating a key an admin reactivated", key({ statusSetBy: "admin_token" }), { status: "inactive" as const }],
    ["repeating an admin's deactivation", key({ status: "inactive", statusSetBy: "admin_token" }), { status: "inactive" as const }],
    ["moving an admin's expiry earlier", adminExpiry, { expiresAt: "2030-12-31T23:59:59.000Z" }],
    ["keeping an admin's expiry", adminExpiry, { expiresAt: "2031-01-01T00:00:00.000Z" }],
    ["setting an expiry after an admin cleared it", key({ expiresSetBy: "admin_token" }), { expiresAt: "2040-01-01T00:00:00.000Z" }],
    ["extending their own expiry", key({ expiresAt: "2031-01-01T00:00:00.000Z", expiresSetBy: "user:u1" }), { expiresAt: null }],
  ])("lets the owner go on %s", (_what, read, fields) => {
    expect(adminDecisionRefusal(owner, read, fields)).toBeUndefined();
  });

  it("records the editor as setter, except where the owner leaves an admin's decision standing", () => {
    expect(decisionSetters(owner, "user:u1", key(), { status: "inactive", expiresAt: "2040-01-01T00:00:00.000Z" })).toEqual({
      statusSetBy: "user:u1",
      expiresSetBy: "user:u1",
    });
    expect(decisionSetters(owner, "user:u1", key({ status: "inactive", statusSetBy: "admin_token" }), { status: "inactive" })).toEqual({});
    expect(decisionSetters(owner, "user:u1", adminExpiry, { expiresAt: "2030-06-01T00:00:00.000Z" })).toEqual({});
    expect(decisionSetters(admin, "admin_token", key({ status: "inactive" }), { status: "inactive", expiresAt: null })).toEqual({
      statusSetBy: "admin_token",
      expiresSetBy: "admin_token",
    });
    expect(decisionSetters(owner, "user:u1", key(), { name: "x" } as never)).toEqual({});
  });
});
