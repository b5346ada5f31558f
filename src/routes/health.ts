import { Hono } from "hono";
import type { AppEnv } from "../app-env";

/**
 * Liveness: answers without touching storage or revealing configuration. It
 * runs after the configuration check, so a misconfigured gateway reports
 * 500 CONFIG_INVALID (naming the variable, never its value) instead of "ok".
 */
export const healthRoutes = new Hono<AppEnv>().get("/healthz", (c) => c.json({ status: "ok" }));
