// Hand-drawn SVG charts: a sparkline for tables and a line chart with axes.
// Time is epoch seconds; series are per-minute points [[t, v], ...].

import { h, s, fmtNumber, shortShard } from './ui.js';

export const PALETTE = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d', '#dc2626'];

/** One colour per shard, the same in the shard map and in every chart. */
export function shardColor(shardId) {
  const n = Number(shortShard(shardId));
  return PALETTE[(Number.isFinite(n) ? n : 0) % PALETTE.length];
}

/** One value per minute from `from` to `to`; missing minutes are `gap` (0 for counts, null for gauges). */
export function perMinute(points, from, to, gap = 0) {
  const byMinute = new Map(points.map(([t, v]) => [Math.floor(t / 60) * 60, v]));
  const out = [];
  for (let t = from; t < to; t += 60) out.push([t, byMinute.has(t) ? byMinute.get(t) : gap]);
  return out;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function pathOf(points, x, y) {
  let d = '';
  let pen = false;
  for (const [t, v] of points) {
    if (v === null || v === undefined) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  }
  return d;
}

/** A 120×28 sparkline of per-minute counts with the total as data-total. */
export function sparkline(points, from, to, { width = 120, height = 28, color = PALETTE[0] } = {}) {
  const pts = perMinute(points, from, to);
  const total = pts.reduce((a, [, v]) => a + v, 0);
  const max = Math.max(1, ...pts.map(([, v]) => v));
  const x = (t) => ((t - from) / Math.max(60, to - 60 - from)) * (width - 2) + 1;
  const y = (v) => height - 2 - (v / max) * (height - 4);
  const line = pathOf(pts, x, y);
  const area = `${line}L${x(to - 60).toFixed(1)},${height - 1}L${x(from).toFixed(1)},${height - 1}Z`;
  return s(
    'svg',
    {
      class: 'sparkline',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      'data-total': total,
      role: 'img',
      'aria-label': `${total} records in the last hour`,
    },
    s('title', {}, `${fmtNumber(total)} records in the last hour (peak ${fmtNumber(max)}/min)`),
    s('path', { d: area, fill: color, 'fill-opacity': 0.15, stroke: 'none' }),
    s('path', { d: line, fill: 'none', stroke: color, 'stroke-width': 1.5, 'stroke-linejoin': 'round' }),
  );
}

/**
 * A line chart over [from, to): series [{label, points, color?}], `gap` as in perMinute,
 * `format` for the y axis. Returns a <figure> with the SVG and a legend.
 */
export function lineChart({ title, series, from, to, gap = 0, format = fmtNumber, testid, empty = 'no data yet' }) {
  const W = 560;
  const H = 180;
  const L = 48;
  const R = 10;
  const T = 10;
  const B = 22;
  const filled = series.map((sr, i) => ({
    ...sr,
    color: sr.color || PALETTE[i % PALETTE.length],
    pts: perMinute(sr.points, from, to, gap),
  }));
  const values = filled.flatMap((sr) => sr.pts.map(([, v]) => v)).filter((v) => v !== null);
  const total = values.reduce((a, v) => a + v, 0);
  const max = niceMax(Math.max(0, ...values));
  const x = (t) => L + ((t - from) / Math.max(60, to - 60 - from)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title });
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    svg.append(
      s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, format(v)),
    );
  }
  const minutes = Math.round((to - from) / 60);
  for (const [t, label, anchor] of [
    [from, `-${minutes} min`, 'start'],
    [from + (to - from) / 2 - 30, `-${Math.round(minutes / 2)} min`, 'middle'],
    [to - 60, 'now', 'end'],
  ]) {
    svg.append(s('text', { x: x(t), y: H - 6, 'text-anchor': anchor, class: 'axis' }, label));
  }
  for (const sr of filled) {
    svg.append(
      s('path', {
        d: pathOf(sr.pts, x, y),
        fill: 'none',
        stroke: sr.color,
        'stroke-width': 2,
        'stroke-linejoin': 'round',
        'stroke-linecap': 'round',
      }),
    );
    // A dot on each real point, so a single minute of data is visible.
    for (const [t, v] of sr.pts) {
      if (v !== null && v !== 0) svg.append(s('circle', { cx: x(t), cy: y(v), r: 2.2, fill: sr.color }));
    }
  }
  // Counts: nothing to show until one is non-zero. Gauges: any point is data.
  if (gap === null ? !values.length : !values.some((v) => v > 0)) {
    svg.append(s('text', { x: (L + W - R) / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, empty));
  }
  const legend = h(
    'div',
    { class: 'legend' },
    filled.map((sr) => {
      const last = [...sr.pts].reverse().find(([, v]) => v !== null);
      return h('span', {}, h('i', { style: `background:${sr.color}` }), sr.label, ' ', h('b', {}, last ? format(last[1]) : '–'));
    }),
  );
  return h(
    'figure',
    { class: 'chart-box', 'data-testid': testid, 'data-total': total },
    h('figcaption', {}, title),
    svg,
    legend,
  );
}
