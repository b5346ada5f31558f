import { describe, expect, it } from "vitest";
import type { Product } from "../../../src/db/products";
import { canonicalPath } from "../../../src/proxy/canonical-path";
import { matchProduct, relativePath } from "../../../src/proxy/route-match";
import { productRecord } from "../../helpers/records";

function product(pathPrefix: string): Product {
  return productRecord({ id: pathPrefix, slug: pathPrefix.replace(/\W+/g, "-"), name: pathPrefix, pathPrefix, originUrl: "https://origin.test" });
}

describe("matchProduct", () => {
  const a = product("/api/a");
  const ab = product("/api/a/b");
  const defi = product("/api/v1/defi");
  const products = [a, ab, defi];

  it("matches the prefix itself and paths below it", () => {
    expect(matchProduct(products, "/api/a")).toBe(a);
    expect(matchProduct(products, "/api/a/")).toBe(a);
    expect(matchProduct(products, "/api/a/x/y")).toBe(a);
    expect(matchProduct(products, "/api/v1/defi/swap")).toBe(defi);
  });

  it("picks the longest matching prefix, whatever the list order", () => {
    expect(matchProduct(products, "/api/a/b")).toBe(ab);
    expect(matchProduct(products, "/api/a/b/c")).toBe(ab);
    expect(matchProduct([...products].reverse(), "/api/a/b/c")).toBe(ab);
    expect(matchProduct([...products].reverse(), "/api/a/bc")).toBe(a);
  });

  it("never matches a look-alike that merely starts with the prefix text", () => {
    expect(matchProduct(products, "/api/aX")).toBeUndefined();
    expect(matchProduct(products, "/api/v1/defiX/swap")).toBeUndefined();
    expect(matchProduct([ab], "/api/a/bb")).toBeUndefined();
  });

  it("matches nothing outside every prefix", () => {
    expect(matchProduct(products, "/")).toBeUndefined();
    expect(matchProduct(products, "/api")).toBeUndefined();
    expect(matchProduct([], "/api/a")).toBeUndefined();
  });

  it("is case-sensitive: another case of a prefix routes nowhere, never past a product's rules", () => {
    expect(matchProduct(products, "/API/a")).toBeUndefined();
  });

  it("routes the canonical path, which is also the one forwarded, so no spelling routes one way and is served another", () => {
    const b = product("/api/b");
    const route = (raw: string) => {
      const canonical = canonicalPath(raw);
      return canonical.ok ? matchProduct([a, b, ab], canonical.path) : "refused";
    };
    expect(route("/api/a/%2E%2E/b/x")).toBe(b);
    expect(route("/api/a/x/%2e%2e/%2e%2e/b")).toBe(b);
    expect(route("/api/a//b/c")).toBe(ab);
    expect(route("/api/a/x/%2E%2E/y")).toBe(a);
    expect(route("/api/%61/x")).toBe(a);
    expect(route("/api/a/%7Euser")).toBe(a);
    // Spellings whose meaning differs between origins never reach routing.
    expect(route("/api/a/..%2Fb/x")).toBe("refused");
    expect(route("/api%2Fb/x")).toBe("refused");
    expect(route("/api/a/..;/b")).toBe("refused");
  });

  it("treats a prefix stored with a trailing slash like one without", () => {
    const slashed = product("/api/s/");
    expect(matchProduct([slashed], "/api/s")).toBe(slashed);
    expect(matchProduct([slashed], "/api/s/x")).toBe(slashed);
    expect(matchProduct([slashed, product("/api/s/x")], "/api/s/x/1")?.pathPrefix).toBe("/api/s/x");
  });
});

describe("relativePath", () => {
  it("is the path after the prefix, always starting with /", () => {
    const a = product("/api/a");
    expect(relativePath(a, "/api/a/swap/1")).toBe("/swap/1");
    expect(relativePath(a, "/api/a")).toBe("/");
    expect(relativePath(a, "/api/a/")).toBe("/");
    expect(relativePath(product("/api/a/"), "/api/a/swap")).toBe("/swap");
  });
});
