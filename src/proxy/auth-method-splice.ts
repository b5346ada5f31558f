/**
 * @module
 * Adds `"authMethod":"<method>"` to a streamed JSON-object body (SPEC: proxied
 * JSON answers carry it) without buffering the body.
 *
 * An incremental RFC 8259 validator runs over the bytes as they arrive (UTF-8
 * validated as a fatal TextDecoder would, a leading BOM tolerated and kept).
 * Chunks are passed on at once; only the top-level object's closing `}` and
 * what follows it are held back, because only at the end is it known whether
 * the whole body was one valid object of at most `maxBytes`. Then the field is
 * spliced in before the `}`; otherwise the held bytes go out unchanged, so a
 * body that is not an object, is invalid or is over the cap comes out
 * byte-identical. Nothing else is ever rewritten: re-serializing would round
 * integers past 2^53 and rewrite numbers and escapes.
 *
 * An origin's own top-level authMethod (its decoded key, so `"auth\u004dethod"`
 * counts; duplicates too) gets our value in place of its own. From that value
 * on the body is held (bounded by `maxBytes`), since the body may still turn
 * out invalid or over the cap, when the original bytes are due.
 */

export type SplicedMethod = "api_key" | "jwt";

export function spliceAuthMethod(body: ReadableStream<Uint8Array>, method: SplicedMethod, maxBytes: number): ReadableStream<Uint8Array> {
  const splicer = new AuthMethodSplicer(method, maxBytes);
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        splicer.push(chunk, controller);
      },
      flush(controller) {
        splicer.finish(controller);
      },
    }),
  );
}

/**
 * The same splice over a body already read whole (a small one with a declared
 * length): one synchronous pass, no stream machinery, which costs more than
 * such a body does.
 */
export function spliceAuthMethodBytes(body: Uint8Array, method: SplicedMethod, maxBytes: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const sink: Sink = { enqueue: (part) => parts.push(part) };
  const splicer = new AuthMethodSplicer(method, maxBytes);
  splicer.push(body, sink);
  splicer.finish(sink);
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

interface Sink {
  enqueue(chunk: Uint8Array): void;
}

// Parser states. Structural ones (>= S_START) skip whitespace before dispatching.
const S_STR = 0; // inside a string
const S_ESC = 1; // after a backslash
const S_HEX = 2; // inside \uXXXX
const S_UTF8 = 3; // inside a multi-byte UTF-8 sequence that a chunk boundary split
const S_NUM_MINUS = 4;
const S_NUM_ZERO = 5;
const S_NUM_INT = 6;
const S_NUM_DOT = 7;
const S_NUM_FRAC = 8;
const S_NUM_E = 9;
const S_NUM_ESIGN = 10;
const S_NUM_EXP = 11;
const S_LITERAL = 12; // inside true/false/null
const S_BOM = 13; // inside a leading EF BB BF
const S_START = 14;
const S_VALUE = 15; // a value is due
const S_ARRAY_FIRST = 16; // after "[": a value or "]"
const S_OBJECT_FIRST = 17; // after "{": a key or "}"
const S_KEY = 18; // after "," in an object
const S_COLON = 19;
const S_AFTER_VALUE = 20; // "," or the container's closing bracket
const S_DONE = 21; // after the top-level "}": whitespace only

const OBJECT = 1;
const ARRAY = 2;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Bytes a string may hold as they are: printable ASCII but `"` and `\`. Scanned in a tight loop. */
const PLAIN = new Uint8Array(256);
for (let b = 0x20; b < 0x80; b++) PLAIN[b] = b === QUOTE || b === BACKSLASH ? 0 : 1;
const WHITESPACE = new Uint8Array(256);
for (const b of [0x20, 0x09, 0x0a, 0x0d]) WHITESPACE[b] = 1;
const HEX = new Uint8Array(256);
for (const c of "0123456789abcdefABCDEF") HEX[c.charCodeAt(0)] = 1;
/** Escapes after `\` other than `u`, mapped to the byte they stand for (0: not an escape). */
const ESCAPED = new Uint8Array(256);
for (const [c, value] of [
  ['"', 0x22],
  ["\\", 0x5c],
  ["/", 0x2f],
  ["b", 0x08],
  ["f", 0x0c],
  ["n", 0x0a],
  ["r", 0x0d],
  ["t", 0x09],
] as const) {
  ESCAPED[c.charCodeAt(0)] = value;
}

/** The value of a hex digit the validator accepted. */
function hexDigit(b: number): number {
  return b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x57;
}

const encoder = new TextEncoder();
const LITERALS = [encoder.encode("true"), encoder.encode("false"), encoder.encode("null")] as const;
const TARGET_KEY = encoder.encode("authMethod");
/** The longest raw spelling of "authMethod": each of its 10 characters as \uXXXX. */
const MAX_TARGET_KEY_RAW = 6 * TARGET_KEY.length;

class AuthMethodSplicer {
  private readonly method: SplicedMethod;
  private readonly maxBytes: number;

  /** Bytes seen so far; every offset below counts from the body's first byte. */
  private seen = 0;
  /** Given up (not an object, invalid, over the cap): everything passes through. */
  private passing = false;

  private state = S_START;
  /** Container types, one per open bracket; grown by doubling (depth is bounded by the body). */
  private stack = new Uint8Array(32);
  private depth = 0;
  private inKey = false;
  private hexLeft = 0;
  private utf8Left = 0;
  private utf8Low = 0x80;
  private utf8High = 0xbf;
  private literal: Uint8Array = LITERALS[0];
  private literalAt = 0;
  private bomAt = 0;

  /** The top-level object has a member (the splice then needs a comma). */
  private hasMember = false;
  /** The raw bytes of the depth-1 key being read, while it can still be "authMethod". */
  private readonly key = new Uint8Array(MAX_TARGET_KEY_RAW);
  private keyLength = -1; // -1: not collecting
  /** The next depth-1 value is an authMethod value (its key just closed). */
  private valueIsOurs = false;
  /** [start, end) offsets of the origin's authMethod values; a lone start while one is being read. */
  private readonly spans: number[] = [];

  /** Held back, in order; `heldFrom` is the offset of held[0]'s first byte. */
  private held: Uint8Array[] = [];
  private heldLength = 0;
  private holding = false;
  private heldFrom = 0;

  /** Within the chunk being scanned: bytes before it were passed on or held. */
  private emitFrom = 0;

  constructor(method: SplicedMethod, maxBytes: number) {
    this.method = method;
    this.maxBytes = maxBytes;
  }

  push(chunk: Uint8Array, sink: Sink): void {
    const n = chunk.byteLength;
    if (this.passing) {
      if (n > 0) sink.enqueue(chunk);
      return;
    }
    if (this.seen + n > this.maxBytes) {
      // Over the cap: the answer is the origin's bytes whatever they are, so tokenizing stops here.
      this.seen += n;
      this.emitFrom = 0;
      this.giveUp(chunk, sink);
      return;
    }
    this.emitFrom = 0;
    if (!this.scan(chunk, sink)) {
      this.seen += n;
      this.giveUp(chunk, sink);
      return;
    }
    this.seen += n;
    if (this.emitFrom >= n) return;
    if (this.holding) {
      // A copy when part of the chunk was passed on: the consumer owns that buffer now (it may transfer it).
      this.held.push(this.emitFrom === 0 ? chunk : chunk.slice(this.emitFrom));
      this.heldLength += n - this.emitFrom;
    } else {
      sink.enqueue(this.emitFrom === 0 ? chunk : chunk.subarray(this.emitFrom));
    }
  }

  finish(sink: Sink): void {
    if (this.passing || this.state !== S_DONE) {
      this.release(sink);
      return;
    }
    if (this.spans.length > 0) {
      sink.enqueue(this.replaced());
      return;
    }
    // A fresh buffer per answer (never a shared constant: a consumer may transfer what it receives).
    const field = encoder.encode(`${this.hasMember ? "," : ""}"authMethod":"${this.method}"`);
    const out = new Uint8Array(field.byteLength + this.heldLength);
    out.set(field, 0);
    let at = field.byteLength;
    for (const part of this.held) {
      out.set(part, at);
      at += part.byteLength;
    }
    sink.enqueue(out);
  }

  /** The held bytes with every origin authMethod value replaced by ours; one buffer (the rare path). */
  private replaced(): Uint8Array {
    const value = encoder.encode(`"${this.method}"`);
    const spans = this.spans;
    let length = this.heldLength;
    for (let s = 0; s < spans.length; s += 2) length += value.byteLength - (spans[s + 1]! - spans[s]!);
    const out = new Uint8Array(length);
    let written = 0;
    let offset = this.heldFrom; // body offset of the next held byte to copy
    let s = 0;
    for (const part of this.held) {
      const partEnd = offset + part.byteLength;
      while (offset < partEnd) {
        const spanStart = s < spans.length ? spans[s]! : Infinity;
        if (offset < spanStart) {
          const until = Math.min(partEnd, spanStart);
          out.set(part.subarray(offset - (partEnd - part.byteLength), until - (partEnd - part.byteLength)), written);
          written += until - offset;
          offset = until;
        } else {
          // Inside a span: its bytes are skipped, our value written once at its start.
          if (offset === spanStart) {
            out.set(value, written);
            written += value.byteLength;
          }
          const until = Math.min(partEnd, spans[s + 1]!);
          offset = until;
          if (until === spans[s + 1]!) s += 2;
        }
      }
    }
    return out;
  }

  /** Passes on what was held, then the rest of the chunk; from now on everything goes straight through. */
  private giveUp(chunk: Uint8Array, sink: Sink): void {
    this.release(sink);
    this.passing = true;
    if (this.emitFrom < chunk.byteLength) sink.enqueue(this.emitFrom === 0 ? chunk : chunk.subarray(this.emitFrom));
  }

  private release(sink: Sink): void {
    for (const part of this.held) sink.enqueue(part);
    this.held = [];
    this.heldLength = 0;
    this.holding = false;
  }

  /** Holds back from chunk[i] on: what precedes it in the chunk goes out now. */
  private hold(chunk: Uint8Array, i: number, sink: Sink): void {
    if (this.holding) return;
    if (i > this.emitFrom) sink.enqueue(chunk.subarray(this.emitFrom, i));
    this.emitFrom = i;
    this.holding = true;
    this.heldFrom = this.seen + i;
  }

  private open(type: number): void {
    if (this.depth === this.stack.length) {
      const grown = new Uint8Array(this.stack.length * 2);
      grown.set(this.stack);
      this.stack = grown;
    }
    this.stack[this.depth++] = type;
  }

  /** A value ended just before body offset `end`; at depth 1 it may be the end of an origin authMethod value. */
  private valueEnded(end: number): void {
    this.state = S_AFTER_VALUE;
    if (this.depth === 1 && this.spans.length % 2 === 1) this.spans.push(end);
  }

  /** Whether the collected raw key decodes to "authMethod" (the string was validated already). */
  private keyIsTarget(): boolean {
    const raw = this.key;
    const length = this.keyLength;
    let k = 0;
    let t = 0;
    while (k < length) {
      let code = raw[k]!;
      if (code === BACKSLASH) {
        const next = raw[k + 1]!;
        if (next === 0x75) {
          code = (hexDigit(raw[k + 2]!) << 12) | (hexDigit(raw[k + 3]!) << 8) | (hexDigit(raw[k + 4]!) << 4) | hexDigit(raw[k + 5]!);
          k += 6;
        } else {
          code = ESCAPED[next]!;
          k += 2;
        }
      } else {
        k += 1;
      }
      if (t >= TARGET_KEY.length || code !== TARGET_KEY[t]) return false;
      t += 1;
    }
    return t === TARGET_KEY.length;
  }

  /** Collects raw key bytes [from, to); a key longer than any spelling of "authMethod" stops collecting. */
  private collect(chunk: Uint8Array, from: number, to: number): void {
    if (this.keyLength + (to - from) > MAX_TARGET_KEY_RAW) {
      this.keyLength = -1;
      return;
    }
    this.key.set(chunk.subarray(from, to), this.keyLength);
    this.keyLength += to - from;
  }

  /**
   * Advances the validator over one chunk, holding back where due. Returns
   * false when the body turned out not to be a JSON object (or invalid); the
   * caller then passes everything on as it is.
   */
  private scan(c: Uint8Array, sink: Sink): boolean {
    const n = c.byteLength;
    const base = this.seen;
    let state = this.state;
    let i = 0;
    while (i < n) {
      if (state >= S_START) {
        while (i < n && WHITESPACE[c[i]!] === 1) i++;
        if (i === n) break;
      }
      const b = c[i]!;
      switch (state) {
        case S_STR: {
          // The hot loop: plain ASCII runs to the next quote, backslash, control or non-ASCII byte.
          let j = i;
          while (j < n && PLAIN[c[j]!] === 1) j++;
          if (this.keyLength >= 0 && j > i) this.collect(c, i, j);
          if (j === n) {
            i = n;
            break;
          }
          const d = c[j]!;
          if (d === QUOTE) {
            i = j + 1;
            if (this.inKey) {
              if (this.keyLength >= 0) this.valueIsOurs = this.keyIsTarget();
              this.keyLength = -1;
              state = S_COLON;
            } else {
              this.state = state;
              this.valueEnded(base + i);
              state = this.state;
            }
          } else if (d === BACKSLASH) {
            if (this.keyLength >= 0) this.collect(c, j, j + 1);
            i = j + 1;
            state = S_ESC;
          } else if (d < 0x20) {
            return false;
          } else {
            // A UTF-8 lead byte; its continuation bytes are checked inline when the chunk holds them all.
            let need: number;
            let low = 0x80;
            let high = 0xbf;
            if (d >= 0xc2 && d <= 0xdf) need = 1;
            else if (d >= 0xe0 && d <= 0xef) {
              need = 2;
              if (d === 0xe0)
                low = 0xa0; // overlong
              else if (d === 0xed) high = 0x9f; // UTF-16 surrogates
            } else if (d >= 0xf0 && d <= 0xf4) {
              need = 3;
              if (d === 0xf0)
                low = 0x90; // overlong
              else if (d === 0xf4) high = 0x8f; // past U+10FFFF
            } else return false;
            this.keyLength = -1; // a non-ASCII byte: not "authMethod"
            i = j + 1;
            while (need > 0 && i < n) {
              const e = c[i]!;
              if (e < low || e > high) return false;
              low = 0x80;
              high = 0xbf;
              need--;
              i++;
            }
            if (need > 0) {
              this.utf8Left = need;
              this.utf8Low = low;
              this.utf8High = high;
              state = S_UTF8;
            }
          }
          break;
        }
        case S_UTF8:
          if (b < this.utf8Low || b > this.utf8High) return false;
          this.utf8Low = 0x80;
          this.utf8High = 0xbf;
          if (--this.utf8Left === 0) state = S_STR;
          i++;
          break;
        case S_ESC:
          if (b === 0x75) {
            this.hexLeft = 4;
            state = S_HEX;
          } else if (ESCAPED[b] !== 0) {
            state = S_STR;
          } else return false;
          if (this.keyLength >= 0) this.collect(c, i, i + 1);
          i++;
          break;
        case S_HEX:
          if (HEX[b] !== 1) return false;
          if (this.keyLength >= 0) this.collect(c, i, i + 1);
          if (--this.hexLeft === 0) state = S_STR;
          i++;
          break;
        case S_NUM_MINUS:
          if (b === 0x30) state = S_NUM_ZERO;
          else if (b >= 0x31 && b <= 0x39) state = S_NUM_INT;
          else return false;
          i++;
          break;
        case S_NUM_INT:
        case S_NUM_FRAC:
        case S_NUM_EXP:
        case S_NUM_ZERO: {
          if (state !== S_NUM_ZERO) while (i < n && c[i]! >= 0x30 && c[i]! <= 0x39) i++;
          if (i === n) break;
          const d = c[i]!;
          if (d === 0x2e && (state === S_NUM_INT || state === S_NUM_ZERO)) {
            state = S_NUM_DOT;
            i++;
          } else if ((d === 0x65 || d === 0x45) && state !== S_NUM_EXP) {
            state = S_NUM_E;
            i++;
          } else {
            // The number ended before this byte, which is judged again as what follows a value.
            this.state = state;
            this.valueEnded(base + i);
            state = this.state;
          }
          break;
        }
        case S_NUM_DOT:
          if (b < 0x30 || b > 0x39) return false;
          state = S_NUM_FRAC;
          i++;
          break;
        case S_NUM_E:
          if (b === 0x2b || b === 0x2d) state = S_NUM_ESIGN;
          else if (b >= 0x30 && b <= 0x39) state = S_NUM_EXP;
          else return false;
          i++;
          break;
        case S_NUM_ESIGN:
          if (b < 0x30 || b > 0x39) return false;
          state = S_NUM_EXP;
          i++;
          break;
        case S_LITERAL:
          if (b !== this.literal[this.literalAt]) return false;
          i++;
          if (++this.literalAt === this.literal.byteLength) {
            this.state = state;
            this.valueEnded(base + i);
            state = this.state;
          }
          break;
        case S_BOM:
          if (b !== (this.bomAt === 1 ? 0xbb : 0xbf)) return false;
          i++;
          if (++this.bomAt === 3) state = S_START;
          break;
        case S_START:
          if (b === 0xef && base + i === 0) {
            // A BOM, at the very start only (where TextDecoder drops it); kept as sent.
            this.bomAt = 1;
            state = S_BOM;
            i++;
            break;
          }
          if (b !== 0x7b) return false; // not an object: passed through untouched
          this.open(OBJECT);
          state = S_OBJECT_FIRST;
          i++;
          break;
        // biome-ignore lint/suspicious/noFallthroughSwitchClause: not "]": the first value, which S_VALUE reads
        case S_ARRAY_FIRST:
          if (b === 0x5d) {
            this.close(c, i, sink);
            state = this.state;
            i++;
            break;
          }
          state = S_VALUE;
        // falls through: the byte starts the first element
        case S_VALUE:
          if (this.valueIsOurs) {
            // The origin's own authMethod value: held from here, as it is replaced only if the body proves valid.
            this.valueIsOurs = false;
            this.spans.push(base + i);
            this.hold(c, i, sink);
          }
          i++;
          if (b === 0x22) {
            this.inKey = false;
            state = S_STR;
          } else if (b === 0x7b) {
            this.open(OBJECT);
            state = S_OBJECT_FIRST;
          } else if (b === 0x5b) {
            this.open(ARRAY);
            state = S_ARRAY_FIRST;
          } else if (b === 0x2d) state = S_NUM_MINUS;
          else if (b === 0x30) state = S_NUM_ZERO;
          else if (b >= 0x31 && b <= 0x39) state = S_NUM_INT;
          else if (b === 0x74 || b === 0x66 || b === 0x6e) {
            this.literal = b === 0x74 ? LITERALS[0] : b === 0x66 ? LITERALS[1] : LITERALS[2];
            this.literalAt = 1;
            state = S_LITERAL;
          } else return false;
          break;
        case S_OBJECT_FIRST:
        case S_KEY:
          if (b === 0x22) {
            this.inKey = true;
            if (this.depth === 1) {
              this.hasMember = true;
              this.keyLength = 0;
            }
            state = S_STR;
            i++;
            break;
          }
          if (state === S_KEY || b !== 0x7d) return false;
          this.state = state;
          this.close(c, i, sink);
          state = this.state;
          i++;
          break;
        case S_COLON:
          if (b !== 0x3a) return false;
          state = S_VALUE;
          i++;
          break;
        case S_AFTER_VALUE: {
          const top = this.stack[this.depth - 1];
          if (b === 0x2c) state = top === OBJECT ? S_KEY : S_VALUE;
          else if ((b === 0x7d && top === OBJECT) || (b === 0x5d && top === ARRAY)) {
            this.close(c, i, sink);
            state = this.state;
          } else return false;
          i++;
          break;
        }
        case S_DONE:
          return false; // anything but whitespace after the object
      }
    }
    this.state = state;
    return true;
  }

  /** The container closing at chunk[i] ends; the top-level object's "}" is held with what follows. */
  private close(c: Uint8Array, i: number, sink: Sink): void {
    this.depth--;
    if (this.depth === 0) {
      this.hold(c, i, sink);
      this.state = S_DONE;
    } else {
      this.valueEnded(this.seen + i + 1);
    }
  }
}
