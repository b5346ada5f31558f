import { Hono } from "hono";
import type { AppEnv } from "../app-env";

// Not built yet: see the open issues. Unmatched paths fall through to product routing.
export const usageRoutes = new Hono<AppEnv>();
