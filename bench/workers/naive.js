// Alternative (g): API-key auth written the obvious way, for comparison. Every
// request hashes the key, SELECTs the row by hash from D1 and UPDATEs a usage
// counter in D1 (which is also how it rate-limits), with no cache and no
// Durable Object. Same schema and seeded rows as keygate.

const DAILY_LIMIT_DEFAULT = 10_000;

async function sha256Hex(text) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

export default {
  async fetch(request, env) {
    const key = request.headers.get('x-api-key');
    if (!key) return Response.json({ error: 'No API key provided' }, { status: 401 });

    const row = await env.DB.prepare('SELECT id, status, rate_limit_per_day FROM api_keys WHERE hash = ?')
      .bind(await sha256Hex(key))
      .first();
    if (row?.status !== 'active') return Response.json({ error: 'Invalid or inactive API key' }, { status: 401 });

    const day = new Date().toISOString().slice(0, 10);
    const { count } = await env.DB.prepare(
      'INSERT INTO usage_daily (key_id, day, count) VALUES (?, ?, 1) ON CONFLICT (key_id, day) DO UPDATE SET count = count + 1 RETURNING count',
    )
      .bind(row.id, day)
      .first();
    if (count > (row.rate_limit_per_day ?? DAILY_LIMIT_DEFAULT)) return Response.json({ error: 'Rate limit exceeded' }, { status: 429 });

    const headers = new Headers(request.headers);
    headers.delete('x-api-key');
    headers.set('X-Auth-Key-Id', row.id);
    const url = new URL(request.url);
    return fetch(new URL(url.pathname + url.search, env.ORIGIN_URL), { method: request.method, headers, body: request.body });
  },
};
