import { describe, expect, it } from "vitest";
import { ipAllowed, isValidIpRange, parseIp } from "../../../src/auth/ip-allowlist";

describe("ipAllowed", () => {
  it("allows any address, or none at all, when the allowlist is empty", () => {
    expect(ipAllowed("203.0.113.9", [])).toBe(true);
    expect(ipAllowed(null, [])).toBe(true);
  });

  it("matches an exact IPv4 address and nothing next to it", () => {
    expect(ipAllowed("203.0.113.9", ["203.0.113.9"])).toBe(true);
    expect(ipAllowed("203.0.113.10", ["203.0.113.9"])).toBe(false);
  });

  it("matches IPv4 CIDR ranges at their edges", () => {
    const list = ["198.51.100.0/24"];
    expect(ipAllowed("198.51.100.0", list)).toBe(true);
    expect(ipAllowed("198.51.100.255", list)).toBe(true);
    expect(ipAllowed("198.51.101.0", list)).toBe(false);
    expect(ipAllowed("198.51.99.255", list)).toBe(false);
    expect(ipAllowed("10.1.2.3", ["10.0.0.0/8"])).toBe(true);
    expect(ipAllowed("11.0.0.0", ["10.0.0.0/8"])).toBe(false);
    expect(ipAllowed("192.0.2.77", ["192.0.2.64/26"])).toBe(true);
    expect(ipAllowed("192.0.2.128", ["192.0.2.64/26"])).toBe(false);
  });

  it("treats a range written with host bits set as its network", () => {
    expect(ipAllowed("198.51.100.7", ["198.51.100.200/24"])).toBe(true);
  });

  it("lets 0.0.0.0/0 admit every IPv4 address but no IPv6 one", () => {
    expect(ipAllowed("8.8.8.8", ["0.0.0.0/0"])).toBe(true);
    expect(ipAllowed("2001:db8::1", ["0.0.0.0/0"])).toBe(false);
  });

  it("matches exact IPv6 addresses in any spelling", () => {
    const list = ["2001:db8::1"];
    expect(ipAllowed("2001:db8::1", list)).toBe(true);
    expect(ipAllowed("2001:0db8:0000:0000:0000:0000:0000:0001", list)).toBe(true);
    expect(ipAllowed("2001:DB8::1", list)).toBe(true);
    expect(ipAllowed("2001:db8::2", list)).toBe(false);
  });

  it("matches IPv6 CIDR ranges at their edges", () => {
    const list = ["2001:db8:abcd::/48"];
    expect(ipAllowed("2001:db8:abcd::", list)).toBe(true);
    expect(ipAllowed("2001:db8:abcd:ffff:ffff:ffff:ffff:ffff", list)).toBe(true);
    expect(ipAllowed("2001:db8:abce::", list)).toBe(false);
    expect(ipAllowed("2001:db8::1", ["2001:db8::/127"])).toBe(true);
    expect(ipAllowed("2001:db8::2", ["2001:db8::/127"])).toBe(false);
  });

  it("matches an IPv4-mapped IPv6 client address against an IPv4 range", () => {
    expect(ipAllowed("::ffff:198.51.100.7", ["198.51.100.0/24"])).toBe(true);
    expect(ipAllowed("::ffff:c633:6407", ["198.51.100.0/24"])).toBe(true);
    expect(ipAllowed("::ffff:198.51.101.7", ["198.51.100.0/24"])).toBe(false);
  });

  it("does not match an IPv4 address against an unrelated IPv6 range", () => {
    expect(ipAllowed("198.51.100.7", ["2001:db8::/32"])).toBe(false);
  });

  it("allows when any entry of a mixed list matches", () => {
    const list = ["203.0.113.9", "2001:db8::/32", "10.0.0.0/8"];
    expect(ipAllowed("2001:db8:1::5", list)).toBe(true);
    expect(ipAllowed("10.200.0.1", list)).toBe(true);
    expect(ipAllowed("172.16.0.1", list)).toBe(false);
  });

  it("refuses a missing, empty or unparsable client address when a list is set", () => {
    const list = ["0.0.0.0/0", "::/0"];
    expect(ipAllowed(null, list)).toBe(false);
    expect(ipAllowed(undefined, list)).toBe(false);
    expect(ipAllowed("", list)).toBe(false);
    expect(ipAllowed("not-an-ip", list)).toBe(false);
    expect(ipAllowed("1.2.3.4, 5.6.7.8", list)).toBe(false);
  });

  it("skips unparsable allowlist entries instead of matching everything", () => {
    expect(ipAllowed("1.2.3.4", ["garbage", "1.2.3.0/99"])).toBe(false);
  });
});

describe("isValidIpRange", () => {
  it.each(["1.2.3.4", "1.2.3.0/24", "0.0.0.0/0", "::", "::/0", "2001:db8::/32", "::ffff:1.2.3.4", "fe80::1%eth0", "1:2:3:4:5:6:7:8/128"])(
    "accepts %s",
    (text) => {
      expect(isValidIpRange(text)).toBe(true);
    },
  );

  it.each([
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.4/33",
    "1.2.3.4/",
    "1.2.3.4/24/1",
    "2001:db8::/129",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    "12345::",
    "::ffff:1.2.3.256",
    "example.com",
  ])("refuses %s", (text) => {
    expect(isValidIpRange(text)).toBe(false);
  });
});

describe("parseIp", () => {
  it("places IPv4 in the IPv4-mapped IPv6 space", () => {
    expect(parseIp("1.2.3.4")).toBe(parseIp("::ffff:1.2.3.4"));
    expect(parseIp("1.2.3.4")).toBe((0xffffn << 32n) | 0x01020304n);
  });

  it("expands :: to the missing zero groups", () => {
    expect(parseIp("1::")).toBe(1n << 112n);
    expect(parseIp("::1")).toBe(1n);
  });
});
