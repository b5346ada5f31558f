import { getConfig } from "../config";
import { nowIso } from "../db/json";
import type { Env } from "../env";
import { publishEvents } from "./events";
import { keyExpiringEvent } from "./key-events";

/**
 * The cron's key.expiring scan ([triggers] crons in wrangler.toml): every
 * active key that expires within KEY_EXPIRING_WARNING_DAYS and has not
 * expired yet gets one key.expiring event, with its expiry as the period, so
 * a second run is a no-op (the consumer's dedupe) and a moved expiry warns
 * again. A rotated-away key is left out: its replacement has its lineage and
 * expiry. At most EXPIRY_SCAN_LIMIT keys per run, soonest first; keys already
 * warned of are skipped in SQL, so a backlog larger than that drains over
 * the following runs.
 */
export const EXPIRY_SCAN_LIMIT = 500;

interface ExpiringRow {
  id: string;
  lineage_id: string | null;
  prefix: string;
  name: string;
  owner_id: string | null;
  env: "live" | "test" | null;
  expires_at: string;
}

/**
 * One range of api_keys_expiring (active keys by expiry); the warned-of
 * check is webhook_events' index on (subject, period).
 */
export const EXPIRING_KEYS_SQL = `SELECT id, lineage_id, prefix, name, owner_id, env, expires_at FROM api_keys
  WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at > ?1 AND expires_at <= ?2 AND rotated_to IS NULL
    AND NOT EXISTS (
      SELECT 1 FROM webhook_events
      WHERE subject = 'key:' || coalesce(api_keys.lineage_id, api_keys.id) AND period = api_keys.expires_at AND type = 'key.expiring'
    )
  ORDER BY expires_at LIMIT ?3`;

/** Publishes the key.expiring events due at `now`; returns how many. */
export async function publishExpiringKeys(env: Env, now: number): Promise<number> {
  const config = getConfig(env);
  const until = now + config.keyExpiringWarningDays * 86_400_000;
  const { results } = await env.DB.prepare(EXPIRING_KEYS_SQL).bind(nowIso(now), nowIso(until), EXPIRY_SCAN_LIMIT).all<ExpiringRow>();
  const events = results.map((row) =>
    keyExpiringEvent(
      {
        id: row.id,
        lineageId: row.lineage_id ?? row.id,
        prefix: row.prefix,
        name: row.name,
        ownerId: row.owner_id,
        env: row.env,
        expiresAt: row.expires_at,
      },
      now,
    ),
  );
  await publishEvents(env, events);
  return events.length;
}

/** The Worker's `scheduled` handler: one JSON line if the scan fails (and the invocation fails with it). */
export async function runScheduled(controller: Pick<ScheduledController, "scheduledTime" | "cron">, env: Env): Promise<void> {
  try {
    await publishExpiringKeys(env, controller.scheduledTime);
  } catch (error) {
    console.error(JSON.stringify({ event: "key_expiry_scan_failed", cron: controller.cron, cause: String(error) }));
    throw error;
  }
}
