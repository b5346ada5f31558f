// The dashboard in a real browser (Debian chromium via playwright-core) against a real
// `wrangler dev` seeded with the demo users, products and keys (test/e2e/harness.ts).
// The gateway itself is called with plain fetch, as an API client would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { readJson, SHUTDOWN_TIMEOUT_MS, startGateway, STARTUP_TIMEOUT_MS, type Gateway } from '../e2e/harness';
import { expectNoSeriousViolations } from './a11y';
import { KEY_LIST_SCREENSHOT, launchBrowser, screenshotPath, WAIT_MS, type Browser, type WatchedPage } from './browser';

const ADMIN = { email: 'admin@keygate.local', password: 'keygate-admin' };
const USER = { email: 'user@keygate.local', password: 'keygate-user' };
/** A path on the seeded `defi` product: any key of the demo user may GET it. */
const DEFI_PATH = '/api/v1/defi/markets';

let gateway: Gateway;
let browser: Browser;

beforeAll(async () => {
  // A zero key cache makes an admin's limit edit visible on the very next call.
  gateway = await startGateway({ vars: { KEY_CACHE_TTL_SECONDS: '0' } });
  browser = await launchBrowser();
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gateway.url });
}, STARTUP_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
}, SHUTDOWN_TIMEOUT_MS);

/** The prefix keygate stores and shows: up to 8 characters after the last `_`. */
function prefixOf(key: string): string {
  return key.slice(0, key.lastIndexOf('_') + 9);
}

function callWithKey(key: string): Promise<Response> {
  return gateway.fetch(DEFI_PATH, { headers: { 'X-API-Key': key } });
}

async function signIn(page: Page, who: { email: string; password: string }): Promise<void> {
  await page.goto(`${gateway.url}/dashboard/`);
  await page.locator('#login-form input[name=email]').fill(who.email);
  await page.locator('#login-form input[name=password]').fill(who.password);
  await page.locator('#login-form button[type=submit]').click();
  await page.locator('#app-view').waitFor({ state: 'visible' });
  await page.locator('#keys-body tr').first().waitFor();
}

function keyRow(page: Page, prefix: string) {
  return page.locator(`#keys-body tr[data-prefix="${prefix}"]`);
}

/** Read the plaintext from the once-only dialog, copy it, and close the dialog. */
async function takeSecret(page: Page): Promise<string> {
  const dialog = page.locator('#secret-dialog');
  await dialog.waitFor({ state: 'visible' });
  await expect.poll(() => page.locator('#secret-value').textContent(), { timeout: WAIT_MS }).not.toBe('');
  const key = (await page.locator('#secret-value').textContent()) ?? '';
  await expect(dialog.textContent()).resolves.toContain('you will not see this key again');
  await page.locator('#secret-copy').click();
  await expect.poll(() => page.locator('#secret-copy').textContent(), { timeout: WAIT_MS }).toBe('Copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
  await page.locator('#secret-done').click();
  await dialog.waitFor({ state: 'hidden' });
  return key;
}

/** After the dialog closes the plaintext is nowhere: not in the DOM, the console or storage. */
async function expectPlaintextGone(watched: WatchedPage, key: string): Promise<void> {
  expect(await watched.page.locator('#secret-value').textContent()).toBe('');
  expect(await watched.page.content()).not.toContain(key);
  expect(watched.console.join('\n')).not.toContain(key);
  const stored = await watched.page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }));
  expect(stored).not.toContain(key);
}

function expectNoCspViolations(watched: WatchedPage): void {
  expect(watched.console.filter((line) => /Content Security Policy|pageerror/i.test(line))).toEqual([]);
}

async function openTab(page: Page, name: string): Promise<void> {
  await page.locator(`#tabs button[data-tab="${name}"]`).click();
  await page.locator(`#tab-${name}`).waitFor({ state: 'visible' });
}

/** The tab bar's ARIA state: which tab is selected and which one is in the Tab order. */
async function tabState(page: Page): Promise<{ selected: string[]; focusable: string[] }> {
  return page.locator('#tabs [role=tab]').evaluateAll((tabs) => ({
    selected: tabs.filter((tab) => tab.getAttribute('aria-selected') === 'true').map((tab) => (tab as HTMLElement).dataset.tab ?? ''),
    focusable: tabs.filter((tab) => (tab as HTMLElement).tabIndex === 0).map((tab) => (tab as HTMLElement).dataset.tab ?? ''),
  }));
}

/** Wait for a tab's list to settle (rows or its empty state), then run axe on the whole page. */
async function axeOnTab(page: Page, name: string, where: string): Promise<void> {
  await openTab(page, name);
  const ready: Record<string, string> = {
    keys: '#keys-body tr',
    usage: '#usage-chart svg',
    products: '#products-body tr',
    users: '#users-body tr',
    audit: '#audit-body tr',
  };
  await page.locator(ready[name]!).first().waitFor();
  await expectNoSeriousViolations(page, `${where}, ${name} tab`);
}

describe('dashboard in chromium', () => {
  it('follows /dashboard to /dashboard/ and serves it with the strict CSP, and nothing at /index.html', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    const response = await page.goto(`${gateway.url}/dashboard`);
    expect(new URL(page.url()).pathname).toBe('/dashboard/');
    expect(response?.status()).toBe(200);
    const headers = response!.headers();
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(headers['x-frame-options']).toBe('DENY');
    await page.locator('#login-form').waitFor({ state: 'visible' });
    // The stylesheet applied (a class rule, not an inline style), so the CSP let it through.
    expect(await page.locator('.topbar').evaluate((node) => getComputedStyle(node).display)).toBe('flex');

    const outside = await gateway.fetch('/index.html');
    expect(outside.status).toBe(404);
    expect((await readJson<{ code: string }>(outside)).code).toBe('ROUTE_NOT_FOUND');
    expectNoCspViolations(watched);
    await page.close();
  });

  it('links a favicon that the Worker serves, so the browser asks for no /favicon.ico', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    const requested: string[] = [];
    page.on('request', (request) => requested.push(new URL(request.url()).pathname));
    await page.goto(`${gateway.url}/dashboard/`);
    await page.locator('#login-form').waitFor({ state: 'visible' });
    const href = await page.locator('link[rel=icon]').evaluate((link) => (link as HTMLLinkElement).href);
    expect(new URL(href).pathname).toBe('/dashboard/favicon.svg');
    const icon = await page.request.get(href);
    expect(icon.status()).toBe(200);
    expect(icon.headers()['content-type']).toMatch(/^image\/svg\+xml/);
    expect(await icon.text()).toMatch(/^<svg /);
    expect(requested).not.toContain('/favicon.ico');
    expect(watched.console.filter((line) => /favicon|404/i.test(line))).toEqual([]);
    expectNoCspViolations(watched);
    await page.close();
  });

  it('has no serious or critical axe violations on the sign-in page', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    await page.goto(`${gateway.url}/dashboard/`);
    await page.locator('#login-form').waitFor({ state: 'visible' });
    await expectNoSeriousViolations(page, 'the sign-in page');
    // And with an error banner shown.
    await page.locator('#login-form input[name=email]').fill(USER.email);
    await page.locator('#login-form input[name=password]').fill('not-the-password');
    await page.locator('#login-form button[type=submit]').click();
    await page.locator('#error').waitFor({ state: 'visible' });
    await expectNoSeriousViolations(page, 'the sign-in page with an error');
    expectNoCspViolations(watched);
    await page.close();
  });

  it('shows a wrong password as the API message and hint, not as JSON', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    await page.goto(`${gateway.url}/dashboard/`);
    await page.locator('#login-form input[name=email]').fill(USER.email);
    await page.locator('#login-form input[name=password]').fill('not-the-password');
    await page.locator('#login-form button[type=submit]').click();
    await page.locator('#error').waitFor({ state: 'visible' });
    expect(await page.locator('#error-message').textContent()).toBe('Email or password is incorrect');
    expect(await page.locator('#error-hint').textContent()).toBe('Check your email and password');
    const shown = (await page.locator('#error').textContent()) ?? '';
    expect(shown).not.toMatch(/[{}]|INVALID_CREDENTIALS|requestId/);
    expect(await page.locator('#app-view').isHidden()).toBe(true);
    await page.screenshot({ path: screenshotPath('sign-in-error') });
    expectNoCspViolations(watched);
    await page.close();
  });

  it('sends a user whose token is refused back to sign-in with a plain message', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    await page.goto(`${gateway.url}/dashboard/`);
    await page.locator('#login-form').waitFor({ state: 'visible' });
    // Well-formed and unexpired, but not signed by keygate.
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const forged = `${part({ alg: 'ES256', typ: 'JWT' })}.${part({ sub: 'nobody', email: 'forged@example.com', role: 'admin', exp: Math.floor(Date.now() / 1000) + 3600 })}.${'A'.repeat(86)}`;
    await page.evaluate((token) => sessionStorage.setItem('keygate.token', token), forged);
    await page.reload();
    await page.locator('#error').waitFor({ state: 'visible' });
    expect(await page.locator('#error-message').textContent()).toBe('Your session has ended');
    expect(await page.locator('#login-view').isVisible()).toBe(true);
    expect(await page.locator('#app-view').isHidden()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length), 'the refused token is dropped').toBe(0);
    expectNoCspViolations(watched);
    await page.close();
  });

  it('lets a user create a key, use it, rotate it and revoke the new one', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, USER);
    expect(await page.locator('#who-email').textContent()).toBe(USER.email);
    expect(await page.locator('#tabs button[data-tab="products"]').isHidden()).toBe(true);
    expect(await keyRow(page, prefixOf(gateway.keys.ilalLive)).locator('td[data-label="Name"]').textContent()).toBe('Demo DeFi live key');
    const token = await page.evaluate(() => Object.values(sessionStorage).join(''));
    expect(token, 'the JWT is kept in sessionStorage').toMatch(/^eyJ/);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);

    // Create: the plaintext appears once, in the dialog.
    await page.locator('#create-key-form input[name=name]').fill('browser key');
    await page.locator('#create-key-form select[name=format]').selectOption('ilal');
    await page.locator('#create-key-form select[name=env]').selectOption('live');
    await page.locator('#create-key-form button[type=submit]').click();
    const first = await takeSecret(page);
    expect(first).toMatch(/^ilal_live_[0-9a-f]{48}$/);
    await expectPlaintextGone(watched, first);
    const firstRow = keyRow(page, prefixOf(first));
    await firstRow.waitFor();
    expect(await firstRow.locator('.badge').textContent()).toBe('active');
    expect(await firstRow.locator('td[data-label="Env"]').textContent()).toBe('live');

    const used = await callWithKey(first);
    expect(used.status, JSON.stringify(await readJson(used.clone()))).toBe(200);
    expect(used.headers.get('X-Auth-Method')).toBe('api_key');

    // Rotate with a grace period: a new key, and the old one still works meanwhile.
    await firstRow.locator('button[data-action=rotate]').click();
    await page.locator('#rotate-form input[name=gracePeriodSeconds]').fill('300');
    await page.locator('#rotate-dialog button[value=confirm]').click();
    const second = await takeSecret(page);
    expect(second).toMatch(/^ilal_live_[0-9a-f]{48}$/);
    expect(second).not.toBe(first);
    await expectPlaintextGone(watched, second);
    const secondRow = keyRow(page, prefixOf(second));
    await secondRow.waitFor();
    expect((await callWithKey(second)).status).toBe(200);
    expect((await callWithKey(first)).status, 'old key within its grace period').toBe(200);

    // Today's use shows in the list after a refresh: a rotation's keys share one count (their lineage's), so 3 calls.
    await page.locator('#keys-refresh').click();
    await expect.poll(() => secondRow.locator('td[data-label="Today"]').textContent(), { timeout: WAIT_MS }).toMatch(/^3 \/ \d+$/);
    await page.screenshot({ path: KEY_LIST_SCREENSHOT });

    // Usage: 30 bars, and this minute/today against the limits.
    await openTab(page, 'usage');
    await page.locator('#usage-key').selectOption({ label: `browser key · ${prefixOf(second)} (active)` });
    expect(await page.locator('#usage-chart svg rect.bar').count()).toBe(30);
    expect(await page.locator('#usage-chart svg rect.bar').last().getAttribute('data-date')).toBe(new Date().toISOString().slice(0, 10));
    expect(await page.locator('#day-text').textContent()).toMatch(/^3 of \d+ used/);
    expect(await page.locator('#minute-text').textContent()).toMatch(/^\d+ of \d+ used/);
    await page.screenshot({ path: screenshotPath('usage'), fullPage: true });
    await openTab(page, 'keys');

    // Revoke the new key, after confirming; the next call with it is refused.
    await secondRow.locator('button[data-action=revoke]').click();
    await expect(page.locator('#revoke-dialog').textContent()).resolves.toContain(prefixOf(second));
    await page.locator('#revoke-dialog button[value=confirm]').click();
    await expect.poll(() => secondRow.locator('.badge').textContent(), { timeout: WAIT_MS }).toBe('revoked');
    const refused = await callWithKey(second);
    const body = await readJson<{ code: string }>(refused);
    expect(refused.status, JSON.stringify(body)).toBe(401);
    expect(body.code).toBe('API_KEY_INACTIVE');
    expect(await secondRow.locator('button[data-action=rotate]').count(), 'a revoked key offers no actions').toBe(0);

    await page.screenshot({ path: screenshotPath('user-keys'), fullPage: true });
    await expectPlaintextGone(watched, first);
    await expectPlaintextGone(watched, second);
    expectNoCspViolations(watched);
    await page.close();
  });

  it('shows a refused key creation as the API message in plain words', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, USER);
    await page.locator('#create-key-form input[name=name]').fill('already expired');
    await page.locator('#create-key-form input[name=expiresAt]').fill('2020-01-01T00:00');
    await page.locator('#create-key-form button[type=submit]').click();
    await page.locator('#error').waitFor({ state: 'visible' });
    expect(await page.locator('#error-message').textContent()).toContain('expiresAt: must be in the future');
    expect(await page.locator('#error').textContent()).not.toMatch(/[{}]|VALIDATION_FAILED/);
    expect(await page.locator('#secret-dialog').isHidden()).toBe(true);
    expect(await page.locator('#keys-body tr', { hasText: 'already expired' }).count()).toBe(0);
    await page.screenshot({ path: screenshotPath('create-error') });
    expectNoCspViolations(watched);
    await page.close();
  });

  it('lets an admin create a product and a user, edit a key and read both in the audit log', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, ADMIN);
    expect(await page.locator('#who-role').textContent()).toBe('admin');
    const slug = `browser-${Date.now().toString(36)}`;

    await openTab(page, 'products');
    const productForm = page.locator('#create-product-form');
    await productForm.locator('input[name=slug]').fill(slug);
    await productForm.locator('input[name=name]').fill('Browser product');
    await productForm.locator('input[name=pathPrefix]').fill(`/api/${slug}`);
    await productForm.locator('input[name=originUrl]').fill(gateway.origin.url);
    await productForm.locator('button[type=submit]').click();
    await page.locator(`#products-body tr[data-slug="${slug}"]`).waitFor();
    const listed = await readJson<{ products: { id: string; slug: string; pathPrefix: string }[] }>(
      await gateway.fetch('/api/v1/admin/products', { headers: { Authorization: `Bearer ${gateway.secrets.ADMIN_TOKEN}` } }),
    );
    const product = listed.products.find((p) => p.slug === slug);
    expect(product?.pathPrefix).toBe(`/api/${slug}`);

    await openTab(page, 'users');
    const email = `${slug}@example.com`;
    const userForm = page.locator('#create-user-form');
    await userForm.locator('input[name=email]').fill(email);
    await userForm.locator('input[name=password]').fill('browser-password-1');
    await userForm.locator('button[type=submit]').click();
    const userRow = page.locator(`#users-body tr[data-email="${email}"]`);
    await userRow.waitFor();
    expect(await userRow.locator('td[data-label="Owner limits"]').textContent()).toBe('none');

    // Owner-level limits on the user page: saved through the API, shown in the row.
    await userRow.locator('button[data-action=owner-limits]').click();
    const limitsForm = page.locator('#owner-limits-form');
    await limitsForm.locator('input[name=rateLimitPerMinute]').fill('20');
    await limitsForm.locator('input[name=rateLimitPerDay]').fill('500');
    await limitsForm.locator('input[name=maxActiveKeys]').fill('3');
    await page.locator('#owner-limits-dialog button[value=confirm]').click();
    await expect.poll(() => userRow.locator('td[data-label="Owner limits"]').textContent(), { timeout: WAIT_MS }).toBe('20/min · 500/day · 3 keys');
    const users = await readJson<{
      users: { email: string; rateLimitPerMinute: number | null; rateLimitPerDay: number | null; maxActiveKeys: number | null }[];
    }>(await gateway.fetch('/api/v1/admin/users?limit=200', { headers: { Authorization: `Bearer ${gateway.secrets.ADMIN_TOKEN}` } }));
    expect(users.users.find((u) => u.email === email)).toMatchObject({ rateLimitPerMinute: 20, rateLimitPerDay: 500, maxActiveKeys: 3 });
    // Emptying a field clears that limit.
    await userRow.locator('button[data-action=owner-limits]').click();
    await limitsForm.locator('input[name=rateLimitPerMinute]').fill('');
    await page.locator('#owner-limits-dialog button[value=confirm]').click();
    await expect.poll(() => userRow.locator('td[data-label="Owner limits"]').textContent(), { timeout: WAIT_MS }).toBe('500/day · 3 keys');

    // An admin edits the limits and scopes of a key it does not own.
    await openTab(page, 'keys');
    const row = keyRow(page, prefixOf(gateway.keys.ilalTest));
    await row.locator('button[data-action=edit]').click();
    const editForm = page.locator('#edit-form');
    await editForm.locator('input[name=rateLimitPerMinute]').fill('7');
    await editForm.locator('input[name=scopes]').fill('defi:read defi:quotes');
    await page.locator('#edit-dialog button[value=confirm]').click();
    await expect.poll(() => row.locator('td[data-label="Limits"]').textContent(), { timeout: WAIT_MS }).toMatch(/^7\/min/);
    const limited = await callWithKey(gateway.keys.ilalTest);
    expect(limited.status, JSON.stringify(await readJson(limited.clone()))).toBe(200);
    expect(limited.headers.get('X-RateLimit-Limit')).toBe('7');

    await openTab(page, 'audit');
    await page.locator('#audit-body tr').first().waitFor();
    const productEntry = page.locator('#audit-body tr[data-action="product.create"]', { hasText: product!.id });
    expect(await productEntry.count()).toBe(1);
    expect(await productEntry.locator('td[data-label="Who"]').textContent(), 'the actor is named by email').toBe(ADMIN.email);
    expect(await page.locator('#audit-body tr[data-action="user.create"]').count()).toBeGreaterThanOrEqual(1);
    expect(await page.locator('#audit-body tr[data-action="key.update"]').count()).toBeGreaterThanOrEqual(1);
    await page.screenshot({ path: screenshotPath('admin-audit'), fullPage: true });
    expectNoCspViolations(watched);
    await page.close();
  });

  it('fits a 375 px phone and a 768 px tablet without sideways page scrolling', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    await page.setViewportSize({ width: 375, height: 812 });
    await signIn(page, USER);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    expect(await page.locator('#keys-table thead').isHidden(), 'the table stacks into cards').toBe(true);
    const box = await page.locator('#keys-body tr').first().boundingBox();
    expect(box!.width).toBeLessThanOrEqual(375);
    await openTab(page, 'usage');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await openTab(page, 'keys');
    await page.screenshot({ path: screenshotPath('phone-keys'), fullPage: true });
    // A tablet keeps the table, which scrolls inside its box rather than the page.
    await page.setViewportSize({ width: 768, height: 1024 });
    expect(await page.locator('#keys-table thead').isVisible()).toBe(true);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(768);
    expectNoCspViolations(watched);
    await page.close();
  });

  it('marks up the tab bar as ARIA tabs, moved by click and by arrow keys', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, USER);
    expect(await page.locator('#tabs').getAttribute('role')).toBe('tablist');
    const tabs = await page.locator('#tabs button').evaluateAll((nodes) =>
      nodes.map((tab) => {
        const panel = document.getElementById(tab.getAttribute('aria-controls') ?? '');
        return {
          role: tab.getAttribute('role'),
          tab: (tab as HTMLElement).dataset.tab,
          panel: panel?.id,
          panelRole: panel?.getAttribute('role'),
          labelledBy: panel?.getAttribute('aria-labelledby') === tab.id,
        };
      }),
    );
    expect(tabs).toHaveLength(5);
    for (const tab of tabs) expect(tab).toEqual({ role: 'tab', tab: tab.tab, panel: `tab-${tab.tab}`, panelRole: 'tabpanel', labelledBy: true });
    expect(await tabState(page)).toEqual({ selected: ['keys'], focusable: ['keys'] });

    await openTab(page, 'usage');
    expect(await tabState(page)).toEqual({ selected: ['usage'], focusable: ['usage'] });
    expect(await page.locator('#tab-keys').isHidden()).toBe(true);
    await page.locator('#tabs [role=tab][aria-selected=true]').click();

    // Arrow keys: for a user the admin tabs are hidden, so Right from Usage wraps to Keys.
    await page.keyboard.press('ArrowRight');
    await page.locator('#tab-keys').waitFor({ state: 'visible' });
    expect(await tabState(page)).toEqual({ selected: ['keys'], focusable: ['keys'] });
    expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.tab)).toBe('keys');
    await page.keyboard.press('ArrowLeft');
    await page.locator('#tab-usage').waitFor({ state: 'visible' });
    expect(await tabState(page)).toEqual({ selected: ['usage'], focusable: ['usage'] });
    await page.keyboard.press('Home');
    await page.locator('#tab-keys').waitFor({ state: 'visible' });
    expect(await tabState(page)).toEqual({ selected: ['keys'], focusable: ['keys'] });
    expectNoCspViolations(watched);
    await page.close();
  });

  it('shows a key rotated past its grace period as expired, and the usage picker names keys and starts on an active one', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, USER);
    const create = async (name: string): Promise<string> => {
      await page.locator('#create-key-form input[name=name]').fill(name);
      await page.locator('#create-key-form button[type=submit]').click();
      const key = await takeSecret(page);
      await keyRow(page, prefixOf(key)).waitFor();
      return key;
    };

    // An inactive key too, so every badge colour is on screen for axe (made first: the newest key is checked below).
    const paused = await create('paused key');
    // Rotated with no grace: the old key stops at once, though its stored status stays "active".
    const old = await create('grace over key');
    await keyRow(page, prefixOf(old)).locator('button[data-action=rotate]').click();
    await page.locator('#rotate-form input[name=gracePeriodSeconds]').fill('0');
    await page.locator('#rotate-dialog button[value=confirm]').click();
    const replacement = await takeSecret(page);
    const oldRow = keyRow(page, prefixOf(old));
    await expect.poll(() => oldRow.locator('.badge').textContent(), { timeout: WAIT_MS }).toBe('expired');
    expect(await oldRow.locator('td[data-label="Expires"]').textContent()).toMatch(/^grace ended /);
    expect(await oldRow.locator('button[data-action=edit]').count(), 'nothing revives a key past its grace').toBe(0);
    expect(await oldRow.locator('button[data-action=rotate]').count()).toBe(0);
    const refused = await callWithKey(old);
    expect(refused.status, 'the gateway agrees: the old key is refused').toBe(401);
    const newRow = keyRow(page, prefixOf(replacement));
    expect(await newRow.locator('.badge').textContent()).toBe('active');

    // Revoke the replacement, so the newest key (first in the usage list) is not a working one.
    await newRow.locator('button[data-action=revoke]').click();
    await page.locator('#revoke-dialog button[value=confirm]').click();
    await expect.poll(() => newRow.locator('.badge').textContent(), { timeout: WAIT_MS }).toBe('revoked');
    const pausedRow = keyRow(page, prefixOf(paused));
    await pausedRow.locator('button[data-action=edit]').click();
    await page.locator('#edit-form select[name=status]').selectOption('inactive');
    await page.locator('#edit-dialog button[value=confirm]').click();
    await expect.poll(() => pausedRow.locator('.badge').textContent(), { timeout: WAIT_MS }).toBe('inactive');
    for (const state of ['active', 'inactive', 'revoked', 'expired'])
      expect(await page.locator(`#keys-body .badge.${state}`).count(), state).toBeGreaterThan(0);
    await expectNoSeriousViolations(page, 'the keys tab with every badge');
    await page.screenshot({ path: screenshotPath('key-states'), fullPage: true });

    // A fresh page: the picker's first option is the revoked replacement, yet it starts on an active key.
    await page.reload();
    await page.locator('#keys-body tr').first().waitFor();
    await openTab(page, 'usage');
    await page.locator('#usage-chart svg').waitFor();
    const options = await page
      .locator('#usage-key option')
      .evaluateAll((nodes) =>
        nodes.map((node) => ({ text: node.textContent ?? '', state: node.getAttribute('data-state'), selected: (node as HTMLOptionElement).selected })),
      );
    expect(options[0]!.text).toBe(`grace over key · ${prefixOf(replacement)} (revoked)`);
    expect(options.map((o) => o.text)).toContain(`grace over key · ${prefixOf(old)} (expired)`);
    expect(options.map((o) => o.text)).toContain(`paused key · ${prefixOf(paused)} (inactive)`);
    expect(options.map((o) => o.text)).toContain(`Demo DeFi live key · ${prefixOf(gateway.keys.ilalLive)} (active)`);
    const selected = options.filter((o) => o.selected);
    expect(selected).toHaveLength(1);
    expect(selected[0]!.state).toBe('active');
    expect(selected[0]!.text).toMatch(/^.+ · \S+ \(active\)$/);
    await expectNoSeriousViolations(page, 'the usage tab');
    expectNoCspViolations(watched);
    await page.close();
  });

  it('has no serious or critical axe violations on any signed-in tab, as a user and as an admin', async () => {
    for (const [who, tabs] of [
      [USER, ['keys', 'usage']],
      [ADMIN, ['keys', 'usage', 'products', 'users', 'audit']],
    ] as const) {
      const watched = await browser.newPage();
      const { page } = watched;
      await signIn(page, who);
      for (const tab of tabs) await axeOnTab(page, tab, who.email);
      expectNoCspViolations(watched);
      await page.close();
    }
  });

  it('checks the product slug against the API rule in the browser (a pattern valid in the v flag)', async () => {
    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, ADMIN);
    await openTab(page, 'products');
    const slug = page.locator('#create-product-form input[name=slug]');
    const mismatch = async (value: string): Promise<boolean> => {
      await slug.fill(value);
      return slug.evaluate((input) => (input as HTMLInputElement).validity.patternMismatch);
    };
    for (const bad of ['Bad_Slug', '-leading-dash', 'has space', 'UPPER']) expect(await mismatch(bad), bad).toBe(true);
    for (const good of ['weather', 'a', 'v2-api', `a${'b'.repeat(62)}`]) expect(await mismatch(good), good).toBe(false);
    // At most 63 characters, as the API: typing stops there, and a longer value set by script fails the pattern.
    await slug.fill(`a${'b'.repeat(70)}`);
    expect((await slug.inputValue()).length).toBe(63);
    const tooLong = await slug.evaluate((input) => {
      (input as HTMLInputElement).value = `a${'b'.repeat(63)}`;
      return (input as HTMLInputElement).validity.patternMismatch;
    });
    expect(tooLong).toBe(true);
    // A refused slug is not sent: the form stays, no request leaves.
    const posted: string[] = [];
    page.on('request', (request) => request.method() === 'POST' && posted.push(request.url()));
    await slug.fill('Bad_Slug');
    await page.locator('#create-product-form input[name=name]').fill('Bad');
    await page.locator('#create-product-form input[name=pathPrefix]').fill('/api/bad');
    await page.locator('#create-product-form input[name=originUrl]').fill(gateway.origin.url);
    await page.locator('#create-product-form button[type=submit]').click();
    expect(await slug.evaluate((input) => (input as HTMLInputElement).matches(':invalid'))).toBe(true);
    expect(posted).toEqual([]);
    expect(
      watched.console.filter((line) => /pattern attribute/i.test(line)),
      'chromium compiled the pattern',
    ).toEqual([]);
    expectNoCspViolations(watched);
    await page.close();
  });

  // Last in the file: the rows it adds would push other tests' rows off the first pages.
  it('pages the keys, products and audit lists with "Load more" until the last page, and keeps what is shown on refresh', async () => {
    const admin = { Authorization: `Bearer ${gateway.secrets.ADMIN_TOKEN}`, 'Content-Type': 'application/json' };
    const tag = Date.now().toString(36);
    // More than a page (50) of products and of keys; each also writes an audit entry.
    for (let i = 0; i < 55; i++) {
      const slug = `more-${tag}-${String(i).padStart(2, '0')}`;
      const made = await gateway.fetch('/api/v1/admin/products', {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ slug, name: slug, pathPrefix: `/api/${slug}`, originUrl: gateway.origin.url }),
      });
      expect(made.status, JSON.stringify(await readJson(made.clone()))).toBe(201);
    }
    for (let i = 0; i < 52; i++) {
      const made = await gateway.fetch('/api/v1/keys', { method: 'POST', headers: admin, body: JSON.stringify({ name: `more ${i}`, products: ['defi'] }) });
      expect(made.status).toBe(201);
    }
    /** How many rows a list holds, following its cursors. */
    const total = async (path: string, list: string): Promise<number> => {
      let count = 0;
      let cursor: string | null = null;
      do {
        const answer: Record<string, any> = await readJson(
          await gateway.fetch(`${path}?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { headers: admin }),
        );
        count += answer[list].length;
        cursor = answer.nextCursor;
      } while (cursor);
      return count;
    };

    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, ADMIN);

    /** Clicks "Load more" until it goes; every click adds the next page (at most 50 rows), none twice. */
    async function loadEverything(list: string, rowId: string, expected: number): Promise<void> {
      const rows = page.locator(`#${list}-body tr`);
      const more = page.locator(`#${list}-more`);
      await expect.poll(() => rows.count(), { timeout: WAIT_MS }).toBe(Math.min(50, expected));
      for (let clicks = 0; (await more.isVisible()) && clicks < 10; clicks++) {
        const before = await rows.count();
        await more.click();
        await expect.poll(() => rows.count(), { timeout: WAIT_MS }).toBe(Math.min(before + 50, expected));
      }
      expect(await more.isHidden(), `${list}: no "Load more" on the last page`).toBe(true);
      const ids = await rows.evaluateAll((nodes, name) => nodes.map((node) => node.getAttribute(name)), rowId);
      expect(new Set(ids).size, `${list}: every row once`).toBe(expected);
    }

    const keys = await total('/api/v1/keys', 'keys');
    expect(keys).toBeGreaterThan(50);
    expect(await page.locator('#keys-more').isVisible()).toBe(true);
    await loadEverything('keys', 'data-key-id', keys);
    // A refresh (as after an edit) shows as many rows as before, not just the first page.
    await page.locator('#keys-refresh').click();
    await expect.poll(() => page.locator('#keys-body tr').count(), { timeout: WAIT_MS }).toBe(keys);
    await page.screenshot({ path: screenshotPath('keys-load-more'), fullPage: true });

    await openTab(page, 'products');
    await loadEverything('products', 'data-slug', await total('/api/v1/admin/products', 'products'));
    await openTab(page, 'audit');
    await loadEverything('audit', 'data-entry-id', await total('/api/v1/admin/audit', 'entries'));
    expectNoCspViolations(watched);
    await page.close();
  });
});

describe('dashboard credits (issue 16)', () => {
  const adminJson = () => ({ Authorization: `Bearer ${gateway.secrets.ADMIN_TOKEN}`, 'Content-Type': 'application/json' });

  /** A fresh key made through the admin API (its name is unique), for the usage picker to select. */
  async function makeKey(fields: Record<string, unknown>): Promise<{ id: string; key: string; prefix: string; name: string }> {
    const made = await gateway.fetch('/api/v1/keys', { method: 'POST', headers: adminJson(), body: JSON.stringify(fields) });
    expect(made.status, JSON.stringify(await readJson(made.clone()))).toBe(201);
    return readJson(made);
  }

  async function creditsOf(id: string): Promise<Record<string, any> | null> {
    return (await readJson<{ credits: Record<string, any> | null }>(await gateway.fetch(`/api/v1/keys/${id}/credits`, { headers: adminJson() }))).credits;
  }

  async function showUsageOf(page: Page, made: { name: string; prefix: string }): Promise<void> {
    await openTab(page, 'usage');
    await page.locator('#usage-chart svg').waitFor();
    await page.locator('#usage-key').selectOption({ label: `${made.name} · ${made.prefix} (active)` });
  }

  it('lets an admin set credits with a refill, top them up and remove them; a refused top-up shows the API message', async () => {
    const made = await makeKey({ name: `credits ${Date.now().toString(36)}`, products: ['defi'] });
    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, ADMIN);
    await showUsageOf(page, made);
    const text = page.locator('#credits-text');
    await expect.poll(() => text.textContent(), { timeout: WAIT_MS }).toBe('No credit balance: only rate limits apply.');
    expect(await page.locator('#credits-remove').isHidden(), 'nothing to remove').toBe(true);
    expect(await page.locator('#credits-meter').isHidden()).toBe(true);

    // No balance to add to: the API's 409, in its own words.
    await page.locator('#credits-top-up-form input[name=amount]').fill('5');
    await page.locator('#credits-top-up-form button[type=submit]').click();
    await page.locator('#error').waitFor({ state: 'visible' });
    expect(await page.locator('#error-message').textContent()).toBe('There is no balance to top up: set one first (PUT …/credits)');
    expect(await page.locator('#error').textContent()).not.toMatch(/[{}]|CONFLICT/);
    expect(await creditsOf(made.id)).toBeNull();

    // Set: a balance, a daily refill and a low threshold.
    const setForm = page.locator('#credits-set-form');
    expect(await setForm.locator('input[name=refillAmount]').isDisabled(), 'no refill, no amount').toBe(true);
    await setForm.locator('input[name=balance]').fill('20');
    await setForm.locator('select[name=interval]').selectOption('day');
    expect(await setForm.locator('input[name=dayOfMonth]').isDisabled(), 'a day of month is for monthly refills').toBe(true);
    await setForm.locator('input[name=refillAmount]').fill('100');
    await setForm.locator('input[name=lowThreshold]').fill('5');
    await setForm.locator('button[type=submit]').click();
    await expect.poll(() => text.textContent(), { timeout: WAIT_MS }).toBe('20 of 20 credits left, 0 used today; low at 5');
    expect(await page.locator('#error').isHidden(), 'the old error is cleared').toBe(true);
    expect(await page.locator('#status').textContent()).toBe(`Credits of ${made.prefix} set to 20.`);
    expect(await page.locator('#credits-refill').textContent()).toMatch(/^Refills to 100 every day \(00:00 UTC\); next refill \d{4}-\d\d-\d\d \d\d:\d\d$/);
    const tomorrow = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1)).toISOString();
    expect(await page.locator('#credits-refill time').getAttribute('datetime')).toBe(tomorrow);
    expect(await creditsOf(made.id)).toMatchObject({ balance: 20, quota: 20, lowThreshold: 5, refill: { amount: 100, interval: 'day' } });
    expect(await page.locator('#credits-meter').evaluate((meter) => [(meter as HTMLMeterElement).value, (meter as HTMLMeterElement).max])).toEqual([20, 20]);
    // The form now shows what is set, since the next set replaces all of it.
    expect(await setForm.locator('input[name=refillAmount]').inputValue()).toBe('100');
    await expectNoSeriousViolations(page, 'the usage tab with credits, as an admin');

    // A call costs one credit; a top-up adds to what is left, and the page shows the API's balance.
    const used = await callWithKey(made.key);
    expect(used.status).toBe(200);
    expect(used.headers.get('X-Credits-Remaining')).toBe('19');
    await page.locator('#credits-top-up-form input[name=amount]').fill('10');
    await page.locator('#credits-top-up-form button[type=submit]').click();
    await expect.poll(() => text.textContent(), { timeout: WAIT_MS }).toBe('29 of 29 credits left, 1 used today; low at 5');
    expect(await page.locator('#status').textContent()).toBe(`Added 10 credits to ${made.prefix}.`);
    expect(await page.locator('#credits-used-text').textContent()).toBe(`Credits used per UTC day: ${new Date().toISOString().slice(5, 10)}: 1`);
    expect(await creditsOf(made.id)).toMatchObject({ balance: 29, usedToday: 1 });
    await page.screenshot({ path: screenshotPath('credits-admin'), fullPage: true });

    // Remove: back to rate limits only.
    await page.locator('#credits-remove').click();
    await expect.poll(() => text.textContent(), { timeout: WAIT_MS }).toBe('No credit balance: only rate limits apply.');
    expect(await creditsOf(made.id)).toBeNull();
    const free = await callWithKey(made.key);
    expect(free.headers.get('X-Credits-Remaining')).toBeNull();

    const audit = await readJson<{ entries: { action: string; targetId: string }[] }>(
      await gateway.fetch('/api/v1/admin/audit?limit=200', { headers: adminJson() }),
    );
    expect(audit.entries.filter((entry) => entry.targetId === made.id).map((entry) => entry.action)).toEqual(
      expect.arrayContaining(['key.credits.set', 'key.credits.top_up', 'key.credits.remove']),
    );
    expectNoCspViolations(watched);
    await page.close();
  });

  it("shows an owner their key's balance and refill, without the admin controls", async () => {
    const users = await readJson<{ users: { id: string; email: string }[] }>(await gateway.fetch('/api/v1/admin/users?limit=200', { headers: adminJson() }));
    const owner = users.users.find((user) => user.email === USER.email)!;
    const made = await makeKey({ name: `owned credits ${Date.now().toString(36)}`, ownerId: owner.id });
    const set = await gateway.fetch(`/api/v1/keys/${made.id}/credits`, {
      method: 'PUT',
      headers: adminJson(),
      body: JSON.stringify({ balance: 40, refill: { amount: 40, interval: 'month', dayOfMonth: 15 } }),
    });
    expect(set.status).toBe(200);

    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, USER);
    await showUsageOf(page, made);
    await expect.poll(() => page.locator('#credits-text').textContent(), { timeout: WAIT_MS }).toBe('40 of 40 credits left, 0 used today');
    expect(await page.locator('#credits-refill').textContent()).toMatch(/^Refills to 40 every month on day 15 \(UTC\); next refill /);
    for (const control of ['#credits-set-form', '#credits-top-up-form', '#credits-remove']) {
      expect(await page.locator(control).isHidden(), `${control} is for admins`).toBe(true);
    }
    // Not in the Tab order either: nothing of the admin controls can take focus.
    expect(await page.locator('#credits-card .credits-admin').evaluate((node) => getComputedStyle(node).display)).toBe('none');
    await expectNoSeriousViolations(page, 'the usage tab with credits, as an owner');
    expectNoCspViolations(watched);
    await page.close();
  });
});

describe('dashboard rate-limit mode (issue 17: leased mode)', () => {
  const adminJson = () => ({ Authorization: `Bearer ${gateway.secrets.ADMIN_TOKEN}`, 'Content-Type': 'application/json' });
  const MODE_NOTE = 'Leased: faster for hot or far-away keys; remaining counts are estimates; revocation within 1 s';

  async function makeKey(fields: Record<string, unknown>): Promise<{ id: string; key: string; prefix: string }> {
    const made = await gateway.fetch('/api/v1/keys', { method: 'POST', headers: adminJson(), body: JSON.stringify(fields) });
    expect(made.status, JSON.stringify(await readJson(made.clone()))).toBe(201);
    return readJson(made);
  }

  async function modeOf(id: string): Promise<unknown> {
    return (await readJson<{ rateLimitMode: unknown }>(await gateway.fetch(`/api/v1/keys/${id}`, { headers: adminJson() }))).rateLimitMode;
  }

  /** Save the edit dialog; the PATCH the page sent and the API's answer to it. */
  async function saveEdit(page: Page, id: string): Promise<{ sent: unknown; answer: Record<string, unknown> }> {
    const patched = page.waitForResponse((response) => response.request().method() === 'PATCH' && new URL(response.url()).pathname === `/api/v1/keys/${id}`);
    await page.locator('#edit-dialog button[value=confirm]').click();
    const response = await patched;
    expect(response.status()).toBe(200);
    return { sent: response.request().postDataJSON(), answer: await response.json() };
  }

  it('lets an admin set a key to leased (the API answers rateLimitMode "leased", calls\' counts are estimates) and back to the product\'s default', async () => {
    const made = await makeKey({ name: `mode ${Date.now().toString(36)}`, products: ['defi'] });
    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, ADMIN);
    const row = keyRow(page, made.prefix);
    await row.waitFor();
    expect(await row.locator('td[data-label="Limits"]').textContent()).toMatch(/^\S+\/min · \S+\/day$/);

    await row.locator('button[data-action=edit]').click();
    const select = page.locator('#edit-form select[name=rateLimitMode]');
    expect(await select.inputValue(), "null is the product's default").toBe('');
    expect(await select.locator('option').allTextContents()).toEqual(["Product's default", 'Exact', 'Leased']);
    expect(await page.locator('#edit-mode-note').textContent()).toBe(MODE_NOTE);
    expect(await select.getAttribute('aria-describedby')).toBe('edit-mode-note');
    expect(await page.locator('#edit-mode-view').isHidden(), 'the read-only line is for owners').toBe(true);
    await expectNoSeriousViolations(page, 'the key edit dialog with the rate-limit mode, as an admin');
    await page.screenshot({ path: screenshotPath('key-mode-admin') });

    await select.selectOption('leased');
    const leased = await saveEdit(page, made.id);
    expect(leased.sent, 'only what changed is sent').toEqual({ rateLimitMode: 'leased' });
    expect(leased.answer).toMatchObject({ id: made.id, rateLimitMode: 'leased' });
    await expect.poll(() => row.locator('td[data-label="Limits"]').textContent(), { timeout: WAIT_MS }).toMatch(/ · leased$/);
    expect(await page.locator('#status').textContent()).toBe(`Key ${made.prefix} saved.`);
    expect(await modeOf(made.id)).toBe('leased');
    // The gateway now admits the key's calls from leases: each RateLimit-Policy item is marked an estimate.
    const estimated = await callWithKey(made.key);
    expect(estimated.status, JSON.stringify(await readJson(estimated.clone()))).toBe(200);
    expect(estimated.headers.get('RateLimit-Policy')).toMatch(/^"minute";q=\d+;w=60;estimate, "day";q=\d+;w=86400;estimate$/);
    await expectNoSeriousViolations(page, 'the keys tab with a leased key');

    // Back to the product's default: null, and the seeded product is exact.
    await row.locator('button[data-action=edit]').click();
    expect(await select.inputValue()).toBe('leased');
    await select.selectOption('');
    const reset = await saveEdit(page, made.id);
    expect(reset.sent).toEqual({ rateLimitMode: null });
    expect(reset.answer).toMatchObject({ rateLimitMode: null });
    await expect.poll(() => row.locator('td[data-label="Limits"]').textContent(), { timeout: WAIT_MS }).toMatch(/^\S+\/min · \S+\/day$/);
    const exact = await callWithKey(made.key);
    expect(exact.headers.get('RateLimit-Policy')).not.toContain('estimate');
    expectNoCspViolations(watched);
    await page.close();
  });

  it("shows an owner their key's mode read-only; the owner's edit never sends it", async () => {
    const users = await readJson<{ users: { id: string; email: string }[] }>(await gateway.fetch('/api/v1/admin/users?limit=200', { headers: adminJson() }));
    const owner = users.users.find((user) => user.email === USER.email)!;
    const made = await makeKey({ name: `owned mode ${Date.now().toString(36)}`, ownerId: owner.id, rateLimitMode: 'leased' });

    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, USER);
    const row = keyRow(page, made.prefix);
    await row.waitFor();
    expect(await row.locator('td[data-label="Limits"]').textContent()).toMatch(/ · leased$/);
    await row.locator('button[data-action=edit]').click();
    const view = page.locator('#edit-mode-view');
    await view.waitFor({ state: 'visible' });
    expect(await page.locator('#edit-mode-text').textContent()).toBe('Leased');
    expect(await view.textContent()).toContain(MODE_NOTE);
    expect(await page.locator('#edit-form select[name=rateLimitMode]').isHidden(), 'the select is for admins').toBe(true);
    await expectNoSeriousViolations(page, 'the key edit dialog with the rate-limit mode, as an owner');
    await page.screenshot({ path: screenshotPath('key-mode-owner') });

    await page.locator('#edit-form input[name=name]').fill('owned mode renamed');
    const saved = await saveEdit(page, made.id);
    expect(saved.sent).toEqual({ name: 'owned mode renamed' });
    expect(saved.answer).toMatchObject({ name: 'owned mode renamed', rateLimitMode: 'leased' });
    expect(await modeOf(made.id)).toBe('leased');
    expectNoCspViolations(watched);
    await page.close();
  });

  it('lets an admin create a leased product; the products tab shows its mode', async () => {
    const slug = `leased-${Date.now().toString(36)}`;
    const watched = await browser.newPage();
    const { page } = watched;
    await signIn(page, ADMIN);
    await openTab(page, 'products');
    const form = page.locator('#create-product-form');
    expect(await form.locator('select[name=rateLimitMode]').inputValue(), 'exact unless chosen').toBe('exact');
    expect(await page.locator('#product-mode-note').textContent()).toBe(MODE_NOTE);
    await form.locator('input[name=slug]').fill(slug);
    await form.locator('input[name=name]').fill('Leased product');
    await form.locator('input[name=pathPrefix]').fill(`/api/${slug}`);
    await form.locator('input[name=originUrl]').fill(gateway.origin.url);
    await form.locator('select[name=rateLimitMode]').selectOption('leased');
    await form.locator('button[type=submit]').click();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: WAIT_MS }).toBe(`Product ${slug} created at /api/${slug}.`);
    expect(await form.locator('select[name=rateLimitMode]').inputValue(), 'the form is reset').toBe('exact');
    const products = await readJson<{ products: { slug: string; rateLimitMode: string }[] }>(
      await gateway.fetch('/api/v1/admin/products?limit=200', { headers: adminJson() }),
    );
    expect(products.products.find((product) => product.slug === slug)).toMatchObject({ rateLimitMode: 'leased' });
    // The new product may sit past the first page (earlier tests made many): load until it shows.
    const productRow = page.locator(`#products-body tr[data-slug="${slug}"]`);
    for (let clicks = 0; (await productRow.count()) === 0 && (await page.locator('#products-more').isVisible()) && clicks < 10; clicks++) {
      const before = await page.locator('#products-body tr').count();
      await page.locator('#products-more').click();
      await expect.poll(() => page.locator('#products-body tr').count(), { timeout: WAIT_MS }).toBeGreaterThan(before);
    }
    expect(await productRow.locator('td[data-label="Limits"]').textContent()).toMatch(/ · leased$/);
    await expectNoSeriousViolations(page, 'the products tab with the rate-limit mode');
    await page.screenshot({ path: screenshotPath('product-mode'), fullPage: true });
    expectNoCspViolations(watched);
    await page.close();
  });
});
