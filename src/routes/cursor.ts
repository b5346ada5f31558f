import * as z from "../zod";

/**
 * The lists' opaque cursors: base64url of `{"list": <name>, "after": <the
 * last row's sort key>}`. Clients only hand them back; a cursor that does not
 * decode, has the wrong shape, or names another list is 400 VALIDATION_FAILED
 * on `cursor`. Nothing in a cursor is trusted beyond its shape: it is only a
 * position in the list (a user's list still shows only their own keys).
 */

export type ListName = "keys" | "users" | "products" | "audit";

/** Rows a page holds without `limit`, and the most it may ask for. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

/** Longer is no cursor of ours: a sort key is two short values. */
const MAX_CURSOR_LENGTH = 1024;
const MAX_VALUE_LENGTH = 300;

type SortValue = string | number;

function toBase64Url(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(binary, (char) => char.charCodeAt(0)));
  } catch {
    return undefined;
  }
}

/** The cursor of the page after a page whose last row sorts at `after`; null when no page follows. */
export function encodeCursor(list: ListName, after: readonly SortValue[] | null): string | null {
  return after === null ? null : toBase64Url(JSON.stringify({ list, after }));
}

/** What each position member must be: a string, or an integer (a rowid). */
type Shape = readonly ("string" | "integer")[];

function fits(value: unknown, kind: Shape[number]): boolean {
  return kind === "string" ? typeof value === "string" && value.length <= MAX_VALUE_LENGTH : typeof value === "number" && Number.isSafeInteger(value);
}

/** The position a cursor of `list` holds, or undefined when it is not one. */
export function decodeCursor(list: ListName, text: string, shape: Shape): SortValue[] | undefined {
  const json = fromBase64Url(text);
  if (json === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const { list: name, after } = parsed as { list?: unknown; after?: unknown };
  if (name !== list || !Array.isArray(after) || after.length !== shape.length) return undefined;
  return shape.every((kind, index) => fits(after[index], kind)) ? (after as SortValue[]) : undefined;
}

/**
 * The `cursor` query parameter of one list, decoded to its position. The
 * position's type is the list's sort key (e.g. `[createdAt, id]`).
 */
export function cursorParam<K extends readonly SortValue[]>(list: ListName, shape: Shape) {
  return z.pipe(
    z.string().check(z.maxLength(MAX_CURSOR_LENGTH), z.describe(`Opaque: the nextCursor of the previous page of this list`)),
    z.transform((text: string, ctx) => {
      const after = decodeCursor(list, text, shape);
      if (after === undefined) {
        ctx.issues.push({ code: "custom", message: `is not a cursor of the ${list} list`, input: text });
        return z.NEVER;
      }
      return after as unknown as K;
    }),
  );
}
