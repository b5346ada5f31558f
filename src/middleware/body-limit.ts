import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { GatewayError } from "../errors";

/**
 * MAX_BODY_BYTES, enforced before anything reaches the origin. A declared
 * Content-Length is judged at once; a body without one (chunked) is read up to
 * the cap, so an oversized body is refused whole rather than cut off midway.
 */
export function assertDeclaredLength(request: Request, maxBytes: number): void {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes);
}

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
      await reader.cancel();
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

function tooLarge(maxBytes: number): GatewayError {
  return new GatewayError("PAYLOAD_TOO_LARGE", { message: `Request body is larger than ${maxBytes} bytes` });
}

/** The same cap on keygate's own JSON endpoints (login, keys, admin), through Hono's bodyLimit. */
export const ownBodyLimit = () =>
  createMiddleware<AppEnv>(function ownBodyLimit(c, next) {
    const maxBytes = c.get("config").maxBodyBytes;
    return bodyLimit({
      maxSize: maxBytes,
      onError: () => {
        throw tooLarge(maxBytes);
      },
    })(c, next);
  });
