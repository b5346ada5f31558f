// npm start: the one command a newcomer runs after `npm install`.
//
// 1. writes the Worker's secrets to .dev.vars if missing (ADMIN_TOKEN, ORIGIN_SIGNING_SECRET,
//    JWT_SIGNING_KEY; values already there are kept),
// 2. migrates and seeds the local D1 database (scripts/seed.mjs: demo users, products, keys),
// 3. starts the demo origin (scripts/demo-origin.mjs) and `wrangler dev`, both on 127.0.0.1,
// 4. waits for GET /healthz, then prints the URL, logins, ADMIN_TOKEN, demo keys and curl lines.
// Ctrl-C / SIGTERM stops everything.
//
// Environment (all optional):
//   PORT                      gateway port (default 8787)
//   DEMO_ORIGIN_PORT          demo origin port (default 8788)
//   KEYGATE_PERSIST_DIR       local state dir for D1 and Durable Objects, passed to wrangler as
//                             --persist-to (default: wrangler's own .wrangler/state)
//   KEYGATE_DEV_VARS          secrets file to use/create instead of ./.dev.vars (handed to wrangler
//                             with --env-file, so ./.dev.vars is then ignored)
//   KEYGATE_READY_TIMEOUT_MS  how long to wait for /healthz (default 60000)
// The e2e test sets the first four so it never touches your ports, state or .dev.vars.
import { resolve } from 'node:path';
import { DEFAULT_DEMO_ORIGIN_PORT, startDemoOrigin } from './demo-origin.mjs';
import { DEMO_ADMIN, DEMO_USER, seedLocalD1 } from './seed.mjs';
import { ConfigInvalid, LOOPBACK, isPortFree } from './lib/net.mjs';
import { repoRoot } from './lib/paths.mjs';
import { ensureDevVars } from './lib/secrets.mjs';
import { startWranglerDev, stopProcessGroup } from './lib/wrangler.mjs';

const DEFAULT_DEV_VARS = resolve(repoRoot, '.dev.vars');

function settings() {
  const env = process.env;
  return {
    port: Number(env.PORT || 8787),
    originPort: Number(env.DEMO_ORIGIN_PORT || DEFAULT_DEMO_ORIGIN_PORT),
    persistTo: env.KEYGATE_PERSIST_DIR ? resolve(env.KEYGATE_PERSIST_DIR) : undefined,
    devVarsPath: env.KEYGATE_DEV_VARS ? resolve(env.KEYGATE_DEV_VARS) : DEFAULT_DEV_VARS,
    readyTimeoutMs: Number(env.KEYGATE_READY_TIMEOUT_MS || 60_000),
  };
}

/** Fail early, and say which variable moves the port, rather than a wrangler stack trace. @param {number} port @param {string} variable */
async function assertPortFree(port, variable) {
  if (!(await isPortFree(port))) {
    throw new Error(`Port ${port} on ${LOOPBACK} is in use. Stop what holds it, or set ${variable} to another port.`);
  }
}

/** Everything start launched, so a signal at any moment can stop it. */
const running = {
  /** @type {import('node:child_process').ChildProcess | undefined} */
  wrangler: undefined,
  /** @type {{ close: () => Promise<void> } | undefined} */
  origin: undefined,
  stopping: false,
};

/** @param {number} code exit code */
async function shutdown(code) {
  if (running.stopping) return;
  running.stopping = true;
  if (code !== 1) console.log('\nStopping keygate...');
  if (running.wrangler) await stopProcessGroup(running.wrangler);
  await running.origin?.close();
  process.exit(code);
}

/**
 * @typedef {import('./seed.mjs').SeedResult['keys']} DemoKeys
 */

/** @param {string} url @param {DemoKeys} keys @param {string} adminToken */
function curlLines(url, keys, adminToken) {
  const json = "-H 'content-type: application/json'";
  return [
    '# Summarize, ila key in X-API-Key:',
    `curl -s -X POST ${url}/api/summarize -H 'X-API-Key: ${keys.ila}' ${json} -d '{"inputs":{"text":"hello"}}'`,
    '# DeFi, live key as a Bearer token:',
    `curl -s ${url}/api/v1/defi/pools -H 'Authorization: Bearer ${keys.ilalLive}'`,
    '# A swap (needs scope defi:swap; the live key has defi:*):',
    `curl -s -X POST ${url}/api/v1/defi/swap -H 'Authorization: Bearer ${keys.ilalLive}' ${json} -d '{"from":"ETH","to":"USDC","amount":"1"}'`,
    '# The same swap with the read-only test key: 403 API_KEY_SCOPE_MISSING, and the origin sees nothing:',
    `curl -s -X POST ${url}/api/v1/defi/swap -H 'Authorization: Bearer ${keys.ilalTest}' ${json} -d '{"from":"ETH","to":"USDC","amount":"1"}'`,
    '# The test key on a read call goes to the sandbox origin (see "path" in the answer):',
    `curl -s ${url}/api/v1/defi/pools -H 'Authorization: Bearer ${keys.ilalTest}'`,
    '# A JWT for the demo user:',
    `curl -s -X POST ${url}/auth/login ${json} -d '{"email":"${DEMO_USER.email}","password":"${DEMO_USER.password}"}'`,
    '# The admin API with ADMIN_TOKEN:',
    `curl -s ${url}/api/v1/admin/products -H 'Authorization: Bearer ${adminToken}'`,
  ];
}

/** @param {{ url: string, originUrl: string, devVarsPath: string, adminToken: string | undefined, keys: DemoKeys }} info */
function banner({ url, originUrl, devVarsPath, adminToken = '', keys }) {
  return [
    '',
    `keygate is running at ${url}   (demo origin: ${originUrl})`,
    '',
    `  Dashboard     ${url}/dashboard`,
    `  Admin login   ${DEMO_ADMIN.email} / ${DEMO_ADMIN.password}`,
    `  User login    ${DEMO_USER.email} / ${DEMO_USER.password}`,
    `  ADMIN_TOKEN   ${adminToken}   (from ${devVarsPath})`,
    '',
    `Demo keys, owned by ${DEMO_USER.email} (fresh on every start; earlier ones stop working):`,
    `  ila        product summarize, scopes *                ${keys.ila}`,
    `  ilal_live  product defi, scopes defi:*                ${keys.ilalLive}`,
    `  ilal_test  product defi, scopes defi:read (sandbox)   ${keys.ilalTest}`,
    '',
    'Try:',
    ...curlLines(url, keys, adminToken).map((line) => `  ${line}`),
    '',
    'Press Ctrl-C to stop.',
    '',
  ].join('\n');
}

async function main() {
  const config = settings();
  process.on('SIGINT', () => void shutdown(130));
  process.on('SIGTERM', () => void shutdown(143));

  await assertPortFree(config.port, 'PORT');
  await assertPortFree(config.originPort, 'DEMO_ORIGIN_PORT');

  const { values: secrets, added } = await ensureDevVars(config.devVarsPath);
  if (added.length) console.log(`Generated ${added.join(', ')} in ${config.devVarsPath}`);

  const originUrl = `http://${LOOPBACK}:${config.originPort}`;
  console.log('Migrating and seeding the local D1 database...');
  const seed = await seedLocalD1({ originUrl, persistTo: config.persistTo });

  running.origin = await startDemoOrigin(config.originPort);
  console.log(`Starting wrangler dev on ${LOOPBACK}:${config.port} (up to ${config.readyTimeoutMs / 1000} s)...`);

  let ready = false;
  const dev = await startWranglerDev({
    port: config.port,
    persistTo: config.persistTo,
    // ./.dev.vars is read by wrangler itself; any other file must be named explicitly.
    envFile: config.devVarsPath === DEFAULT_DEV_VARS ? undefined : config.devVarsPath,
    timeoutMs: config.readyTimeoutMs,
    onSpawn: (child) => {
      running.wrangler = child;
    },
    // Quiet until ready (the output is shown on failure); then pass request logs through.
    onOutput: (chunk) => {
      if (ready) process.stdout.write(chunk);
    },
  });
  if (running.stopping) return;

  dev.child.once('exit', (code, signal) => {
    if (running.stopping) return;
    console.error(`wrangler dev stopped unexpectedly (${signal ?? `code ${code}`}). Last output:\n${dev.output()}`);
    void shutdown(1);
  });

  console.log(banner({ url: dev.url, originUrl, devVarsPath: config.devVarsPath, adminToken: secrets.ADMIN_TOKEN, keys: seed.keys }));
  ready = true;
}

main().catch((error) => {
  if (running.stopping) return;
  const slow = /did not answer 200 within/.test(error.message) ? ' (on a slow machine, raise KEYGATE_READY_TIMEOUT_MS)' : '';
  const fix = error instanceof ConfigInvalid ? '\nFix the value (see wrangler.toml and your secrets file) and run npm start again.' : '';
  console.error(`\nnpm start failed${slow}: ${error.message}${fix}`);
  void shutdown(1);
});
