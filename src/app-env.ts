import type { Config } from "./config";
import type { Env } from "./env";
import type { ErrorFormat } from "./errors";

/** The Hono environment every route and middleware shares. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    config: Config;
    /** How errors are rendered: the matched product's format, else detailed. */
    errorFormat: ErrorFormat;
    /** The matched product's CORS headers (src/proxy/cors.ts), so its error answers carry them too. */
    corsHeaders: Record<string, string> | undefined;
    /** Who calls keygate's own management endpoints (middleware/caller.ts). */
    caller: import("./middleware/caller").Caller;
  };
}
