// Money, percentages and times as people read them.

const whole = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 });
const count = new Intl.NumberFormat("en-US");

/** $1,234.56 — amounts under a dollar keep four decimals ($0.0145) so small budgets read true. */
export function usd(value) {
  if (value === null || value === undefined) return "—";
  if (value !== 0 && Math.abs(value) < 1) return `${value < 0 ? "-" : ""}$${Math.abs(value).toFixed(4)}`;
  return whole.format(value);
}

/** Short axis labels: $0, $0.05, $12, $1.2k */
export function usdShort(value) {
  if (value === 0) return "$0";
  if (value >= 1000) return `$${(value / 1000).toFixed(value >= 10000 ? 0 : 1)}k`;
  if (value >= 10) return `$${value.toFixed(0)}`;
  if (value >= 1) return `$${value.toFixed(1)}`;
  if (value >= 0.01) return `$${value.toFixed(2)}`;
  return `$${value.toPrecision(1)}`;
}

export function num(value) {
  return value === null || value === undefined ? "—" : count.format(value);
}

export function pct(fraction) {
  if (fraction === null || fraction === undefined || !isFinite(fraction)) return "—";
  const p = fraction * 100;
  return `${p >= 10 || p === 0 ? p.toFixed(0) : p.toFixed(1)}%`;
}

export function parseTime(value) {
  return value ? new Date(value) : null;
}

export function dateTime(value) {
  const d = parseTime(value);
  if (!d) return "—";
  return d.toLocaleString("en-GB", { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: "UTC" }) + " UTC";
}

export function shortDate(value) {
  const d = parseTime(value);
  return d ? d.toLocaleDateString("en-GB", { month: "short", day: "numeric", timeZone: "UTC" }) : "—";
}

/** "in 3 d", "5 min ago" */
export function relative(value, now = new Date()) {
  const d = parseTime(value);
  if (!d) return "—";
  const seconds = (d - now) / 1000;
  const abs = Math.abs(seconds);
  let text;
  if (abs < 60) text = `${Math.round(abs)} s`;
  else if (abs < 3600) text = `${Math.round(abs / 60)} min`;
  else if (abs < 86400 * 2) text = `${Math.round(abs / 3600)} h`;
  else text = `${Math.round(abs / 86400)} d`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

export function durationName(value) {
  if (!value) return "never";
  const m = /^(\d+)(s|m|h|d|w|mo)$/.exec(value);
  if (!m) return value;
  const n = Number(m[1]);
  const unit = { s: "second", m: "minute", h: "hour", d: "day", w: "week", mo: "month" }[m[2]];
  return n === 1 ? `every ${unit}` : `every ${n} ${unit}s`;
}
