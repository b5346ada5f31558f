#!/usr/bin/env node
// From laptop to Cloudflare: npm run setup:cloudflare [-- options]
//
// Creates (or finds) the D1 database, writes its id into wrangler.toml, applies the migrations
// remotely, puts the Worker's secrets that are not set yet, deploys, and creates the first admin
// through the deployed API. Every step is skipped when already done, so it is safe to re-run.
// Needs a Cloudflare login first: npx wrangler login (or CLOUDFLARE_API_TOKEN).
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runSetup } from './lib/cloudflare-setup.mjs';
import { isMainModule, repoRoot } from './lib/paths.mjs';

const HELP = `npm run setup:cloudflare -- [options]

  --config PATH          wrangler config to use and update (default: wrangler.toml)
  --url URL              the deployed keygate (default: the URL wrangler deploy prints; or KEYGATE_URL)
  --admin-email EMAIL    the first admin's login (default: KEYGATE_ADMIN_EMAIL, else admin@keygate.local)
  --admin-password PW    its password (default: KEYGATE_ADMIN_PASSWORD, else generated and shown once)
  --secrets-file PATH    write the generated secrets to PATH (mode 0600) instead of printing them
  --rotate               put new values for every secret, even those already set

Environment: ADMIN_TOKEN (the token already set on Cloudflare, needed to create the admin on a
re-run), KEYGATE_WRANGLER (the wrangler executable; default: node_modules/.bin/wrangler).`;

/**
 * @param {string[]} argv @param {NodeJS.ProcessEnv} env
 * @param {{ out: (text: string) => void, err: (text: string) => void }} io
 */
export async function main(argv, env, io) {
  /** @type {ReturnType<typeof parse>} */
  let parsed;
  function parse() {
    return parseArgs({
      args: argv,
      strict: true,
      options: {
        config: { type: 'string' },
        url: { type: 'string' },
        'admin-email': { type: 'string' },
        'admin-password': { type: 'string' },
        'secrets-file': { type: 'string' },
        rotate: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  }
  try {
    parsed = parse();
  } catch (error) {
    io.err(`Error: ${/** @type {Error} */ (error).message}\n\n${HELP}`);
    return 2;
  }
  const { values } = parsed;
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  const waitMs = Number(env.KEYGATE_SETUP_WAIT_MS);
  return runSetup(
    {
      config: values.config ? resolve(values.config) : join(repoRoot, 'wrangler.toml'),
      wrangler: env.KEYGATE_WRANGLER || undefined,
      url: values.url || env.KEYGATE_URL || undefined,
      adminToken: env.ADMIN_TOKEN || undefined,
      adminEmail: values['admin-email'] || env.KEYGATE_ADMIN_EMAIL || undefined,
      adminPassword: values['admin-password'] || env.KEYGATE_ADMIN_PASSWORD || undefined,
      secretsFile: values['secrets-file'] ? resolve(values['secrets-file']) : undefined,
      rotate: values.rotate ?? false,
      waitMs: Number.isFinite(waitMs) && waitMs >= 0 && env.KEYGATE_SETUP_WAIT_MS ? waitMs : undefined,
    },
    io,
  );
}

if (isMainModule(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2), process.env, {
    out: (text) => console.log(text),
    err: (text) => console.error(text),
  });
}
