import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import type { Config } from "../config";
import { getKey, listKeyPage, listKeys, type KeyRecord } from "../db/keys";
import type { Product } from "../db/products";
import { dailyUsage } from "../db/usage";
import { GatewayError } from "../errors";
import { readKeyUsage } from "../limits/client";
import { DAY_MS, windowCounts, windowStarts } from "../limits/windows";
import { callerJson, requireAnyCaller, type Caller } from "../middleware/caller";
import { validateQuery } from "../middleware/validate";
import { describe } from "../openapi/operation";
import { loadProducts } from "../proxy/route-match";
import { UsageQuerySchema, UsageStatsSchema } from "./schemas";

/**
 * GET /api/v1/usage/stats: per key, this minute and today live from the
 * Durable Object its calls count in, and the last 30 UTC days from
 * usage_daily (which that object's alarm keeps current). Never a scan of a
 * request log. A key's counts are its rotation lineage's: the keys of a
 * rotation share one quota, so they show one count.
 */
export const USAGE_DAYS = 30;
/** Admins see every key: the newest this many. */
export const MAX_KEYS_PER_ANSWER = 100;

/**
 * The limits shown for a key. A key may span products, and the gateway
 * applies key → product → global default per call; the stats show the key's
 * own limit, else its one product's (when it names exactly one), else the
 * global default.
 */
export function displayedLimits(
  key: Pick<KeyRecord, "rateLimitPerMinute" | "rateLimitPerDay" | "products">,
  products: readonly Product[],
  config: Pick<Config, "rateLimitPerMinuteDefault" | "rateLimitPerDayDefault">,
): { limitPerMinute: number; limitPerDay: number } {
  const only = key.products.length === 1 && key.products[0] !== "*" ? products.find((p) => p.slug === key.products[0]) : undefined;
  return {
    limitPerMinute: key.rateLimitPerMinute ?? only?.rateLimitPerMinute ?? config.rateLimitPerMinuteDefault,
    limitPerDay: key.rateLimitPerDay ?? only?.rateLimitPerDay ?? config.rateLimitPerDayDefault,
  };
}

/** The UTC days (YYYY-MM-DD) of the last `count` days, oldest first, today last. */
export function lastDays(now: number, count: number): string[] {
  const { dayStart } = windowStarts(now);
  return Array.from({ length: count }, (_, i) => new Date(dayStart - (count - 1 - i) * DAY_MS).toISOString().slice(0, 10));
}

/**
 * The keys a caller's stats cover: an API key itself; an admin (the token or a
 * user with role admin) every key, as GET /api/v1/keys shows them; a user
 * their own.
 */
async function keysOf(caller: Caller, db: D1Database): Promise<KeyRecord[]> {
  if (caller.key) return [caller.key];
  // One index range, not a read of every key (api_keys_created).
  if (caller.isAdmin) return (await listKeyPage(db, { limit: MAX_KEYS_PER_ANSWER })).rows;
  if (caller.user) return listKeys(db, caller.user.id);
  return []; // a third party's token owns no keys
}

async function liveCounts(env: AppEnv["Bindings"], key: KeyRecord) {
  try {
    return await readKeyUsage(env, key);
  } catch (error) {
    throw new GatewayError("AUTH_BACKEND_UNAVAILABLE", {
      message: "Rate limiter is unavailable",
      cause: error,
      context: { event: "rate_limiter_failed", keyId: key.id },
    });
  }
}

export const usageRoutes = new Hono<AppEnv>().get(
  "/api/v1/usage/stats",
  describe({
    operationId: "getUsageStats",
    summary: "Usage per key: this minute, today, last 30 days",
    tags: ["usage"],
    responses: [{ status: 200, description: "Usage of the caller's keys (one key for an API key; the newest 100 for admins)", schema: UsageStatsSchema }],
    errors: ["NOT_FOUND"],
  }),
  requireAnyCaller(),
  validateQuery(UsageQuerySchema),
  async (c) => {
    const caller = c.get("caller");
    const config = c.get("config");
    const { keyId } = c.req.valid("query");
    const now = Date.now();

    let keys = await keysOf(caller, c.env.DB);
    if (keyId !== undefined) {
      // Admins may look at any key; others only at their own. Unknown and foreign look the same.
      const key = caller.isAdmin ? await getKey(c.env.DB, keyId) : keys.find((k) => k.id === keyId);
      if (!key) throw new GatewayError("NOT_FOUND", { message: "No such key" });
      keys = [key];
    }

    const days = lastDays(now, USAGE_DAYS);
    const [products, history, live] = await Promise.all([
      loadProducts(c.env.DB, config.productCacheTtlSeconds, now),
      dailyUsage(c.env.DB, [...new Set(keys.map((key) => key.lineageId))], days[0]!),
      Promise.all(keys.map((key) => liveCounts(c.env, key))),
    ]);
    const counted = new Map(history.map((row) => [`${row.keyId} ${row.day}`, row]));
    const today = days.at(-1);

    return callerJson(c, {
      keys: keys.map((key, i) => {
        const { minuteUsed, dayUsed, credits, creditsUsedToday } = live[i]!;
        const { minute, day } = windowCounts(now, displayedLimits(key, products, config), minuteUsed, dayUsed);
        return {
          id: key.id,
          prefix: key.prefix,
          minute,
          day: { limit: day.limit, used: day.used, remaining: day.remaining },
          // D1 trails the live count by up to a flush delay: today shows the larger.
          last30Days: days.map((date) => {
            const stored = counted.get(`${key.lineageId} ${date}`);
            const count = stored?.count ?? 0;
            const creditsUsed = stored?.creditsUsed ?? 0;
            if (date !== today) return { date, count, creditsUsed };
            return { date, count: Math.max(count, dayUsed), creditsUsed: Math.max(creditsUsed, creditsUsedToday) };
          }),
          credits,
        };
      }),
    });
  },
);
