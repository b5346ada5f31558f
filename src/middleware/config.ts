import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { getConfig } from "../config";
import { documented } from "../openapi/operation";

/** Parses and validates configuration once per isolate; a bad var fails every request by name. */
export const loadConfig = () =>
  documented(
    createMiddleware<AppEnv>(async function loadConfig(c, next) {
      c.set("config", getConfig(c.env));
      await next();
    }),
    { errors: ["CONFIG_INVALID"] },
  );
