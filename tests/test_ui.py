"""The admin UI in real headless Chromium (Debian's `chromium`, driven by Playwright).

One proxy and one browser for the module. The ledger is seeded with four weeks of
history through the ledger's own `settle` (so budgets and rows agree), then today's
calls go through the real mitmdump. Each page is checked against the ledger and
screenshotted (`make screenshots` refreshes docs/screenshots/, which docs/ui.md shows).
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openai
import pytest
from alert_receivers import HttpReceiver
from e2e_helpers import start_proxy, wait_for

from core.usage import TokenUsage
from ledger import BudgetSpec, CallRecord, ScopeRef, usd_to_nanos
from ledger.directory import KeyRecord, TeamRecord, UserRecord
from ledger.sqlite import SQLiteStore
from metering.credentials import key_hash, mask

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# `make screenshots` refreshes the committed pictures; an ordinary run writes them to a temp dir,
# so running the suite leaves the work tree clean.
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
MASTER = "sk-master-ui-0000"
HISTORY_DAYS = 27
RAW = {  # alias → raw virtual key
    "prod-chatbot": "sk-prod-chatbot-000000000001",
    "ci-evals": "sk-ci-evals-0000000000000002",
    "marketing-copy": "sk-marketing-copy-00000003",
    "research-batch": "sk-research-batch-00000004",
    "staging": "sk-staging-00000000000000005",
    "legacy-integration": "sk-legacy-000000000000006",
    "support-bot": "sk-support-bot-0000000000007",  # no history: today's calls cross its alert lines
}
CONFIG = {
    "litellm_settings": {"max_budget": 500.0, "budget_duration": "30d", "success_callback": ["prometheus"]},
    "general_settings": {"master_key": MASTER},
    "providers": {"openai": {"api_key": "sk-real-openai"}, "anthropic": {"api_key": "sk-ant-real"}},
}

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover
    sync_playwright = None

if sync_playwright is None or not CHROMIUM.exists():
    reason = "needs Debian's chromium and the playwright package: run `make ui-deps` (part of `make test`)"
    if os.environ.get("CI"):
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)


# -- the ledger's history ------------------------------------------------------------------

def seed(path: Path, now: datetime) -> None:
    """Teams, users and keys with budgets, then four weeks of calls settled day by day."""
    rnd = random.Random(42)
    t0 = now - timedelta(days=HISTORY_DAYS, hours=2)
    store = SQLiteStore(path)
    store.migrate()
    spec = lambda mx, soft=None: BudgetSpec(usd_to_nanos(mx), usd_to_nanos(soft), "30d")  # noqa: E731
    store.configure(ScopeRef.global_(), BudgetSpec(usd_to_nanos(500.0), None, "30d"), t0)
    teams = [("team-eng", "engineering", spec(400, 300), ["alice@example.com", "bob@example.com"]),
             ("team-mkt", "marketing", spec(100), ["carol@example.com"]),
             ("team-res", "research", spec(150, 120), ["dave@example.com"])]
    for team_id, alias, budget, members in teams:
        store.save(TeamRecord(team_id=team_id, team_alias=alias, members=members), budget, t0)
    users = [("alice@example.com", "team-eng", spec(150)), ("bob@example.com", "team-eng", spec(100, 80)),
             ("carol@example.com", "team-mkt", None), ("dave@example.com", "team-res", spec(120))]
    for user_id, team_id, budget in users:
        store.save(UserRecord(user_id=user_id, user_email=user_id, team_id=team_id), budget, t0)
    keys = [  # alias, team, user, budget, models, blocked, daily calls, cost range
        ("prod-chatbot", "team-eng", "alice@example.com", spec(200, 160), ["gpt-4o", "gpt-4o-mini"], False, 6, (0.3, 1.1)),
        ("ci-evals", "team-eng", "bob@example.com", spec(80, 60), [], False, 4, (0.25, 0.8)),
        ("marketing-copy", "team-mkt", "carol@example.com", spec(60), ["claude-sonnet-4-5"], False, 2, (0.2, 0.9)),
        ("research-batch", "team-res", "dave@example.com", spec(120), [], False, 3, (0.3, 1.2)),
        ("staging", "team-eng", None, None, [], False, 2, (0.05, 0.3)),
        ("legacy-integration", None, None, None, [], True, 0, (0, 0)),
        ("support-bot", "team-mkt", None, BudgetSpec(usd_to_nanos(0.015), usd_to_nanos(0.01), "1d"), [], False, 0,
         (0, 0)),
    ]
    models = {"prod-chatbot": [("openai", "gpt-4o"), ("openai", "gpt-4o-mini")],
              "ci-evals": [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"), ("openai", "o3")],
              "marketing-copy": [("anthropic", "claude-sonnet-4-5")],
              "research-batch": [("google", "gemini-2.5-pro"), ("openai", "o3")],
              "staging": [("openai", "gpt-4o-mini"), ("google", "gemini-2.5-flash")]}
    clients = {"prod-chatbot": ["openai-python/3.57"], "ci-evals": ["claude-code/2.1", "codex/0.169"],
               "marketing-copy": ["anthropic-python/0.40"], "research-batch": ["google-genai/1.2", "codex/0.169"],
               "staging": ["curl"]}
    for alias, team, user, budget, allowed, blocked, _, _ in keys:
        raw = RAW[alias]
        store.save(KeyRecord(hash=key_hash(raw), key_masked=mask(raw), key_alias=alias, team_id=team, user_id=user,
                             models=allowed, issued=True, blocked=blocked), budget, t0)
    for day in range(HISTORY_DAYS):
        for alias, team, user, _, _, _, per_day, (lo, hi) in keys:
            if not per_day:
                continue
            ramp = 0.6 + 0.8 * day / HISTORY_DAYS  # spend grows over the month
            for _ in range(rnd.randint(max(0, per_day - 2), per_day + 1)):
                at = t0 + timedelta(days=day, hours=rnd.uniform(3, 21))
                provider, model = rnd.choice(models[alias])
                tokens_in, tokens_out = rnd.randint(800, 6000), rnd.randint(200, 1500)
                rec = CallRecord(
                    started_at=at - timedelta(seconds=2), finished_at=at, provider=provider, endpoint="chat",
                    path="/v1/chat/completions", model=model, usage=TokenUsage(input_tokens=tokens_in, output_tokens=tokens_out),
                    cost_nanos=usd_to_nanos(round(rnd.uniform(lo, hi) * ramp, 6)), price_source="genai-prices",
                    status="ok", http_status=200, latency_ms=rnd.uniform(400, 4000), key_hash=key_hash(RAW[alias]),
                    key_masked=mask(RAW[alias]), key_alias=alias, user_id=user, team_id=team,
                    client=clients[alias][day % len(clients[alias])])  # not from rnd: the history stays as it was
                refs = [ScopeRef.global_()] + [ScopeRef(k, v) for k, v in
                                               (("team", team), ("user", user), ("key", key_hash(RAW[alias]))) if v]
                store.settle(None, refs, rec, at)
    store.close()


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def proxy(fake_provider_session, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ui")
    seed(workdir / "ledger.db", datetime.now(UTC))
    receiver = HttpReceiver()  # Slack and webhook alerts, delivered for real
    alerting = {"alerting": ["slack", "webhook"], "alerting_thresholds": [0.5, 0.9],
                "slack_webhook_url": receiver.url("/slack"), "webhook_url": receiver.url("/hook")}
    config = {**CONFIG, "litellm_settings": {**CONFIG["litellm_settings"], **alerting}}
    p = start_proxy(fake_provider_session.url, workdir, config)
    try:
        today(p)
        assert wait_for(lambda: receiver.received and not p.ledger.query(
            "SELECT id FROM alert_deliveries WHERE status != 'sent'"))
        yield p
    finally:
        p.stop()
        receiver.stop()


def today(proxy) -> None:
    """Today's calls, through the real proxy: forwarded, unpriced and refused ones."""
    def chat(alias, model="gpt-4o"):
        try:
            proxy.openai_client(api_key=RAW[alias]).chat.completions.create(
                model=model, max_tokens=200, messages=[{"role": "user", "content": "hello"}])
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.RateLimitError):
            pass

    before = proxy.ledger.mark()
    chat("prod-chatbot")
    chat("prod-chatbot", "gpt-4o-mini")
    chat("support-bot")  # 48 % of its budget
    chat("support-bot")  # 97 %: past the soft budget, 50 % and 90 %: alerts
    chat("staging", "in-house-llm-v2")  # unpriced
    chat("legacy-integration")  # blocked key
    chat("marketing-copy", "gpt-4o")  # model not allowed
    with proxy.anthropic_client(api_key=RAW["marketing-copy"]) as client:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=[{"role": "user", "content": "hi"}])
    web = proxy.httpx_client()  # a batch (unmetered), and a reply claiming impossible usage (an anomaly)
    web.post("https://api.openai.com/v1/batches", json={"input_file_id": "file-1"},
             headers={"authorization": f"Bearer {RAW['research-batch']}"})
    proxy.openai_client(api_key=RAW["ci-evals"]).chat.completions.create(
        model="gpt-4o-mini", max_tokens=10, messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-fake-usage": '{"prompt_tokens": 9000000000000000, "completion_tokens": 1}'})
    assert len(proxy.ledger.rows(before, 10)) == 10


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, proxy, screenshots):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    pg.screenshots = screenshots
    pg.set_default_timeout(10_000)
    yield pg
    context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    return DOCS_SCREENSHOTS if os.environ.get("SPENDGATE_SCREENSHOTS") else tmp_path_factory.mktemp("screenshots")


def shot(page, name: str) -> None:
    page.screenshots.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(150)  # let the last chart settle
    page.screenshot(path=str(page.screenshots / f"{name}.png"), full_page=True)


def ledger(proxy, sql, params=()):
    with sqlite3.connect(proxy.ledger_path) as conn:
        return conn.execute(sql, params).fetchall()


def usd_text(nanos: int) -> str:
    usd = nanos / 1e9
    return f"${usd:.4f}" if 0 < abs(usd) < 1 else f"${usd:,.2f}"


def bars(page, selector: str) -> int:
    """Drawn bars in a chart: SVG rects with a real height."""
    return page.eval_on_selector_all(f"{selector} svg.chart rect.bar",
                                     "els => els.filter(e => e.getBBox().height > 0 && e.getBBox().width > 0).length")


# -- tests, in the order an admin would go -----------------------------------------------------

def test_login_refuses_a_wrong_key_and_sets_a_session_cookie(page, proxy):
    page.goto(f"{proxy.admin_url}/ui")
    expect(page.locator("#login")).to_be_visible()
    shot(page, "login")
    page.fill("#master-key", "sk-wrong")
    page.click("#login-form button")
    expect(page.locator("#login-error")).to_contain_text("not the master key")
    page.fill("#master-key", MASTER)
    page.click("#login-form button")
    expect(page.locator("#page-title")).to_have_text("Overview")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "spendgate_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert MASTER not in cookie["value"] and MASTER not in page.url
    assert page.evaluate("document.cookie") == ""  # out of scripts' reach
    page.errors.clear()  # the browser logs the refused login's 401


def test_overview_shows_the_ledger_figures_and_draws_its_charts(page, proxy):
    page.goto(f"{proxy.admin_url}/ui/#/overview")
    expect(page.locator(".stat").first).to_be_visible()
    [(spend, max_nanos)] = ledger(proxy, "SELECT spend_nanos, max_nanos FROM budgets WHERE kind = 'global'")
    period = page.locator(".stat", has_text="Spend this period")
    expect(period.locator(".stat-value")).to_have_text(usd_text(spend))
    blocked = ledger(proxy, "SELECT COUNT(*) FROM calls WHERE status = 'blocked'")[0][0]
    assert blocked == 2
    expect(page.locator(".stat", has_text="Blocked calls").locator(".stat-value")).to_have_text("2")
    expect(page.locator(".stat", has_text="Unpriced calls").locator(".stat-value")).to_have_text("1")
    expect(page.locator(".stat", has_text="Unmetered calls").locator(".stat-value")).to_have_text("1")
    expect(page.locator(".stat", has_text="Usage anomalies").locator(".stat-value")).to_have_text("1")
    expect(page.locator(".gauge .gauge-pct")).to_have_text(f"{spend / max_nanos * 100:.0f}%")
    wait_for(lambda: bars(page, ".span-2") > HISTORY_DAYS)
    assert bars(page, ".span-2") > HISTORY_DAYS  # a stacked bar per day, several models
    assert page.locator(".legend-item", has_text="gpt-4o").count() >= 1
    expect(page.locator("svg.hbars .hrow").first).to_be_visible()
    assert page.locator("svg.hbars .hlabel").first.text_content() == "prod-chatbot"  # the biggest spender
    clients = ledger(proxy, "SELECT client, SUM(cost_nanos) AS spend FROM calls WHERE client IS NOT NULL"
                     " AND cost_nanos > 0 GROUP BY client ORDER BY spend DESC")
    by_client = page.locator("[data-chart=clients] svg.hbars .hlabel")
    expect(by_client).to_have_count(min(len(clients), 8))
    assert by_client.first.text_content() == clients[0][0]
    assert {"claude-code/2.1", "codex/0.169", "curl"} <= set(by_client.all_text_contents())
    alerts = ledger(proxy, "SELECT COUNT(*) FROM alerts")[0][0]
    expect(page.locator(".alert-item")).to_have_count(min(alerts, 6))
    expect(page.locator(".alert-item", has_text="support-bot").first.locator(".badge.ok")).to_have_count(2)
    shot(page, "overview")
    page.click(".span-2 .seg[data-id=team]")
    expect(page.locator(".span-2 .legend-item", has_text="engineering")).to_be_visible()
    assert not page.errors, page.errors


def test_keys_table_lists_sorts_and_filters(page, proxy):
    page.click("nav a[data-nav=keys]")
    expect(page.locator("#page-title")).to_have_text("Keys")
    live = ledger(proxy, "SELECT COUNT(*) FROM keys WHERE deleted_at IS NULL")[0][0]
    expect(page.locator(".table-info")).to_have_text(f"{live} keys")
    first = page.locator("tbody tr").first
    expect(first).to_contain_text("prod-chatbot")  # sorted by spend, biggest first
    [(spend,)] = ledger(proxy, "SELECT spend_nanos FROM budgets WHERE kind = 'key' AND id = ?",
                        (key_hash(RAW["prod-chatbot"]),))
    expect(first).to_contain_text(usd_text(spend))
    expect(first.locator(".usage-pct")).to_have_text(re.compile(r"\d+(\.\d)?%"))
    shot(page, "keys")
    page.fill(".table-toolbar .search", "copy")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("marketing-copy")
    page.fill(".table-toolbar .search", "")
    page.click(".seg[data-filter=blocked]")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("legacy-integration")
    page.click(".seg[data-filter=all]")
    page.click("th:has-text('Key')")
    expect(page.locator("tbody tr").first).to_contain_text("ci-evals")  # alphabetical now


def test_key_detail_shows_its_budget_chart_and_recent_calls(page, proxy):
    page.goto(f"{proxy.admin_url}/ui/#/keys")
    page.click("tbody tr:has-text('prod-chatbot')")
    expect(page.locator("#page-title")).to_contain_text("prod-chatbot")
    calls = ledger(proxy, "SELECT COUNT(*) FROM calls WHERE key_hash = ?", (key_hash(RAW["prod-chatbot"]),))[0][0]
    expect(page.locator(".table-info")).to_have_text(f"{min(calls, 100)} calls")
    expect(page.locator("tbody tr").first).to_contain_text("gpt-4o")
    wait_for(lambda: bars(page, ".page") > 10)
    assert bars(page, ".page") > 10
    expect(page.locator(".gauge-pct")).to_be_visible()
    # its spend by client: the SDK its history used and today's calls' (the real openai SDK)
    expect(page.locator("[data-chart=clients] svg.hbars .hlabel").first).to_have_text("openai-python/3.57")
    expect(page.locator("tbody tr").first).to_contain_text("openai-python/")
    shot(page, "key-detail")


def test_a_call_reporting_impossible_usage_is_flagged_in_its_keys_calls(page, proxy):
    page.goto(f"{proxy.admin_url}/ui/#/keys/{key_hash(RAW['ci-evals'])}")
    expect(page.locator("#page-title")).to_contain_text("ci-evals")
    flagged = page.locator("tbody tr", has=page.locator(".badge", has_text="anomaly"))
    expect(flagged).to_have_count(1)
    assert "input_tokens reported 9,000,000,000,000,000" in flagged.locator(".badge.danger").last.get_attribute("title")
    labels = page.locator("[data-chart=clients] svg.hbars .hlabel")
    expect(labels).to_have_count(3)  # Claude Code and Codex from its history, the openai SDK today
    assert set(labels.all_text_contents()) == {"claude-code/2.1", "codex/0.169", "openai-python/3.57"}


def test_teams_and_users_pages_render_with_details(page, proxy):
    page.click("nav a[data-nav=teams]")
    expect(page.locator("#page-title")).to_have_text("Teams")
    expect(page.locator("tbody tr")).to_have_count(3)
    expect(page.locator("tbody tr").first).to_contain_text("engineering")
    shot(page, "teams")
    page.click("tbody tr:has-text('engineering')")
    expect(page.locator("#page-title")).to_contain_text("engineering")
    expect(page.locator(".facts").last).to_contain_text("alice@example.com")
    wait_for(lambda: bars(page, ".page") > 10)
    shot(page, "team-detail")
    # the team page is the key page's: block and unblock carry their data-action, and work
    page.click("#page-actions [data-action=block]")
    page.click("dialog [data-confirm]")
    expect(page.locator("#page-actions [data-action=unblock]")).to_be_visible()
    assert ledger(proxy, "SELECT blocked FROM teams WHERE team_id = 'team-eng'")[0][0] == 1
    page.click("#page-actions [data-action=unblock]")
    page.click("dialog [data-confirm]")
    expect(page.locator("#page-actions [data-action=block]")).to_be_visible()
    assert ledger(proxy, "SELECT blocked FROM teams WHERE team_id = 'team-eng'")[0][0] == 0
    page.click("nav a[data-nav=users]")
    expect(page.locator("#page-title")).to_have_text("Users")
    expect(page.locator("tbody tr")).to_have_count(4)
    [(spend,)] = ledger(proxy, "SELECT spend_nanos FROM budgets WHERE kind = 'user' AND id = 'alice@example.com'")
    expect(page.locator("tbody tr:has-text('alice@example.com')")).to_contain_text(usd_text(spend))
    shot(page, "users")
    page.click("tbody tr:has-text('dave@example.com')")
    expect(page.locator("#page-title")).to_contain_text("dave@example.com")
    labels = page.locator("[data-chart=clients] svg.hbars .hlabel")
    expect(labels).to_have_count(2)
    assert set(labels.all_text_contents()) == {"google-genai/1.2", "codex/0.169"}
    assert not page.errors, page.errors


def test_creating_a_key_shows_it_once_and_it_works_through_the_proxy(page, proxy):
    page.click("nav a[data-nav=keys]")
    page.click("#create-key")
    form = page.locator("#create-key-form")
    form.locator("[name=key_alias]").fill("made-in-the-ui")
    form.locator("[name=team_id]").select_option("team-eng")
    form.locator("[name=models]").fill("gpt-4o, gpt-4o-mini")
    form.locator("[name=max_budget]").fill("25")
    form.locator("[name=soft_budget]").fill("20")
    shot(page, "create-key")
    page.click("button[form=create-key-form]")
    new_key = page.locator("#new-key")
    expect(new_key).to_have_value(re.compile(r"^sk-"))
    raw = new_key.input_value()
    shot(page, "create-key-shown")
    [(masked, alias, team, models, max_nanos, soft_nanos)] = ledger(
        proxy, "SELECT k.key_masked, k.key_alias, k.team_id, k.models, b.max_nanos, b.soft_nanos FROM keys k"
        " JOIN budgets b ON b.kind = 'key' AND b.id = k.hash WHERE k.hash = ?", (key_hash(raw),))
    assert (alias, team, max_nanos, soft_nanos) == ("made-in-the-ui", "team-eng", 25 * 10**9, 20 * 10**9)
    assert masked == mask(raw) and "gpt-4o-mini" in models
    page.click(".modal-foot .btn.primary")
    expect(page.locator("#page-title")).to_contain_text("made-in-the-ui")
    assert raw not in page.content()  # shown once, then gone
    proxy.openai_client(api_key=raw).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert wait_for(lambda: ledger(proxy, "SELECT COUNT(*) FROM calls WHERE key_hash = ?", (key_hash(raw),))[0][0] == 1)


def test_changing_a_budget_and_resetting_spend(page, proxy):
    token = key_hash(RAW["ci-evals"])
    page.goto(f"{proxy.admin_url}/ui/#/keys/{token}")
    expect(page.locator("#page-title")).to_contain_text("ci-evals")
    form = page.locator("form[data-form=budget]")
    form.locator("[name=max_budget]").fill("95")
    form.locator("button[type=submit]").click()
    expect(page.locator("#toast")).to_have_text("Budget saved.")
    assert wait_for(lambda: ledger(proxy, "SELECT max_nanos FROM budgets WHERE kind = 'key' AND id = ?",
                                   (token,))[0][0] == 95 * 10**9)
    assert ledger(proxy, "SELECT spend_nanos FROM budgets WHERE kind = 'key' AND id = ?", (token,))[0][0] > 0
    page.click("#page-actions [data-action=reset-spend]")
    page.click("dialog [data-confirm]")
    expect(page.locator("#toast")).to_contain_text("reset")
    assert ledger(proxy, "SELECT spend_nanos FROM budgets WHERE kind = 'key' AND id = ?", (token,))[0][0] == 0
    expect(page.locator(".facts").first).to_contain_text("$0.00")


def test_blocking_a_key_stops_its_calls(page, proxy):
    token = key_hash(RAW["staging"])
    page.goto(f"{proxy.admin_url}/ui/#/keys/{token}")
    expect(page.locator("#page-title")).to_contain_text("staging")
    page.click("#page-actions [data-action=block]")
    page.click("dialog [data-confirm]")
    expect(page.locator("#page-actions [data-action=unblock]")).to_be_visible()
    assert ledger(proxy, "SELECT blocked FROM keys WHERE hash = ?", (token,))[0][0] == 1
    with pytest.raises(openai.AuthenticationError):
        proxy.openai_client(api_key=RAW["staging"]).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


def test_cookie_sessions_need_the_ui_header_and_origin_to_change_anything_and_end_at_logout(page, proxy):
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}
    ui, evil = {"X-Spendgate-UI": "1"}, {"Origin": "http://evil.example"}
    block = {"key": key_hash(RAW["prod-chatbot"]), "blocked": True}
    with httpx.Client(base_url=proxy.admin_url, cookies=cookie, trust_env=False) as client:
        assert client.get("/ui/api/overview").status_code == 200
        # a cross-site form could send the cookie, not this header; a page elsewhere (or one whose
        # name was made to resolve here) can't send this listener's Origin
        for headers in ({}, ui, {**ui, **evil}, {**ui, "Origin": "null"}):
            r = client.post("/key/update", json=block, headers=headers)
            assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error", headers
        assert client.post("/ui/logout", headers=evil).status_code == 403  # logout too
        assert client.post("/key/update", json={**block, "blocked": False},
                           headers={**ui, "Origin": proxy.admin_url}).status_code == 200
        assert ledger(proxy, "SELECT blocked FROM keys WHERE hash = ?", (block["key"],))[0][0] == 0
        csp = client.get("/ui/").headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    with httpx.Client(base_url=proxy.admin_url, cookies=cookie, trust_env=False) as client:
        assert client.get("/ui/api/overview").status_code == 401
