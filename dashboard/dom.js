// Small DOM helpers. Server data only ever enters the page as text nodes or
// attribute values, never as HTML.

/** @param {string} id @returns {any} */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return node;
}

/**
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined>} [attributes]
 * @param {...(Node | string | number | null | undefined)} children
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A table cell that names its column, for the stacked phone layout. */
export function cell(label, ...children) {
  return el('td', { 'data-label': label }, ...children);
}

/** "2026-05-03 14:22" in the viewer's time zone inside a <time>, or a dash. @param {string | null | undefined} iso */
export function when(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n) => String(n).padStart(2, '0');
  const text = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return el('time', { datetime: iso, title: iso }, text);
}

/** A datetime-local input's value as ISO 8601, or null when empty. @param {string} value */
export function localInputToIso(value) {
  return value ? new Date(value).toISOString() : null;
}

/** An ISO time as a datetime-local input value (local time, minutes). @param {string | null} iso */
export function isoToLocalInput(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Words separated by spaces, commas or new lines. @param {string} text */
export function words(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

/** A number input's value, or null when left empty (= inherit). @param {string} value */
export function optionalNumber(value) {
  return value === '' ? null : Number(value);
}
