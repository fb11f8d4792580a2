// Small building blocks shared by the pages: cards, stats, badges, toggles, dialogs, toasts.

import { clear, h } from "./dom.js";
import { level } from "./charts.js";

export function card(title, { actions = null, className = null, subtitle = null } = {}, ...body) {
  return h("section", { class: ["card", className] },
    title ? h("header", { class: "card-head" },
      h("div", {}, h("h2", {}, title), subtitle ? h("p", { class: "card-sub" }, subtitle) : null),
      actions ? h("div", { class: "card-actions" }, actions) : null) : null,
    h("div", { class: "card-body" }, body));
}

export function stat(label, value, sub, tone = null) {
  return h("div", { class: ["stat", tone && `tone-${tone}`] },
    h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value" }, value),
    sub ? h("div", { class: "stat-sub" }, sub) : null);
}

export function badge(text, tone = "neutral", title = null) {
  return h("span", { class: `badge ${tone}`, title }, text);
}

export function levelBadge(spend, max, soft) {
  const l = level(spend, max, soft);
  return { none: null, ok: null, warn: badge("near limit", "warn"), over: badge("over budget", "danger") }[l];
}

/** A row of toggle buttons; calls onChange(id) and marks the chosen one. */
export function segmented(options, current, onChange) {
  const root = h("div", { class: "segmented", role: "group" });
  const mark = (id) => { for (const b of root.children) b.classList.toggle("active", b.dataset.id === id); };
  for (const [id, label] of options) {
    root.append(h("button", { type: "button", class: "seg", dataset: { id }, onclick: () => { mark(id); onChange(id); } }, label));
  }
  mark(current);
  return root;
}

/** Replace `slot`'s content with what `load()` resolves to, showing a spinner meanwhile. */
export async function fill(slot, load) {
  clear(slot).append(spinner());
  try {
    const node = await load();
    clear(slot).append(node);
  } catch (e) {
    clear(slot).append(errorBox(e));
  }
}

export function spinner() {
  return h("div", { class: "loading" }, h("span", { class: "spin" }), "Loading…");
}

export function errorBox(e) {
  return h("div", { class: "error-box", role: "alert" }, h("strong", {}, "Could not load this. "), e.message || String(e));
}

export function definitionList(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "—")]));
}

export function chips(values, emptyText = "all models") {
  if (!values || !values.length) return h("span", { class: "muted small" }, emptyText);
  const shown = values.slice(0, 2).map((v) => h("span", { class: "chip" }, v));
  if (values.length > 2) shown.push(h("span", { class: "chip more", title: values.slice(2).join(", ") }, `+${values.length - 2}`));
  return h("span", { class: "chips" }, shown);
}

// -- dialogs and toasts -------------------------------------------------------------------

const modal = () => document.getElementById("modal");

export function openModal(content) {
  const dialog = modal();
  clear(dialog).append(content);
  if (!dialog.open) dialog.showModal();
  return () => dialog.close();
}

export function closeModal() {
  const dialog = modal();
  if (dialog.open) dialog.close();
}

export function modalFrame(title, body, footer) {
  return h("div", { class: "modal-frame" },
    h("header", { class: "modal-head" }, h("h2", {}, title),
      h("button", { type: "button", class: "icon-btn", "aria-label": "Close", onclick: closeModal }, "×")),
    h("div", { class: "modal-body" }, body),
    footer ? h("footer", { class: "modal-foot" }, footer) : null);
}

/** Resolves true when the admin confirms. */
export function confirmDialog(title, text, confirmLabel, tone = "primary") {
  return new Promise((resolve) => {
    let answered = false;
    const done = (value) => { if (!answered) { answered = true; closeModal(); resolve(value); } };
    openModal(modalFrame(title, h("p", {}, text), [
      h("button", { type: "button", class: "btn", onclick: () => done(false) }, "Cancel"),
      h("button", { type: "button", class: `btn ${tone}`, dataset: { confirm: "" }, onclick: () => done(true) }, confirmLabel),
    ]));
    modal().addEventListener("close", () => done(false), { once: true });
  });
}

let toastTimer = null;
export function toast(message, tone = "ok") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = `toast show ${tone}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = "toast"; }, 3500);
}

export function field(label, input, hint = null) {
  return h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", { class: "hint" }, hint) : null);
}

export const DURATIONS = [["", "Never resets"], ["1d", "Daily"], ["7d", "Weekly"], ["30d", "Every 30 days"], ["1mo", "Monthly"]];

export function durationSelect(current) {
  const options = [...DURATIONS];
  if (current && !options.some(([v]) => v === current)) options.push([current, `Every ${current}`]);
  return h("select", { name: "budget_duration" }, options.map(([v, label]) => h("option", { value: v, selected: v === (current || "") }, label)));
}

/** A money input: empty means "no budget". */
export function moneyInput(name, value, placeholder = "No limit") {
  return h("input", { type: "number", name, min: "0", step: "any", inputmode: "decimal", placeholder, value: value ?? "" });
}

export function readMoney(form, name) {
  const raw = form.elements[name].value.trim();
  return raw === "" ? null : Number(raw);
}
