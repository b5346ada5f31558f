// The keygate dashboard: sign in, manage keys, read usage; admins also manage
// products and users and read the audit log. It speaks only keygate's JSON API.
import { api, ApiError, decodeClaims, forgetToken, listOf, signIn, storedToken } from './api.js';
import { fillDays, usageChart } from './chart.js';
import { byId, cell, el, isoToLocalInput, localInputToIso, optionalNumber, when, words } from './dom.js';

/** What the page knows; rebuilt from the API, never persisted. */
const state = {
  /** @type {Record<string, any> | null} */ claims: null,
  /** @type {any[]} */ keys: [],
  /** @type {Map<string, any>} usage per key id */ usage: new Map(),
  /** @type {any | null} the key a dialog is acting on */ target: null,
};

const isAdmin = () => state.claims?.role === 'admin';

// ---- messages -------------------------------------------------------------

/** Show an API refusal as the server's message and hint, never as raw JSON. @param {unknown} error */
function showError(error) {
  const known = error instanceof ApiError;
  byId('error-message').textContent = known ? error.message : 'Something went wrong in the page.';
  byId('error-hint').textContent = known ? error.hint : 'Reload the page and try again.';
  byId('error').hidden = false;
  byId('status').hidden = true;
  if (!known) console.error(error);
}

function clearMessages() {
  byId('error').hidden = true;
  byId('status').hidden = true;
}

/** @param {string} text */
function showStatus(text) {
  byId('status').textContent = text;
  byId('status').hidden = false;
}

/** Run a user action: clear old messages, report failures, sign out on a dead session. @param {() => Promise<void>} action */
async function run(action) {
  clearMessages();
  try {
    await action();
  } catch (error) {
    if (!endsSession(error)) return showError(error);
    signOut();
    showError(new ApiError(401, { message: 'Your session has ended', hint: 'Sign in again to continue' }));
  }
}

/** A refused or expired token (expiry also drops it before sending: AUTH_MISSING). @param {unknown} error */
function endsSession(error) {
  return error instanceof ApiError && error.status === 401 && (error.code.startsWith('JWT_') || error.code === 'AUTH_MISSING');
}

// ---- session --------------------------------------------------------------

function showSignedIn() {
  const token = storedToken();
  state.claims = token ? decodeClaims(token) : null;
  const signedIn = state.claims !== null;
  byId('login-view').hidden = signedIn;
  byId('app-view').hidden = !signedIn;
  byId('who').hidden = !signedIn;
  document.body.classList.toggle('is-admin', isAdmin());
  if (!signedIn) return;
  byId('who-email').textContent = state.claims?.email ?? state.claims?.sub ?? '';
  byId('who-role').textContent = state.claims?.role ?? 'user';
  selectTab('keys');
}

function signOut() {
  forgetToken();
  state.keys = [];
  for (const list of Object.values(pages)) list.reset();
  state.usage.clear();
  for (const body of ['keys-body', 'products-body', 'users-body', 'audit-body']) byId(body).replaceChildren();
  showSignedIn();
}

byId('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  run(async () => {
    await signIn(String(data.get('email')), String(data.get('password')));
    form.reset();
    showSignedIn();
  });
});

byId('sign-out').addEventListener('click', () => {
  clearMessages();
  signOut();
});
byId('error-dismiss').addEventListener('click', clearMessages);

// ---- tabs -----------------------------------------------------------------

const TAB_LOADERS = {
  keys: loadKeys,
  usage: loadUsage,
  products: loadProducts,
  users: loadUsers,
  audit: loadAudit,
};

/** The WAI-ARIA tabs pattern: one selected tab (the only one in the Tab order) shows its panel. @param {keyof typeof TAB_LOADERS} name */
function selectTab(name) {
  for (const button of byId('tabs').querySelectorAll('[role=tab]')) {
    const selected = button.dataset.tab === name;
    button.setAttribute('aria-selected', String(selected));
    button.tabIndex = selected ? 0 : -1;
  }
  for (const tab of Object.keys(TAB_LOADERS)) byId(`tab-${tab}`).hidden = tab !== name;
  run(TAB_LOADERS[name]);
}

byId('tabs').addEventListener('click', (event) => {
  const button = /** @type {HTMLElement} */ (event.target).closest('button[data-tab]');
  if (button) selectTab(/** @type {keyof typeof TAB_LOADERS} */ (button.dataset.tab));
});

// Arrow keys move between the tabs shown (admin-only ones are hidden for users), Home and End to the ends.
byId('tabs').addEventListener('keydown', (event) => {
  const shown = [...byId('tabs').querySelectorAll('[role=tab]')].filter((tab) => tab.getClientRects().length > 0);
  const at = shown.indexOf(/** @type {HTMLElement} */ (event.target));
  if (at < 0) return;
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: shown.length - 1 }[event.key];
  if (to === undefined) return;
  event.preventDefault();
  const tab = shown[(to + shown.length) % shown.length];
  tab.focus();
  selectTab(/** @type {keyof typeof TAB_LOADERS} */ (tab.dataset.tab));
});

// ---- lists, a page at a time --------------------------------------------------

/**
 * One list's rows so far and the cursor of its next page (the API's
 * nextCursor; null on the last page). `load()` fetches the first page again,
 * or as many pages as it takes to show as many rows as before (so an edit on
 * a later page keeps it in view); `more()` appends the next page.
 * @param {string} name the list's member in an answer @param {(cursor?: string) => Promise<any>} fetchPage
 */
function pager(name, fetchPage) {
  const nextOf = (body) => (typeof body?.nextCursor === 'string' ? body.nextCursor : null);
  return {
    /** @type {any[]} */ rows: [],
    /** @type {string | null} */ next: null,
    async load() {
      const shown = this.rows.length;
      const rows = [];
      let cursor = null;
      do {
        const body = await fetchPage(cursor ?? undefined);
        rows.push(...listOf(body, name));
        cursor = nextOf(body);
      } while (cursor !== null && rows.length < shown);
      this.rows = rows;
      this.next = cursor;
    },
    async more() {
      if (this.next === null) return;
      const body = await fetchPage(this.next);
      this.rows = [...this.rows, ...listOf(body, name)];
      this.next = nextOf(body);
    },
    reset() {
      this.rows = [];
      this.next = null;
    },
  };
}

const pages = {
  keys: pager('keys', (cursor) => api.listKeys(cursor)),
  products: pager('products', (cursor) => api.listProducts(cursor)),
  users: pager('users', (cursor) => api.listUsers(cursor)),
  audit: pager('entries', (cursor) => api.audit(cursor)),
};

/** Each list's "Load more" button: shown while another page follows, off while one loads. @param {keyof typeof pages} list */
function showMore(list) {
  byId(`${list}-more`).hidden = pages[list].next === null;
}

/** @param {keyof typeof pages} list @param {() => void} render */
function onLoadMore(list, render) {
  const button = byId(`${list}-more`);
  button.addEventListener('click', () =>
    run(async () => {
      button.disabled = true;
      try {
        await pages[list].more();
      } finally {
        button.disabled = false;
      }
      render();
    }),
  );
}

// ---- keys -----------------------------------------------------------------

async function loadKeys() {
  const [, usage] = await Promise.all([pages.keys.load(), api.usage().catch(() => null)]);
  state.keys = pages.keys.rows;
  state.usage = new Map(listOf(usage, 'keys').map((entry) => [entry.id, entry]));
  renderKeys();
}

/** Effective limits from usage stats when known, else the key's own settings. */
function limitsText(key) {
  const usage = state.usage.get(key.id);
  const minute = usage?.minute?.limit ?? key.rateLimitPerMinute ?? 'default';
  const day = usage?.day?.limit ?? key.rateLimitPerDay ?? 'default';
  return `${minute}/min · ${day}/day`;
}

/** The limits, then a mode the key sets itself ("exact" or "leased"); none shown is the product's mode. */
function limitsCell(key) {
  return cell('Limits', limitsText(key), key.rateLimitMode ? el('small', { class: 'limit-mode' }, ` · ${key.rateLimitMode}`) : null);
}

/** A key's rateLimitMode in the edit dialog's words ('' is null: the product's). */
const RATE_LIMIT_MODE_LABELS = { '': "Product's default", exact: 'Exact', leased: 'Leased' };

/** Who set a key's status or expiry, in words: "you", "an admin", or a user id. @param {string | null | undefined} setBy */
function setByText(setBy) {
  if (!setBy) return null;
  if (setBy === `user:${state.claims?.sub}`) return 'you';
  if (setBy === 'admin_token') return 'the admin token';
  return setBy.startsWith('user:') ? `user ${setBy.slice('user:'.length, 'user:'.length + 8)}` : setBy;
}

/** A decision made by someone other than the key's owner binds the owner (only an admin may lift it). */
function setByAdmin(key, setBy) {
  return Boolean(setBy) && setBy !== `user:${key.ownerId}`;
}

/** A time as milliseconds; null when absent. @param {string | null | undefined} iso */
const timeOf = (iso) => (iso ? Date.parse(iso) : null);

/** A rotated key whose grace period is over: the gateway refuses it for good. */
function rotationEnded(key, now = Date.now()) {
  const graceUntil = timeOf(key.graceUntil);
  return Boolean(key.rotatedTo) && graceUntil !== null && graceUntil <= now;
}

/**
 * What the gateway does with a key now, in one word: the stored status, except
 * that a key past its expiry or its rotation's grace period is "expired" (the
 * API keeps status "active" on such a key; the gateway refuses it by time).
 * @returns {"active" | "inactive" | "revoked" | "expired"}
 */
function keyState(key, now = Date.now()) {
  if (key.status === 'revoked') return 'revoked';
  const expiresAt = timeOf(key.expiresAt);
  if (rotationEnded(key, now) || (expiresAt !== null && expiresAt <= now)) return 'expired';
  return key.status;
}

/** The status badge, and who set a status other than active. */
function statusCell(key) {
  const shown = keyState(key);
  const by = shown === 'active' || shown === 'expired' ? null : setByText(key.statusSetBy);
  const title = shown === 'expired' && rotationEnded(key) ? 'Rotated: its grace period has ended' : undefined;
  return [el('span', { class: `badge ${shown}`, title }, shown), by ? el('small', { class: 'set-by' }, ` by ${by}`) : null];
}

function expiryCell(key) {
  if (key.graceUntil && key.rotatedTo) return el('span', {}, rotationEnded(key) ? 'grace ended ' : 'grace until ', when(key.graceUntil));
  const by = key.expiresAt ? setByText(key.expiresSetBy) : null;
  return el('span', {}, when(key.expiresAt), by ? el('small', { class: 'set-by' }, ` set by ${by}`) : null);
}

function todayText(key) {
  const day = state.usage.get(key.id)?.day;
  return day ? `${day.used} / ${day.limit}` : '—';
}

function keyActions(key) {
  // A rotated key past its grace can only be revoked (tidied away); nothing revives it.
  const live = key.status !== 'revoked';
  const editable = live && !rotationEnded(key);
  // A key is rotated once; its replacement is the one to rotate next.
  const rotatable = key.status === 'active' && !key.rotatedTo;
  return el(
    'div',
    { class: 'row-actions' },
    rotatable ? el('button', { type: 'button', 'data-action': 'rotate', 'data-id': key.id }, 'Rotate') : null,
    editable ? el('button', { type: 'button', 'data-action': 'edit', 'data-id': key.id }, 'Edit') : null,
    live ? el('button', { type: 'button', class: 'danger', 'data-action': 'revoke', 'data-id': key.id }, 'Revoke') : null,
  );
}

function renderKeys() {
  const rows = state.keys.map((key) =>
    el(
      'tr',
      { 'data-key-id': key.id, 'data-prefix': key.prefix, 'data-state': keyState(key), class: `status-${key.status}` },
      cell('Prefix', el('code', {}, key.prefix)),
      cell('Name', key.name),
      cell('Env', key.env ?? '—'),
      cell('Status', ...statusCell(key)),
      cell('Created', when(key.createdAt)),
      cell('Last used', when(key.lastUsedAt)),
      cell('Expires', expiryCell(key)),
      limitsCell(key),
      cell('Today', todayText(key)),
      cell('Actions', keyActions(key)),
    ),
  );
  byId('keys-body').replaceChildren(...rows);
  byId('keys-empty').hidden = rows.length > 0;
  byId('keys-table').hidden = rows.length === 0;
  showMore('keys');
}

byId('keys-refresh').addEventListener('click', () => run(loadKeys));
onLoadMore('keys', () => {
  state.keys = pages.keys.rows;
  renderKeys();
});

byId('create-key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  const fields = { name: String(data.get('name')).trim(), format: String(data.get('format')) };
  if (fields.format === 'ilal') fields.env = String(data.get('env'));
  const expiresAt = localInputToIso(String(data.get('expiresAt')));
  if (expiresAt) fields.expiresAt = expiresAt;
  run(async () => {
    const created = await api.createKey(fields);
    form.reset();
    form.elements.env.disabled = false;
    revealSecret(created, `Key “${created.name ?? fields.name}” created.`);
    await loadKeys();
  });
});

// Only ilal keys carry an environment: the choice is moot for ila.
byId('create-key-form').elements.format.addEventListener('change', (event) => {
  byId('create-key-form').elements.env.disabled = event.target.value !== 'ilal';
});

byId('keys-body').addEventListener('click', (event) => {
  const button = /** @type {HTMLElement} */ (event.target).closest('button[data-action]');
  if (!button) return;
  state.target = state.keys.find((key) => key.id === button.dataset.id) ?? null;
  if (!state.target) return;
  if (button.dataset.action === 'rotate') openRotate();
  if (button.dataset.action === 'revoke') openRevoke();
  if (button.dataset.action === 'edit') openEdit();
});

/** @param {HTMLDialogElement} dialog */
function open(dialog) {
  dialog.returnValue = '';
  dialog.showModal();
}

function openRotate() {
  byId('rotate-prefix').textContent = state.target.prefix;
  byId('rotate-form').reset();
  open(byId('rotate-dialog'));
}

byId('rotate-dialog').addEventListener('close', () => {
  const dialog = byId('rotate-dialog');
  if (dialog.returnValue !== 'confirm' || !state.target) return;
  const key = state.target;
  const grace = Number(new FormData(byId('rotate-form')).get('gracePeriodSeconds'));
  run(async () => {
    const rotated = await api.rotateKey(key.id, grace);
    const until = new Date(rotated.graceUntil).toLocaleString();
    revealSecret(
      rotated,
      grace > 0 ? `Key ${key.prefix} rotated; the old key works until ${until}.` : `Key ${key.prefix} rotated; the old key has stopped working.`,
    );
    await loadKeys();
  });
});

function openRevoke() {
  byId('revoke-prefix').textContent = state.target.prefix;
  open(byId('revoke-dialog'));
}

byId('revoke-dialog').addEventListener('close', () => {
  if (byId('revoke-dialog').returnValue !== 'confirm' || !state.target) return;
  const key = state.target;
  run(async () => {
    await api.revokeKey(key.id);
    await loadKeys();
    showStatus(`Key ${key.prefix} revoked.`);
  });
});

function openEdit() {
  const key = state.target;
  const form = byId('edit-form');
  byId('edit-prefix').textContent = key.prefix;
  form.elements.name.value = key.name;
  form.elements.status.value = key.status;
  form.elements.expiresAt.value = isoToLocalInput(key.expiresAt);
  form.elements.rateLimitPerMinute.value = key.rateLimitPerMinute ?? '';
  form.elements.rateLimitPerDay.value = key.rateLimitPerDay ?? '';
  // Admins choose the mode; an owner reads it (the API refuses it from them).
  form.elements.rateLimitMode.value = key.rateLimitMode ?? '';
  byId('edit-mode-text').textContent = RATE_LIMIT_MODE_LABELS[key.rateLimitMode ?? ''] ?? key.rateLimitMode;
  byId('edit-mode-view').hidden = isAdmin();
  form.elements.ipAllowlist.value = (key.ipAllowlist ?? []).join('\n');
  form.elements.scopes.value = (key.scopes ?? []).join(' ');
  form.elements.products.value = (key.products ?? []).join(' ');
  // An admin's deactivation or expiry binds the owner: say so before they try.
  const bound = [
    key.status === 'inactive' && setByAdmin(key, key.statusSetBy) ? 'An admin deactivated this key; only an admin can reactivate it.' : null,
    key.expiresAt && setByAdmin(key, key.expiresSetBy) ? 'An admin set this expiry; you can only move it earlier.' : null,
  ].filter(Boolean);
  byId('edit-decisions').textContent = isAdmin() ? '' : bound.join(' ');
  byId('edit-decisions').hidden = isAdmin() || bound.length === 0;
  open(byId('edit-dialog'));
}

/** Only the fields that changed, so a user's edit never touches admin-only settings. */
function editedFields(key, form) {
  const proposed = {
    name: form.elements.name.value.trim(),
    status: form.elements.status.value,
    expiresAt: localInputToIso(form.elements.expiresAt.value),
  };
  if (isAdmin()) {
    Object.assign(proposed, {
      rateLimitPerMinute: optionalNumber(form.elements.rateLimitPerMinute.value),
      rateLimitPerDay: optionalNumber(form.elements.rateLimitPerDay.value),
      rateLimitMode: form.elements.rateLimitMode.value || null,
      ipAllowlist: words(form.elements.ipAllowlist.value),
      scopes: words(form.elements.scopes.value),
      products: words(form.elements.products.value),
    });
  }
  // The form shows minutes; an untouched expiry must not be rewritten without its seconds.
  if (isoToLocalInput(key.expiresAt) === form.elements.expiresAt.value) delete proposed.expiresAt;
  return Object.fromEntries(Object.entries(proposed).filter(([name, value]) => JSON.stringify(value) !== JSON.stringify(key[name] ?? null)));
}

byId('edit-dialog').addEventListener('close', () => {
  if (byId('edit-dialog').returnValue !== 'confirm' || !state.target) return;
  const key = state.target;
  const fields = editedFields(key, byId('edit-form'));
  if (Object.keys(fields).length === 0) return;
  run(async () => {
    await api.updateKey(key.id, fields, key.version);
    await loadKeys();
    showStatus(`Key ${key.prefix} saved.`);
  });
});

// ---- the plaintext key, shown once ------------------------------------------

/**
 * Show a new key's plaintext until the dialog closes; then it is wiped from the
 * DOM and from memory. It is never logged or stored.
 */
function revealSecret(result, message) {
  byId('secret-value').textContent = result.key;
  // The dialog's text node is now the only holder of the plaintext.
  delete result.key;
  byId('secret-meta').textContent = message;
  byId('secret-copy').textContent = 'Copy';
  open(byId('secret-dialog'));
}

byId('secret-copy').addEventListener('click', async () => {
  const button = byId('secret-copy');
  try {
    await navigator.clipboard.writeText(byId('secret-value').textContent);
    button.textContent = 'Copied';
  } catch {
    // No clipboard permission: select the text so the user can copy it by hand.
    getSelection()?.selectAllChildren(byId('secret-value'));
    button.textContent = 'Select and copy by hand';
  }
});

function wipeSecret() {
  byId('secret-value').textContent = '';
  byId('secret-meta').textContent = '';
  getSelection()?.removeAllRanges();
}

// Wipe before closing: the close event comes a task later. Escape closes too.
byId('secret-done').addEventListener('click', () => {
  wipeSecret();
  byId('secret-dialog').close();
});
byId('secret-dialog').addEventListener('close', wipeSecret);

// ---- usage ------------------------------------------------------------------

/** The most keys one list page holds: names for the picker, in one request. */
const KEY_NAMES_PAGE = 200;

async function loadUsage() {
  // The stats name keys by id and prefix only; the key list adds names and states.
  const [usage, keyPage] = await Promise.all([api.usage(), api.listKeys(undefined, KEY_NAMES_PAGE).catch(() => null)]);
  const entries = listOf(usage, 'keys');
  state.usage = new Map(entries.map((entry) => [entry.id, entry]));
  const known = new Map([...state.keys, ...listOf(keyPage, 'keys')].map((key) => [key.id, key]));
  const now = Date.now();
  const select = byId('usage-key');
  const previous = select.value;
  select.replaceChildren(
    ...entries.map((entry) => {
      const key = known.get(entry.id);
      const shown = key ? keyState(key, now) : null;
      const label = key ? `${key.name} · ${entry.prefix} (${shown})` : entry.prefix;
      return el('option', { value: entry.id, 'data-state': shown ?? undefined }, label);
    }),
  );
  // Keep the choice across reloads; else the first key that works, not a revoked one showing zeros.
  const active = entries.find((entry) => known.has(entry.id) && keyState(known.get(entry.id), now) === 'active');
  if (entries.some((entry) => entry.id === previous)) select.value = previous;
  else if (active) select.value = active.id;
  byId('usage-empty').hidden = entries.length > 0;
  byId('usage-detail').hidden = entries.length === 0;
  renderUsage();
}

function renderUsage() {
  const entry = state.usage.get(byId('usage-key').value);
  if (!entry) return;
  renderMeter('minute', entry.minute, `resets in ${entry.minute.resetSeconds ?? '?'} s`);
  renderMeter('day', entry.day, 'resets at 00:00 UTC');
  byId('usage-chart').replaceChildren(usageChart(fillDays(entry.last30Days ?? [])));
  renderCredits(entry);
}

/** @param {"minute" | "day"} name @param {{limit: number, used: number, remaining: number}} window @param {string} note */
function renderMeter(name, window, note) {
  const meter = byId(`${name}-meter`);
  meter.max = window.limit;
  meter.high = window.limit * 0.8;
  meter.value = window.used;
  byId(`${name}-text`).textContent = `${window.used} of ${window.limit} used, ${window.remaining} left; ${note}`;
}

byId('usage-key').addEventListener('change', renderUsage);

// ---- credits (the selected key's balance; admins change it) --------------------

/** "every day (00:00 UTC)" or "every month on day 15 (UTC)". @param {{interval: string, dayOfMonth?: number}} refill */
function refillText(refill) {
  return refill.interval === 'month' ? `every month on day ${refill.dayOfMonth ?? 1} (UTC)` : 'every day (00:00 UTC)';
}

/** The balance, its refill and the credits used per day (stats' last30Days[].creditsUsed). */
function renderCredits(entry) {
  const credits = entry.credits ?? null;
  const meter = byId('credits-meter');
  meter.hidden = credits === null;
  byId('credits-remove').hidden = credits === null;
  const refill = byId('credits-refill');
  if (credits === null) {
    byId('credits-text').textContent = 'No credit balance: only rate limits apply.';
    refill.hidden = true;
  } else {
    // More is better: the optimum is a full balance, and at or below the low threshold is the warning region.
    meter.max = Math.max(credits.quota, 1);
    meter.optimum = meter.max;
    meter.high = meter.max;
    meter.low = credits.lowThreshold ?? 0;
    meter.value = Math.max(credits.balance, 0);
    const low = credits.lowThreshold === null ? '' : `; low at ${credits.lowThreshold}`;
    byId('credits-text').textContent = `${credits.balance} of ${credits.quota} credits left, ${credits.usedToday} used today${low}`;
    refill.replaceChildren(
      ...(credits.refill
        ? [`Refills to ${credits.refill.amount} ${refillText(credits.refill)}; next refill `, when(credits.nextRefillAt)]
        : ['No refill: only a top-up adds credits.']),
    );
    refill.hidden = false;
  }
  const days = (entry.last30Days ?? []).filter((day) => day.creditsUsed > 0);
  const used = byId('credits-used-text');
  used.textContent = `Credits used per UTC day: ${days.map((day) => `${day.date.slice(5)}: ${day.creditsUsed}`).join(', ')}`;
  used.hidden = days.length === 0;
  fillCreditsForm(credits);
}

/** The set form starts from the balance as it is, since a set replaces every field. */
function fillCreditsForm(credits) {
  const form = /** @type {HTMLFormElement} */ (byId('credits-set-form'));
  form.elements.balance.value = credits ? Math.max(credits.balance, 0) : '';
  form.elements.interval.value = credits?.refill?.interval ?? '';
  form.elements.refillAmount.value = credits?.refill?.amount ?? '';
  form.elements.dayOfMonth.value = credits?.refill?.dayOfMonth ?? '';
  form.elements.lowThreshold.value = credits?.lowThreshold ?? '';
  byId('credits-top-up-form').reset();
  refillFieldsFollowInterval();
}

/** Refill amount is needed with a refill; the day of month only for a monthly one. */
function refillFieldsFollowInterval() {
  const form = /** @type {HTMLFormElement} */ (byId('credits-set-form'));
  const interval = form.elements.interval.value;
  form.elements.refillAmount.disabled = interval === '';
  form.elements.refillAmount.required = interval !== '';
  form.elements.dayOfMonth.disabled = interval !== 'month';
}

byId('credits-set-form').elements.interval.addEventListener('change', refillFieldsFollowInterval);

/** An admin's change to the selected key's credits, then the usage re-read (a rotation's keys share the balance). */
function changeCredits(change, done) {
  const entry = state.usage.get(byId('usage-key').value);
  if (!entry) return;
  run(async () => {
    await change(entry.id);
    await loadUsage();
    showStatus(done(entry));
  });
}

byId('credits-set-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const interval = form.elements.interval.value;
  const dayOfMonth = optionalNumber(form.elements.dayOfMonth.value);
  const setting = {
    balance: Number(form.elements.balance.value),
    refill: interval === '' ? null : { amount: Number(form.elements.refillAmount.value), interval, ...(dayOfMonth === null ? {} : { dayOfMonth }) },
    lowThreshold: optionalNumber(form.elements.lowThreshold.value),
  };
  changeCredits(
    (id) => api.setKeyCredits(id, setting),
    (entry) => `Credits of ${entry.prefix} set to ${setting.balance}.`,
  );
});

byId('credits-top-up-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const amount = Number(/** @type {HTMLFormElement} */ (event.currentTarget).elements.amount.value);
  changeCredits(
    (id) => api.topUpKeyCredits(id, amount),
    (entry) => `Added ${amount} credits to ${entry.prefix}.`,
  );
});

byId('credits-remove').addEventListener('click', () =>
  changeCredits(
    (id) => api.removeKeyCredits(id),
    (entry) => `Credit balance of ${entry.prefix} removed: only rate limits apply.`,
  ),
);

// ---- admin: products, users, audit ------------------------------------------

async function loadProducts() {
  await pages.products.load();
  renderProducts();
}

function renderProducts() {
  byId('products-body').replaceChildren(
    ...pages.products.rows.map((product) =>
      el(
        'tr',
        { 'data-slug': product.slug },
        cell('Slug', el('code', {}, product.slug)),
        cell('Name', product.name),
        cell('Path prefix', el('code', {}, product.pathPrefix)),
        cell('Origin', product.originUrl),
        cell('Limits', `${product.rateLimitPerMinute ?? 'default'}/min · ${product.rateLimitPerDay ?? 'default'}/day · ${product.rateLimitMode ?? 'exact'}`),
        cell('Errors', product.errorFormat),
      ),
    ),
  );
  showMore('products');
}

onLoadMore('products', renderProducts);

byId('create-product-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  const fields = {
    slug: String(data.get('slug')).trim(),
    name: String(data.get('name')).trim(),
    pathPrefix: String(data.get('pathPrefix')).trim(),
    originUrl: String(data.get('originUrl')).trim(),
    errorFormat: String(data.get('errorFormat')),
    stripPrefix: data.get('stripPrefix') === 'on',
    rateLimitMode: String(data.get('rateLimitMode')),
  };
  const testOriginUrl = String(data.get('testOriginUrl')).trim();
  if (testOriginUrl) fields.testOriginUrl = testOriginUrl;
  for (const name of ['rateLimitPerMinute', 'rateLimitPerDay']) {
    const value = optionalNumber(String(data.get(name)));
    if (value !== null) fields[name] = value;
  }
  run(async () => {
    const product = await api.createProduct(fields);
    form.reset();
    await loadProducts();
    showStatus(`Product ${product.slug} created at ${product.pathPrefix}.`);
  });
});

async function loadUsers() {
  await pages.users.load();
  renderUsers();
}

function renderUsers() {
  byId('users-body').replaceChildren(
    ...pages.users.rows.map((user) =>
      el(
        'tr',
        { 'data-email': user.email },
        cell('Email', user.email),
        cell('Role', el('span', { class: `badge ${user.role}` }, user.role)),
        cell('Products', (user.products ?? []).join(' ')),
        cell('Scopes', (user.scopes ?? []).join(' ')),
        cell('Owner limits', ownerLimitsText(user)),
        cell('Created', when(user.createdAt)),
        cell('Actions', el('button', { type: 'button', class: 'link', 'data-action': 'owner-limits', 'data-id': user.id }, 'Edit limits')),
      ),
    ),
  );
  showMore('users');
}

/** "10/min · 500/day · 3 keys", or "none". */
function ownerLimitsText(user) {
  const parts = [
    user.rateLimitPerMinute == null ? null : `${user.rateLimitPerMinute}/min`,
    user.rateLimitPerDay == null ? null : `${user.rateLimitPerDay}/day`,
    user.maxActiveKeys == null ? null : `${user.maxActiveKeys} keys`,
  ].filter(Boolean);
  return parts.length ? parts.join(' · ') : 'none';
}

/** @type {any} */
let limitsTarget = null;

byId('users-body').addEventListener('click', (event) => {
  const button = /** @type {HTMLElement} */ (event.target).closest('button[data-action=owner-limits]');
  if (!button) return;
  limitsTarget = pages.users.rows.find((user) => user.id === button.dataset.id) ?? null;
  if (!limitsTarget) return;
  const form = /** @type {HTMLFormElement} */ (byId('owner-limits-form'));
  byId('owner-limits-email').textContent = limitsTarget.email;
  for (const name of ['rateLimitPerMinute', 'rateLimitPerDay', 'maxActiveKeys']) form.elements[name].value = limitsTarget[name] ?? '';
  open(byId('owner-limits-dialog'));
});

byId('owner-limits-dialog').addEventListener('close', () => {
  if (byId('owner-limits-dialog').returnValue !== 'confirm' || !limitsTarget) return;
  const user = limitsTarget;
  const form = /** @type {HTMLFormElement} */ (byId('owner-limits-form'));
  const fields = Object.fromEntries(
    ['rateLimitPerMinute', 'rateLimitPerDay', 'maxActiveKeys'].map((name) => [name, optionalNumber(form.elements[name].value)]),
  );
  run(async () => {
    const updated = await api.updateUser(user.id, fields);
    await loadUsers();
    showStatus(`Owner limits of ${updated.email}: ${ownerLimitsText(updated)}.`);
  });
});

onLoadMore('users', renderUsers);

byId('create-user-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const data = new FormData(form);
  const fields = { email: String(data.get('email')).trim(), password: String(data.get('password')), role: String(data.get('role')) };
  run(async () => {
    const user = await api.createUser(fields);
    form.reset();
    await loadUsers();
    showStatus(`User ${user.email} created.`);
  });
});

/** An audit entry's changed fields as "name: value" pairs. */
function detailsText(details) {
  if (!details || typeof details !== 'object') return details ? String(details) : '';
  return Object.entries(details)
    .map(([name, value]) => `${name}: ${typeof value === 'object' ? JSON.stringify(value) : value}`)
    .join(', ');
}

/** "user:<id>" as that user's email when known; other actors as they are. */
function actorName(actor, emails) {
  const [kind, id] = actor.split(/:(.*)/s);
  return (kind === 'user' && emails.get(id)) || actor;
}

/** Actors' emails: the first 200 users (the most a page holds); others show as their id. */
let actorEmails = new Map();

async function loadAudit() {
  const [, users] = await Promise.all([pages.audit.load(), api.listUsers(undefined, 200)]);
  actorEmails = new Map(listOf(users, 'users').map((user) => [user.id, user.email]));
  renderAudit();
}

function renderAudit() {
  const emails = actorEmails;
  byId('audit-body').replaceChildren(
    ...pages.audit.rows.map((entry) =>
      el(
        'tr',
        { 'data-action': entry.action, 'data-entry-id': entry.id },
        cell('When', when(entry.at)),
        cell('Who', el('span', { title: entry.actor }, actorName(entry.actor, emails))),
        cell('Action', el('code', {}, entry.action)),
        cell('Target', `${entry.targetType} ${entry.targetId}`),
        cell('Details', detailsText(entry.details)),
      ),
    ),
  );
  showMore('audit');
}

onLoadMore('audit', renderAudit);

byId('audit-refresh').addEventListener('click', () => run(loadAudit));

showSignedIn();
