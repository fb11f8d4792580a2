// The pages: overview, the keys / teams / users lists and a detail page for each row.
// Each page function resolves to {title, crumbs, actions, body}; app.js puts it on screen.

import * as api from "./api.js";
import { gauge, hbars, stackedBars, usageBar } from "./charts.js";
import { h } from "./dom.js";
import { dateTime, durationName, num, pct, relative, shortDate, usd } from "./format.js";
import { dataTable } from "./table.js";
import {
  badge, card, chips, closeModal, confirmDialog, definitionList, durationSelect, field, fill, levelBadge,
  moneyInput, modalFrame, openModal, readMoney, segmented, stat, toast,
} from "./widgets.js";

const enc = encodeURIComponent;
const DAYS = 30;

/** Charts are drawn at their box's real width, so their text is not scaled. */
const widthOf = (el, fallback) => el.clientWidth || fallback;

// -- overview ------------------------------------------------------------------------------

export async function overview() {
  const [o, alerts] = await Promise.all([
    api.get("/ui/api/overview"),
    api.get("/alerts", { limit: 6 }).catch(() => ({ alerts: [] })),
  ]);
  const g = o.global;
  const periodSub = g.period_start
    ? `since ${shortDate(g.period_start)} · resets ${relative(g.budget_reset_at)}`
    : "all time (the global budget has no period)";
  const stats = h("div", { class: "stats" },
    stat("Spend this period", usd(o.period.spend), periodSub),
    stat("Spend today", usd(o.today.spend), `${num(o.today.calls)} calls today (UTC)`),
    stat("Blocked calls", num(o.period.blocked), `${num(o.today.blocked)} today`, o.period.blocked ? "warn" : null),
    stat("Unpriced calls", num(o.period.unpriced),
      o.period.unpriced ? "no known price: see pricing: in the config" : "every call priced", o.period.unpriced ? "warn" : null),
    stat("Unmetered calls", num(o.period.unmetered),
      o.period.unmetered ? "endpoints spendgate cannot price: cost unknown" : "every call metered", o.period.unmetered ? "warn" : null),
    stat("Usage anomalies", num(o.period.anomalous),
      o.period.anomalous ? "impossible usage reported: clamped, see the calls" : "no impossible usage reported",
      o.period.anomalous ? "danger" : null));

  const budget = card("Global budget", { subtitle: g.max_budget !== null ? durationName(g.budget_duration) : null },
    g.max_budget !== null
      ? h("div", { class: "gauge-box" }, gauge(g.spend, g.max_budget, g.soft_budget),
        definitionList([
          ["Max budget", usd(g.max_budget)],
          ["Soft budget", usd(g.soft_budget)],
          ["Remaining", usd(g.max_budget - g.spend)],
          ["Resets", g.budget_reset_at ? h("span", { title: dateTime(g.budget_reset_at) }, relative(g.budget_reset_at)) : "never"],
        ]))
      : h("div", { class: "placeholder" }, h("p", {}, "No global budget is set."),
        h("p", { class: "muted small" }, "Set litellm_settings.max_budget and budget_duration in the config."),
        h("p", { class: "big" }, usd(g.spend)), h("p", { class: "muted small" }, "spent so far")));

  const spendSlot = h("div", { class: "chart-slot" });
  const loadSpend = (by) => fill(spendSlot, async () => stackedBars(await api.get("/ui/api/daily", { by, days: DAYS }), { width: widthOf(spendSlot, 700) }));
  loadSpend("model");
  const spendCard = card(`Spend per day`, {
    subtitle: `Last ${DAYS} days, UTC`, className: "span-2",
    actions: segmented([["model", "Model"], ["team", "Team"], ["provider", "Provider"], ["client", "Client"]], "model", loadSpend),
  }, spendSlot);

  const topSlot = h("div", { class: "chart-slot" });
  const loadTop = (by) => fill(topSlot, async () => {
    const top = await api.get("/ui/api/top", { by, days: DAYS, limit: 8 });
    const base = { key: "#/keys/", team: "#/teams/", user: "#/users/" }[by];
    return hbars(top.items.map((i) => ({
      name: i.name, value: i.spend, note: `${num(i.calls)} calls`,
      href: base && !i.id.startsWith("(") ? base + enc(i.id) : null,
    })), { width: widthOf(topSlot, 520) });
  });
  loadTop("key");
  const topCard = card("Top spenders", {
    subtitle: `Last ${DAYS} days`,
    actions: segmented([["key", "Keys"], ["team", "Teams"], ["user", "Users"], ["model", "Models"]], "key", loadTop),
  }, topSlot);

  const alertsCard = card("Recent alerts", { subtitle: "Alerts raised and how their delivery went" }, alertList(alerts.alerts || []));

  const counts = h("div", { class: "counts" },
    h("a", { href: "#/keys" }, h("strong", {}, num(o.counts.keys)), " keys"),
    h("a", { href: "#/teams" }, h("strong", {}, num(o.counts.teams)), " teams"),
    h("a", { href: "#/users" }, h("strong", {}, num(o.counts.users)), " users"));

  return {
    title: "Overview",
    actions: [counts],
    body: h("div", { class: "page" }, stats, h("div", { class: "grid-3" }, budget, spendCard),
      h("div", { class: "grid-2" }, topCard, clientsCard({})), alertsCard),
  };
}

const EVENTS = {
  budget_alert: "threshold", soft_budget_alert: "soft budget", projected_spend_alert: "projected", budget_exceeded: "exceeded",
  usage_anomaly: "usage anomaly",
};

function alertList(alerts) {
  if (!alerts.length) return h("div", { class: "chart-empty" }, "No alerts yet.");
  return h("ul", { class: "alerts" }, alerts.map((a) => {
    const fraction = a.percentage;
    const tone = (fraction !== null && fraction >= 1) || a.event === "usage_anomaly" ? "danger" : "warn";
    return h("li", { class: "alert-item" },
      h("div", { class: "alert-main" },
        badge(a.event === "budget_alert" && a.threshold ? `${pct(a.threshold)} reached` : EVENTS[a.event] || a.event, tone),
        h("span", { class: "alert-label" }, `${a.scope || "key"} ${a.label || a.key_alias || a.key}`),
        h("span", { class: "muted small" }, a.max_budget !== null ? `${usd(a.spend)} of ${usd(a.max_budget)} (${pct(fraction)})` : usd(a.spend))),
      h("div", { class: "alert-side" },
        (a.deliveries || []).map((d) => badge(d.channel, { sent: "ok", failed: "danger", dropped: "danger" }[d.status] || "neutral", `${d.channel}: ${d.status}`)),
        h("span", { class: "muted small", title: dateTime(a.timestamp) }, relative(a.timestamp))));
  }));
}

// -- lists ---------------------------------------------------------------------------------

const money = (key) => ({ key, align: "right", value: (r) => r[key], render: (r) => usd(r[key]) });
const budget = {
  key: "max_budget", label: "Budget", align: "right", value: (r) => r.max_budget,
  render: (r) => (r.max_budget === null && r.soft_budget === null
    ? h("span", { class: "muted" }, "—")
    : h("div", { class: "name-cell right" }, h("span", {}, usd(r.max_budget)),
      h("span", { class: "sub" }, r.soft_budget !== null ? `soft ${usd(r.soft_budget)}` : "no soft budget"))),
};
const owner = (aliases) => ({
  key: "team", label: "Team / user", value: (r) => (aliases[r.team_id] || r.team_id || "") + (r.user_id || ""),
  render: (r) => (r.team_id || r.user_id
    ? h("div", { class: "name-cell" }, h("span", {}, aliases[r.team_id] || r.team_id || "no team"), r.user_id ? h("span", { class: "sub" }, r.user_id) : null)
    : h("span", { class: "muted" }, "—")),
});
const usage = {
  key: "usage", label: "Used", className: "col-usage",
  value: (r) => (r.max_budget ? r.spend / r.max_budget : null),
  render: (r) => usageBar(r.spend, r.max_budget, r.soft_budget),
};
const resets = {
  key: "resets", label: "Resets", value: (r) => r.budget_reset_at,
  render: (r) => (r.budget_reset_at ? h("span", { title: dateTime(r.budget_reset_at) }, relative(r.budget_reset_at)) : h("span", { class: "muted" }, "never")),
};
const budgetFilters = [
  { id: "all", label: "All", test: () => true },
  { id: "budgeted", label: "With budget", test: (r) => r.max_budget !== null },
  { id: "hot", label: "Over 80%", test: (r) => r.max_budget !== null && r.spend >= 0.8 * r.max_budget },
];

async function teamAliases() {
  const teams = await api.get("/spend/teams", { include_unbudgeted: true });
  return Object.fromEntries(teams.map((t) => [t.team_id, t.team_alias || t.team_id]));
}

export async function keys() {
  const [rows, aliases] = await Promise.all([api.get("/spend/keys", { include_unbudgeted: true }), teamAliases()]);
  const table = dataTable({
    rows, label: "keys", href: (r) => `#/keys/${enc(r.token)}`, sort: { key: "spend", dir: "desc" },
    search: (r) => [r.key_alias, r.key, r.team_id, aliases[r.team_id], r.user_id, ...(r.models || [])].join(" "),
    filters: [...budgetFilters, { id: "blocked", label: "Blocked", test: (r) => r.blocked }],
    empty: "No keys yet. Create one, or send traffic through the proxy with a provider key.",
    columns: [
      { key: "key", label: "Key", value: (r) => (r.key_alias || r.key).toLowerCase(),
        render: (r) => h("div", { class: "name-cell" }, h("span", { class: "name" }, r.key_alias || r.key), r.key_alias ? h("code", { class: "sub" }, r.key) : null) },
      owner(aliases),
      { ...money("spend"), label: "Spend" },
      budget,
      usage,
      resets,
      { key: "models", label: "Models", render: (r) => chips(r.models) },
      { key: "status", label: "Status", value: (r) => (r.blocked ? 1 : 0),
        render: (r) => (r.blocked ? badge("blocked", "danger") : r.provider_key ? badge("provider key", "neutral") : badge("active", "ok")) },
    ],
  });
  return {
    title: "Keys",
    actions: [h("button", { type: "button", class: "btn primary", id: "create-key", onclick: () => createKeyDialog() }, "+ Create key")],
    body: h("div", { class: "page" }, table),
  };
}

export async function teams() {
  const rows = await api.get("/spend/teams", { include_unbudgeted: true });
  const table = dataTable({
    rows, label: "teams", href: (r) => `#/teams/${enc(r.team_id)}`, sort: { key: "spend", dir: "desc" },
    search: (r) => [r.team_alias, r.team_id, ...(r.models || [])].join(" "),
    filters: [...budgetFilters, { id: "blocked", label: "Blocked", test: (r) => r.blocked }],
    empty: "No teams yet. Create them with POST /team/new.",
    columns: [
      { key: "team", label: "Team", value: (r) => (r.team_alias || r.team_id).toLowerCase(),
        render: (r) => h("div", { class: "name-cell" }, h("span", { class: "name" }, r.team_alias || r.team_id), h("code", { class: "sub" }, r.team_id)) },
      { key: "members", label: "Members", align: "right", value: (r) => (r.members || []).length, render: (r) => num((r.members || []).length) },
      { ...money("spend"), label: "Spend" },
      budget,
      usage,
      resets,
      { key: "models", label: "Models", render: (r) => chips(r.models) },
      { key: "status", label: "Status", value: (r) => (r.blocked ? 1 : 0), render: (r) => (r.blocked ? badge("blocked", "danger") : badge("active", "ok")) },
    ],
  });
  return { title: "Teams", body: h("div", { class: "page" }, table) };
}

export async function users() {
  const [rows, aliases] = await Promise.all([api.get("/spend/users", { include_unbudgeted: true }), teamAliases()]);
  const table = dataTable({
    rows, label: "users", href: (r) => `#/users/${enc(r.user_id)}`, sort: { key: "spend", dir: "desc" },
    search: (r) => [r.user_id, r.user_email, r.team_id, aliases[r.team_id]].join(" "),
    filters: budgetFilters,
    empty: "No users yet. Create them with POST /user/new, or let proxy authentication name them.",
    columns: [
      { key: "user", label: "User", value: (r) => r.user_id.toLowerCase(),
        render: (r) => h("div", { class: "name-cell" }, h("span", { class: "name" }, r.user_id), r.user_email && r.user_email !== r.user_id ? h("span", { class: "sub" }, r.user_email) : null) },
      { key: "team", label: "Team", value: (r) => aliases[r.team_id] || r.team_id, render: (r) => aliases[r.team_id] || r.team_id || h("span", { class: "muted" }, "—") },
      { ...money("spend"), label: "Spend" },
      budget,
      usage,
      resets,
    ],
  });
  return { title: "Users", body: h("div", { class: "page" }, table) };
}

// -- detail pages --------------------------------------------------------------------------

function budgetCard(item, save, reset) {
  const form = h("form", { class: "budget-form", dataset: { form: "budget" } },
    h("div", { class: "form-row" },
      field("Max budget (USD)", moneyInput("max_budget", item.max_budget)),
      field("Soft budget (USD)", moneyInput("soft_budget", item.soft_budget, "No alert")),
      field("Resets", durationSelect(item.budget_duration))),
    h("p", { class: "form-error", role: "alert" }),
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "btn primary" }, "Save budget"),
      h("button", { type: "button", class: "btn", dataset: { action: "reset" }, onclick: reset }, "Reset spend")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = form.querySelector(".form-error");
    error.textContent = "";
    try {
      await save({
        max_budget: readMoney(form, "max_budget"),
        soft_budget: readMoney(form, "soft_budget"),
        budget_duration: form.elements.budget_duration.value || null,
      });
      toast("Budget saved.");
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    } catch (err) {
      error.textContent = err.message;
    }
  });
  const figures = item.max_budget !== null
    ? h("div", { class: "gauge-box" }, gauge(item.spend, item.max_budget, item.soft_budget),
      definitionList([
        ["Spend this period", usd(item.spend)],
        ["Remaining", usd(item.max_budget - item.spend)],
        ["Resets", item.budget_reset_at ? h("span", { title: dateTime(item.budget_reset_at) }, relative(item.budget_reset_at)) : "never"],
      ]))
    : h("div", { class: "placeholder" }, h("p", { class: "big" }, usd(item.spend)), h("p", { class: "muted small" }, "spent, no budget set"));
  return card("Budget", { subtitle: durationName(item.budget_duration) }, figures, form);
}

function dailyCard(filter) {
  const slot = h("div", { class: "chart-slot" });
  const load = (by) => fill(slot, async () => stackedBars(await api.get("/ui/api/daily", { ...filter, by, days: DAYS }), { width: widthOf(slot, 1000) }));
  load("model");
  const options = [["model", "Model"], filter.key ? null : ["key", "Key"], ["provider", "Provider"], ["client", "Client"]].filter(Boolean);
  return card("Spend per day", { subtitle: `Last ${DAYS} days, UTC`, actions: segmented(options, "model", load) }, slot);
}

/** Spend by client application (Claude Code, Codex, an SDK, curl...), of everything or of one key, team or user. */
function clientsCard(filter) {
  const slot = h("div", { class: "chart-slot", dataset: { chart: "clients" } });
  fill(slot, async () => {
    const top = await api.get("/ui/api/top", { ...filter, by: "client", days: DAYS, limit: 8 });
    return hbars(top.items.map((i) => ({ name: i.name, value: i.spend, note: `${num(i.calls)} calls` })),
      { width: widthOf(slot, 520), emptyText: "No priced calls yet." });
  });
  return card("Spend by client", { subtitle: `Last ${DAYS} days, by the application that made the calls` }, slot);
}

function callsCard(filter) {
  const slot = h("div");
  fill(slot, async () => {
    const { calls } = await api.get("/ui/api/calls", { ...filter, limit: 100 });
    return dataTable({
      rows: calls, label: "calls", pageSize: 10, sort: { key: "ts", dir: "desc" },
      search: (c) => [c.model, c.provider, c.endpoint, c.status, c.error, c.key, c.user_id, c.client].join(" "),
      empty: "No calls yet.",
      columns: [
        { key: "ts", label: "Time", value: (c) => c.ts, render: (c) => h("span", { title: dateTime(c.ts) }, relative(c.ts)) },
        { key: "model", label: "Model", value: (c) => c.model, render: (c) => h("div", { class: "name-cell" }, h("span", {}, c.model || "—"), h("span", { class: "sub" }, `${c.provider} · ${c.endpoint}${c.streamed ? " · stream" : ""}`)) },
        !filter.key ? { key: "key", label: "Key", value: (c) => c.key, render: (c) => c.key || "—" } : null,
        { key: "client", label: "Client", value: (c) => c.client, render: (c) => c.client || h("span", { class: "muted" }, "—") },
        { key: "in", label: "Input", align: "right", value: (c) => c.input_tokens, render: (c) => num(c.input_tokens) },
        { key: "out", label: "Output", align: "right", value: (c) => c.output_tokens, render: (c) => num(c.output_tokens) },
        { key: "cost", label: "Cost", align: "right", value: (c) => c.cost, render: (c) => (c.cost === null ? badge("unpriced", "warn") : usd(c.cost)) },
        { key: "status", label: "Status", value: (c) => c.status,
          render: (c) => h("span", { class: "badges" }, statusBadge(c), c.anomaly ? anomalyBadge(c.anomaly) : null) },
        { key: "latency", label: "Latency", align: "right", value: (c) => c.latency_ms, render: (c) => (c.latency_ms === null ? "—" : `${Math.round(c.latency_ms)} ms`) },
      ].filter(Boolean),
    });
  });
  return card("Recent calls", { subtitle: "Newest first, from the ledger" }, slot);
}

/** Reported figures spendgate did not believe: the badge's title lists them as reported. */
function anomalyBadge(anomaly) {
  const figures = Object.entries(anomaly).map(([name, value]) => `${name} reported ${num(value)}`).join(", ");
  return badge("anomaly", "danger", `Clamped: ${figures}`);
}

function statusBadge(c) {
  if (c.status === "blocked") return badge(`blocked · ${c.error || "refused"}`, "danger", c.error);
  if (c.status === "ok") return badge("ok", "ok");
  return badge(c.status, "warn", c.error);
}

async function resetSpend(what, path, body) {
  if (!(await confirmDialog("Reset spend?", `This starts a new budget period for ${what} with spend $0. The ledger keeps every call.`, "Reset spend", "danger"))) return;
  await api.post(path, { ...body, spend: 0 });
  toast(`Spend of ${what} reset.`);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

/** The body every detail page shares: budget and details, spend per day and by client, recent calls. */
function detailBody(item, save, reset, details, filter) {
  return h("div", { class: "page" },
    h("div", { class: "grid-2" }, budgetCard(item, save, reset), details),
    dailyCard(filter), clientsCard(filter), callsCard(filter));
}

// Keys and teams can be blocked; their pages differ only in what they say and where they post.
const BLOCKABLE = {
  key: {
    crumbs: [["Keys", "#/keys"]], update: "/key/update", ident: (token) => ({ key: token }),
    blocking: (name) => `Calls with ${name} will be refused until it is unblocked.`,
    unblocking: (name) => `${name} will be able to make calls again.`,
    async load(token) {
      const [k, aliases] = await Promise.all([api.get("/key/info", { key: token }), teamAliases()]);
      return { item: k, name: k.key_alias || k.key, facts: [
        ["Key", h("code", {}, k.key)],
        ["Token", h("code", { class: "small", title: k.token }, `${k.token.slice(0, 16)}…`)],
        ["Alias", k.key_alias],
        ["Type", k.provider_key ? "provider key (seen in traffic)" : "virtual key"],
        ["Team", k.team_id ? h("a", { href: `#/teams/${enc(k.team_id)}` }, aliases[k.team_id] || k.team_id) : null],
        ["User", k.user_id ? h("a", { href: `#/users/${enc(k.user_id)}` }, k.user_id) : null],
        ["Models", chips(k.models)],
        ["Status", k.blocked ? badge("blocked", "danger") : badge("active", "ok")],
        ["Expires", k.expires ? dateTime(k.expires) : "never"],
        ["Created", dateTime(k.created_at)],
      ] };
    },
  },
  team: {
    crumbs: [["Teams", "#/teams"]], update: "/team/update", ident: (teamId) => ({ team_id: teamId }),
    blocking: (name) => `Every key of ${name} will be refused until the team is unblocked.`,
    unblocking: (name) => `${name}'s keys will work again.`,
    async load(teamId) {
      const t = await api.get("/team/info", { team_id: teamId });
      return { item: t, name: t.team_alias || t.team_id, facts: [
        ["Team id", h("code", {}, t.team_id)],
        ["Alias", t.team_alias],
        ["Members", (t.members || []).length ? h("span", { class: "links" }, t.members.map((m) => h("a", { href: `#/users/${enc(m)}` }, m))) : null],
        ["Keys", (t.keys || []).length ? h("span", { class: "links" }, t.keys.map((k) => h("a", { href: `#/keys/${enc(k.token)}` }, k.key_alias || k.key))) : null],
        ["Models", chips(t.models)],
        ["Status", t.blocked ? badge("blocked", "danger") : badge("active", "ok")],
        ["Created", dateTime(t.created_at)],
      ] };
    },
  },
};

async function blockableDetail(kind, id) {
  const spec = BLOCKABLE[kind];
  const { item, name, facts } = await spec.load(id);
  const noun = kind[0].toUpperCase() + kind.slice(1);
  const setBlocked = async (blocked) => {
    if (!(await confirmDialog(blocked ? `Block this ${kind}?` : `Unblock this ${kind}?`,
      blocked ? spec.blocking(name) : spec.unblocking(name),
      `${blocked ? "Block" : "Unblock"} ${kind}`, blocked ? "danger" : "primary"))) return;
    await api.post(spec.update, { ...spec.ident(id), blocked });
    toast(`${noun} ${blocked ? "blocked" : "unblocked"}.`);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  };
  const reset = () => resetSpend(name, spec.update, spec.ident(id));
  const save = (b) => api.post(spec.update, { ...spec.ident(id), ...b });
  return {
    title: name,
    crumbs: spec.crumbs,
    badges: [item.blocked ? badge("blocked", "danger") : null, levelBadge(item.spend, item.max_budget, item.soft_budget)],
    actions: [
      h("button", { type: "button", class: "btn", dataset: { action: "reset-spend" }, onclick: reset }, "Reset spend"),
      item.blocked
        ? h("button", { type: "button", class: "btn primary", dataset: { action: "unblock" }, onclick: () => setBlocked(false) }, `Unblock ${kind}`)
        : h("button", { type: "button", class: "btn danger", dataset: { action: "block" }, onclick: () => setBlocked(true) }, `Block ${kind}`),
    ],
    body: detailBody(item, save, reset, card("Details", {}, definitionList(facts)), { [kind]: id }),
  };
}

export const keyDetail = (token) => blockableDetail("key", token);
export const teamDetail = (teamId) => blockableDetail("team", teamId);

export async function userDetail(userId) {
  const u = await api.get("/user/info", { user_id: userId });
  const reset = () => resetSpend(userId, "/user/update", { user_id: userId });
  const details = card("Details", {}, definitionList([
    ["User id", h("code", {}, u.user_id)],
    ["Email", u.user_email],
    ["Teams", (u.teams || []).length ? h("span", { class: "links" }, u.teams.map((t) => h("a", { href: `#/teams/${enc(t.team_id)}` }, t.team_alias || t.team_id))) : null],
    ["Keys", (u.keys || []).length ? h("span", { class: "links" }, u.keys.map((k) => h("a", { href: `#/keys/${enc(k.token)}` }, k.key_alias || k.key))) : null],
    ["Created", dateTime(u.created_at)],
  ]));
  return {
    title: userId,
    crumbs: [["Users", "#/users"]],
    badges: [levelBadge(u.spend, u.max_budget, u.soft_budget)],
    actions: [h("button", { type: "button", class: "btn", dataset: { action: "reset-spend" }, onclick: reset }, "Reset spend")],
    body: detailBody(u, (b) => api.post("/user/update", { user_id: userId, ...b }), reset, details, { user: userId }),
  };
}

// -- create a key --------------------------------------------------------------------------

export async function createKeyDialog() {
  const teamsList = await api.get("/spend/teams", { include_unbudgeted: true }).catch(() => []);
  const form = h("form", { class: "stack", id: "create-key-form" },
    field("Alias", h("input", { name: "key_alias", placeholder: "e.g. production-chatbot", autocomplete: "off" }), "Unique; shown instead of the masked key."),
    h("div", { class: "form-row" },
      field("Team", h("select", { name: "team_id" }, h("option", { value: "" }, "No team"),
        teamsList.map((t) => h("option", { value: t.team_id }, t.team_alias || t.team_id)))),
      field("User", h("input", { name: "user_id", placeholder: "e.g. john@example.com", autocomplete: "off" }))),
    field("Models", h("input", { name: "models", placeholder: "gpt-4o, claude-sonnet-4-5", autocomplete: "off" }), "Comma-separated. Empty: every model."),
    h("div", { class: "form-row" },
      field("Max budget (USD)", moneyInput("max_budget", null)),
      field("Soft budget (USD)", moneyInput("soft_budget", null, "No alert")),
      field("Resets", durationSelect("30d"))),
    h("p", { class: "form-error", role: "alert" }));
  const submit = h("button", { type: "submit", class: "btn primary", form: "create-key-form" }, "Create key");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const error = form.querySelector(".form-error");
    error.textContent = "";
    const value = (n) => form.elements[n].value.trim() || undefined;
    const models = (form.elements.models.value || "").split(",").map((m) => m.trim()).filter(Boolean);
    const body = {
      key_alias: value("key_alias"), team_id: value("team_id"), user_id: value("user_id"),
      models: models.length ? models : undefined,
      max_budget: readMoney(form, "max_budget") ?? undefined,
      soft_budget: readMoney(form, "soft_budget") ?? undefined,
      budget_duration: value("budget_duration"),
    };
    submit.disabled = true;
    try {
      const created = await api.post("/key/generate", body);
      showNewKey(created);
    } catch (err) {
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });
  openModal(modalFrame("Create a virtual key", form, [h("button", { type: "button", class: "btn", onclick: closeModal }, "Cancel"), submit]));
  form.elements.key_alias.focus();
}

function showNewKey(created) {
  const input = h("input", { class: "secret", readOnly: true, value: created.key, id: "new-key", "aria-label": "The new key" });
  const copy = h("button", { type: "button", class: "btn", onclick: async () => {
    input.select();
    try { await navigator.clipboard.writeText(created.key); toast("Key copied."); } catch (e) { document.execCommand("copy"); }
  } }, "Copy");
  openModal(modalFrame("Your new key", h("div", { class: "stack" },
    h("p", { class: "notice" }, "Copy this key now. spendgate keeps only its hash: it will not be shown again."),
    h("div", { class: "copy-row" }, input, copy),
    definitionList([["Alias", created.key_alias], ["Max budget", usd(created.max_budget)], ["Resets", durationName(created.budget_duration)]])),
  [h("button", { type: "button", class: "btn primary", onclick: () => { closeModal(); location.hash = `#/keys/${enc(created.token)}`; } }, "Done")]));
  input.select();
}
