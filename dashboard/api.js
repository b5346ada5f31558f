// keygate's JSON API, spoken with the JWT from POST /auth/login. The token lives
// in sessionStorage (gone when the tab closes), never in localStorage.

const TOKEN_KEY = 'keygate.token';

/** An API refusal in words a person can act on: the server's message and hint. */
export class ApiError extends Error {
  /** @param {number} status @param {{code?: string, message?: string, hint?: string}} body */
  constructor(status, body) {
    super(body.message || `The request failed (HTTP ${status})`);
    this.name = 'ApiError';
    this.status = status;
    this.code = body.code ?? '';
    this.hint = body.hint ?? '';
  }
}

/** @returns {string | null} */
export function storedToken() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return null;
  const claims = decodeClaims(token);
  if (!claims || (typeof claims.exp === 'number' && claims.exp * 1000 <= Date.now())) {
    forgetToken();
    return null;
  }
  return token;
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * The token's payload, for display only: the server verifies it on every call.
 * @param {string} token @returns {Record<string, any> | null}
 */
export function decodeClaims(token) {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const base64 = payload
      .replace(/-/g, '+')
      .replace(/_/g, '/')
      .padEnd(Math.ceil(payload.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** @param {string} email @param {string} password @returns {Promise<string>} the token */
export async function signIn(email, password) {
  const body = await send('POST', '/auth/login', { email, password }, null);
  sessionStorage.setItem(TOKEN_KEY, body.token);
  return body.token;
}

/**
 * One call to keygate; resolves to the JSON body or rejects with an ApiError.
 * @param {string} method @param {string} path @param {unknown} [payload] @param {string | null} [token]
 * @param {Record<string, string>} [extraHeaders]
 */
export async function send(method, path, payload, token = storedToken(), extraHeaders = {}) {
  const headers = { Accept: 'application/json', ...extraHeaders };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, { message: 'keygate could not be reached', hint: 'Check your connection and try again' });
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    // Compact-format errors carry only `error`; detailed ones message and hint.
    throw new ApiError(response.status, { ...body, message: body.message ?? body.error });
  }
  return body;
}

/**
 * `?name=value&…` for the parameters that are set, or "".
 * @param {Record<string, string | number | null | undefined>} params
 */
function query(params) {
  const set = Object.entries(params).filter(([, value]) => value !== undefined && value !== null && value !== '');
  const search = new URLSearchParams(set.map(([name, value]) => [name, String(value)])).toString();
  return search ? `?${search}` : '';
}

// The lists come a page at a time: pass the previous answer's nextCursor for the next page.
export const api = {
  listKeys: (cursor, limit) => send('GET', `/api/v1/keys${query({ cursor, limit })}`),
  createKey: (fields) => send('POST', '/api/v1/keys', fields),
  // With the version the page showed: a key changed meanwhile is refused (412), never overwritten.
  updateKey: (id, fields, version) => send('PATCH', `/api/v1/keys/${encodeURIComponent(id)}`, fields, undefined, ifMatch(version)),
  revokeKey: (id) => send('DELETE', `/api/v1/keys/${encodeURIComponent(id)}`),
  rotateKey: (id, gracePeriodSeconds) => send('POST', `/api/v1/keys/${encodeURIComponent(id)}/rotate`, { gracePeriodSeconds }),
  usage: () => send('GET', '/api/v1/usage/stats'),
  // A key's credits (its rotation's one balance); only admins change them. A set replaces balance, refill and lowThreshold.
  setKeyCredits: (id, setting) => send('PUT', `/api/v1/keys/${encodeURIComponent(id)}/credits`, setting),
  topUpKeyCredits: (id, amount) => send('POST', `/api/v1/keys/${encodeURIComponent(id)}/credits/top-up`, { amount }),
  removeKeyCredits: (id) => send('DELETE', `/api/v1/keys/${encodeURIComponent(id)}/credits`),
  listProducts: (cursor) => send('GET', `/api/v1/admin/products${query({ cursor })}`),
  createProduct: (fields) => send('POST', '/api/v1/admin/products', fields),
  listUsers: (cursor, limit) => send('GET', `/api/v1/admin/users${query({ cursor, limit })}`),
  createUser: (fields) => send('POST', '/api/v1/admin/users', fields),
  // Owner-level limits (rateLimitPerMinute, rateLimitPerDay, maxActiveKeys; null clears one).
  updateUser: (id, fields) => send('PATCH', `/api/v1/admin/users/${encodeURIComponent(id)}`, fields),
  audit: (cursor) => send('GET', `/api/v1/admin/audit${query({ cursor })}`),
};

/** If-Match for a key's version (its ETag is the version in quotes); none when unknown. @param {number | undefined} version */
function ifMatch(version) {
  return typeof version === 'number' ? { 'If-Match': `"${version}"` } : {};
}

/**
 * The list in a list answer: `{keys: [...]}`, `{users: [...]}`, `{products: [...]}`, `{entries: [...]}`.
 * @param {any} body @param {string} name @returns {any[]}
 */
export function listOf(body, name) {
  return Array.isArray(body?.[name]) ? body[name] : [];
}
