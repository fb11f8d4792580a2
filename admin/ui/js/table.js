// A sortable, filterable, paginated table for lists of keys, teams, users and calls.

import { clear, h } from "./dom.js";
import { num } from "./format.js";

/**
 * columns: [{key, label, value(row) → sort value, render(row) → node|text, align, className}]
 * search(row) → text the filter box matches; filters: [{id, label, test(row)}]
 * href(row) → where a click on the row goes
 */
export function dataTable({ columns, rows, search, filters = [], href, pageSize = 25, sort, empty = "Nothing here yet.", label = "rows" }) {
  const state = { text: "", filter: filters.length ? filters[0].id : null, sort: sort || null, page: 0 };
  const body = h("tbody");
  const head = h("thead");
  const info = h("span", { class: "table-info" });
  const pager = h("div", { class: "pager" });

  const input = h("input", {
    type: "search", class: "search", placeholder: "Filter…", "aria-label": "Filter",
    oninput: (e) => { state.text = e.target.value.trim().toLowerCase(); state.page = 0; render(); },
  });
  const chips = filters.length > 1 ? h("div", { class: "segmented", role: "group" }, filters.map((f) =>
    h("button", { type: "button", class: "seg", dataset: { filter: f.id }, onclick: () => { state.filter = f.id; state.page = 0; render(); } }, f.label))) : null;

  function visible() {
    const filter = filters.find((f) => f.id === state.filter);
    let out = rows.filter((r) => (!filter || filter.test(r)) && (!state.text || search(r).toLowerCase().includes(state.text)));
    if (state.sort) {
      const col = columns.find((c) => c.key === state.sort.key);
      const dir = state.sort.dir === "asc" ? 1 : -1;
      out = [...out].sort((a, b) => {
        const va = col.value(a), vb = col.value(b);
        if (va === vb) return 0;
        if (va === null || va === undefined) return 1; // blanks last either way
        if (vb === null || vb === undefined) return -1;
        return (va < vb ? -1 : 1) * dir;
      });
    }
    return out;
  }

  function renderHead() {
    clear(head).append(h("tr", {}, columns.map((c) => {
      const sorted = state.sort && state.sort.key === c.key;
      const th = h("th", {
        class: [c.align === "right" && "right", c.value && "sortable", sorted && "sorted", c.className],
        "aria-sort": sorted ? (state.sort.dir === "asc" ? "ascending" : "descending") : null,
        scope: "col",
      }, c.label, c.value ? h("span", { class: "sort-mark", "aria-hidden": "true" }, sorted ? (state.sort.dir === "asc" ? "▲" : "▼") : "↕") : null);
      if (c.value) {
        th.addEventListener("click", () => {
          const dir = sorted && state.sort.dir === "desc" ? "asc" : sorted ? "desc" : (c.align === "right" ? "desc" : "asc");
          state.sort = { key: c.key, dir };
          render();
        });
      }
      return th;
    })));
  }

  function render() {
    renderHead();
    for (const b of chips ? chips.children : []) b.classList.toggle("active", b.dataset.filter === state.filter);
    const all = visible();
    const pages = Math.max(1, Math.ceil(all.length / pageSize));
    state.page = Math.min(state.page, pages - 1);
    const slice = all.slice(state.page * pageSize, (state.page + 1) * pageSize);
    clear(body);
    if (!slice.length) {
      body.append(h("tr", { class: "empty-row" }, h("td", { colspan: columns.length }, rows.length ? "No matches." : empty)));
    }
    for (const row of slice) {
      const target = href ? href(row) : null;
      const tr = h("tr", { class: target ? "clickable" : null }, columns.map((c) =>
        h("td", { class: [c.align === "right" && "right", c.className] }, c.render ? c.render(row) : c.value(row))));
      if (target) {
        tr.addEventListener("click", (e) => { if (!e.target.closest("a,button")) location.hash = target; });
        tr.tabIndex = 0;
        tr.addEventListener("keydown", (e) => { if (e.key === "Enter") location.hash = target; });
      }
      body.append(tr);
    }
    info.textContent = all.length === rows.length ? `${num(rows.length)} ${label}` : `${num(all.length)} of ${num(rows.length)} ${label}`;
    clear(pager);
    if (pages > 1) {
      pager.append(
        h("button", { type: "button", class: "btn small", disabled: state.page === 0, onclick: () => { state.page--; render(); } }, "‹ Prev"),
        h("span", { class: "muted small" }, `Page ${state.page + 1} of ${pages}`),
        h("button", { type: "button", class: "btn small", disabled: state.page >= pages - 1, onclick: () => { state.page++; render(); } }, "Next ›"));
    }
  }

  render();
  return h("div", { class: "table-card" },
    h("div", { class: "table-toolbar" }, input, chips, info),
    h("div", { class: "table-scroll" }, h("table", { class: "table" }, head, body)),
    pager);
}
