import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { installPoolProxyGuard } from "./helpers/pool-proxy-guard";

// Every call and object would otherwise make later ones slower (see the guard's comment).
installPoolProxyGuard();

// Setup files may run more than once; applyD1Migrations skips applied ones.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
