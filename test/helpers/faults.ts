import type { OriginHandler } from "./origin";

/**
 * Stand-ins for failing platform parts, passed to the app in place of the
 * real bindings (send(path, { env: { DB: brokenD1().db } }), harness.ts), and
 * origins that fail in the ways real ones do. Module state (the key and
 * product caches) is shared with the real app, so a test can warm a cache
 * with the real bindings and then take storage away.
 */

/** Rejects when `promise` has not settled within `ms`: a hang becomes a failure with a name. */
export async function within<T>(ms: number, label: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the D1 client throws when the database cannot be reached. */
export function d1Error(): Error {
  return new Error("D1_ERROR: Network connection lost.");
}

/** A D1 binding every query of which fails; `queries` counts the attempts. */
export function brokenD1(): { db: D1Database; queries: string[] } {
  const queries: string[] = [];
  const statement = (sql: string): D1PreparedStatement => {
    const fail = async () => {
      queries.push(sql);
      throw d1Error();
    };
    return { bind: () => statement(sql), all: fail, first: fail, run: fail, raw: fail } as unknown as D1PreparedStatement;
  };
  const db = {
    prepare: statement,
    batch: async () => {
      queries.push("batch");
      throw d1Error();
    },
    exec: async () => {
      throw d1Error();
    },
  } as unknown as D1Database;
  return { db, queries };
}

/** The real D1, each query answered only after `delayMs`. */
export function slowD1(real: D1Database, delayMs: number): D1Database {
  const wrap = (statement: D1PreparedStatement): D1PreparedStatement =>
    ({
      bind: (...values: unknown[]) => wrap(statement.bind(...values)),
      all: async () => (await sleep(delayMs), statement.all()),
      first: async (column?: string) => (await sleep(delayMs), column === undefined ? statement.first() : statement.first(column)),
      run: async () => (await sleep(delayMs), statement.run()),
      raw: async () => (await sleep(delayMs), statement.raw()),
      // batch() hands the statements to the real database: unwrap them.
      unwrapped: statement,
    }) as unknown as D1PreparedStatement;
  return {
    prepare: (sql: string) => wrap(real.prepare(sql)),
    batch: async (statements: (D1PreparedStatement & { unwrapped?: D1PreparedStatement })[]) => {
      await sleep(delayMs);
      return real.batch(statements.map((statement) => statement.unwrapped ?? statement));
    },
  } as unknown as D1Database;
}

/** A RATE_LIMITER binding whose objects cannot be reached: every call on every stub rejects. */
export function unreachableLimiter(): { namespace: DurableObjectNamespace; calls: string[] } {
  const calls: string[] = [];
  const stub = (name: string) =>
    new Proxy(
      {},
      {
        get: (_target, method) => async () => {
          calls.push(`${name}.${String(method)}`);
          throw Object.assign(new Error("Durable Object is unreachable: network connection lost"), { retryable: false });
        },
      },
    );
  const namespace = { getByName: (name: string) => stub(name) } as unknown as DurableObjectNamespace;
  return { namespace, calls };
}

// ---- origins ----

/** An origin that never answers; like a real fetch, the call rejects when its signal aborts. */
export const hangingOrigin: OriginHandler = (request) =>
  new Promise<Response>((_, reject) => {
    request.signal.addEventListener("abort", () => reject(request.signal.reason));
  });

/** An origin that sends headers and `bytesBeforeReset` bytes, then its connection resets. */
export function resettingOrigin(bytesBeforeReset: number, contentType: string): OriginHandler {
  return () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array(bytesBeforeReset).fill(120));
        },
        async pull(controller) {
          await sleep(20);
          controller.error(new Error("Network connection lost."));
        },
      }),
      { status: 200, headers: { "Content-Type": contentType } },
    );
}

/** `size` bytes of a repeating pattern, as a stream of 64 KiB chunks. */
export function patternStream(size: number, pattern: Uint8Array): ReadableStream<Uint8Array> {
  const CHUNK = 65_536;
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      const length = Math.min(CHUNK, size - sent);
      const chunk = new Uint8Array(length);
      for (let i = 0; i < length; i++) chunk[i] = pattern[(sent + i) % pattern.length]!;
      sent += length;
      controller.enqueue(chunk);
    },
  });
}

export async function sha256Hex(bytes: ArrayBuffer | Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
