import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { GatewayError } from "../errors";
import { documented } from "../openapi/operation";

/**
 * MAX_BODY_BYTES, enforced before anything reaches the origin. A declared
 * Content-Length is judged at once; a body without one (chunked) is read up to
 * the cap, so an oversized body is refused whole rather than cut off midway.
 */
export function assertDeclaredLength(request: Request, maxBytes: number): void {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes);
}

/**
 * Absolute ceiling on what is read and dropped past the cap, so a large
 * configured MAX_BODY_BYTES (up to 100 MiB) never means hundreds of MiB read for nothing.
 */
export const DRAIN_CEILING_BYTES = 8 * 1_048_576;

/**
 * How many bytes past the cap an over-cap chunked body is read and dropped
 * before the 413: 4 × the cap, at most 8 MiB (4 MiB with the default 1 MiB cap).
 * Leaving a body unread breaks the connection it came on (under wrangler dev the
 * next request on it fails with a non-JSON 503); draining keeps it usable. The
 * bound keeps an unauthenticated sender's cost to us a small multiple of an
 * accepted body's, and holds no memory: drained chunks are not kept. A body
 * longer still is cancelled, and its connection may be lost.
 */
export function drainBoundBytes(maxBytes: number): number {
  return Math.min(4 * maxBytes, DRAIN_CEILING_BYTES);
}

/** The body to forward: the stream when its length was declared (and judged), else the bytes read within the cap. */
export async function readBodyWithin(request: Request, maxBytes: number): Promise<ReadableStream | ArrayBuffer | null> {
  if (request.body === null) return null;
  if (request.headers.get("content-length") !== null) return request.body; // already judged: stream it
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await discardRest(reader, size, maxBytes + drainBoundBytes(maxBytes));
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body.buffer;
}

/** Reads and drops the rest of a body until `limit` bytes in all were read; cancels it past that. */
async function discardRest(reader: ReadableStreamDefaultReader<Uint8Array>, size: number, limit: number): Promise<void> {
  try {
    while (size <= limit) {
      const { done, value } = await reader.read();
      if (done) return;
      size += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The client went away mid-body: nothing is left to keep usable, and the answer is still 413.
  }
}

function tooLarge(maxBytes: number): GatewayError {
  return new GatewayError("PAYLOAD_TOO_LARGE", { message: `Request body is larger than ${maxBytes} bytes` });
}

/**
 * The same cap on keygate's own JSON endpoints (login, keys, admin), with the
 * same drain. Not Hono's bodyLimit: it stops reading at the cap and leaves the rest unread.
 */
export const ownBodyLimit = () =>
  documented(
    createMiddleware<AppEnv>(async function ownBodyLimit(c, next) {
      const maxBytes = c.get("config").maxBodyBytes;
      const request = c.req.raw;
      assertDeclaredLength(request, maxBytes);
      const body = await readBodyWithin(request, maxBytes);
      // A chunked body was read whole: the handlers get a request carrying those bytes.
      if (body instanceof ArrayBuffer) c.req.raw = new Request(request, { body });
      await next();
    }),
    { errors: ["PAYLOAD_TOO_LARGE"] },
  );
