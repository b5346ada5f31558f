import { parseJsonList } from "../db/json";
import type { WebhookEventType } from "./events";

/**
 * The webhook tables (migration 0008), as src/db/ keeps the others: small
 * named statements, no SQL in the routes or the consumer.
 */

/** An endpoint's subscription: event types, or "*" for every type. */
export type WebhookSubscription = WebhookEventType | "*";

export interface WebhookEndpointRecord {
  id: string;
  url: string;
  description: string | null;
  /** The Standard Webhooks signing secret: never leaves the server after the answer that created it. */
  secret: string;
  events: WebhookSubscription[];
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
  createdBy: string;
}

interface WebhookEndpointRow {
  id: string;
  url: string;
  description: string | null;
  secret: string;
  events: string;
  enabled: number;
  created_at: string;
  updated_at: string;
  created_by: string;
}

function rowToEndpoint(row: WebhookEndpointRow): WebhookEndpointRecord {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    secret: row.secret,
    events: parseJsonList<WebhookSubscription>(row.events),
    enabled: row.enabled === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    createdBy: row.created_by,
  };
}

/** Whether the endpoint wants events of this type ([] and ["*"] mean every type). */
export function subscribes(endpoint: Pick<WebhookEndpointRecord, "events" | "enabled">, type: WebhookEventType): boolean {
  return endpoint.enabled && (endpoint.events.length === 0 || endpoint.events.includes("*") || endpoint.events.includes(type));
}

export function insertEndpointStatement(db: D1Database, endpoint: WebhookEndpointRecord): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO webhook_endpoints (id, url, description, secret, events, enabled, created_at, updated_at, created_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      endpoint.id,
      endpoint.url,
      endpoint.description,
      endpoint.secret,
      JSON.stringify(endpoint.events),
      endpoint.enabled ? 1 : 0,
      endpoint.createdAt,
      endpoint.updatedAt,
      endpoint.createdBy,
    );
}

/** What a PATCH (or a secret rotation) writes: only the fields it names. */
export interface WebhookEndpointChanges {
  url?: string | undefined;
  description?: string | null | undefined;
  events?: readonly WebhookSubscription[] | undefined;
  enabled?: boolean | undefined;
  secret?: string | undefined;
}

/** Each editable field's column. Only these names ever reach the SQL text. */
const CHANGE_COLUMNS: Record<keyof WebhookEndpointChanges, (value: never) => string | number | null> = {
  url: (value: string) => value,
  description: (value: string | null) => value,
  events: (value: readonly string[]) => JSON.stringify(value),
  enabled: (value: boolean) => (value ? 1 : 0),
  secret: (value: string) => value,
};

/**
 * Writes the columns `changes` names and nothing else (two admins editing
 * different fields do not undo each other); RETURNING gives the row as
 * written (writtenEndpoint), none when it was deleted meanwhile.
 */
export function updateEndpointStatement(db: D1Database, id: string, changes: WebhookEndpointChanges, updatedAt: string): D1PreparedStatement {
  const named = (Object.keys(CHANGE_COLUMNS) as (keyof WebhookEndpointChanges)[]).filter((field) => changes[field] !== undefined);
  const assignments = named.map((field) => `${field} = ?`);
  const values = named.map((field) => CHANGE_COLUMNS[field](changes[field] as never));
  return db.prepare(`UPDATE webhook_endpoints SET ${[...assignments, "updated_at = ?"].join(", ")} WHERE id = ? RETURNING *`).bind(...values, updatedAt, id);
}

export function deleteEndpointStatement(db: D1Database, id: string): D1PreparedStatement {
  return db.prepare("DELETE FROM webhook_endpoints WHERE id = ?").bind(id);
}

/** The row an `UPDATE … RETURNING *` wrote, or undefined when it matched none (deleted meanwhile). */
export function writtenEndpoint(result: D1Result): WebhookEndpointRecord | undefined {
  const row = (result.results as WebhookEndpointRow[] | undefined)?.[0];
  return row ? rowToEndpoint(row) : undefined;
}

export async function getEndpoint(db: D1Database, id: string): Promise<WebhookEndpointRecord | undefined> {
  const row = await db.prepare("SELECT * FROM webhook_endpoints WHERE id = ?").bind(id).first<WebhookEndpointRow>();
  return row ? rowToEndpoint(row) : undefined;
}

/** Every endpoint, oldest first: an account has a handful, so the list is not paged. */
export async function listEndpoints(db: D1Database): Promise<WebhookEndpointRecord[]> {
  const { results } = await db.prepare("SELECT * FROM webhook_endpoints ORDER BY created_at, id").all<WebhookEndpointRow>();
  return results.map(rowToEndpoint);
}

/** The enabled endpoints that subscribe to `type`, oldest first (the fan-out). */
export async function subscribedEndpoints(db: D1Database, type: WebhookEventType): Promise<WebhookEndpointRecord[]> {
  const { results } = await db.prepare("SELECT * FROM webhook_endpoints WHERE enabled = 1 ORDER BY created_at, id").all<WebhookEndpointRow>();
  return results.map(rowToEndpoint).filter((endpoint) => subscribes(endpoint, type));
}

/**
 * Records an event as fanned out, unless it already was: the id is the
 * event's (type, subject, period) hash, so true means "first time: fan it
 * out", false "seen before: drop it".
 */
export async function claimEvent(
  db: D1Database,
  event: { id: string; type: WebhookEventType; subject: string; period: string },
  createdAt: string,
): Promise<boolean> {
  const row = await db
    .prepare("INSERT INTO webhook_events (id, type, subject, period, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id")
    .bind(event.id, event.type, event.subject, event.period, createdAt)
    .first<{ id: string }>();
  return row !== null;
}

/** Undoes a claim whose fan-out could not be queued, so the event's retry can fan it out. */
export async function releaseEvent(db: D1Database, id: string): Promise<void> {
  await db.prepare("DELETE FROM webhook_events WHERE id = ?").bind(id).run();
}
