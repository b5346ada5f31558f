/**
 * usage_daily: admitted calls and credits used per key per UTC day, written by the
 * RateLimiter object's alarm. Read here for usage stats; never a scan of a
 * request log.
 */
export interface DailyCount {
  keyId: string;
  day: string;
  count: number;
  creditsUsed: number;
}

/** The days from `fromDay` (YYYY-MM-DD) on, for these keys; served by the (key_id, day) primary key. */
export async function dailyUsage(db: D1Database, keyIds: readonly string[], fromDay: string): Promise<DailyCount[]> {
  if (keyIds.length === 0) return [];
  // json_each keeps it one statement whatever the number of keys (D1 caps bound parameters at 100).
  const { results } = await db
    .prepare(
      "SELECT key_id AS keyId, day, count, credits_used AS creditsUsed FROM usage_daily WHERE key_id IN (SELECT value FROM json_each(?)) AND day >= ? ORDER BY day",
    )
    .bind(JSON.stringify(keyIds), fromDay)
    .all<DailyCount>();
  return results;
}
