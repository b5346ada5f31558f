// CORS in a real browser (SPEC section 7): a page served from one loopback origin calls a
// product through keygate (`wrangler dev`, test/e2e/harness.ts) on another port with fetch and
// an X-API-Key header, so chromium sends a preflight first. keygate answers it; the page
// reads the origin's JSON, X-Request-Id and the limit headers, and keygate's own 401.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJson, SHUTDOWN_TIMEOUT_MS, startGateway, STARTUP_TIMEOUT_MS, type Gateway } from '../e2e/harness';
import { launchBrowser, type Browser } from './browser';

const PAGE_HTML = '<!doctype html><meta charset="utf-8"><title>cors page</title><p>a page on another origin</p>';

let gateway: Gateway;
let browser: Browser;
/** The listed page and an unlisted one: 127.0.0.1 and localhost are different origins. */
let pageServer: Server;
let pageOrigin: string;
let unlistedOrigin: string;
let apiKey: string;
const slug = `cors-${Date.now().toString(36)}`;

interface PageAnswer {
  ok: boolean;
  status?: number;
  body?: Record<string, unknown>;
  requestId?: string | null;
  remaining?: string | null;
  error?: string;
}

async function admin(method: string, path: string, body: unknown): Promise<Record<string, any>> {
  const response = await gateway.fetch(path, {
    method,
    headers: { Authorization: `Bearer ${gateway.secrets.ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await readJson<Record<string, any>>(response);
  expect(response.status, JSON.stringify(answer)).toBe(201);
  return answer;
}

beforeAll(async () => {
  gateway = await startGateway();
  pageServer = createServer((_request, response) => response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE_HTML));
  await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  const { port } = pageServer.address() as AddressInfo;
  pageOrigin = `http://127.0.0.1:${port}`;
  unlistedOrigin = `http://localhost:${port}`;

  await admin('POST', '/api/v1/admin/products', {
    slug,
    name: 'CORS demo',
    pathPrefix: `/api/${slug}`,
    originUrl: gateway.origin.url,
    corsOrigins: [pageOrigin],
  });
  apiKey = (await admin('POST', '/api/v1/keys', { name: 'browser page key', products: [slug] })).key;
  browser = await launchBrowser();
}, STARTUP_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => pageServer?.close(resolve));
  await gateway?.stop();
}, SHUTDOWN_TIMEOUT_MS);

/** fetch() from inside a page on `origin`, as a browser app would call keygate. */
async function callFromPage(origin: string, key: string | null): Promise<PageAnswer> {
  const { page } = await browser.newPage();
  try {
    await page.goto(`${origin}/`);
    return await page.evaluate(
      async ({ url, key }) => {
        try {
          const headers: Record<string, string> = { 'Content-Type': 'application/json' };
          if (key) headers['X-API-Key'] = key;
          const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ from: 'page' }) });
          return {
            ok: true,
            status: response.status,
            body: (await response.json()) as Record<string, unknown>,
            requestId: response.headers.get('X-Request-Id'),
            remaining: response.headers.get('X-RateLimit-Remaining'),
          };
        } catch (error) {
          return { ok: false, error: String(error) };
        }
      },
      { url: `${gateway.url}/api/${slug}/echo`, key },
    );
  } finally {
    await page.close();
  }
}

describe('a browser page on a listed origin', () => {
  it('calls the product with an X-API-Key and reads the JSON answer, X-Request-Id and the limit headers', async () => {
    const before = gateway.origin.requests.length;
    const answer = await callFromPage(pageOrigin, apiKey);
    expect(answer, JSON.stringify(answer)).toMatchObject({ ok: true, status: 200 });
    expect(answer.body).toMatchObject({ method: 'POST', body: { from: 'page' }, authMethod: 'api_key' });
    expect(answer.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.remaining).toMatch(/^\d+$/);
    // The preflight never reached the origin: only the POST did.
    expect(gateway.origin.requests.slice(before).map((request) => request.method)).toEqual(['POST']);
    expect(gateway.origin.last()?.headers.origin).toBe(pageOrigin);
  });

  it("reads keygate's own refusal: 401 AUTH_MISSING with its request id", async () => {
    const before = gateway.origin.requests.length;
    const answer = await callFromPage(pageOrigin, null);
    expect(answer, JSON.stringify(answer)).toMatchObject({ ok: true, status: 401, body: { code: 'AUTH_MISSING' } });
    expect(answer.requestId).toBe(answer.body?.requestId);
    expect(gateway.origin.requests.length).toBe(before);
  });
});

describe('a browser page on an origin the product does not list', () => {
  it('is stopped by the browser at the preflight; nothing reaches the origin', async () => {
    const before = gateway.origin.requests.length;
    const answer = await callFromPage(unlistedOrigin, apiKey);
    expect(answer.ok, JSON.stringify(answer)).toBe(false);
    expect(answer.error).toContain('Failed to fetch');
    expect(gateway.origin.requests.length).toBe(before);

    // What the browser saw, as curl sees it: a JSON 403 naming the code.
    const preflight = await gateway.fetch(`/api/${slug}/echo`, {
      method: 'OPTIONS',
      headers: { Origin: unlistedOrigin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-api-key' },
    });
    expect(preflight.status).toBe(403);
    expect(await readJson(preflight)).toMatchObject({ code: 'CORS_ORIGIN_NOT_ALLOWED' });
  });
});
