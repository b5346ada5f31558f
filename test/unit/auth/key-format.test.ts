import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { detectKeyFormat, fromHex, generateKey, hashKey, keyEnv, keyPrefix, matchesKeyFormat, toHex } from "../../../src/auth/key-format";

const ILAL = /^ilal_(test|live)_[0-9a-f]{48}$/;
const ILA = /^ila_[A-Za-z0-9]{72}$/;

describe("generateKey", () => {
  afterEach(() => vi.restoreAllMocks());

  it("makes ilal live and test keys of the SPEC pattern", () => {
    expect(generateKey("ilal", "live")).toMatch(ILAL);
    expect(generateKey("ilal", "live").startsWith("ilal_live_")).toBe(true);
    expect(generateKey("ilal", "test").startsWith("ilal_test_")).toBe(true);
  });

  it("makes ila keys of the SPEC pattern, with no environment", () => {
    const key = generateKey("ila", "test");
    expect(key).toMatch(ILA);
  });

  it("draws its randomness from crypto.getRandomValues", () => {
    const spy = vi.spyOn(crypto, "getRandomValues");
    generateKey("ilal");
    generateKey("ila");
    expect(spy).toHaveBeenCalled();
  });

  it("turns fixed random bytes into the expected characters (no Math.random)", () => {
    vi.spyOn(Math, "random").mockImplementation(() => {
      throw new Error("Math.random must not be used for keys");
    });
    vi.spyOn(crypto, "getRandomValues").mockImplementation(<T extends ArrayBufferView | null>(array: T): T => {
      new Uint8Array(array!.buffer).fill(0xab);
      return array;
    });
    // 0xab % 16 = 11 → "b"
    expect(generateKey("ilal", "live")).toBe(`ilal_live_${"b".repeat(48)}`);
  });

  it("never repeats a key across many generations", () => {
    const keys = new Set(Array.from({ length: 500 }, () => generateKey("ilal")));
    expect(keys.size).toBe(500);
  });

  it("uses every hex digit and the whole alphanumeric alphabet over many keys", () => {
    const hex = new Set(Array.from({ length: 50 }, () => generateKey("ilal").slice(10)).join(""));
    expect(hex.size).toBe(16);
    const alnum = new Set(Array.from({ length: 50 }, () => generateKey("ila").slice(4)).join(""));
    expect(alnum.size).toBe(62);
  });
});

describe("detectKeyFormat", () => {
  it("recognises each enabled format by its prefix and underscore", () => {
    expect(detectKeyFormat("ilal_live_x", ["ilal", "ila"])).toBe("ilal");
    expect(detectKeyFormat("ila_x", ["ilal", "ila"])).toBe("ila");
  });

  it("does not take ilal for ila or a bare name for a key", () => {
    expect(detectKeyFormat("ilal_live_x", ["ila"])).toBeUndefined();
    expect(detectKeyFormat("ila", ["ilal", "ila"])).toBeUndefined();
    expect(detectKeyFormat("eyJhbGciOiJFUzI1NiJ9.e30.sig", ["ilal", "ila"])).toBeUndefined();
  });

  it("ignores formats that are not enabled", () => {
    expect(detectKeyFormat("ila_x", ["ilal"])).toBeUndefined();
  });
});

describe("matchesKeyFormat", () => {
  const hex48 = "0123456789abcdef".repeat(3);
  const alnum72 = "Ab3".repeat(24);

  it("accepts exact ilal keys", () => {
    expect(matchesKeyFormat(`ilal_live_${hex48}`, "ilal")).toBe(true);
    expect(matchesKeyFormat(`ilal_test_${hex48}`, "ilal")).toBe(true);
  });

  it.each([
    ["uppercase hex", `ilal_live_${hex48.toUpperCase()}`],
    ["47 characters", `ilal_live_${hex48.slice(1)}`],
    ["49 characters", `ilal_live_${hex48}0`],
    ["unknown environment", `ilal_prod_${hex48}`],
    ["non-hex letter", `ilal_live_${hex48.slice(1)}g`],
    ["trailing newline", `ilal_live_${hex48}\n`],
  ])("refuses an ilal key with %s", (_label, key) => {
    expect(matchesKeyFormat(key, "ilal")).toBe(false);
  });

  it("accepts exact ila keys", () => {
    expect(matchesKeyFormat(`ila_${alnum72}`, "ila")).toBe(true);
  });

  it.each([
    ["71 characters", `ila_${alnum72.slice(1)}`],
    ["a dash", `ila_${alnum72.slice(1)}-`],
    ["an underscore", `ila_${alnum72.slice(1)}_`],
  ])("refuses an ila key with %s", (_label, key) => {
    expect(matchesKeyFormat(key, "ila")).toBe(false);
  });
});

describe("keyPrefix", () => {
  it("keeps everything up to 8 characters after the last underscore (SPEC section 2)", () => {
    expect(keyPrefix(`ilal_live_3f9a1c2b${"0".repeat(40)}`)).toBe("ilal_live_3f9a1c2b");
    expect(keyPrefix(`ila_Q7xK2mPz${"a".repeat(64)}`)).toBe("ila_Q7xK2mPz");
  });
});

describe("keyEnv", () => {
  it("reads live/test from ilal keys and null for ila", () => {
    expect(keyEnv(generateKey("ilal", "test"), "ilal")).toBe("test");
    expect(keyEnv(generateKey("ilal", "live"), "ilal")).toBe("live");
    expect(keyEnv(generateKey("ila"), "ila")).toBeNull();
  });
});

describe("hashKey", () => {
  it("is the lowercase hex SHA-256 of the key's UTF-8 bytes", async () => {
    // Known vector: SHA-256("abc").
    expect(await hashKey("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(await hashKey(generateKey("ila"))).toMatch(/^[0-9a-f]{64}$/);
  });

  it("round-trips bytes through toHex and fromHex", () => {
    const bytes = new Uint8Array([0, 1, 15, 16, 127, 128, 254, 255]);
    expect(toHex(bytes)).toBe("00010f107f80feff");
    expect(fromHex(toHex(bytes))).toEqual(bytes);
  });

  it("agrees with an independent hex codec (Number#toString / parseInt) on any bytes, in either case", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const reference = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
        expect(toHex(bytes)).toBe(reference);
        expect(fromHex(reference)).toEqual(bytes);
        expect(fromHex(reference.toUpperCase())).toEqual(bytes);
      }),
    );
  });

  it("decodes nothing from text that is not hex of an even length (it then matches no stored digest)", () => {
    for (const text of ["abc", "0g", "zz", "0x12", "12 3", "é1", "ab\u0000"]) expect(fromHex(text), text).toEqual(new Uint8Array(0));
  });
});
