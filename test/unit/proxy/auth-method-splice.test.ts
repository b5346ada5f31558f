import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { spliceAuthMethod, spliceAuthMethodBytes, type SplicedMethod } from "../../../src/proxy/auth-method-splice";

/**
 * The streaming authMethod splice: examples, then a differential property
 * test against a reference that buffers the whole body and judges it with
 * TextDecoder (fatal) and JSON.parse. The whole-body form (small answers
 * with a declared length) is held to the same reference in the same runs.
 */

const encoder = new TextEncoder();
const MIB = 1_048_576;
const BOM = [0xef, 0xbb, 0xbf];

const bytesOf = (value: string | number[]): Uint8Array => (typeof value === "string" ? encoder.encode(value) : new Uint8Array(value));

/** `bytes` cut into chunks of the given sizes (cycled); the last chunk takes what is left. */
function chunked(bytes: Uint8Array, sizes: readonly number[] = [bytes.byteLength || 1]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (let s = 0; at < bytes.byteLength; s++) {
    const size = Math.max(1, sizes[s % sizes.length]!);
    chunks.push(bytes.slice(at, at + size)); // copies: each chunk its own buffer, as from a network
    at += size;
  }
  return chunks;
}

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next < chunks.length) controller.enqueue(chunks[next++]!);
      else controller.close();
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const reader = stream.getReader();
  const out: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return out;
    out.push(value);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

async function splice(input: string | number[] | Uint8Array, options: { method?: SplicedMethod; max?: number; sizes?: number[] } = {}): Promise<Uint8Array> {
  const bytes = input instanceof Uint8Array ? input : bytesOf(input);
  return concat(await collect(spliceAuthMethod(streamOf(chunked(bytes, options.sizes)), options.method ?? "api_key", options.max ?? MIB)));
}

const text = (bytes: Uint8Array) => new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(bytes);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Every way of chunking worth trying on a short example: whole, 1-byte chunks, and odd sizes. */
const CHUNKINGS = [undefined, [1], [2], [3, 1, 5], [7]];

async function expectSpliced(input: string | number[], expected: string | number[], options: { method?: SplicedMethod; max?: number } = {}) {
  for (const sizes of CHUNKINGS) {
    const out = await splice(input, { ...options, ...(sizes ? { sizes } : {}) });
    expect(text(out), `chunks of ${JSON.stringify(sizes ?? "all")}`).toBe(text(bytesOf(expected)));
    expect(sameBytes(out, bytesOf(expected)), `bytes, chunks of ${JSON.stringify(sizes ?? "all")}`).toBe(true);
  }
}

async function expectUntouched(input: string | number[], options: { max?: number } = {}) {
  await expectSpliced(input, input, options);
}

describe("spliceAuthMethod: a JSON object gets the field before its closing brace", () => {
  it("splices into flat and nested objects, keeping every other byte", async () => {
    await expectSpliced('{"a":1}', '{"a":1,"authMethod":"api_key"}');
    await expectSpliced('{"a":{"b":{"c":[1,{"d":2},[]]}},"e":[{}]}', '{"a":{"b":{"c":[1,{"d":2},[]]}},"e":[{}],"authMethod":"api_key"}');
    await expectSpliced('{"a":1}', '{"a":1,"authMethod":"jwt"}', { method: "jwt" });
  });

  it("is not misled by braces, quotes, escaped quotes and backslashes inside strings", async () => {
    await expectSpliced('{"s":"}{\\"}\\\\","t":"\\\\","u":"\\"}"}', '{"s":"}{\\"}\\\\","t":"\\\\","u":"\\"}","authMethod":"api_key"}');
    await expectSpliced('{"}":"{","\\\\\\"":"]"}', '{"}":"{","\\\\\\"":"]","authMethod":"api_key"}');
  });

  it("keeps multi-byte UTF-8 split across chunks as sent", async () => {
    await expectSpliced('{"name":"café 日本 😀 \u{10FFFF}"}', '{"name":"café 日本 😀 \u{10FFFF}","authMethod":"api_key"}');
  });

  it("keeps numbers and escapes byte-exact (big integers, exponents, \\u escapes)", async () => {
    const body = '{"id": 12345678901234567890123, "price": 1.10, "e": -0.5E+07, "z": -0, "name": "caf\\u00e9\\ud83d\\ude00\\/"}';
    await expectSpliced(body, `${body.slice(0, -1)},"authMethod":"api_key"}`);
  });

  it("adds no comma to an empty object, and keeps whitespace inside and after it", async () => {
    await expectSpliced("{}", '{"authMethod":"api_key"}');
    await expectSpliced(" \t{ \r\n } \n", ' \t{ \r\n "authMethod":"api_key"} \n');
    await expectSpliced('{"a" : [ 1 , 2 ] }\r\n', '{"a" : [ 1 , 2 ] ,"authMethod":"api_key"}\r\n');
  });

  it("keeps a leading UTF-8 BOM, even split across chunks", async () => {
    await expectSpliced([...BOM, ...bytesOf('{"a":1}')], [...BOM, ...bytesOf('{"a":1,"authMethod":"api_key"}')]);
  });

  it("splices into a nested authMethod's object only at the top level", async () => {
    await expectSpliced('{"x":{"authMethod":"inner"},"y":[{"authMethod":1}]}', '{"x":{"authMethod":"inner"},"y":[{"authMethod":1}],"authMethod":"api_key"}');
  });

  it("treats keys that only resemble authMethod as other keys", async () => {
    for (const key of ["authmethod", "authMethod2", "authMetho", "AuthMethod", "authMethod\\u0000", "auth\\u004dethod\\u0020", " authMethod"]) {
      await expectSpliced(`{"${key}":1}`, `{"${key}":1,"authMethod":"api_key"}`);
    }
  });
});

describe("spliceAuthMethod: an origin's own top-level authMethod gets our value in place", () => {
  it("replaces the value, whatever its type, keeping the key, its position and the whitespace around it", async () => {
    await expectSpliced('{"authMethod":"origin","a":1}', '{"authMethod":"api_key","a":1}');
    await expectSpliced('{"a":1, "authMethod" : {"x":{"y":[1,"}"]}} , "b":2}', '{"a":1, "authMethod" : "api_key" , "b":2}');
    await expectSpliced('{"authMethod":[1,[2],{"3":4}]}', '{"authMethod":"jwt"}', { method: "jwt" });
    await expectSpliced('{"authMethod":"a\\"b\\\\"}', '{"authMethod":"api_key"}');
    await expectSpliced('{"authMethod":-1.5e3}', '{"authMethod":"api_key"}');
    await expectSpliced('{"authMethod":-1.5e3 }', '{"authMethod":"api_key" }');
    await expectSpliced('{"authMethod":true,"b":null}', '{"authMethod":"api_key","b":null}');
    await expectSpliced('{"authMethod":null}\n', '{"authMethod":"api_key"}\n');
    await expectSpliced('{"authMethod":0}', '{"authMethod":"api_key"}');
  });

  it("compares the decoded key, so escaped spellings count", async () => {
    await expectSpliced('{"auth\\u004dethod":"x"}', '{"auth\\u004dethod":"api_key"}');
    await expectSpliced('{"\\u0061uth\\u004DethoD":"x","b":1}', '{"\\u0061uth\\u004DethoD":"x","b":1,"authMethod":"api_key"}'); // "authMethoD": another key
    const allEscaped = [..."authMethod"].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("");
    expect(allEscaped).toHaveLength(60);
    await expectSpliced(`{"${allEscaped}":1}`, `{"${allEscaped}":"api_key"}`);
  });

  it("replaces every duplicate", async () => {
    await expectSpliced(
      '{"authMethod":1,"b":2,"auth\\u004dethod":[3],"authMethod":{}}',
      '{"authMethod":"api_key","b":2,"auth\\u004dethod":"api_key","authMethod":"api_key"}',
    );
  });

  it("leaves the original bytes when the body turns out invalid or over the cap after the key", async () => {
    await expectUntouched('{"authMethod":"x","a":}');
    await expectUntouched('{"authMethod":"x"}garbage');
    await expectUntouched('{"authMethod":"x","a":1');
    await expectUntouched('{"authMethod":"x","a":"yyyyyyyy"}', { max: 30 });
  });
});

describe("spliceAuthMethod: anything else comes out byte-identical", () => {
  it("passes top-level arrays, strings, numbers and literals through", async () => {
    for (const body of ["[1,2,3]", "[]", '[{"a":1}]', '"text"', '"{}"', "42", "-1.5e3", "null", "true", "false", " [ ] ", ""]) await expectUntouched(body);
  });

  it("passes invalid JSON through", async () => {
    for (const body of [
      '{"a":}',
      '{"a":1,}',
      "{'a':1}",
      '{"a":01}',
      '{"a":1.}',
      '{"a":.5}',
      '{"a":1e}',
      '{"a":+1}',
      '{"a":-}',
      '{"a":"\u0001"}',
      '{"a":"\t"}',
      '{"a":"\\q"}',
      '{"a":"\\u12G4"}',
      '{"a":tru}',
      '{"a":nul}',
      '{"a":True}',
      '{"a" 1}',
      '{"a":1]',
      '{"a":[1}',
      '{"a":[1,]}',
      '{"a":1 "b":2}',
      "{a:1}",
      '{"a":1',
      '{"a":"unterminated}',
      "{",
      '{"a":NaN}',
      '{"a":Infinity}',
      '{"a":1}\u00a0',
    ]) {
      await expectUntouched(body);
    }
  });

  it("passes bodies with invalid UTF-8 through, as a fatal TextDecoder refuses them", async () => {
    const head = bytesOf('{"a":"');
    const tail = bytesOf('"}');
    for (const bad of [
      [0xc0, 0x80],
      [0xc1, 0xbf],
      [0xe0, 0x80, 0x80],
      [0xed, 0xa0, 0x80],
      [0xf0, 0x80, 0x80, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xf5, 0x80, 0x80, 0x80],
      [0x80],
      [0xbf],
      [0xe6, 0x97],
      [0xff],
    ]) {
      await expectUntouched([...head, ...bad, ...tail]);
    }
    await expectUntouched([0x7b, 0xc3, 0xa9, 0x7d]); // non-ASCII outside a string
  });

  it("passes trailing garbage through", async () => {
    for (const body of ['{"a":1}x', '{"a":1}{}', '{"a":1} \n x', "{}}", "{}\u0000", '{"a":1}]']) await expectUntouched(body);
  });

  it("tolerates a BOM at the very start only", async () => {
    await expectUntouched([0x20, ...BOM, ...bytesOf("{}")]);
    await expectUntouched([0xef, 0xbb, ...bytesOf("{}")]);
    await expectUntouched([...BOM, ...BOM, ...bytesOf("{}")]);
  });

  it("splices into a body of exactly maxBytes, not into one of maxBytes + 1", async () => {
    const body = '{"a":"xxxxxxxx"}';
    await expectSpliced(body, '{"a":"xxxxxxxx","authMethod":"api_key"}', { max: body.length });
    await expectUntouched(body, { max: body.length - 1 });
    await expectUntouched(`${body} `, { max: body.length }); // trailing whitespace counts
    await expectSpliced([...BOM, ...bytesOf(body)], [...BOM, ...bytesOf('{"a":"xxxxxxxx","authMethod":"api_key"}')], { max: body.length + 3 });
    await expectUntouched([...BOM, ...bytesOf(body)], { max: body.length + 2 }); // the BOM counts
  });

  it("passes a long body over the cap through, whatever follows", async () => {
    const body = `{"a":"${"x".repeat(5000)}"}`;
    await expectUntouched(body, { max: 4096 });
    const out = await splice(`${body}garbage[`, { max: 4096, sizes: [1000] });
    expect(text(out)).toBe(`${body}garbage[`);
  });
});

describe("spliceAuthMethod as a stream", () => {
  it("passes each chunk on as it arrives, the same chunk when nothing of it is held", async () => {
    const first = bytesOf(`{"a":"${"x".repeat(1000)}`);
    const second = bytesOf('","b":[1,2]');
    const last = bytesOf("}\n");
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const source = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    const reader = spliceAuthMethod(source, "api_key", MIB).getReader();

    controller.enqueue(first);
    const a = await reader.read();
    expect(a.value).toBe(first); // no copy, and before the body is complete
    controller.enqueue(second);
    expect((await reader.read()).value).toBe(second);
    controller.enqueue(last);
    controller.close();
    const rest: Uint8Array[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest.push(r.value);
    expect(text(concat(rest))).toBe(',"authMethod":"api_key"}\n');
  });

  it("holds back only the closing brace and what follows it", async () => {
    const parts = await collect(spliceAuthMethod(streamOf([bytesOf('{"a":1} '), bytesOf(" \n")]), "jwt", MIB));
    expect(parts.map(text)).toEqual(['{"a":1', ',"authMethod":"jwt"}  \n']);
  });

  it("errors the output when the source errors midway", async () => {
    let sent = false;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(new Error("Network connection lost."));
        sent = true;
        controller.enqueue(bytesOf('{"a":"xxxx'));
      },
    });
    await expect(collect(spliceAuthMethod(source, "api_key", MIB))).rejects.toThrow("Network connection lost.");
  });

  it("cancels the source when the reader cancels", async () => {
    let cancelled: unknown = null;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(bytesOf('{"a":['));
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const reader = spliceAuthMethod(source, "api_key", MIB).getReader();
    await reader.read();
    await reader.cancel("client went away");
    expect(cancelled).toBe("client went away");
  });
});

// ---- the differential property test ----

/** What the splice must do, judged the slow way: buffer, decode (fatal), JSON.parse. */
function reference(input: Uint8Array, method: SplicedMethod, max: number): Uint8Array | null {
  if (input.byteLength > max) return null;
  let decoded: string;
  let parsed: unknown;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(input); // drops a leading BOM
    parsed = JSON.parse(decoded);
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return null;
  const hasBom = input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf;

  const ours = memberSpans(decoded).filter((member) => member.key === "authMethod");
  let out = decoded;
  if (ours.length > 0) {
    for (const span of ours.reverse()) out = out.slice(0, span.start) + JSON.stringify(method) + out.slice(span.end);
  } else {
    const close = decoded.lastIndexOf("}");
    const comma = Object.keys(parsed).length > 0 ? "," : "";
    out = `${decoded.slice(0, close)}${comma}"authMethod":${JSON.stringify(method)}${decoded.slice(close)}`;
  }
  return concat([new Uint8Array(hasBom ? BOM : []), encoder.encode(out)]);
}

/** The top-level members of a valid JSON object's text: decoded key, value's [start, end). Recursive, on the decoded text. */
function memberSpans(source: string): { key: string; start: number; end: number }[] {
  let i = 0;
  const ws = () => {
    while (i < source.length && " \t\n\r".includes(source[i]!)) i++;
  };
  const skipString = () => {
    i++;
    while (source[i] !== '"') i += source[i] === "\\" ? 2 : 1;
    i++;
  };
  const skipValue = (): void => {
    const c = source[i]!;
    if (c === '"') {
      skipString();
      return;
    }
    if (c === "{" || c === "[") {
      i++;
      ws();
      if (source[i] === "}" || source[i] === "]") return void i++;
      for (;;) {
        ws();
        if (c === "{") {
          skipString();
          ws();
          i++; // ":"
          ws();
        }
        skipValue();
        ws();
        if (source[i++] !== ",") return;
      }
    }
    while (i < source.length && /[-+.0-9a-zA-Z]/.test(source[i]!)) i++;
  };
  const members: { key: string; start: number; end: number }[] = [];
  ws();
  i++; // "{"
  ws();
  if (source[i] === "}") return members;
  for (;;) {
    ws();
    const keyStart = i;
    skipString();
    const key = JSON.parse(source.slice(keyStart, i)) as string;
    ws();
    i++; // ":"
    ws();
    const start = i;
    skipValue();
    members.push({ key, start, end: i });
    ws();
    if (source[i++] !== ",") return members;
  }
}

/** A JSON tree with what JSON.stringify cannot express: duplicate keys and number spellings. */
class Members {
  constructor(readonly entries: [string, Tree][]) {}
}
class NumberText {
  constructor(readonly text: string) {}
}
type Tree = null | boolean | number | string | NumberText | Tree[] | Members;

const fromJsonValue = (value: unknown): Tree => {
  if (Array.isArray(value)) return value.map(fromJsonValue);
  if (value !== null && typeof value === "object") return new Members(Object.entries(value).map(([k, v]) => [k, fromJsonValue(v)]));
  return value as Tree;
};

/** Serializes with the noise deciding whitespace and escapes, so one tree has many spellings. */
function serialize(tree: Tree, noise: number[]): string {
  let cursor = 0;
  const next = () => noise[cursor++ % noise.length]!;
  const SPACES = ["", "", "", "", " ", "\n", "\t", "\r\n  ", "  "];
  const ws = () => SPACES[next() % SPACES.length]!;
  const unicodeEscape = (c: number) => `\\u${c.toString(16).padStart(4, "0")}`;
  const escapeUpper = (c: number) => `\\u${c.toString(16).padStart(4, "0").toUpperCase()}`;
  const string = (value: string) => {
    let out = '"';
    for (const char of value) {
      const code = char.codePointAt(0)!;
      const roll = next() % 8;
      if (code > 0xffff) out += roll === 0 ? unicodeEscape(char.charCodeAt(0)) + escapeUpper(char.charCodeAt(1)) : char;
      else if (code >= 0xd800 && code <= 0xdfff)
        out += unicodeEscape(code); // a lone surrogate: only escaped is it valid
      else if (char === '"' || char === "\\" || code < 0x20) out += roll % 2 === 0 ? unicodeEscape(code) : JSON.stringify(char).slice(1, -1);
      else out += roll === 0 ? unicodeEscape(code) : roll === 1 ? escapeUpper(code) : char === "/" && roll === 2 ? "\\/" : char;
    }
    return `${out}"`;
  };
  const value = (node: Tree): string => {
    if (node instanceof NumberText) return node.text;
    if (node instanceof Members) {
      if (node.entries.length === 0) return `{${ws()}}`;
      return `{${node.entries.map(([k, v]) => `${ws()}${string(k)}${ws()}:${ws()}${value(v)}${ws()}`).join(",")}}`;
    }
    if (Array.isArray(node)) return node.length === 0 ? `[${ws()}]` : `[${node.map((v) => `${ws()}${value(v)}${ws()}`).join(",")}]`;
    if (typeof node === "string") return string(node);
    return JSON.stringify(node);
  };
  return `${ws()}${value(tree)}${ws()}`;
}

const key = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constant("authMethod") },
  { weight: 2, arbitrary: fc.constantFrom("authMethod", "authmethod", "authMethod_", "__proto__", "a", "b") },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 6 }) },
);
const numberText = fc.stringMatching(/^-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,4})?([eE][+-]?[0-9]{1,3})?$/).map((t) => new NumberText(t));
const { tree } = fc.letrec<{ tree: Tree; leaf: Tree; array: Tree; object: Tree }>((tie) => ({
  tree: fc.oneof({ depthSize: "small", withCrossShrink: true }, tie("leaf"), tie("array"), tie("object")),
  leaf: fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    numberText,
    fc.string({ maxLength: 10 }),
    fc.string({ unit: "grapheme", maxLength: 6 }),
    fc.string({ unit: "binary", maxLength: 6 }),
  ),
  array: fc.array(tie("tree"), { maxLength: 4 }),
  object: fc.array(fc.tuple(key, tie("tree")), { maxLength: 5 }).map((entries) => new Members(entries)),
}));
const topLevel = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.tuple(key, tree), { maxLength: 6 }).map((entries): Tree => new Members(entries)) },
  { weight: 2, arbitrary: fc.jsonValue().map(fromJsonValue) },
  { weight: 1, arbitrary: fc.json().map((json) => fromJsonValue(JSON.parse(json))) },
  { weight: 1, arbitrary: tree },
);

type Mutation =
  | { kind: "none" }
  | { kind: "truncate"; at: number }
  | { kind: "flip"; at: number; xor: number }
  | { kind: "insert"; at: number; byte: number }
  | { kind: "fragment"; at: number; fragment: number[]; before: string; after?: string }
  | { kind: "append"; bytes: number[] };
const ascii = (...values: string[]) => values.map((v) => [...encoder.encode(v)]);
/** UTF-8 near misses (surrogates, overlongs, past U+10FFFF, bad or missing continuations) and the valid edges next to them. */
const UTF8_EDGES = [
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xe0, 0x80, 0xaf],
  [0xe0, 0x9f, 0xbf],
  [0xc0, 0xaf],
  [0xc1, 0x81],
  [0xf0, 0x8f, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xc3],
  [0xe6, 0x97],
  [0x80],
  [0xc3, 0x28],
  [0xef, 0xbb, 0xbf],
  [0xed, 0x9f, 0xbf],
  [0xee, 0x80, 0x80],
  [0xe0, 0xa0, 0x80],
  [0xc2, 0x80],
  [0xdf, 0xbf],
  [0xf0, 0x90, 0x80, 0x80],
  [0xf4, 0x8f, 0xbf, 0xbf],
  [0xc3, 0xa9],
];
/**
 * Near misses of valid JSON (or just valid), each with the bytes it is put
 * before (and after), where it tends to matter: a trailing comma before a
 * closing bracket, leading zeros before a number's first digit, bad escapes
 * and UTF-8 before a quote.
 */
const FRAGMENTS: { fragment: number[]; before: string; after?: string }[] = [
  ...ascii(",", ", ", ":", "}", "]", "[", "{", "{}", "[]", '""', "0", "null").map((fragment) => ({ fragment, before: "}]" })),
  ...ascii("0", "00", "-", ".", "e", "E+", "+", "1", "-0", ".5").map((fragment) => ({ fragment, before: "0123456789", after: ":[,- \t\r\n" })),
  ...ascii("\\", "\\u", "\\u00", "\\u00e", "\\x", "\\/", "\\n", "\u0001", "\u001f", "\t", "\u007f", '\\"').map((fragment) => ({ fragment, before: '"' })),
  ...UTF8_EDGES.map((fragment) => ({ fragment, before: '"' })),
];
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 7, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("insert" as const),
      at: fc.nat(),
      byte: fc.oneof(fc.constantFrom(0x22, 0x5c, 0x7b, 0x7d, 0x2c, 0x3a, 0x20, 0x00, 0xc3, 0x80), fc.integer({ min: 0, max: 255 })),
    }),
  },
  { weight: 4, arbitrary: fc.tuple(fc.nat(), fc.constantFrom(...FRAGMENTS)).map(([at, f]): Mutation => ({ kind: "fragment", at, ...f })) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      bytes: fc.array(fc.constantFrom(0x20, 0x0a, 0x7d, 0x78, 0x00, 0xef), { minLength: 1, maxLength: 3 }),
    }),
  },
);

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const at = bytes.byteLength === 0 ? 0 : "at" in m ? m.at % bytes.byteLength : 0;
  switch (m.kind) {
    case "none":
      return bytes;
    case "truncate":
      return bytes.slice(0, at);
    case "flip": {
      const out = bytes.slice();
      if (out.byteLength > 0) out[at] = out[at]! ^ m.xor;
      return out;
    }
    case "insert":
      return concat([bytes.subarray(0, at), new Uint8Array([m.byte]), bytes.subarray(at)]);
    case "fragment": {
      const anchors: number[] = [];
      for (let i = 0; i < bytes.byteLength; i++) {
        if (m.before.includes(String.fromCharCode(bytes[i]!)) && (m.after === undefined || (i > 0 && m.after.includes(String.fromCharCode(bytes[i - 1]!)))))
          anchors.push(i);
      }
      const where = anchors.length > 0 ? anchors[m.at % anchors.length]! : at;
      return concat([bytes.subarray(0, where), new Uint8Array(m.fragment), bytes.subarray(where)]);
    }
    case "append":
      return concat([bytes, new Uint8Array(m.bytes)]);
  }
}

const chunkSizes = fc.oneof(fc.constant([1_000_000]), fc.constant([1]), fc.array(fc.integer({ min: 1, max: 24 }), { minLength: 1, maxLength: 8 }));
/** The cap: the real one, a small one, or one next to the input's own length. */
const cap = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: "real" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("small" as const), bytes: fc.integer({ min: 0, max: 120 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("near" as const), delta: fc.integer({ min: -2, max: 2 }) }) },
);

/** The splice's output for `input` in chunks of `sizes` equals the reference's verdict. */
async function agreesWithReference(input: Uint8Array, sizes: readonly number[], method: SplicedMethod, max: number): Promise<void> {
  const output = concat(await collect(spliceAuthMethod(streamOf(chunked(input, sizes)), method, max)));
  const whole = spliceAuthMethodBytes(input, method, max);
  expect(sameBytes(whole, output), `whole-body splice: ${text(whole)} vs streamed ${text(output)}`).toBe(true);
  const expected = reference(input, method, max);
  if (expected === null) {
    expect(sameBytes(output, input), `untouched: ${text(input)} → ${text(output)}`).toBe(true);
    return;
  }
  expect(text(output)).toBe(text(expected));
  expect(sameBytes(output, expected), "bytes").toBe(true);
  // And what a client parses: the origin's object with our authMethod, keys in the origin's order.
  const parsed = JSON.parse(new TextDecoder().decode(input)) as Record<string, unknown>;
  expect(JSON.stringify(JSON.parse(new TextDecoder().decode(output)))).toBe(JSON.stringify({ ...parsed, authMethod: method }));
}

const methods = fc.constantFrom<SplicedMethod>("api_key", "jwt");

describe("spliceAuthMethod against a buffering reference", () => {
  it("splices exactly when the reference finds one JSON object within the cap, and otherwise changes no byte", async () => {
    await fc.assert(
      fc.asyncProperty(
        topLevel,
        fc.array(fc.nat(), { minLength: 1, maxLength: 64 }),
        fc.boolean(),
        mutation,
        chunkSizes,
        cap,
        methods,
        async (value, noise, bom, m, sizes, capChoice, method) => {
          const serialized = encoder.encode(serialize(value, noise));
          const input = mutate(bom && noise[0]! % 4 === 0 ? concat([new Uint8Array(BOM), serialized]) : serialized, m);
          const max = capChoice.kind === "real" ? MIB : capChoice.kind === "small" ? capChoice.bytes : Math.max(0, input.byteLength + capChoice.delta);
          await agreesWithReference(input, sizes, method, max);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("judges the bytes of a key or string value as a fatal TextDecoder and JSON.parse do", async () => {
    // Byte soup where UTF-8 and escapes are validated: near misses, valid edges, escapes, control bytes, any byte.
    const piece = fc.oneof(
      fc.constantFrom(...UTF8_EDGES),
      fc.constantFrom(
        ...ascii(
          "a",
          "é",
          "日",
          "😀",
          "\\",
          '\\"',
          "\\u00e9",
          "\\uD83D\\uDE00",
          "\\ud800",
          "\\u004d",
          "\\x",
          "\\",
          "\u0001",
          "\t",
          "\u007f",
          " ",
          "}",
          "{",
          '"',
        ),
      ),
      fc.integer({ min: 0, max: 255 }).map((b) => [b]),
    );
    const soup = fc.array(piece, { maxLength: 10 }).map((pieces) => pieces.flat());
    const layouts = [
      (s: number[]) => ['{"k":"', s, '"}'],
      (s: number[]) => ['{"', s, '":1}'],
      (s: number[]) => ['{"authMethod":"', s, '","b":[1]}'],
      (s: number[]) => ['{"a":{"', s, '":"x"}}'],
    ];
    await fc.assert(
      fc.asyncProperty(soup, fc.nat({ max: layouts.length - 1 }), chunkSizes, methods, async (s, layout, sizes, method) => {
        const input = concat(layouts[layout]!(s).map((part) => (typeof part === "string" ? encoder.encode(part) : new Uint8Array(part))));
        await agreesWithReference(input, sizes, method, MIB);
      }),
      { numRuns: 1000 },
    );
  });
});
