// The 30-day usage chart: an inline SVG whose bar heights are SVG attributes,
// so the strict CSP (no inline styles) has nothing to block.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 900;
const HEIGHT = 220;
const PLOT_TOP = 12;
const PLOT_BOTTOM = 190;
const AXIS_LEFT = 48;
export const CHART_DAYS = 30;

/** @param {string} name @param {Record<string, string | number>} attributes */
function svg(name, attributes = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

/** YYYY-MM-DD of a UTC day. @param {Date} day */
function isoDay(day) {
  return day.toISOString().slice(0, 10);
}

/**
 * The last `CHART_DAYS` UTC days ending today, oldest first, each with its
 * count (0 for days the API did not list).
 * @param {{date: string, count: number}[]} series @param {Date} now
 */
export function fillDays(series, now = new Date()) {
  const counts = new Map(series.map((point) => [point.date.slice(0, 10), point.count]));
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Array.from({ length: CHART_DAYS }, (_, index) => {
    const date = isoDay(new Date(today - (CHART_DAYS - 1 - index) * 86_400_000));
    return { date, count: counts.get(date) ?? 0 };
  });
}

/** A round axis maximum at or above `max`: 1, 2, 5 × 10^n. @param {number} max */
function niceCeiling(max) {
  if (max <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((step) => step * magnitude).find((value) => value >= max) ?? max;
}

/** @param {{date: string, count: number}[]} days oldest first @returns {SVGSVGElement} */
export function usageChart(days) {
  const top = niceCeiling(Math.max(0, ...days.map((day) => day.count)));
  const plotHeight = PLOT_BOTTOM - PLOT_TOP;
  const slot = (WIDTH - AXIS_LEFT) / days.length;
  const total = days.reduce((sum, day) => sum + day.count, 0);

  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', class: 'bars' });
  const label = svg('title');
  label.textContent = `Calls per day over the last ${days.length} days: ${total} in total`;
  chart.append(label);

  // A middle grid line only when it falls on a whole number of calls.
  const levels = top % 2 === 0 ? [top, top / 2, 0] : [top, 0];
  for (const value of levels) {
    const y = PLOT_BOTTOM - (value / top) * plotHeight;
    chart.append(svg('line', { x1: AXIS_LEFT, x2: WIDTH, y1: y, y2: y, class: 'grid' }));
    const tick = svg('text', { x: AXIS_LEFT - 6, y: y + 4, class: 'tick', 'text-anchor': 'end' });
    tick.textContent = String(value);
    chart.append(tick);
  }

  days.forEach((day, index) => {
    const height = (day.count / top) * plotHeight;
    const bar = svg('rect', {
      x: (AXIS_LEFT + index * slot + slot * 0.15).toFixed(1),
      y: (PLOT_BOTTOM - height).toFixed(1),
      width: (slot * 0.7).toFixed(1),
      height: height.toFixed(1),
      class: 'bar',
      'data-date': day.date,
      'data-count': day.count,
    });
    const tip = svg('title');
    tip.textContent = `${day.date}: ${day.count} call${day.count === 1 ? '' : 's'}`;
    bar.append(tip);
    chart.append(bar);
  });

  // First, middle and last day under the bars, anchored so none is cut off.
  const labels = [
    [0, 'start'],
    [Math.floor(days.length / 2), 'middle'],
    [days.length - 1, 'end'],
  ];
  for (const [index, anchor] of labels) {
    const day = days[index];
    if (!day) continue;
    const x = anchor === 'start' ? AXIS_LEFT + index * slot : anchor === 'end' ? AXIS_LEFT + (index + 1) * slot : AXIS_LEFT + (index + 0.5) * slot;
    const text = svg('text', { x: x.toFixed(1), y: HEIGHT - 6, class: 'tick', 'text-anchor': anchor });
    text.textContent = day.date.slice(5);
    chart.append(text);
  }
  return chart;
}
