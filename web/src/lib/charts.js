// Small inline-SVG charts for the admin console (no library, no CDN): bars, stacked bars, lines with an
// optional target line. Each mark carries data-series / data-label / data-value and a <title> tooltip, so the
// page (and its tests) can read the figures back from the drawing.

const NS = 'http://www.w3.org/2000/svg';
export const COLORS = ['#0b5cad', '#c62828', '#2e7d32', '#b26a00', '#6a1b9a', '#00838f'];

function s(tag, attrs = {}, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) e.setAttribute(k, String(v));
  for (const c of children) if (c != null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const title = (text) => s('title', {}, text);

/** A "nice" upper bound and tick step for values up to `max` (1, 2, 2.5, 5 × 10^n). */
function niceScale(max, ticks = 4, integer = false) {
  if (integer && max < ticks) return { top: ticks, step: 1 }; // counts: no fractional ticks
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((m) => m >= raw && (!integer || Number.isInteger(m)));
  return { top: Math.ceil(max / step) * step, step };
}

function frame(svg, opts) {
  const [, , W, H] = (svg.getAttribute('viewBox') || '0 0 640 240').split(/\s+/).map(Number);
  // Keep the chart's accessible <title> (first child), redraw the rest.
  for (const c of [...svg.childNodes]) if (!(c.nodeName === 'title' && c === svg.firstElementChild)) c.remove();
  const pad = { l: 48, r: 24, t: 12, b: opts.rotate ? 46 : 30 };
  return { W, H, pad, w: W - pad.l - pad.r, h: H - pad.t - pad.b };
}

function yAxis(svg, f, top, step, fmt) {
  const g = s('g', { class: 'axis y' });
  for (let v = 0; v <= top + step / 1e6; v += step) {
    const y = f.pad.t + f.h - (v / top) * f.h;
    g.append(s('line', { x1: f.pad.l, x2: f.pad.l + f.w, y1: y, y2: y, class: 'grid' }),
      s('text', { x: f.pad.l - 6, y: y + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  svg.append(g);
}

function xAxis(svg, f, labels, at, rotate) {
  const g = s('g', { class: 'axis x' });
  const every = Math.max(1, Math.ceil(labels.length / Math.max(1, Math.floor(f.w / (rotate ? 22 : 56)))));
  labels.forEach((lab, i) => {
    if (i % every) return;
    const x = at(i);
    const y = f.pad.t + f.h + 16;
    g.append(s('text', rotate ? { x, y, 'text-anchor': 'end', transform: `rotate(-35 ${x} ${y})` }
      : { x, y, 'text-anchor': 'middle' }, lab));
  });
  g.append(s('line', { x1: f.pad.l, x2: f.pad.l + f.w, y1: f.pad.t + f.h, y2: f.pad.t + f.h, class: 'base' }));
  svg.append(g);
}

/** Bars, side by side or stacked. `data`: {labels: [...], series: [{key, label, values: [...], color}]};
 *  `opts`: {stacked, integer (counts: whole ticks), format(v) for ticks and tooltips, rotate (x labels),
 *  empty (text when all zero)}. */
export function bars(svg, data, opts = {}) {
  const fmt = opts.format || ((v) => String(Math.round(v * 100) / 100));
  const f = frame(svg, opts);
  const n = data.labels.length;
  const series = data.series.map((x, i) => ({ color: COLORS[i % COLORS.length], ...x }));
  const sums = data.labels.map((_, i) => series.reduce((a, x) => a + (x.values[i] || 0), 0));
  const max = opts.stacked ? Math.max(0, ...sums) : Math.max(0, ...series.flatMap((x) => x.values.map((v) => v || 0)));
  const { top, step } = niceScale(max, 4, opts.integer);
  yAxis(svg, f, top, step, fmt);
  const slot = f.w / Math.max(1, n);
  const barW = Math.max(2, slot * 0.7 / (opts.stacked ? 1 : series.length));
  const g = s('g', { class: 'marks' });
  for (let i = 0; i < n; i += 1) {
    let base = 0;
    series.forEach((x, k) => {
      const v = x.values[i] || 0;
      const hgt = (v / top) * f.h;
      const xPos = f.pad.l + slot * i + slot * 0.15 + (opts.stacked ? 0 : k * barW);
      const y = f.pad.t + f.h - ((base + v) / top) * f.h;
      g.append(s('rect', { x: xPos.toFixed(1), y: y.toFixed(1), width: barW.toFixed(1), height: Math.max(0, hgt).toFixed(1),
        fill: x.color, class: 'col', 'data-series': x.key, 'data-label': data.labels[i], 'data-value': v },
      title(`${data.labels[i]} · ${x.label}: ${fmt(v)}`)));
      if (opts.stacked) base += v;
    });
  }
  svg.append(g);
  xAxis(svg, f, data.labels, (i) => f.pad.l + slot * i + slot / 2, opts.rotate);
  if (max === 0 && opts.empty) {
    svg.append(s('text', { x: f.pad.l + f.w / 2, y: f.pad.t + f.h / 2, 'text-anchor': 'middle', class: 'empty' }, opts.empty));
  }
  return series;
}

/** Lines (gaps where a value is null) with dots, and an optional dashed target line.
 *  `opts`: {max (fixed top, e.g. 1 for rates), format, target: {value, label}, rotate}. */
export function lines(svg, data, opts = {}) {
  const fmt = opts.format || ((v) => String(Math.round(v * 100) / 100));
  const f = frame(svg, opts);
  const n = data.labels.length;
  const series = data.series.map((x, i) => ({ color: COLORS[i % COLORS.length], ...x }));
  const seen = Math.max(0, ...series.flatMap((x) => x.values.filter((v) => v != null)));
  const { top, step } = opts.max ? { top: opts.max, step: opts.max / 4 } : niceScale(seen);
  yAxis(svg, f, top, step, fmt);
  const at = (i) => f.pad.l + (n <= 1 ? f.w / 2 : (f.w * i) / (n - 1));
  const yOf = (v) => f.pad.t + f.h - (Math.min(v, top) / top) * f.h;
  if (opts.target && opts.target.value != null) {
    const y = yOf(opts.target.value);
    svg.append(s('line', { x1: f.pad.l, x2: f.pad.l + f.w, y1: y, y2: y, class: 'target', 'data-value': opts.target.value },
      title(`${opts.target.label}: ${fmt(opts.target.value)}`)));
  }
  const g = s('g', { class: 'marks' });
  for (const x of series) {
    let d = '';
    let pen = false;
    x.values.forEach((v, i) => {
      if (v == null) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${at(i).toFixed(1)},${yOf(v).toFixed(1)}`;
      pen = true;
    });
    if (d) g.append(s('path', { d, fill: 'none', stroke: x.color, 'stroke-width': 2, class: 'line', 'data-series': x.key }));
    x.values.forEach((v, i) => {
      if (v == null) return;
      g.append(s('circle', { cx: at(i).toFixed(1), cy: yOf(v).toFixed(1), r: 3, fill: x.color, class: 'pt',
        'data-series': x.key, 'data-label': data.labels[i], 'data-value': v },
      title(`${data.labels[i]} · ${x.label}: ${fmt(v)}`)));
    });
  }
  svg.append(g);
  xAxis(svg, f, data.labels, at, opts.rotate);
  return series;
}

/** A legend of coloured keys into `box` (an HTML element). */
export function legend(box, series, extra = []) {
  box.replaceChildren();
  for (const x of [...series, ...extra]) {
    const item = document.createElement('span');
    item.className = 'key';
    const sw = document.createElement('i');
    sw.style.background = x.color;
    if (x.dashed) sw.className = 'dashed';
    item.append(sw, x.label);
    box.append(item);
  }
}
