import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

/**
 * npm run setup:cloudflare against a stand-in Cloudflare: a stub wrangler (a Node script that logs
 * every command line and answers like wrangler, its state in a JSON file so a second run sees what
 * the first created) and a 127.0.0.1 server playing the deployed Worker's admin-user endpoint.
 * The config is always a copy of wrangler.toml; the real one must not change.
 */

const root = path.resolve(import.meta.dirname, "../..");
const script = path.join(root, "scripts/setup-cloudflare.mjs");
const realConfig = path.join(root, "wrangler.toml");

interface SetupModule {
  readD1Config(text: string): { binding?: string; databaseName: string; databaseId?: string };
  replaceD1DatabaseId(text: string, databaseName: string, id: string): string;
  parseCreatedDatabaseId(output: string): string | undefined;
  parseDeployedUrl(output: string): string | undefined;
  findDatabaseId(output: string, name: string): string | undefined;
}
// A computed specifier: the node project's tsconfig does not type-check scripts/ (the e2e one does).
const setupModule = path.join(root, "scripts/lib/cloudflare-setup.mjs");
const setup = (await import(setupModule)) as SetupModule;

const STUB = String.raw`#!${process.execPath}
// Stub wrangler: logs {args, stdin} as JSON lines to STUB_LOG, keeps Cloudflare's state in STUB_STATE.
const fs = require('node:fs');
const crypto = require('node:crypto');
const args = process.argv.slice(2);
const stdin = fs.readFileSync(0, 'utf8');
fs.appendFileSync(process.env.STUB_LOG, JSON.stringify({ args, stdin }) + '\n');
const stateFile = process.env.STUB_STATE;
const state = fs.existsSync(stateFile) ? JSON.parse(fs.readFileSync(stateFile, 'utf8'))
  : { databases: [], secrets: {}, migrated: false, workerExists: false };
const save = () => fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));
const command = args.filter((a, i) => a !== '--config' && args[i - 1] !== '--config');
const line = command.join(' ');
const fail = (text) => { process.stderr.write('✘ [ERROR] ' + text + '\n'); process.exit(1); };
if (process.env.STUB_FAIL && line.startsWith(process.env.STUB_FAIL)) fail('A request to the Cloudflare API failed (stubbed ' + process.env.STUB_FAIL + ').');
if (line === 'd1 list --json') {
  console.log(JSON.stringify(state.databases.map((db) => ({ uuid: db.uuid, name: db.name, created_at: '2026-01-01T00:00:00Z', version: 'production', num_tables: 0, file_size: 0 })), null, 2));
} else if (command[0] === 'd1' && command[1] === 'create') {
  const name = command[2];
  if (state.databases.some((db) => db.name === name)) fail('A database with that name already exists [code: 7502]');
  const uuid = crypto.randomUUID();
  state.databases.push({ name, uuid });
  save();
  console.log("✅ Successfully created DB '" + name + "' in region WEUR\nCreated your new D1 database.\n");
  console.log('To access your new D1 Database in your Worker, add the following snippet to your configuration file:');
  console.log('[[d1_databases]]\nbinding = "' + name + '"\ndatabase_name = "' + name + '"\ndatabase_id = "' + uuid + '"');
} else if (line.startsWith('d1 migrations apply ') && command.includes('--remote')) {
  if (!state.databases.some((db) => db.name === command[3])) fail("Couldn't find a D1 DB with the name or binding '" + command[3] + "'");
  if (state.migrated) { console.log('✅ No migrations to apply!'); }
  else { state.migrated = true; save(); console.log('Migrations to be applied:\n0001_initial.sql\n🚣 Executed 6 migrations'); }
} else if (line === 'secret list') {
  if (!state.workerExists) fail('Worker "keygate" not found.\n\nIf this is a new Worker, run ' + '\x60wrangler deploy\x60 first to create it.');
  console.log(JSON.stringify(Object.keys(state.secrets).map((name) => ({ name, type: 'secret_text' })), null, '  '));
} else if (command[0] === 'secret' && command[1] === 'put') {
  if (!stdin) fail('no secret value on stdin');
  if (!state.workerExists) console.log('🌀 Creating new Worker "keygate"...');
  state.workerExists = true;
  state.secrets[command[2]] = stdin;
  save();
  console.log('✨ Success! Uploaded secret ' + command[2]);
} else if (line === 'deploy') {
  state.workerExists = true;
  save();
  console.log('Total Upload: 300.00 KiB / gzip: 60.00 KiB\nUploaded keygate (2.10 sec)\nDeployed keygate triggers (0.80 sec)\n  ' + process.env.STUB_DEPLOY_URL + '\nCurrent Version ID: ' + crypto.randomUUID());
} else {
  fail('stub wrangler: unexpected command: ' + line);
}
`;

interface StubState {
  databases: { name: string; uuid: string }[];
  secrets: Record<string, string>;
  migrated: boolean;
  workerExists: boolean;
}

interface AdminCall {
  authorization: string | undefined;
  body: { email: string; password: string; role: string };
  status: number;
}

let dir: string;
let config: string;
let stub: string;
let stateFile: string;
let logFile: string;
let server: Server;
let url: string;
let adminCalls: AdminCall[];
let users: Set<string>;

const readState = (): StubState => JSON.parse(readFileSync(stateFile, "utf8")) as StubState;

/** Commands the stub saw, without the --config pair (checked separately); with stdin. */
function commands(): { line: string; config: string | undefined; stdin: string }[] {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((raw) => {
      const { args, stdin } = JSON.parse(raw) as { args: string[]; stdin: string };
      const at = args.indexOf("--config");
      return { line: args.filter((_, i) => i !== at && i !== at + 1).join(" "), config: at === -1 ? undefined : args[at + 1], stdin };
    });
}

function run(args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const base: Record<string, string | undefined> = { ...process.env };
  for (const name of ["ADMIN_TOKEN", "KEYGATE_URL", "KEYGATE_ADMIN_EMAIL", "KEYGATE_ADMIN_PASSWORD", "STUB_FAIL"]) delete base[name];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, "--config", config, ...args],
      {
        cwd: dir,
        env: { ...base, KEYGATE_WRANGLER: stub, STUB_STATE: stateFile, STUB_LOG: logFile, STUB_DEPLOY_URL: url, KEYGATE_SETUP_WAIT_MS: "0", ...env },
        timeout: 30_000,
      },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) || 1 : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  // The deployed Worker's admin-user endpoint: it knows the ADMIN_TOKEN the stub holds as a secret.
  server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk: Buffer) => (raw += chunk.toString()));
    req.on("end", () => {
      const answer = (status: number, body: object) => {
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
        return status;
      };
      if (req.method !== "POST" || req.url !== "/api/v1/admin/users") return answer(404, { code: "NOT_FOUND" });
      const body = JSON.parse(raw) as AdminCall["body"];
      const token = readState().secrets.ADMIN_TOKEN;
      let status: number;
      if (!token || req.headers.authorization !== `Bearer ${token}`) status = answer(401, { code: "UNAUTHENTICATED", message: "bad token" });
      else if (users.has(body.email)) status = answer(409, { code: "CONFLICT", message: "Another user has this email" });
      else {
        users.add(body.email);
        status = answer(201, { id: "u1", email: body.email, role: body.role });
      }
      adminCalls.push({ authorization: req.headers.authorization, body, status });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "keygate-setup-cf-"));
  config = path.join(dir, "wrangler.toml");
  copyFileSync(realConfig, config);
  stub = path.join(dir, "wrangler-stub");
  writeFileSync(stub, STUB);
  chmodSync(stub, 0o755);
  stateFile = path.join(dir, "cloudflare-state.json");
  logFile = path.join(dir, "wrangler.log");
  adminCalls = [];
  users = new Set();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const originalText = readFileSync(realConfig, "utf8");

describe.skipIf(process.platform === "win32")("npm run setup:cloudflare", () => {
  it("first run: creates the database, writes its id, migrates, puts three secrets, deploys, creates the admin", async () => {
    const result = await run();
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);

    const seen = commands();
    expect(seen.map((c) => c.line)).toEqual([
      "d1 list --json",
      "d1 create keygate",
      "d1 migrations apply keygate --remote",
      "secret list",
      "secret put ADMIN_TOKEN",
      "secret put ORIGIN_SIGNING_SECRET",
      "secret put JWT_SIGNING_KEY",
      "deploy",
    ]);
    expect(new Set(seen.map((c) => c.config))).toEqual(new Set([config]));

    // The id went into the copy, only there: every other byte is the original's.
    const state = readState();
    const id = state.databases[0]!.uuid;
    const written = readFileSync(config, "utf8");
    expect(written).toBe(originalText.replace('database_id = "00000000-0000-4000-8000-00000000d1db"', `database_id = "${id}"`));
    expect(written).not.toBe(originalText);
    expect(readFileSync(realConfig, "utf8"), "the real wrangler.toml is untouched").toBe(originalText);

    // Each secret: non-empty, generated, of its shape; given on stdin.
    const puts = Object.fromEntries(seen.filter((c) => c.line.startsWith("secret put ")).map((c) => [c.line.slice(11), c.stdin]));
    expect(puts.ADMIN_TOKEN).toMatch(/^[0-9a-f]{64}$/);
    expect(puts.ORIGIN_SIGNING_SECRET).toMatch(/^[0-9a-f]{64}$/);
    expect(puts.ADMIN_TOKEN).not.toBe(puts.ORIGIN_SIGNING_SECRET);
    const jwk = JSON.parse(puts.JWT_SIGNING_KEY!) as Record<string, string>;
    expect(jwk).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    for (const member of ["x", "y", "d", "kid"]) expect(jwk[member], member).toBeTruthy();
    expect(state.secrets).toEqual(puts);

    // The admin, created through the "deployed" API with the ADMIN_TOKEN just put.
    expect(adminCalls).toHaveLength(1);
    expect(adminCalls[0]).toMatchObject({ authorization: `Bearer ${puts.ADMIN_TOKEN}`, status: 201, body: { email: "admin@keygate.local", role: "admin" } });
    const password = adminCalls[0]!.body.password;
    expect(password.length).toBeGreaterThanOrEqual(16);

    // One line per step, then the generated values the operator needs, once.
    const stepLines = result.stdout.split("\n").filter((line) => /^\[\d\/6\]/.test(line));
    expect(stepLines).toHaveLength(6);
    expect(stepLines.join("\n")).toMatch(
      /created .*\n.*database_id set .*\n.*migrations: applied.*\n.*secrets: put ADMIN_TOKEN, ORIGIN_SIGNING_SECRET, JWT_SIGNING_KEY\n.*deploy: done \(http:\/\/127\.0\.0\.1:\d+\)\n.*admin user admin@keygate\.local: created/,
    );
    expect(result.stdout.split(puts.ADMIN_TOKEN!)).toHaveLength(2);
    expect(result.stdout).toContain(`ADMIN_TOKEN=${puts.ADMIN_TOKEN}`);
    expect(result.stdout).toContain(`ORIGIN_SIGNING_SECRET=${puts.ORIGIN_SIGNING_SECRET}`);
    expect(result.stdout).toContain(`KEYGATE_ADMIN_PASSWORD=${password}`);
    expect(result.stdout, "the private signing key is never printed").not.toContain(jwk.d);
  });

  it("second run: creates nothing, puts no secret, accepts the existing admin (409), exits 0", async () => {
    expect((await run()).code).toBe(0);
    const first = readState();
    const configAfterFirst = readFileSync(config, "utf8");
    writeFileSync(logFile, "");

    const again = await run([], { ADMIN_TOKEN: first.secrets.ADMIN_TOKEN! });
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);
    expect(commands().map((c) => c.line)).toEqual(["d1 list --json", "d1 migrations apply keygate --remote", "secret list", "deploy"]);
    expect(readState(), "no database, secret or value changed").toEqual(first);
    expect(readFileSync(config, "utf8")).toBe(configAfterFirst);
    expect(adminCalls.map((call) => call.status)).toEqual([201, 409]);
    expect(again.stdout).toMatch(/\[1\/6\] D1 database keygate: already exists/);
    expect(again.stdout).toMatch(/\[2\/6\] .*database_id already set/);
    expect(again.stdout).toMatch(/\[3\/6\] migrations: already applied/);
    expect(again.stdout).toMatch(/\[4\/6\] secrets: already set/);
    expect(again.stdout).toMatch(/\[6\/6\] admin user admin@keygate\.local: already exists/);
    expect(again.stdout, "nothing generated, nothing shown").not.toMatch(/Shown once|ADMIN_TOKEN=/);
  });

  it("finds a database that exists already instead of creating it, and puts only the missing secrets", async () => {
    const id = "0f1e2d3c-4b5a-4697-8887-a1b2c3d4e5f6";
    writeFileSync(
      stateFile,
      JSON.stringify({ databases: [{ name: "keygate", uuid: id }], secrets: { ORIGIN_SIGNING_SECRET: "x".repeat(40) }, migrated: false, workerExists: true }),
    );
    const result = await run();
    expect(result.code).toBe(0);
    const lines = commands().map((c) => c.line);
    expect(lines).not.toContain("d1 create keygate");
    expect(lines.filter((line) => line.startsWith("secret put"))).toEqual(["secret put ADMIN_TOKEN", "secret put JWT_SIGNING_KEY"]);
    expect(readState().secrets.ORIGIN_SIGNING_SECRET, "a live secret is not rotated").toBe("x".repeat(40));
    expect(readFileSync(config, "utf8")).toContain(`database_id = "${id}"`);
    expect(result.stdout).toMatch(/already exists \(0f1e2d3c/);
  });

  it("--rotate puts every secret again, with new values", async () => {
    expect((await run()).code).toBe(0);
    const before = readState().secrets;
    writeFileSync(logFile, "");
    const result = await run(["--rotate"]);
    expect(result.code).toBe(0);
    expect(
      commands()
        .filter((c) => c.line.startsWith("secret put"))
        .map((c) => c.line),
    ).toHaveLength(3);
    const after = readState().secrets;
    for (const name of Object.keys(before)) expect(after[name], name).not.toBe(before[name]);
    expect(adminCalls.map((call) => call.status)).toEqual([201, 409]);
  });

  it("a failing wrangler step stops the run with a clear message and exit 1; what was put is still handed over", async () => {
    const result = await run([], { STUB_FAIL: "deploy" });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("wrangler deploy failed (exit 1)");
    expect(result.stderr).toContain("stubbed deploy");
    expect(result.stderr).toMatch(/run npm run setup:cloudflare again/);
    expect(adminCalls, "no admin call after a failed deploy").toHaveLength(0);
    expect(commands().at(-1)?.line).toBe("deploy");
    // The ADMIN_TOKEN is live on Cloudflare now: losing it would lock the operator out.
    expect(result.stdout).toContain(`ADMIN_TOKEN=${readState().secrets.ADMIN_TOKEN}`);

    // Fixed, the next run carries on from there and puts no secret twice.
    writeFileSync(logFile, "");
    const fixed = await run([], { ADMIN_TOKEN: readState().secrets.ADMIN_TOKEN! });
    expect(fixed.code).toBe(0);
    expect(commands().some((c) => c.line.startsWith("secret put") || c.line.startsWith("d1 create"))).toBe(false);
    expect(adminCalls.map((call) => call.status)).toEqual([201]);
  });

  it("a failure at the first step runs nothing after it", async () => {
    const result = await run([], { STUB_FAIL: "d1 list" });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("wrangler d1 list --json failed");
    expect(commands().map((c) => c.line)).toEqual(["d1 list --json"]);
    expect(readFileSync(config, "utf8")).toBe(originalText);
  });

  it("a re-run that does not know the live ADMIN_TOKEN says so and exits 1", async () => {
    expect((await run()).code).toBe(0);
    const result = await run();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/admin user: skipped: ADMIN_TOKEN is set on Cloudflare but not known here/);
  });

  it("a wrong ADMIN_TOKEN is named as such", async () => {
    expect((await run()).code).toBe(0);
    const result = await run([], { ADMIN_TOKEN: "not-the-token-on-cloudflare" });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/answered 401: wrong ADMIN_TOKEN/);
  });

  it("--secrets-file writes the generated values there (mode 0600) instead of printing them", async () => {
    const file = path.join(dir, "cloudflare.secrets");
    const result = await run(["--secrets-file", file]);
    expect(result.code).toBe(0);
    const token = readState().secrets.ADMIN_TOKEN!;
    expect(result.stdout).not.toContain(token);
    expect(readFileSync(file, "utf8")).toContain(`ADMIN_TOKEN='${token}'`);
    expect(readFileSync(file, "utf8")).toContain(`KEYGATE_URL='${url}'`);
    const { statSync } = await import("node:fs");
    expect((statSync(file).mode & 0o777).toString(8)).toBe("600");
  });
});

describe("cloudflare-setup helpers", () => {
  it("replace only the database_id of the named D1 table", () => {
    const text = `[[d1_databases]]\nbinding = "OTHER"\ndatabase_name = "other"\ndatabase_id = "keep"\n\n${originalText}`;
    const id = "12345678-1234-4234-8234-123456789abc";
    const out = setup.replaceD1DatabaseId(text, "keygate", id);
    expect(out).toBe(text.replace('"00000000-0000-4000-8000-00000000d1db"', `"${id}"`));
    expect(setup.readD1Config(originalText)).toEqual({ binding: "DB", databaseName: "keygate", databaseId: "00000000-0000-4000-8000-00000000d1db" });
    expect(() => setup.replaceD1DatabaseId(originalText, "keygate", "not-an-id")).toThrow(/not a D1 database id/);
  });

  it("read the ids and URL wrangler prints", () => {
    expect(setup.parseCreatedDatabaseId('[[d1_databases]]\nbinding = "keygate"\ndatabase_id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"')).toBe(
      "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
    );
    expect(setup.parseCreatedDatabaseId('{ "database_id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee" }')).toBe("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
    expect(setup.findDatabaseId('[{"uuid":"u-1","name":"other"},{"uuid":"u-2","name":"keygate"}]', "keygate")).toBe("u-2");
    expect(setup.findDatabaseId("[]", "keygate")).toBeUndefined();
    const deploy = "Uploaded keygate (3.1 sec)\nDeployed keygate triggers (0.9 sec)\n  https://keygate.acme.workers.dev\nCurrent Version ID: 1";
    expect(setup.parseDeployedUrl(deploy)).toBe("https://keygate.acme.workers.dev");
    expect(setup.parseDeployedUrl("Deployed keygate triggers (0.9 sec)\n  api.acme.com (custom domain)\nCurrent Version ID: 1")).toBeUndefined();
  });
});
