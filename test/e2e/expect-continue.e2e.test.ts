// Interop 4.1: clients that send `Expect: 100-continue` (curl for larger bodies, Python's
// http.client when asked, Node's http) get the origin's answer through keygate, not a 500,
// and the origin receives the whole body without the Expect header.
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { REQUEST_TIMEOUT_MS, useGateway } from './harness';

const gateway = useGateway();
// Asynchronous: the recording origin runs in this process and must keep answering meanwhile.
const run = promisify(execFile);
const BODY = JSON.stringify({ from: 'ETH', to: 'USDC', amount: '1', pad: 'x'.repeat(2000) });

function has(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** The last origin request for the swap path, checked to be whole and without Expect. */
function expectOriginGotBody(before: number): void {
  const seen = gateway().origin.requests.slice(before);
  expect(seen, 'one request reached the origin').toHaveLength(1);
  expect(seen[0]!.headers.expect).toBeUndefined();
  expect(seen[0]!.body).toEqual(JSON.parse(BODY));
}

describe('Expect: 100-continue through keygate', () => {
  it.skipIf(!has('curl'))('curl with an explicit Expect gets the origin answer', async () => {
    const before = gateway().origin.requests.length;
    const result = await run(
      'curl',
      [
        '-s',
        '-o',
        '-',
        '-w',
        '\n%{http_code}',
        '-X',
        'POST',
        `${gateway().url}/api/v1/defi/swap`,
        '-H',
        `X-API-Key: ${gateway().keys.ilalLive}`,
        '-H',
        'Expect: 100-continue',
        '-H',
        'content-type: application/json',
        '--data-binary',
        BODY,
        '--max-time',
        String(REQUEST_TIMEOUT_MS / 1000),
      ],
      { encoding: 'utf8', timeout: REQUEST_TIMEOUT_MS },
    );
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines.at(-1), result.stdout + result.stderr).toBe('200');
    expect(JSON.parse(lines.slice(0, -1).join('\n'))).toMatchObject({ origin: 'demo', method: 'POST' });
    expectOriginGotBody(before);
  });

  it.skipIf(!has('python3'))('Python http.client with Expect gets the origin answer', async () => {
    const before = gateway().origin.requests.length;
    const script = `
import http.client, json, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
c.request("POST", "/api/v1/defi/swap", body=sys.argv[3].encode(), headers={"X-API-Key": sys.argv[2], "Expect": "100-continue", "Content-Type": "application/json"})
r = c.getresponse()
print(r.status)
print(r.read().decode())
`;
    const result = await run('python3', ['-c', script, gateway().url, gateway().keys.ilalLive, BODY], { encoding: 'utf8', timeout: REQUEST_TIMEOUT_MS });
    const [status, ...rest] = result.stdout.split('\n');
    expect(status, result.stdout + result.stderr).toBe('200');
    expect(JSON.parse(rest.join('\n'))).toMatchObject({ origin: 'demo' });
    expectOriginGotBody(before);
  });

  it('Node http with Expect (body sent without waiting) gets the origin answer', async () => {
    const before = gateway().origin.requests.length;
    const url = new URL(`${gateway().url}/api/v1/defi/swap`);
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        url,
        {
          method: 'POST',
          headers: {
            'X-API-Key': gateway().keys.ilalLive,
            Expect: '100-continue',
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(BODY),
          },
          timeout: REQUEST_TIMEOUT_MS,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, body: text }));
        },
      );
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.end(BODY);
    });
    expect(status, body).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ origin: 'demo' });
    expectOriginGotBody(before);
  });
});
