import { generateKeyPairSync } from "node:crypto";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

/**
 * Two projects, one run, one JSON report:
 *  - workers: unit and integration tests inside workerd (real D1, real Durable Objects);
 *  - node: Node tests of repository files (secret scanning);
 *  - e2e: Node tests that start `wrangler dev` and drive it over HTTP.
 */
export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  // A signing key made for this run only.
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "test-signing-key", alg: "ES256", use: "sig" };

  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  ADMIN_TOKEN: "test-admin-token-0123456789",
                  ORIGIN_SIGNING_SECRET: "test-origin-signing-secret-0123456789abcdef",
                  JWT_SIGNING_KEY: JSON.stringify(signingKey),
                  JWT_SECRET: "test-hs256-secret-0123456789abcdef0123456789",
                },
              },
            }),
          ],
          test: {
            name: "workers",
            include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
            // A bound against hangs, not a speed target (speed lives in npm run bench): on two
            // cores shared with the e2e project, a 210-call test can take several seconds.
            testTimeout: 30_000,
            setupFiles: ["./test/setup.ts"],
          },
        },
        {
          test: {
            name: "node",
            include: ["test/node/**/*.test.ts"],
            environment: "node",
          },
        },
        {
          test: {
            name: "e2e",
            include: ["test/e2e/**/*.test.ts", "test/browser/**/*.test.ts"],
            environment: "node",
            testTimeout: 60_000,
            hookTimeout: 120_000,
            // One wrangler dev at a time: two cores.
            fileParallelism: false,
          },
        },
      ],
    },
  };
});
