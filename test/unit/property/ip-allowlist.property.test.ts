import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ipAllowed, parseIp, parseIpRange } from "../../../src/auth/ip-allowlist";

/**
 * The CIDR matcher under generated addresses and ranges, checked against a
 * reference implementation that works on bit strings: an address is inside
 * base/len iff their first len bits are equal.
 */
const RUNS = { numRuns: 400 };

// ---- reference implementation: addresses as arrays of bits ----

const bitsOf = (value: number, width: number): number[] => Array.from({ length: width }, (_, i) => (value >> (width - 1 - i)) & 1);
const v4Bits = (octets: number[]): number[] => octets.flatMap((octet) => bitsOf(octet, 8));
const v6Bits = (groups: number[]): number[] => groups.flatMap((group) => bitsOf(group, 16));
const samePrefix = (a: number[], b: number[], length: number): boolean => a.slice(0, length).every((bit, i) => bit === b[i]);

const fromBits = (bits: number[], width: number): number[] =>
  Array.from({ length: bits.length / width }, (_, i) => bits.slice(i * width, (i + 1) * width).reduce((n, bit) => n * 2 + bit, 0));

/** `head` bits of `a` followed by the rest of `b`: an address inside a's /head (or deliberately near it). */
const splice = (a: number[], b: number[], head: number): number[] => [...a.slice(0, head), ...b.slice(head)];

// ---- generators ----

const octets = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 });
const groups = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });
const v4Text = (o: number[]) => o.join(".");
const v6Full = (g: number[]) => g.map((group) => group.toString(16)).join(":");
/** The same address with its longest run of zero groups written "::" (RFC 5952 style, lengths ≥ 1 allowed). */
function v6Compressed(g: number[]): string {
  let best = { start: -1, length: 0 };
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && g[start + length] === 0) length++;
    if (length > best.length) best = { start, length };
  }
  if (best.length === 0) return v6Full(g);
  const hexes = g.map((group) => group.toString(16));
  return `${hexes.slice(0, best.start).join(":")}::${hexes.slice(best.start + best.length).join(":")}`;
}
/** Groups with runs of zeros, so "::" compression is exercised. */
const sparseGroups = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 });

const anyText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF:./%-x "), maxLength: 50 }),
  fc.ipV4Extended(),
  fc.ipV6(),
  fc.tuple(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: -5, max: 200 })).map(([ip, length]) => `${ip}/${length}`),
);

describe("parseIp, parseIpRange and ipAllowed on generated text", () => {
  it("never throw, whatever the address and the allowlist entries", () => {
    fc.assert(
      fc.property(fc.option(anyText, { nil: null }), fc.array(anyText, { maxLength: 5 }), (ip, allowlist) => {
        expect(typeof ipAllowed(ip, allowlist)).toBe("boolean");
        for (const entry of allowlist) parseIpRange(entry);
        if (ip !== null) parseIp(ip);
      }),
      RUNS,
    );
  });

  it("refuse every address against an allowlist of nothing but unparsable entries, and allow any with an empty list", () => {
    const garbage = fc.string({ unit: fc.constantFrom(..."ghijkz!@#$ "), minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.array(garbage, { minLength: 1, maxLength: 4 }), (ip, allowlist) => {
        expect(ipAllowed(ip, allowlist)).toBe(false);
        expect(ipAllowed(ip, [])).toBe(true);
      }),
      RUNS,
    );
  });
});

describe("every address against its own and the widest ranges", () => {
  it("puts an IPv4 address inside itself, its /32 and 0.0.0.0/0, and inside ::/0", () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        for (const range of [ip, `${ip}/32`, "0.0.0.0/0", "::/0"]) expect(ipAllowed(ip, [range]), range).toBe(true);
      }),
      RUNS,
    );
  });

  it("puts an IPv6 address in any of fast-check's spellings inside itself, its /128 and ::/0", () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        for (const range of [ip, `${ip}/128`, "::/0"]) expect(ipAllowed(ip, [range]), range).toBe(true);
      }),
      RUNS,
    );
  });

  it("keeps an IPv6 address outside 0.0.0.0/0 unless it is IPv4-mapped", () => {
    fc.assert(
      fc.property(groups, (g) => {
        const mapped = g.slice(0, 6).every((group, i) => group === (i === 5 ? 0xffff : 0));
        expect(ipAllowed(v6Full(g), ["0.0.0.0/0"])).toBe(mapped);
      }),
      RUNS,
    );
  });

  it("judges ::ffff:a.b.c.d and ::ffff:hhhh:hhhh exactly as a.b.c.d, against any IPv4 range", () => {
    fc.assert(
      fc.property(octets, octets, fc.integer({ min: 0, max: 32 }), (address, base, length) => {
        const list = [`${v4Text(base)}/${length}`];
        const expected = ipAllowed(v4Text(address), list);
        const hexTail = [((address[0]! << 8) | address[1]!).toString(16), ((address[2]! << 8) | address[3]!).toString(16)].join(":");
        expect(ipAllowed(`::ffff:${v4Text(address)}`, list)).toBe(expected);
        expect(ipAllowed(`::ffff:${hexTail}`, list)).toBe(expected);
        expect(ipAllowed(`0:0:0:0:0:ffff:${v4Text(address)}`, list)).toBe(expected);
      }),
      RUNS,
    );
  });
});

describe("membership against the bit-string reference", () => {
  it("puts an IPv4 address inside base/len iff its first len bits equal the base's", () => {
    fc.assert(
      fc.property(octets, octets, fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 32 }), (base, other, length, shared) => {
        // Half the cases share `shared` leading bits with the base, so both answers occur often.
        const addressBits = splice(v4Bits(base), v4Bits(other), shared);
        const address = v4Text(fromBits(addressBits, 8));
        const expected = samePrefix(addressBits, v4Bits(base), length);
        expect(ipAllowed(address, [`${v4Text(base)}/${length}`]), `${address} in ${v4Text(base)}/${length}`).toBe(expected);
      }),
      RUNS,
    );
  });

  it("puts an IPv6 address (full or compressed spelling) inside base/len iff its first len bits equal the base's", () => {
    fc.assert(
      fc.property(
        sparseGroups,
        sparseGroups,
        fc.integer({ min: 0, max: 128 }),
        fc.integer({ min: 0, max: 128 }),
        fc.boolean(),
        (base, other, length, shared, compress) => {
          const addressBits = splice(v6Bits(base), v6Bits(other), shared);
          const addressGroups = fromBits(addressBits, 16);
          const spell = compress ? v6Compressed : v6Full;
          const address = spell(addressGroups);
          const range = `${spell(base)}/${length}`;
          expect(parseIp(address), address).toBe(BigInt(`0x${addressGroups.map((g) => g.toString(16).padStart(4, "0")).join("")}`));
          expect(ipAllowed(address, [range]), `${address} in ${range}`).toBe(samePrefix(addressBits, v6Bits(base), length));
        },
      ),
      RUNS,
    );
  });

  it("allows an address iff some entry of a mixed allowlist contains it", () => {
    const entry = fc.tuple(octets, fc.integer({ min: 0, max: 32 }));
    fc.assert(
      fc.property(
        octets,
        fc.array(entry, { maxLength: 4 }),
        fc.array(fc.constantFrom("junk", "10.0.0.0/33", "::g"), { maxLength: 2 }),
        (address, entries, junk) => {
          const list = [...entries.map(([base, length]) => `${v4Text(base)}/${length}`), ...junk];
          const expected = entries.some(([base, length]) => samePrefix(v4Bits(address), v4Bits(base), length));
          expect(ipAllowed(v4Text(address), list)).toBe(entries.length === 0 && junk.length === 0 ? true : expected);
        },
      ),
      RUNS,
    );
  });
});
