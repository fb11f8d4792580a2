// Hand-written SVG charts: a stacked bar chart over days, horizontal bars for rankings,
// and a half-ring gauge for a budget. No library, nothing fetched at run time.

import { h, svg } from "./dom.js";
import { pct, shortDate, usd, usdShort } from "./format.js";

export const PALETTE = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ec4899", "#8b5cf6", "#14b8a6"];
export const OTHER_COLOR = "#cbd5e1";

export function colorFor(index, name) {
  return name === "other" ? OTHER_COLOR : PALETTE[index % PALETTE.length];
}

/** Round axis steps: 1, 2, 2.5, 5 × 10^n, about `count` of them up to `max`. */
export function niceTicks(max, count = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function empty(message) {
  return h("div", { class: "chart-empty" }, message);
}

/** Spend per day, one stacked bar per day. data = {days: ["YYYY-MM-DD"], series: [{name, values}]} */
export function stackedBars(data, { width = 760, height = 250, emptyText = "No spend in this window yet." } = {}) {
  const days = data.days;
  const series = data.series;
  const totals = days.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const max = Math.max(0, ...totals);
  if (!(max > 0)) return empty(emptyText);
  const W = Math.max(360, width), H = height, left = 58, right = 10, top = 10, bottom = 26;
  const plotW = W - left - right, plotH = H - top - bottom;
  const ticks = niceTicks(max);
  const yMax = ticks[ticks.length - 1];
  const y = (v) => top + plotH - (v / yMax) * plotH;
  const slot = plotW / days.length;
  const barW = Math.max(2, Math.min(34, slot * 0.66));
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Spend per day" });
  for (const t of ticks) {
    root.append(svg("line", { class: "grid", x1: left, x2: W - right, y1: y(t), y2: y(t) }));
    root.append(svg("text", { class: "axis", x: left - 8, y: y(t) + 4, "text-anchor": "end" }, usdShort(t)));
  }
  const every = Math.ceil(days.length / Math.max(3, Math.floor(plotW / 64)));
  days.forEach((day, i) => {
    const x = left + slot * i + (slot - barW) / 2;
    let base = 0;
    series.forEach((s, si) => {
      const v = s.values[i] || 0;
      if (v <= 0) return;
      const y0 = y(base), y1 = y(base + v);
      root.append(svg("rect", { class: "bar", x, y: y1, width: barW, height: Math.max(0.5, y0 - y1), fill: colorFor(si, s.name), rx: 1.5 },
        svg("title", {}, `${shortDate(day)} · ${s.name}: ${usd(v)}`)));
      base += v;
    });
    if (totals[i] > 0) {
      root.append(svg("rect", { class: "hit", x: left + slot * i, y: top, width: slot, height: plotH, fill: "transparent" },
        svg("title", {}, `${shortDate(day)}: ${usd(totals[i])}`)));
    }
    if ((days.length - 1 - i) % every === 0) {
      root.append(svg("text", { class: "axis", x: left + slot * i + slot / 2, y: H - 6, "text-anchor": "middle" }, shortDate(day)));
    }
  });
  root.append(svg("line", { class: "baseline", x1: left, x2: W - right, y1: y(0), y2: y(0) }));
  return h("div", { class: "chart-wrap" }, root, legend(series));
}

export function legend(series) {
  return h("div", { class: "legend" },
    series.map((s, i) => h("span", { class: "legend-item" },
      svg("svg", { width: 10, height: 10, viewBox: "0 0 10 10", "aria-hidden": "true" }, svg("rect", { width: 10, height: 10, rx: 2.5, fill: colorFor(i, s.name) })),
      s.name)));
}

/** Ranked horizontal bars. items = [{name, value, note?, href?}] */
export function hbars(items, { width = 560, format = usd, emptyText = "Nothing to rank yet." } = {}) {
  if (!items.length) return empty(emptyText);
  const W = Math.max(320, width), row = 30, labelW = Math.min(200, W * 0.34), valueW = 90;
  const H = items.length * row + 4;
  const max = Math.max(...items.map((i) => i.value)) || 1;
  const barMax = W - labelW - valueW - 16;
  const root = svg("svg", { class: "chart hbars", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Top spenders" });
  items.forEach((item, i) => {
    const yTop = i * row + 4;
    const chars = Math.floor(labelW / 7.2);
    const name = item.name.length > chars ? `${item.name.slice(0, chars - 1)}…` : item.name;
    const group = svg("g", { class: item.href ? "hrow link" : "hrow" });
    group.append(svg("text", { class: "hlabel", x: labelW - 12, y: yTop + 17, "text-anchor": "end" }, name));
    group.append(svg("rect", { class: "track", x: labelW, y: yTop + 5, width: barMax, height: 16, rx: 4 }));
    group.append(svg("rect", { class: "bar", x: labelW, y: yTop + 5, width: Math.max(2, (item.value / max) * barMax), height: 16, rx: 4, fill: PALETTE[0] }));
    group.append(svg("text", { class: "hvalue", x: W - 4, y: yTop + 17, "text-anchor": "end" }, format(item.value)));
    group.append(svg("title", {}, `${item.name}: ${format(item.value)}${item.note ? ` · ${item.note}` : ""}`));
    if (item.href) group.addEventListener("click", () => { location.hash = item.href; });
    root.append(group);
  });
  return root;
}

function polar(cx, cy, r, angle) {
  return [cx + r * Math.cos(angle), cy - r * Math.sin(angle)];
}

function arc(cx, cy, r, from, to) {
  const [x0, y0] = polar(cx, cy, r, Math.PI * (1 - from));
  const [x1, y1] = polar(cx, cy, r, Math.PI * (1 - to));
  return `M ${x0.toFixed(2)} ${y0.toFixed(2)} A ${r} ${r} 0 0 1 ${x1.toFixed(2)} ${y1.toFixed(2)}`;
}

export function level(spend, max, soft) {
  if (max === null || max === undefined) return "none";
  if (spend >= max) return "over";
  if ((soft !== null && soft !== undefined && spend >= soft) || spend >= 0.8 * max) return "warn";
  return "ok";
}

/** A half-ring gauge of spend against a budget, with the soft budget marked. */
export function gauge(spend, max, soft) {
  const W = 240, H = 140, cx = 120, cy = 122, r = 96;
  const root = svg("svg", { class: "gauge", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${pct(spend / max)} of the budget spent` });
  const fraction = Math.min(1, Math.max(0, spend / max));
  root.append(svg("path", { class: "gauge-track", d: arc(cx, cy, r, 0, 1) }));
  if (fraction > 0) root.append(svg("path", { class: `gauge-value ${level(spend, max, soft)}`, d: arc(cx, cy, r, 0, Math.max(fraction, 0.005)) }));
  if (soft !== null && soft !== undefined && soft < max) {
    const f = soft / max;
    const [x0, y0] = polar(cx, cy, r - 14, Math.PI * (1 - f));
    const [x1, y1] = polar(cx, cy, r + 14, Math.PI * (1 - f));
    root.append(svg("line", { class: "gauge-soft", x1: x0, y1: y0, x2: x1, y2: y1 }, svg("title", {}, `Soft budget ${usd(soft)}`)));
  }
  root.append(svg("text", { class: "gauge-pct", x: cx, y: cy - 22, "text-anchor": "middle" }, pct(spend / max)));
  root.append(svg("text", { class: "gauge-sub", x: cx, y: cy, "text-anchor": "middle" }, `${usd(spend)} of ${usd(max)}`));
  return root;
}

/** The small bar in a table cell: spend as a share of max, coloured by level. */
export function usageBar(spend, max, soft) {
  if (max === null || max === undefined) return h("span", { class: "muted small" }, "no budget");
  const fraction = max > 0 ? spend / max : 1;
  return h("div", { class: "usage", title: `${usd(spend)} of ${usd(max)}` },
    h("div", { class: "usage-track" },
      h("div", { class: `usage-fill ${level(spend, max, soft)}`, style: { width: `${Math.min(100, fraction * 100).toFixed(1)}%` } })),
    h("span", { class: "usage-pct" }, pct(fraction)));
}
