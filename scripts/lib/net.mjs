// Small network helpers: free ports and waiting for an HTTP endpoint.
import { createServer } from 'node:net';

export const LOOPBACK = '127.0.0.1';

/** A port the OS says is free right now on `host` (tiny race: bind it soon). @returns {Promise<number>} */
export function freePort(host = LOOPBACK) {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/** Whether something could bind `port` on `host` right now. @param {number} port @returns {Promise<boolean>} */
export function isPortFree(port, host = LOOPBACK) {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** @param {number} ms @returns {Promise<void>} */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll until `port` is free; false if it is still taken after `timeoutMs`. @param {number} port */
export async function waitForPortFree(port, timeoutMs = 10_000, host = LOOPBACK) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await isPortFree(port, host)) return true;
    await sleep(200);
  }
  return isPortFree(port, host);
}

/** The server answered with 500 CONFIG_INVALID: its message names the bad variable. */
export class ConfigInvalid extends Error {}

/**
 * Poll `url` until it answers 200. `shouldStop()` lets the caller abort early (e.g. the
 * server process died), returning a reason string.
 * @param {string} url
 * @param {{ timeoutMs?: number, intervalMs?: number, shouldStop?: () => string | undefined }} [options]
 */
export async function waitForHttp200(url, { timeoutMs = 60_000, intervalMs = 250, shouldStop } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const stop = shouldStop?.();
    if (stop) throw new Error(`gave up waiting for ${url}: ${stop}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body = /** @type {{ code?: string, message?: string }} */ (await response.json().catch(() => ({})));
      if (response.status === 200) return;
      // keygate answers but rejects its own configuration: waiting longer cannot help.
      if (body?.code === 'CONFIG_INVALID') throw new ConfigInvalid(body.message ?? 'configuration rejected');
      last = `status ${response.status}`;
    } catch (error) {
      if (error instanceof ConfigInvalid) throw error;
      last = /** @type {Error} */ (error).message;
    }
    await sleep(intervalMs);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s (last: ${last})`);
}
