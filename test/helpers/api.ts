import { env } from "cloudflare:workers";
import type { UserRecord } from "../../src/db/users";
import { json, send, type SendOptions } from "./harness";
import { signToken } from "./jwt";

/**
 * Calling keygate's management API as an admin (ADMIN_TOKEN), as a keygate
 * user (a JWT signed with the gateway's own key, as /auth/login issues), or
 * with any headers; and reading what D1 holds afterwards.
 */
export const adminToken = (): Record<string, string> => ({ Authorization: `Bearer ${env.ADMIN_TOKEN}` });

export async function userToken(user: Pick<UserRecord, "id" | "role" | "email">): Promise<Record<string, string>> {
  return { Authorization: `Bearer ${await signToken({ sub: user.id, role: user.role, email: user.email })}` };
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  body: Record<string, any>;
}

/**
 * A management-API call through send(): `headers` as given (a fresh CF-Connecting-IP unless they
 * name one), a body as JSON (a string as it is, for malformed JSON) with Content-Type
 * application/json; `options` for the rest (env overrides, `ip: null`).
 */
export async function api(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
  options: Omit<SendOptions, "method" | "headers" | "body"> = {},
): Promise<ApiAnswer> {
  const withBody =
    body === undefined ? {} : { headers: { ...headers, "Content-Type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) };
  const response = await send(path, { ...options, method, headers, ...withBody });
  return { status: response.status, headers: response.headers, body: await json(response) };
}

export async function rowCount(table: "api_keys" | "users" | "products" | "audit_log"): Promise<number> {
  const row = await env.DB.prepare(`SELECT count(*) AS n FROM ${table}`).first<{ n: number }>();
  return row!.n;
}

export async function auditRows(targetId: string): Promise<{ actor: string; action: string; target_type: string; details: string | null }[]> {
  const { results } = await env.DB.prepare("SELECT * FROM audit_log WHERE target_id = ? ORDER BY at, rowid")
    .bind(targetId)
    .all<{ actor: string; action: string; target_type: string; details: string | null }>();
  return results;
}
