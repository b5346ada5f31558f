// The admin CLI (scripts/keygate-cli.mjs) end to end, against a real `wrangler dev` started by
// the e2e harness: what it prints, its exit codes, and what the gateway does afterwards.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../scripts/lib/paths.mjs';
import { REQUEST_TIMEOUT_MS, readJson, useGateway } from './harness';

const CLI = join(repoRoot, 'scripts', 'keygate-cli.mjs');

const gateway = useGateway();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command line, bounded in time; `env` is added to the CLI's environment. */
function run(file: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: repoRoot, env: { ...process.env, KEYGATE_URL: gateway().url, ADMIN_TOKEN: gateway().secrets.ADMIN_TOKEN!, ...env }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const cli = (args: string[], env?: Record<string, string>) => run(process.execPath, [CLI, ...args], env);

/** The plaintext key the CLI printed last (create and rotate print it on the last line). */
const printedKey = (stdout: string) => stdout.trim().split('\n').at(-1)!;

async function useKey(path: string, key: string): Promise<{ status: number; code: unknown }> {
  const response = await gateway().fetch(path, { headers: { 'X-API-Key': key } });
  const body = await readJson<Record<string, unknown>>(response);
  return { status: response.status, code: body.code };
}

describe('npm run keygate (admin CLI) against wrangler dev', () => {
  const slug = `cli-${Date.now().toString(36)}`;
  const prefix = `/api/${slug}`;
  const email = `${slug}@example.com`;
  let userId = '';
  let keyId = '';
  let key = '';

  it('products create, then products list shows it', async () => {
    const created = await cli(['products', 'create', '--slug', slug, '--name', 'CLI product', '--prefix', prefix, '--origin', gateway().origin.url]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain(`Created product ${slug}`);
    const listed = await cli(['products', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(/^SLUG\s+NAME\s+PREFIX\s+ORIGIN/);
    expect(listed.stdout).toMatch(new RegExp(`^${slug}\\s+CLI product\\s+${prefix}\\s`, 'm'));
  });

  it('users create, then users list shows the user (never a password)', async () => {
    const created = await cli(['users', 'create', '--email', email, '--password', 'cli password 1', '--products', slug]);
    expect(created.code, created.stderr).toBe(0);
    userId = /\(([0-9a-f-]{36})\)/.exec(created.stdout)![1]!;
    const listed = await cli(['users', 'list', '--json']);
    expect(listed.code).toBe(0);
    const users = JSON.parse(listed.stdout).users as { id: string; email: string }[];
    expect(users).toContainEqual(expect.objectContaining({ id: userId, email }));
    expect(listed.stdout).not.toContain('cli password 1');
    expect(listed.stdout).not.toContain('pbkdf2');
  });

  it('keys create prints the key once; it works at the gateway and keys list shows its prefix only', async () => {
    const created = await cli(['keys', 'create', '--name', 'cli key', '--owner', userId, '--products', slug, '--per-minute', '30', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const body = JSON.parse(created.stdout);
    keyId = body.id;
    key = body.key;
    expect(key).toMatch(/^ilal_live_[0-9a-f]{48}$/);

    const before = gateway().origin.requests.length;
    expect(await useKey(`${prefix}/hello`, key)).toEqual({ status: 200, code: undefined });
    expect(gateway().origin.requests.length).toBe(before + 1);

    const listed = await cli(['keys', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(body.prefix);
    expect(listed.stdout).not.toContain(key);
  });

  it('keys create with no owner needs --products (exit 2, nothing sent) and then gets exactly those', async () => {
    const before = (JSON.parse((await cli(['keys', 'list', '--json'])).stdout).keys as unknown[]).length;
    const refused = await cli(['keys', 'create', '--name', 'ci']);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain('--products is required without --owner');
    expect((JSON.parse((await cli(['keys', 'list', '--json'])).stdout).keys as unknown[]).length, 'no key was made').toBe(before);

    const created = await cli(['keys', 'create', '--name', 'ci', '--products', slug, '--json']);
    expect(created.code, created.stderr).toBe(0);
    const body = JSON.parse(created.stdout);
    expect(body).toMatchObject({ ownerId: null, products: [slug], scopes: ['*'] });
    expect(await useKey(`${prefix}/hello`, body.key)).toEqual({ status: 200, code: undefined });
    expect(await useKey('/api/v1/defi/pools', body.key)).toMatchObject({ status: 403 });
  });

  it('usage shows the call just made', async () => {
    const usage = await cli(['usage', '--key', keyId]);
    expect(usage.code, usage.stderr).toBe(0);
    expect(usage.stdout).toMatch(new RegExp(`^${keyId}\\s+\\S+\\s+1/30\\s+1/10000\\s+1$`, 'm'));
  });

  it('keys rotate prints a new key; with no grace the old one is expired at once', async () => {
    const rotated = await cli(['keys', 'rotate', keyId, '--grace', '0']);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain(`Rotated ${keyId} -> `);
    const newKey = printedKey(rotated.stdout);
    expect(newKey).toMatch(/^ilal_live_[0-9a-f]{48}$/);
    expect(await useKey(`${prefix}/hello`, key)).toEqual({ status: 401, code: 'API_KEY_EXPIRED' });
    expect(await useKey(`${prefix}/hello`, newKey)).toEqual({ status: 200, code: undefined });
    key = newKey;
    keyId = /-> ([0-9a-f-]{36})/.exec(rotated.stdout)![1]!;
  });

  it('keys revoke (through npm run keygate) stops the key on the next request', async () => {
    const revoked = await run('npm', ['run', '--silent', 'keygate', '--', 'keys', 'revoke', keyId]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout.trim()).toBe(`Revoked ${keyId}`);
    const before = gateway().origin.requests.length;
    expect(await useKey(`${prefix}/hello`, key)).toEqual({ status: 401, code: 'API_KEY_INACTIVE' });
    expect(gateway().origin.requests.length).toBe(before);
  }, REQUEST_TIMEOUT_MS * 3);

  it("a refusal prints the gateway's message and code and exits 1", async () => {
    const duplicate = await cli(['products', 'create', '--slug', slug, '--name', 'again', '--prefix', `${prefix}-2`, '--origin', gateway().origin.url]);
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toContain('Another product has this slug (CONFLICT)');

    const invalid = await cli(['keys', 'create', '--name', 'bad', '--products', slug, '--ip', '10.0.0.0/33']);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('(VALIDATION_FAILED)');
    expect(invalid.stderr).toContain('- ipAllowlist.0: must be an IPv4/IPv6 address or CIDR range');

    const wrongToken = await cli(['keys', 'list'], { ADMIN_TOKEN: 'not-the-admin-token' });
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.stderr).toMatch(/^Error: .+ \(JWT_[A-Z_]+\)/);
  });

  it('bad usage exits 2 without calling the gateway; an unreachable gateway exits 1', async () => {
    const missing = await cli(['keys', 'create']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--name is required');
    const unknown = await cli(['keys', 'explode']);
    expect(unknown.code).toBe(2);
    const unreachable = await cli(['keys', 'list'], { KEYGATE_URL: 'http://127.0.0.1:9' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('cannot reach keygate at http://127.0.0.1:9');
  });
});
