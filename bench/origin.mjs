// The benchmark's origin: a tiny JSON API on 127.0.0.1, in its own process so
// it never competes with the load generator for one event loop. Prints its
// port on stdout once listening.
import { createServer } from 'node:http';

const BODY = JSON.stringify({ ok: true, origin: 'bench' });

const server = createServer((request, response) => {
  // Drain any request body before answering, as a real API would.
  request.resume();
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
    response.end(BODY);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
