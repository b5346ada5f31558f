// A headless Debian chromium driven by playwright-core, with a fresh profile
// that is deleted on close. Every wait a test makes is bounded by WAIT_MS.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium; KEYGATE_CHROMIUM points elsewhere (scripts/ensure-chromium.mjs checks the same). */
export const CHROMIUM_PATH = process.env.KEYGATE_CHROMIUM || '/usr/bin/chromium';
/** Bound on any single wait for the page (an element, a navigation, a dialog). */
export const WAIT_MS = 15_000;
export const SCREENSHOT_DIR = 'test-results/browser';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  /** A new tab (fresh sessionStorage) that records console output and CSP violations. */
  newPage(): Promise<WatchedPage>;
  close(): Promise<void>;
}

export interface WatchedPage {
  page: Page;
  /** Every console message and page error, as text. */
  console: string[];
}

export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'keygate-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 800 },
      timeout: WAIT_MS * 4,
    });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(WAIT_MS);
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    return {
      context,
      newPage: async () => {
        const page = await context.newPage();
        const console: string[] = [];
        page.on('console', (message) => console.push(`${message.type()}: ${message.text()}`));
        page.on('pageerror', (error) => console.push(`pageerror: ${error.message}`));
        return { page, console };
      },
      close: async () => {
        try {
          await context.close();
        } finally {
          rmSync(profile, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
}

export function screenshotPath(name: string): string {
  return join(SCREENSHOT_DIR, `${name}.png`);
}

/**
 * The README's picture of the signed-in key list. Refreshed only on request
 * (UPDATE_DOCS_SCREENSHOT=1), so an ordinary test run leaves the tree clean.
 */
export const KEY_LIST_SCREENSHOT = process.env.UPDATE_DOCS_SCREENSHOT === '1' ? 'docs/dashboard.png' : screenshotPath('key-list');
