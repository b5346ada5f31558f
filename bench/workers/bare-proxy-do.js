import { DurableObject } from 'cloudflare:workers';

// Baseline (b2): the bare proxy plus one Durable Object RPC per request that
// durably counts the call. Exact, global counting needs at least this round
// trip, so it is the floor keygate's hot path is measured against.

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
  }

  increment() {
    return this.ctx.storage.sql.exec('INSERT INTO counter (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1 RETURNING n').one().n;
  }
}

export default {
  async fetch(request, env) {
    // One object per credential, as keygate has: the key names the counter.
    await env.COUNTER.getByName(request.headers.get('x-api-key') ?? 'anonymous').increment();
    const url = new URL(request.url);
    return fetch(new URL(url.pathname + url.search, env.ORIGIN_URL), request);
  },
};
