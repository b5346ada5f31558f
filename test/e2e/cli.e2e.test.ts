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

  it('list commands page: --limit shows one page and the command for the next, --cursor that page, --all every page', async () => {
    for (const n of [1, 2]) {
      const made = await cli([
        'products',
        'create',
        '--slug',
        `${slug}-page${n}`,
        '--name',
        `Page ${n}`,
        '--prefix',
        `${prefix}-page${n}`,
        '--origin',
        gateway().origin.url,
      ]);
      expect(made.code, made.stderr).toBe(0);
    }
    const asAdmin = { headers: { Authorization: `Bearer ${gateway().secrets.ADMIN_TOKEN}` } };
    const listed = await readJson<{ products: { slug: string }[]; nextCursor: string | null }>(
      await gateway().fetch('/api/v1/admin/products?limit=200', asAdmin),
    );
    const slugs = listed.products.map((product) => product.slug);
    expect(listed.nextCursor).toBeNull();
    expect(slugs.length).toBeGreaterThanOrEqual(5);

    // One page: a table of two rows, then the command that shows the next page.
    const first = await cli(['products', 'list', '--limit', '2']);
    expect(first.code, first.stderr).toBe(0);
    const [table, footer] = first.stdout.trim().split('\n\n');
    expect(
      table!
        .split('\n')
        .slice(2)
        .map((line) => line.split(/\s+/)[0]),
    ).toEqual(slugs.slice(0, 2));
    const next = /^More: npm run keygate -- products list --limit 2 --cursor (\S+)$/.exec(footer ?? '');
    expect(next, first.stdout).not.toBeNull();

    const second = await cli(['products', 'list', '--limit', '2', '--cursor', next![1]!, '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).products.map((product: { slug: string }) => product.slug)).toEqual(slugs.slice(2, 4));

    // --all follows every cursor: the same rows as one big page, in order, and no "More".
    const all = await cli(['products', 'list', '--all', '--limit', '1', '--json']);
    expect(all.code, all.stderr).toBe(0);
    const allAnswer = JSON.parse(all.stdout);
    expect(allAnswer.products.map((product: { slug: string }) => product.slug)).toEqual(slugs);
    expect(allAnswer.nextCursor).toBeNull();
    const allTable = await cli(['products', 'list', '--all']);
    expect(allTable.code, allTable.stderr).toBe(0);
    for (const each of slugs) expect(allTable.stdout).toMatch(new RegExp(`^${each}\\s`, 'm'));
    expect(allTable.stdout).not.toContain('More:');

    // From a cursor to the end.
    const rest = await cli(['products', 'list', '--all', '--limit', '1', '--cursor', next![1]!, '--json']);
    expect(JSON.parse(rest.stdout).products.map((product: { slug: string }) => product.slug)).toEqual(slugs.slice(2));

    const keys = await readJson<{ keys: { id: string }[] }>(await gateway().fetch('/api/v1/keys?limit=200', asAdmin));
    const allKeys = await cli(['keys', 'list', '--all', '--limit', '2', '--json']);
    expect(allKeys.code, allKeys.stderr).toBe(0);
    expect(JSON.parse(allKeys.stdout).keys.map((key: { id: string }) => key.id)).toEqual(keys.keys.map((key) => key.id));
    const users = await cli(['users', 'list', '--all', '--limit', '1', '--json']);
    expect(users.code, users.stderr).toBe(0);
    expect(JSON.parse(users.stdout).users.length).toBeGreaterThanOrEqual(2);
  });

  it("a bad --cursor is the gateway's VALIDATION_FAILED (exit 1); a bad --limit is bad usage (exit 2)", async () => {
    const refused = await cli(['keys', 'list', '--cursor', 'not-a-cursor']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('(VALIDATION_FAILED)');
    expect(refused.stderr).toContain('- cursor: is not a cursor of the keys list');
    const tooMany = await cli(['users', 'list', '--limit', '500']);
    expect(tooMany.code).toBe(1);
    expect(tooMany.stderr).toContain('- limit:');
    const notANumber = await cli(['products', 'list', '--limit', 'ten']);
    expect(notANumber.code).toBe(2);
    expect(notANumber.stderr).toContain('--limit must be a whole number');
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

  it('users set-limits puts an owner-level day limit on the user: their key gets what is left of it', async () => {
    const set = await cli(['users', 'set-limits', userId, '--per-day', '2', '--max-keys', '5']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout.trim()).toBe(`Limits of ${email}: per minute none, per day 2, active keys 5`);
    // The key made one call above: one more fits in the owner's day.
    expect(await useKey(`${prefix}/hello`, key)).toEqual({ status: 200, code: undefined });
    expect(await useKey(`${prefix}/hello`, key)).toEqual({ status: 429, code: 'DAILY_QUOTA_EXCEEDED' });
    const cleared = await cli(['users', 'set-limits', userId, '--per-day', 'none', '--max-keys', 'none']);
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(cleared.stdout.trim()).toBe(`Limits of ${email}: per minute none, per day none, active keys any`);
    expect(await useKey(`${prefix}/hello`, key)).toEqual({ status: 200, code: undefined });
    const unusable = await cli(['users', 'set-limits', userId]);
    expect(unusable.code).toBe(2);
    expect(unusable.stderr).toContain('needs --per-minute, --per-day or --max-keys');
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

  it(
    'keys revoke (through npm run keygate) stops the key on the next request',
    async () => {
      const revoked = await run('npm', ['run', '--silent', 'keygate', '--', 'keys', 'revoke', keyId]);
      expect(revoked.code, revoked.stderr).toBe(0);
      expect(revoked.stdout.trim()).toBe(`Revoked ${keyId}`);
      const before = gateway().origin.requests.length;
      expect(await useKey(`${prefix}/hello`, key)).toEqual({ status: 401, code: 'API_KEY_INACTIVE' });
      expect(gateway().origin.requests.length).toBe(before);
    },
    REQUEST_TIMEOUT_MS * 3,
  );

  it('service-tokens create prints a credential once that verifies keys; list shows it without the token; revoke ends it', async () => {
    const created = await cli(['service-tokens', 'create', '--name', `${slug}-svc`]);
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim().split('\n').at(-1)!;
    expect(token).toMatch(/^kgsvc_/);
    const madeKey = await cli(['keys', 'create', '--name', `${slug}-verified`, '--products', '*']);
    expect(madeKey.code, madeKey.stderr).toBe(0);
    const verify = () =>
      gateway().fetch('/api/v1/keys/verify', {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ key: printedKey(madeKey.stdout) }),
      });
    const verified = await verify();
    expect(verified.status).toBe(200);
    expect(await readJson<Record<string, unknown>>(verified)).toMatchObject({ valid: true, authMethod: 'service_token' });

    const listed = await cli(['service-tokens', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(`${slug}-svc`);
    expect(listed.stdout).not.toContain(token);
    const id = /\(([0-9a-f-]{36})\)/.exec(created.stdout)![1]!;
    const revoked = await cli(['service-tokens', 'revoke', id]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect((await verify()).status).toBe(401);
  });

  it('products create --cors sets the browser origins a product admits', async () => {
    const made = await cli([
      'products',
      'create',
      '--slug',
      `${slug}-cors`,
      '--name',
      'CORS',
      '--prefix',
      `${prefix}-cors`,
      '--origin',
      gateway().origin.url,
      '--cors',
      'https://app.example.com',
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout).corsOrigins).toEqual(['https://app.example.com']);
  });

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

describe('npm run keygate -- keys credits / users credits / products create --cost-rule (issue 16)', () => {
  const slug = `clicr-${Date.now().toString(36)}`;
  const prefix = `/api/${slug}`;
  let keyId = '';
  let key = '';

  /** A call with the key: its status and the balance it left (X-Credits-Remaining). */
  async function call(path: string): Promise<{ status: number; remaining: string | null }> {
    const response = await gateway().fetch(path, { headers: { 'X-API-Key': key } });
    await response.arrayBuffer();
    return { status: response.status, remaining: response.headers.get('x-credits-remaining') };
  }

  it('products create takes repeatable --cost-rule METHOD:PATH=COST and --usage-header, and prints them', async () => {
    const made = await cli([
      'products',
      'create',
      '--slug',
      slug,
      '--name',
      'CLI credits',
      '--prefix',
      prefix,
      '--origin',
      gateway().origin.url,
      '--cost-rule',
      'GET:/priced=3',
      '--cost-rule',
      '*:/free/**=0',
      '--usage-header',
      'X-Usage-Cost',
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain(`Created product ${slug}`);
    expect(made.stdout).toContain('Credits: cost rules GET:/priced=3, *:/free/**=0; usage header X-Usage-Cost (reserve 1)');
    const listed = await readJson<{ products: { slug: string; costRules: unknown; usageHeader: string | null }[] }>(
      await gateway().fetch('/api/v1/admin/products?limit=200', { headers: { Authorization: `Bearer ${gateway().secrets.ADMIN_TOKEN}` } }),
    );
    expect(listed.products.find((product) => product.slug === slug)).toMatchObject({
      costRules: [
        { method: 'GET', path: '/priced', cost: 3 },
        { path: '/free/**', cost: 0 },
      ],
      usageHeader: 'X-Usage-Cost',
    });

    const bad = await cli([
      'products',
      'create',
      '--slug',
      `${slug}-bad`,
      '--name',
      'x',
      '--prefix',
      `${prefix}-bad`,
      '--origin',
      gateway().origin.url,
      '--cost-rule',
      '/x',
    ]);
    expect(bad.code, 'bad usage, nothing sent').toBe(2);
    expect(bad.stderr).toContain('--cost-rule must be METHOD:PATH=COST');
  });

  it('keys credits shows no balance, then --set with a daily refill and a low threshold', async () => {
    const created = await cli(['keys', 'create', '--name', 'cli credits key', '--products', slug, '--json']);
    expect(created.code, created.stderr).toBe(0);
    ({ id: keyId, key } = JSON.parse(created.stdout));

    const none = await cli(['keys', 'credits', keyId]);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout.trim()).toBe(`Key ${keyId}: no credit balance; only rate limits apply`);
    expect((await call(`${prefix}/priced`)).remaining, 'no balance, no credits header').toBeNull();

    const set = await cli(['keys', 'credits', keyId, '--set', '10', '--refill-amount', '100', '--refill-interval', 'day', '--low', '2']);
    expect(set.code, set.stderr).toBe(0);
    const now = new Date();
    const tomorrow = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)).toISOString();
    // The priced call above, made without a balance, still counts as credits used today (a bill is made from it).
    expect(set.stdout.trim().split('\n')).toEqual([
      `Key ${keyId}: 10 of 10 credits left, 3 used today, low at 2`,
      `Refill: to 100 every day (00:00 UTC), next at ${tomorrow}`,
    ]);

    // The cost rule prices the call; the balance the CLI shows is the gateway's.
    expect(await call(`${prefix}/priced`)).toEqual({ status: 200, remaining: '7' });
    expect(await call(`${prefix}/free/thing`)).toEqual({ status: 200, remaining: '7' });
    const shown = await cli(['keys', 'credits', keyId, '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ keyId, credits: { balance: 7, quota: 10, usedToday: 6, lowThreshold: 2, nextRefillAt: tomorrow } });
  });

  it('keys credits --top-up adds to the balance; --remove leaves only the rate limits; each is in the audit log', async () => {
    const topped = await cli(['keys', 'credits', keyId, '--top-up', '5']);
    expect(topped.code, topped.stderr).toBe(0);
    expect(topped.stdout.split('\n')[0]).toBe(`Key ${keyId}: 12 of 12 credits left, 6 used today, low at 2`);
    expect(await call(`${prefix}/priced`)).toEqual({ status: 200, remaining: '9' });

    const removed = await cli(['keys', 'credits', keyId, '--remove']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout.trim()).toBe(`Key ${keyId}: credit balance removed; only rate limits apply`);
    expect(await call(`${prefix}/priced`)).toEqual({ status: 200, remaining: null });
    expect((await cli(['keys', 'credits', keyId])).stdout.trim()).toBe(`Key ${keyId}: no credit balance; only rate limits apply`);

    const audit = await readJson<{ entries: { action: string; targetId: string }[] }>(
      await gateway().fetch('/api/v1/admin/audit?limit=200', { headers: { Authorization: `Bearer ${gateway().secrets.ADMIN_TOKEN}` } }),
    );
    const actions = audit.entries.filter((entry) => entry.targetId === keyId).map((entry) => entry.action);
    expect(actions).toEqual(expect.arrayContaining(['key.credits.set', 'key.credits.top_up', 'key.credits.remove']));
  });

  it("a top-up without a balance prints the gateway's 409 message and exits 1", async () => {
    const refused = await cli(['keys', 'credits', keyId, '--top-up', '5']);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe('Error: There is no balance to top up: set one first (PUT …/credits) (CONFLICT)');
    expect(refused.stdout).toBe('');
  });

  it('bad credits usage exits 2 without calling the gateway', async () => {
    const cases: [string[], string][] = [
      [['keys', 'credits'], 'keys credits needs a key id'],
      [['keys', 'credits', keyId, '--set', '5', '--top-up', '5'], 'give one of --set, --top-up and --remove'],
      [['keys', 'credits', keyId, '--low', '5'], '--low only go with --set'],
      [['keys', 'credits', keyId, '--set', '5', '--refill-amount', '9'], '--refill-amount and --refill-interval go together'],
      [['keys', 'credits', keyId, '--set', '5', '--refill-amount', '9', '--refill-interval', 'week'], '--refill-interval must be day or month'],
      [['keys', 'credits', keyId, '--set', 'lots'], '--set must be a whole number'],
    ];
    for (const [args, message] of cases) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain(message);
    }
    expect((await cli(['keys', 'credits', keyId])).stdout.trim(), 'nothing was set').toBe(`Key ${keyId}: no credit balance; only rate limits apply`);
  });

  it('users credits: refused (409) without owner-level limits; with them, set, show and remove a monthly balance', async () => {
    const user = await cli(['users', 'create', '--email', `${slug}@example.com`, '--password', 'cli password 1', '--products', slug]);
    expect(user.code, user.stderr).toBe(0);
    const userId = /\(([0-9a-f-]{36})\)/.exec(user.stdout)![1]!;

    const refused = await cli(['users', 'credits', userId, '--set', '50']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('give the user owner-level limits first');
    expect(refused.stderr).toContain('(CONFLICT)');

    expect((await cli(['users', 'set-limits', userId, '--per-day', '1000'])).code).toBe(0);
    const set = await cli(['users', 'credits', userId, '--set', '50', '--refill-amount', '500', '--refill-interval', 'month', '--refill-day', '31']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain(`User ${userId}: 50 of 50 credits left, 0 used today`);
    expect(set.stdout).toMatch(/\nRefill: to 500 every month on day 31 \(UTC\), next at \d{4}-\d\d-\d\dT00:00:00\.000Z$/m);
    const shown = await cli(['users', 'credits', userId, '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ userId, credits: { balance: 50, refill: { amount: 500, interval: 'month', dayOfMonth: 31 } } });
    const removed = await cli(['users', 'credits', userId, '--remove']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout.trim()).toBe(`User ${userId}: credit balance removed; only rate limits apply`);
  });
});

describe('npm run keygate -- webhooks (the admin webhook-endpoints API)', () => {
  // Port 9 (discard) refuses connections: a delivery that an earlier test's event might start fails at once, reaching nothing.
  const url = `http://127.0.0.1:9/hooks/cli-${Date.now().toString(36)}`;
  let endpointId = '';
  let secret = '';

  /** The endpoints as the gateway lists them (--json), to compare with what the CLI printed. */
  async function listed(): Promise<Record<string, unknown>[]> {
    const result = await cli(['webhooks', 'list', '--json']);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout).endpoints;
  }

  it('webhooks create prints the endpoint and its signing secret, saying it is shown only now', async () => {
    const created = await cli(['webhooks', 'create', '--url', url, '--description', 'CLI hook', '--events', 'key.created,key.revoked']);
    expect(created.code, created.stderr).toBe(0);
    const head = /^Created webhook endpoint ([0-9a-f-]{36}) -> (\S+) \(events (\S+)\)$/m.exec(created.stdout);
    expect(head, created.stdout).not.toBeNull();
    endpointId = head![1]!;
    expect([head![2], head![3]]).toEqual([url, 'key.created,key.revoked']);
    expect(created.stdout).toContain('Signing secret (shown only now');
    secret = printedKey(created.stdout);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
  });

  it('webhooks list and show print the endpoint without its secret', async () => {
    const table = await cli(['webhooks', 'list']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+URL\s+EVENTS\s+STATUS\s+DESCRIPTION\s+CREATED$/);
    expect(table.stdout).toMatch(new RegExp(`^${endpointId}\\s+${url}\\s+key\\.created,key\\.revoked\\s+enabled\\s+CLI hook\\s`, 'm'));
    expect(table.stdout).not.toContain(secret);
    expect(table.stdout).not.toContain('whsec_');

    const endpoint = (await listed()).find((each) => each.id === endpointId);
    expect(endpoint).toMatchObject({ url, description: 'CLI hook', events: ['key.created', 'key.revoked'], enabled: true });
    expect(endpoint).not.toHaveProperty('secret');

    const shown = await cli(['webhooks', 'show', endpointId]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^${endpointId}\\s+${url}\\s+key\\.created,key\\.revoked\\s+enabled\\s`, 'm'));
    expect(shown.stdout).not.toContain('whsec_');
  });

  it('webhooks update changes only what it is given: --disable and --events, then --enable and clearing --description', async () => {
    const disabled = await cli(['webhooks', 'update', endpointId, '--disable', '--events', 'key.expiring', '--json']);
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(JSON.parse(disabled.stdout)).toMatchObject({ id: endpointId, url, description: 'CLI hook', events: ['key.expiring'], enabled: false });
    expect(JSON.parse(disabled.stdout)).not.toHaveProperty('secret');

    const enabled = await cli(['webhooks', 'update', endpointId, '--enable', '--description', '']);
    expect(enabled.code, enabled.stderr).toBe(0);
    expect(enabled.stdout).toContain(`Updated webhook endpoint ${endpointId}`);
    expect(enabled.stdout).toMatch(new RegExp(`^${endpointId}\\s+${url}\\s+key\\.expiring\\s+enabled\\s+-\\s`, 'm'));
    expect((await listed()).find((each) => each.id === endpointId)).toMatchObject({ events: ['key.expiring'], enabled: true, description: null });
  });

  it('webhooks rotate-secret prints a new secret, once', async () => {
    const rotated = await cli(['webhooks', 'rotate-secret', endpointId]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain(`Rotated the signing secret of webhook endpoint ${endpointId}`);
    expect(rotated.stdout).toContain('Signing secret (shown only now');
    const next = printedKey(rotated.stdout);
    expect(next).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(next).not.toBe(secret);
    expect((await cli(['webhooks', 'show', endpointId])).stdout).not.toContain(next);
  });

  it("a bad URL is the gateway's VALIDATION_FAILED (exit 1), and nothing is created", async () => {
    const before = (await listed()).length;
    const refused = await cli(['webhooks', 'create', '--url', 'http://example.com']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('(VALIDATION_FAILED)');
    expect(refused.stderr).toContain('- url: must be https (http only for localhost and 127.0.0.1)');
    expect(refused.stdout).toBe('');
    expect((await listed()).length, 'no endpoint was made').toBe(before);
  });

  it('bad webhooks usage exits 2 without calling the gateway', async () => {
    const cases: [string[], string][] = [
      [['webhooks', 'create'], '--url is required'],
      [['webhooks', 'show'], 'webhooks show needs a webhook endpoint id'],
      [['webhooks', 'update', endpointId], 'webhooks update needs --url, --description, --events, --enable or --disable'],
      [['webhooks', 'update', endpointId, '--enable', '--disable'], 'give --enable or --disable, not both'],
      [['webhooks', 'rotate-secret'], 'webhooks rotate-secret needs a webhook endpoint id'],
      [['webhooks', 'delete'], 'webhooks delete needs a webhook endpoint id'],
      [['webhooks', 'explode'], 'unknown command "webhooks explode"'],
    ];
    for (const [args, message] of cases) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain(message);
    }
    expect(
      (await listed()).find((each) => each.id === endpointId),
      'nothing was changed',
    ).toMatchObject({ enabled: true, events: ['key.expiring'] });
  });

  it('webhooks delete removes the endpoint; show then exits 1 with NOT_FOUND', async () => {
    const deleted = await cli(['webhooks', 'delete', endpointId]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout.trim()).toBe(`Deleted webhook endpoint ${endpointId}`);
    expect((await listed()).map((each) => each.id)).not.toContain(endpointId);
    const gone = await cli(['webhooks', 'show', endpointId]);
    expect(gone.code).toBe(1);
    expect(gone.stderr.trim()).toBe('Error: No such webhook endpoint (NOT_FOUND)');
  });
});

describe('npm run keygate -- --rate-limit-mode (issue 17: leased mode)', () => {
  const slug = `clilm-${Date.now().toString(36)}`;
  const prefix = `/api/${slug}`;
  const asAdmin = () => ({ headers: { Authorization: `Bearer ${gateway().secrets.ADMIN_TOKEN}` } });

  /** A call with the key: its status and RateLimit-Policy (leased mode marks each item `;estimate`). */
  async function call(key: string): Promise<{ status: number; policy: string | null }> {
    const response = await gateway().fetch(`${prefix}/hello`, { headers: { 'X-API-Key': key } });
    await response.arrayBuffer();
    return { status: response.status, policy: response.headers.get('ratelimit-policy') };
  }

  it('products create --rate-limit-mode leased makes a leased product; create and list show the mode', async () => {
    const made = await cli([
      'products',
      'create',
      '--slug',
      slug,
      '--name',
      'CLI leased',
      '--prefix',
      prefix,
      '--origin',
      gateway().origin.url,
      '--per-minute',
      '100',
      '--rate-limit-mode',
      'leased',
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout.split('\n')).toContain('Rate limits: 100/min, default/day, leased mode (remaining counts are estimates; revocation within 1 s)');
    const products = await readJson<{ products: { slug: string; rateLimitMode: string }[] }>(
      await gateway().fetch('/api/v1/admin/products?limit=200', asAdmin()),
    );
    expect(products.products.find((product) => product.slug === slug)).toMatchObject({ rateLimitMode: 'leased' });

    const listed = await cli(['products', 'list', '--limit', '200']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(/\sPER MIN\s+PER DAY\s+MODE$/);
    expect(listed.stdout).toMatch(new RegExp(`^${slug}\\s.*\\s100\\s+-\\s+leased$`, 'm'));

    // Without the option a product is exact, and says so.
    const exact = await cli(['products', 'create', '--slug', `${slug}-x`, '--name', 'x', '--prefix', `${prefix}-x`, '--origin', gateway().origin.url]);
    expect(exact.code, exact.stderr).toBe(0);
    expect(exact.stdout).toContain('Rate limits: default/min, default/day, exact mode');
  });

  it("keys create --rate-limit-mode: product (null, the product's: leased here), leased, exact; the MODE column shows each", async () => {
    const made: Record<string, { id: string; key: string; rateLimitMode: string | null }> = {};
    for (const mode of ['product', 'leased', 'exact']) {
      const created = await cli(['keys', 'create', '--name', `${slug} ${mode}`, '--products', slug, '--rate-limit-mode', mode, '--json']);
      expect(created.code, created.stderr).toBe(0);
      made[mode] = JSON.parse(created.stdout);
    }
    expect(made.product!.rateLimitMode).toBeNull();
    expect(made.leased!.rateLimitMode).toBe('leased');
    expect(made.exact!.rateLimitMode).toBe('exact');

    // The table: a key's own mode, or "product" for the product's.
    const shown = await cli(['keys', 'create', '--name', `${slug} table`, '--products', slug, '--rate-limit-mode', 'leased']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout.split('\n')[0]).toMatch(/\sEXPIRES\s+MODE$/);
    expect(shown.stdout.split('\n')[2]).toMatch(/\sleased$/);
    const listed = await cli(['keys', 'list', '--limit', '200']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${made.product!.id}\\s.*\\sproduct$`, 'm'));
    expect(listed.stdout).toMatch(new RegExp(`^${made.exact!.id}\\s.*\\sexact$`, 'm'));

    // At the gateway: the product's leased mode and the key's own leased mode estimate the counts; exact does not.
    const product = await call(made.product!.key);
    expect(product.status).toBe(200);
    expect(product.policy).toMatch(/^"minute";q=100;w=60;estimate, "day";q=\d+;w=86400;estimate$/);
    expect((await call(made.leased!.key)).policy).toContain(';estimate');
    const exact = await call(made.exact!.key);
    expect(exact.status).toBe(200);
    expect(exact.policy).toMatch(/^"minute";q=100;w=60, "day";q=\d+;w=86400$/);
  });

  it('an invalid --rate-limit-mode is bad usage (exit 2) and nothing is sent', async () => {
    const keysBefore = (JSON.parse((await cli(['keys', 'list', '--limit', '200', '--json'])).stdout).keys as unknown[]).length;
    const key = await cli(['keys', 'create', '--name', `${slug} bad`, '--products', slug, '--rate-limit-mode', 'fast']);
    expect(key.code).toBe(2);
    expect(key.stderr).toContain('--rate-limit-mode must be exact, leased or product, got "fast"');
    expect(key.stdout).toBe('');
    expect((JSON.parse((await cli(['keys', 'list', '--limit', '200', '--json'])).stdout).keys as unknown[]).length, 'no key was made').toBe(keysBefore);

    // "product" is a key's choice: a product's mode is exact or leased.
    const product = await cli([
      'products',
      'create',
      '--slug',
      `${slug}-bad`,
      '--name',
      'x',
      '--prefix',
      `${prefix}-bad`,
      '--origin',
      gateway().origin.url,
      '--rate-limit-mode',
      'product',
    ]);
    expect(product.code).toBe(2);
    expect(product.stderr).toContain('--rate-limit-mode must be exact or leased, got "product"');
    const products = await readJson<{ products: { slug: string }[] }>(await gateway().fetch('/api/v1/admin/products?limit=200', asAdmin()));
    expect(
      products.products.map((each) => each.slug),
      'no product was made',
    ).not.toContain(`${slug}-bad`);
  });
});
