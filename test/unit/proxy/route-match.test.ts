import { describe, expect, it } from "vitest";
import type { Product } from "../../../src/db/products";
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

  it("is case-sensitive, as URL paths are", () => {
    expect(matchProduct(products, "/API/a")).toBeUndefined();
  });

  it("refuses a path that routes elsewhere once an origin decodes and normalizes it", () => {
    const b = product("/api/b");
    expect(matchProduct([a, b], "/api/a/..%2Fb/x")).toBeUndefined();
    expect(matchProduct([a, b], "/api/a/x%2F..%2F..%2Fb")).toBeUndefined();
    expect(matchProduct([a, b], "/api%2Fb/x")).toBeUndefined();
  });

  it("routes paths whose escapes and doubled slashes stay inside the product", () => {
    expect(matchProduct(products, "/api/a/x%2F..%2Fy")).toBe(a);
    expect(matchProduct(products, "/api/a//x")).toBe(a);
    expect(matchProduct(products, "/api/a/%7Euser")).toBe(a);
  });

  it("refuses a doubled slash that normalizes into a longer prefix", () => {
    expect(matchProduct(products, "/api/a//b/c")).toBeUndefined(); // as written /api/a, normalized /api/a/b
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
