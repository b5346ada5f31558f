/**
 * IP allowlists: single IPv4/IPv6 addresses and CIDR ranges. Pure.
 * Addresses are compared as 128-bit integers; IPv4 lives in the
 * IPv4-mapped range (::ffff:0:0/96) so `::ffff:1.2.3.4` matches `1.2.3.0/24`.
 */

interface Range {
  base: bigint;
  bits: number; // prefix length in the 128-bit space
}

const V4_MAPPED = 0xffffn << 32n;

function parseIPv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIPv6(text: string): bigint | undefined {
  let head = text;
  let tail32: bigint | undefined;
  // An embedded IPv4 tail (e.g. ::ffff:192.0.2.1) stands for the last two groups.
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".", lastColon)) {
    tail32 = parseIPv4(text.slice(lastColon + 1));
    if (tail32 === undefined) return undefined;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groupsOf(halves[0]!);
  const right = halves.length === 2 ? groupsOf(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...right];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  return tail32 === undefined ? value : (value & ~0xffffffffn) | tail32;
}

/** An address as a 128-bit integer, or undefined when it is not one. */
export function parseIp(text: string): bigint | undefined {
  if (text.includes(":")) return parseIPv6(text.replace(/%.*$/, "")); // drop a zone id
  const v4 = parseIPv4(text);
  return v4 === undefined ? undefined : V4_MAPPED | v4;
}

/** A single address or CIDR range, or undefined when the text is neither. */
export function parseIpRange(text: string): Range | undefined {
  const [address, length, extra] = text.trim().split("/");
  if (extra !== undefined || address === undefined) return undefined;
  const base = parseIp(address);
  if (base === undefined) return undefined;
  const isV4 = !address.includes(":");
  const max = isV4 ? 32 : 128;
  if (length !== undefined && !/^(0|[1-9]\d{0,2})$/.test(length)) return undefined;
  const prefix = length === undefined ? max : Number(length);
  if (prefix > max) return undefined;
  const bits = isV4 ? 96 + prefix : prefix;
  return { base: mask(base, bits), bits };
}

function mask(value: bigint, bits: number): bigint {
  const hostBits = BigInt(128 - bits);
  return (value >> hostBits) << hostBits;
}

export function isValidIpRange(text: string): boolean {
  return parseIpRange(text) !== undefined;
}

/**
 * Whether `ip` is inside any range of the allowlist. An empty allowlist allows
 * any address; a missing or unparsable client address matches no range.
 */
export function ipAllowed(ip: string | null | undefined, allowlist: readonly string[]): boolean {
  if (allowlist.length === 0) return true;
  const address = ip ? parseIp(ip.trim()) : undefined;
  if (address === undefined) return false;
  return allowlist.some((entry) => {
    const range = parseIpRange(entry);
    return range !== undefined && mask(address, range.bits) === range.base;
  });
}
