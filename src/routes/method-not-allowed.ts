import type { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { GatewayError } from "../errors";

/**
 * keygate's own paths never fall through to product routing, whatever the
 * method: each path registered so far answers the methods it lists and 405
 * with `Allow` for the rest. Read off the router, so a new route needs no list.
 */
export function answerOtherMethods(app: Hono<AppEnv>): void {
  const methods = new Map<string, Set<string>>();
  for (const route of app.routes) {
    if (route.method === "ALL") continue;
    const listed = methods.get(route.path) ?? new Set<string>();
    listed.add(route.method);
    if (route.method === "GET") listed.add("HEAD");
    methods.set(route.path, listed);
  }
  for (const [path, listed] of methods) {
    const allow = [...listed].join(", ");
    app.all(path, () => {
      throw new GatewayError("METHOD_NOT_ALLOWED", { headers: { Allow: allow } });
    });
  }
}
