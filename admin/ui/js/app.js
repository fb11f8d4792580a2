// The admin console: login, routing between pages, the frame around them.

import * as api from "./api.js";
import { $, append, clear, h } from "./dom.js";
import * as pages from "./pages.js";
import { closeModal, errorBox, spinner } from "./widgets.js";

const routes = [
  [/^#\/overview$/, "overview", () => pages.overview()],
  [/^#\/keys$/, "keys", () => pages.keys()],
  [/^#\/keys\/(.+)$/, "keys", (id) => pages.keyDetail(id)],
  [/^#\/teams$/, "teams", () => pages.teams()],
  [/^#\/teams\/(.+)$/, "teams", (id) => pages.teamDetail(id)],
  [/^#\/users$/, "users", () => pages.users()],
  [/^#\/users\/(.+)$/, "users", (id) => pages.userDetail(id)],
];

let generation = 0; // a slow page must not overwrite a newer one

async function route() {
  const hash = location.hash || "#/overview";
  const match = routes.map(([re, nav, page]) => [re.exec(hash), nav, page]).find(([m]) => m);
  if (!match) {
    location.hash = "#/overview";
    return;
  }
  const [m, nav, page] = match;
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === nav);
  const mine = ++generation;
  closeModal(); // a dialog belongs to the page it was opened on
  const view = $("#view");
  view.setAttribute("aria-busy", "true");
  if (!view.firstChild) view.append(spinner());
  let result;
  try {
    result = await page(...m.slice(1).map(decodeURIComponent));
  } catch (e) {
    if (e.status === 401) return;
    result = { title: "Something went wrong", body: errorBox(e) };
  }
  if (mine !== generation) return;
  $("#page-title").textContent = result.title;
  const title = $("#page-title");
  for (const b of result.badges || []) if (b) title.append(" ", b);
  const crumbs = clear($("#crumbs"));
  for (const [label, href] of result.crumbs || []) crumbs.append(h("a", { href }, label), h("span", { class: "sep" }, "/"));
  append(clear($("#page-actions")), result.actions || []);
  clear(view).append(result.body);
  view.removeAttribute("aria-busy");
  document.title = `${result.title} · spendgate`;
}

function showLogin(message = "") {
  closeModal();
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  $("#master-key").value = "";
  $("#master-key").focus();
}

function showApp(session) {
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#metrics-link").hidden = !session.metrics_enabled;
  route();
}

async function boot() {
  api.whenUnauthorized(() => showLogin("Your session ended. Sign in again."));
  const modal = $("#modal");
  modal.addEventListener("close", () => clear(modal)); // a new key shown once leaves no trace in the page
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = e.target.querySelector("button");
    button.disabled = true;
    try {
      await api.post("/ui/login", { master_key: $("#master-key").value });
      $("#master-key").value = "";
      showApp(await api.get("/ui/session"));
    } catch (err) {
      $("#login-error").textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
  $("#logout").addEventListener("click", async () => {
    await api.post("/ui/logout").catch(() => {});
    clear($("#view"));
    showLogin();
  });
  window.addEventListener("hashchange", () => { if (!$("#app").hidden) route(); });
  const session = await api.get("/ui/session").catch(() => ({ logged_in: false, master_key_configured: true }));
  if (session.logged_in) showApp(session);
  else showLogin(session.master_key_configured ? "" : "No master key is configured (general_settings.master_key): the console is locked.");
}

boot();
