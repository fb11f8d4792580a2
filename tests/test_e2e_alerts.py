"""End to end: budget alerts from real traffic through real mitmdump to real receivers.

Slack and webhook alerts go to a threaded HTTP server on loopback, email to an aiosmtpd
server (STARTTLS with a self-signed certificate, and AUTH, like the seed's SMTP config).
Spend is driven with the fake provider's `x-fake-usage`: SPEND_MODEL's output costs $10 per
million tokens (a `pricing:` entry in every config), so a call reporting 4 000 000 completion
tokens costs exactly $40.

"Exactly once" is asserted when the outbox says every delivery is `sent` (a delivery is
marked sent only after the receiver accepted it, so nothing more can arrive for it).
"""

from __future__ import annotations

import copy

import json
import re
import ssl

import openai
import pytest
from alert_receivers import HttpReceiver, SmtpReceiver, self_signed_cert, wait_until
from e2e_helpers import Ledger

HI = [{"role": "user", "content": "hi"}]
SEED_FIELDS = {"event", "timestamp", "key", "key_alias", "spend", "max_budget", "budget_threshold",
               "percentage", "budget_reset_at", "metadata"}
WEBHOOK_FIELDS = SEED_FIELDS | {"scope", "team_id", "user_id"}
FAST = {  # retry and poll in fractions of a second instead of seconds
    "budget_alert_retry_base": "0.05", "budget_alert_retry_max": "0.3", "budget_alert_poll_interval": "0.2",
}
SLACK_PATH = "/services/T000/B000/XXXX"  # the secret part of a Slack webhook URL
ENG_PATH = "/services/T000/B111/YYYY"


#: A model the tests' configs price at $10 per million output tokens, with no context window
#: of its own: one call can then cost up to $100 (metering/bounds.py), where a gpt-4o call
#: can't report more than its 128k-token window ($1.60).
SPEND_MODEL = "alert-test-model"
SPEND_PRICE = {"input_cost_per_token": 0.00001, "output_cost_per_token": 0.00001}


@pytest.fixture
def make_proxy(make_proxy):
    """conftest's make_proxy, with SPEND_MODEL priced in every config."""

    def factory(config=None, *args, **kwargs):
        config = copy.deepcopy(config or {})
        config.setdefault("pricing", {})[SPEND_MODEL] = SPEND_PRICE
        return make_proxy(config, *args, **kwargs)

    return factory


def spend(client, usd: float, **kwargs):
    """One call that costs exactly `usd` (it reserves almost nothing: max_tokens=1)."""
    tokens = round(usd * 100_000)
    usage = {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens}
    return client.chat.completions.create(model=SPEND_MODEL, messages=HI, max_tokens=1,
                                          extra_headers={"x-fake-usage": json.dumps(usage)}, **kwargs)


def plain(msg) -> str:
    return msg.get_body(("plain",)).get_content().replace("\r\n", "\n")


def outbox(ledger: Ledger) -> list[dict]:
    return ledger.query(
        "SELECT a.id, a.event, a.scope_kind, a.scope_id, a.threshold, d.channel, d.status, d.attempts, d.last_error"
        " FROM alerts a JOIN alert_deliveries d ON d.alert_id = a.id ORDER BY a.id, d.channel")


def all_sent(ledger: Ledger, deliveries: int, timeout: float = 20.0) -> list[dict]:
    """The outbox once it holds `deliveries` deliveries, every one sent."""
    def done():
        rows = outbox(ledger)
        return rows if len(rows) >= deliveries and all(r["status"] == "sent" for r in rows) else None

    rows = wait_until(done, timeout)
    assert rows, outbox(ledger)
    assert len(rows) == deliveries, rows
    return rows


def settled_spend(ledger: Ledger, usd: float, kind="global", id_="global"):
    nanos = round(usd * 1e9)
    assert wait_until(lambda: ledger.budget(kind, id_)["spend_nanos"] == nanos), ledger.budget(kind, id_)


@pytest.fixture
def http_receiver():
    r = HttpReceiver()
    yield r
    r.stop()


@pytest.fixture
def smtp_tls(tmp_path):
    """An SMTP server that requires STARTTLS and AUTH, and a CA file that trusts it."""
    cert, key = self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = SmtpReceiver(tls_context=context, auth=("alerts-user", "s3cret-app-password"))
    server.cafile = cert
    yield server
    server.stop()


@pytest.fixture
def seed_env(monkeypatch, http_receiver, smtp_tls):
    """The seed's environment variables, pointing at the loopback receivers."""
    monkeypatch.setenv("SLACK_WEBHOOK_URL", http_receiver.url(SLACK_PATH))
    monkeypatch.setenv("ENGINEERING_SLACK_WEBHOOK", http_receiver.url(ENG_PATH))
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_USER", "alerts-user")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret-app-password")
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_tls.cafile))  # mitmdump trusts the SMTP server's cert
    return monkeypatch


def multi_channel(http_receiver, smtp_tls, **litellm):
    """The seed's Multi-Channel config with its Email SMTP block, as written (os.environ/...)."""
    return {
        "litellm_settings": {
            "max_budget": 100.0, "budget_duration": "30d",
            "alerting": ["slack", "webhook", "email"],
            "alerting_thresholds": [0.5, 0.75, 0.9, 1.0],
            "slack_webhook_url": "os.environ/SLACK_WEBHOOK_URL",
            "slack_alert_to_webhook_url": "os.environ/SLACK_WEBHOOK_URL",
            "webhook_url": http_receiver.url("/alerts"),
            "email_alerts_to": ["admin@example.com", "finance@example.com"],
            "smtp_host": "os.environ/SMTP_HOST", "smtp_port": smtp_tls.port,
            "smtp_user": "os.environ/SMTP_USER", "smtp_password": "os.environ/SMTP_PASSWORD",
            "smtp_sender": "alerts@example.com",
            **litellm,
        },
        "general_settings": {"master_key": "sk-1234"},
    }


# --- thresholds on every channel -------------------------------------------------------------


def test_50_75_90_100_percent_each_alert_exactly_once_on_every_channel(make_proxy, seed_env, http_receiver,
                                                                          smtp_tls):
    proxy = make_proxy(multi_channel(http_receiver, smtp_tls), **FAST)
    ledger = Ledger(proxy.ledger_path)
    client = proxy.openai_client()
    total = 0.0
    for usd in (40, 15, 25, 5, 7, 10):  # 40 % (nothing), 55 %, 80 %, 85 % (nothing), 92 %, 102 %
        spend(client, usd)
        total += usd
        settled_spend(ledger, total)
    with pytest.raises(openai.RateLimitError):  # refused: budget_exceeded again, deduplicated
        spend(client, 1)
    rows = all_sent(ledger, 4 * 3)
    assert [(r["event"], r["threshold"]) for r in rows[::3]] == [
        ("budget_alert", 0.5), ("budget_alert", 0.75), ("budget_alert", 0.9), ("budget_exceeded", 1.0)]
    assert all(r["attempts"] == 1 for r in rows)

    reset = ledger.budget()["reset_at"]
    reset_text = f"{reset[:10]} {reset[11:19]} UTC"
    slack = http_receiver.bodies(SLACK_PATH)
    assert [s["text"] for s in slack] == [
        f"🚨 Budget Alert\nProxy: global budget\nSpend: ${s} / $100.00 ({p}%)\n{extra}"
        f"Budget Reset: {reset_text}\nConsider increasing budget or optimizing usage."
        for s, p, extra in (
            ("55.00", 55, ""), ("80.00", 80, ""), ("92.00", 92, ""),
            ("102.00", 102, "Budget exceeded: requests are blocked until the budget resets or is raised.\n"),
        )
    ]
    assert all(s["blocks"][0]["type"] == "header" for s in slack)

    hooks = http_receiver.bodies("/alerts")
    assert [set(h) for h in hooks] == [WEBHOOK_FIELDS] * 4
    assert [(h["event"], h["spend"], h["budget_threshold"], h["percentage"]) for h in hooks] == [
        ("budget_alert", 55.0, 50.0, 0.55), ("budget_alert", 80.0, 75.0, 0.8),
        ("budget_alert", 92.0, 90.0, 0.92), ("budget_exceeded", 102.0, 100.0, 1.02)]
    first = hooks[0]
    assert (first["key"], first["key_alias"], first["max_budget"], first["scope"], first["metadata"]) == (
        "global", None, 100.0, "global", {})
    assert first["budget_reset_at"] == reset[:19] + "Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["timestamp"])
    ids = {p["headers"]["x-spendgate-alert-id"] for p in http_receiver.posts("/alerts")}
    assert len(ids) == 4

    mails = smtp_tls.wait_for(4)
    assert len(mails) == 4
    for mail in mails:
        assert mail["tls"] and mail["authenticated"]  # STARTTLS, then AUTH with the seed's smtp_user / password
        assert mail["rcpt_tos"] == ["admin@example.com", "finance@example.com"]
        msg = mail["message"]
        assert msg["From"] == "alerts@example.com"
        assert plain(msg).startswith("🚨 Budget Alert\nProxy: global budget\n")
        assert "<h2>🚨 Budget Alert</h2>" in msg.get_body(("html",)).get_content()
    assert "at 55% of $100.00" in mails[0]["message"]["Subject"]


def test_a_soft_budget_alerts_once_and_never_blocks(make_proxy, seed_env, http_receiver):
    proxy = make_proxy({
        "litellm_settings": {"alerting": ["webhook"], "alerting_threshold": 0.8, "webhook_url": http_receiver.url("/hook")},
        "general_settings": {"master_key": "sk-1234"},
        "providers": {"openai": {"api_key": "sk-real-upstream"}},
    }, **FAST)
    admin = proxy.admin_client("sk-1234")
    key = admin.post("/key/generate", json={
        "models": [SPEND_MODEL], "max_budget": 100.0, "soft_budget": 80.0, "budget_duration": "30d",
        "key_alias": "production-key", "metadata": {"environment": "production", "team": "backend"},
    }).json()
    client = proxy.openai_client(api_key=key["key"])
    ledger = Ledger(proxy.ledger_path)
    spend(client, 70)
    spend(client, 12.45)  # $82.45: crosses the soft budget ($80) and the 80 % threshold
    spend(client, 5)  # $87.45: still allowed, no new alert
    settled_spend(ledger, 87.45, "key", key["token_id"])
    rows = all_sent(ledger, 2)
    assert {r["event"] for r in rows} == {"soft_budget_alert", "budget_alert"}
    hooks = {h["event"]: h for h in http_receiver.bodies("/hook")}
    soft = hooks["soft_budget_alert"]
    assert set(soft) == WEBHOOK_FIELDS
    assert soft | {"timestamp": None, "budget_reset_at": None} == {
        "event": "soft_budget_alert", "timestamp": None, "key": key["key"][:5] + "..." + key["key"][-4:],
        "key_alias": "production-key", "spend": 82.45, "max_budget": 100.0, "budget_threshold": 80.0,
        "percentage": 0.8245, "budget_reset_at": None,
        "metadata": {"environment": "production", "team": "backend"},
        "scope": "key", "team_id": None, "user_id": None,
    }
    assert hooks["budget_alert"]["budget_threshold"] == 80.0


# --- delivery when the receiver is away ------------------------------------------------------


def test_a_receiver_down_then_back_gets_every_alert_once(make_proxy, seed_env, http_receiver):
    config = {"litellm_settings": {
        "max_budget": 100.0, "budget_duration": "30d", "alerting": ["slack", "webhook"],
        "alerting_thresholds": [0.5, 0.75],
        "slack_webhook_url": "os.environ/SLACK_WEBHOOK_URL", "webhook_url": http_receiver.url("/alerts"),
    }, "general_settings": {"master_key": "sk-1234"}}
    http_receiver.answer(500, b"upstream_unavailable")
    proxy = make_proxy(config, **FAST)
    ledger = Ledger(proxy.ledger_path)
    spend(proxy.openai_client(), 60)
    assert wait_until(lambda: len(outbox(ledger)) == 2 and all(r["attempts"] >= 2 for r in outbox(ledger)))
    alerts = proxy.admin_client("sk-1234").get("/alerts").json()["alerts"]
    [alert] = alerts
    assert alert["event"] == "budget_alert" and alert["spend"] == 60.0
    for d in alert["deliveries"]:
        assert d["status"] in ("pending", "sending") and d["attempts"] >= 2
        assert d["last_error"] == "HTTP 500: upstream_unavailable"
    assert XXXX_NOT_IN(alerts)

    http_receiver.down()  # now not even listening
    assert wait_until(lambda: any((r["last_error"] or "").startswith("ConnectError") for r in outbox(ledger)))
    spend(proxy.openai_client(), 20)  # 80 %: a second alert queues behind the outage
    http_receiver.answer(200)
    http_receiver.up()
    all_sent(ledger, 4)
    assert sorted(b["percentage"] for b in http_receiver.bodies("/alerts")) == [0.6, 0.8]  # in any order
    assert len(http_receiver.bodies(SLACK_PATH)) == 2


def test_a_hanging_receiver_holds_up_no_call(make_proxy, seed_env, http_receiver):
    config = {"litellm_settings": {"max_budget": 100.0, "budget_duration": "30d", "alerting": ["webhook"],
                                   "alerting_thresholds": [0.5, 0.75], "webhook_url": http_receiver.url("/alerts")}}
    proxy = make_proxy(config, **FAST)
    client = proxy.openai_client()
    http_receiver.hold()
    spend(client, 60)
    assert wait_until(lambda: http_receiver.held == 1)  # the alert's POST hangs in the receiver...
    for _ in range(5):
        spend(client, 4)  # ...while calls go through (and the 75 % alert goes out beside it)
    assert http_receiver.held >= 1 and http_receiver.posts() == []
    http_receiver.release()
    all_sent(Ledger(proxy.ledger_path), 2)
    assert sorted(b["budget_threshold"] for b in http_receiver.bodies("/alerts")) == [50.0, 75.0]


def XXXX_NOT_IN(payload) -> bool:
    """No secret part of a webhook URL anywhere in an admin API answer."""
    text = json.dumps(payload)
    return "XXXX" not in text and "B000" not in text


def test_undelivered_alerts_survive_a_proxy_restart_and_are_sent_once(make_proxy, seed_env, http_receiver):
    config = {"litellm_settings": {
        "max_budget": 100.0, "budget_duration": "30d", "alerting": ["webhook"], "alerting_threshold": 0.5,
        "webhook_url": http_receiver.url("/alerts"),
    }}
    http_receiver.down()
    first = make_proxy(config, **FAST)
    ledger = Ledger(first.ledger_path)
    spend(first.openai_client(), 60)
    assert wait_until(lambda: outbox(ledger) and outbox(ledger)[0]["attempts"] >= 1
                      and outbox(ledger)[0]["status"] == "pending")
    first.stop()
    second = make_proxy(config, **FAST)  # same config, same ledger
    assert second.ledger_path == first.ledger_path
    http_receiver.up()
    all_sent(ledger, 1)
    [hook] = http_receiver.bodies("/alerts")
    assert (hook["event"], hook["spend"]) == ("budget_alert", 60.0)
    spend(second.openai_client(), 1)  # the new process does not raise the 50 % alert again
    settled_spend(ledger, 61)
    assert len(all_sent(ledger, 1)) == 1


def test_two_proxies_on_one_ledger_alert_once(make_proxy, seed_env, http_receiver):
    config = {"litellm_settings": {
        "max_budget": 100.0, "budget_duration": "30d", "alerting": ["webhook"],
        "alerting_thresholds": [0.25, 0.5, 0.75], "webhook_url": http_receiver.url("/alerts"),
    }}
    a, b = make_proxy(config, **FAST), make_proxy(config, **FAST)
    ledger = Ledger(a.ledger_path)
    ca, cb = a.openai_client(), b.openai_client()
    for i in range(16):  # $5 each, alternating processes: 25 %, 50 %, 75 % crossed by one or the other
        spend(ca if i % 2 else cb, 5)
    settled_spend(ledger, 80)
    all_sent(ledger, 3)
    assert sorted(h["budget_threshold"] for h in http_receiver.bodies("/alerts")) == [25.0, 50.0, 75.0]


# --- projected spend -------------------------------------------------------------------------


def test_projected_spend_alerts_once_with_the_projection_and_run_out_date(make_proxy, seed_env, http_receiver):
    proxy = make_proxy({  # the seed's Projected Spend config, plus a daily budget to project against
        "general_settings": {"projected_spend_alerts": True, "projected_spend_threshold": 0.9},
        "litellm_settings": {"max_budget": 100.0, "budget_duration": "1d",
                             "alerting": ["slack"], "slack_webhook_url": "os.environ/SLACK_WEBHOOK_URL"},
    }, budget_alert_projection_min_elapsed="0.000001", **FAST)  # 0.09 s of the day, not 2.4 h
    ledger = Ledger(proxy.ledger_path)
    client = proxy.openai_client()
    spend(client, 1)  # $1 within seconds of the period's start: far above $90 by the end of the day
    spend(client, 1)
    settled_spend(ledger, 2)
    [row] = all_sent(ledger, 1)
    assert row["event"] == "projected_spend_alert"
    [slack] = http_receiver.bodies(SLACK_PATH)
    lines = slack["text"].split("\n")
    assert lines[:3] == ["🚨 Budget Alert", "Proxy: global budget", "Spend: $1.00 / $100.00 (1%)"]
    assert re.fullmatch(r"Projected spend: \$[\d,]+\.\d\d by the reset \(\d+% of budget\); at this rate the "
                        r"budget runs out \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.", lines[3]), lines[3]


# --- team-specific settings --------------------------------------------------------------------


def test_team_settings_route_a_teams_alerts_to_the_teams_receivers(make_proxy, seed_env, http_receiver, smtp_tls):
    proxy = make_proxy({
        "litellm_settings": {  # the seed's Team-Specific config, with global alerts to a webhook
            "alerting": ["webhook"], "alerting_threshold": 0.5, "webhook_url": http_receiver.url("/global"),
            "smtp_host": "os.environ/SMTP_HOST", "smtp_port": smtp_tls.port, "smtp_user": "os.environ/SMTP_USER",
            "smtp_password": "os.environ/SMTP_PASSWORD", "smtp_sender": "alerts@example.com",
            "default_team_settings": [
                {"team_id": "team-engineering", "alerting": ["slack"], "alerting_threshold": 0.8,
                 "slack_webhook_url": "os.environ/ENGINEERING_SLACK_WEBHOOK"},
                {"team_id": "team-marketing", "alerting": ["email"], "alerting_threshold": 0.9,
                 "email_alerts_to": ["marketing@example.com"]},
            ],
        },
        "general_settings": {"master_key": "sk-1234"},
        "providers": {"openai": {"api_key": "sk-real-upstream"}},
    }, **FAST)
    admin = proxy.admin_client("sk-1234")
    keys = {}
    for team in ("team-engineering", "team-marketing"):
        assert admin.post("/team/new", json={"team_id": team, "team_alias": team[5:], "max_budget": 100.0,
                                             "budget_duration": "30d"}).status_code == 200
        keys[team] = admin.post("/key/generate", json={"team_id": team, "key_alias": f"{team[5:]}-key"}).json()
    other = admin.post("/key/generate", json={"max_budget": 10.0}).json()  # no team: global settings
    ledger = Ledger(proxy.ledger_path)
    spend(proxy.openai_client(api_key=keys["team-engineering"]["key"]), 85)  # team 85 %: 0.8 crossed
    spend(proxy.openai_client(api_key=keys["team-marketing"]["key"]), 85)  # 85 % < 0.9: nothing yet
    spend(proxy.openai_client(api_key=keys["team-marketing"]["key"]), 10)  # 95 %: 0.9 crossed
    spend(proxy.openai_client(api_key=other["key"]), 6)  # key 60 %: global 0.5 threshold
    all_sent(ledger, 3)
    [eng] = http_receiver.bodies(ENG_PATH)
    assert eng["text"].split("\n")[1:3] == ["Team: engineering (team-engineering)", "Spend: $85.00 / $100.00 (85%)"]
    [mail] = smtp_tls.wait_for(1)
    assert mail["rcpt_tos"] == ["marketing@example.com"]
    assert "Team: marketing (team-marketing)" in plain(mail["message"])
    [hook] = http_receiver.bodies("/global")
    assert (hook["scope"], hook["key"], hook["spend"], hook["budget_threshold"]) == (
        "key", other["key"][:5] + "..." + other["key"][-4:], 6.0, 5.0)


# --- operating it --------------------------------------------------------------------------------


def test_alerts_test_sends_through_every_channel_now_and_reports_each(make_proxy, seed_env, http_receiver,
                                                                     smtp_tls):
    config = multi_channel(http_receiver, smtp_tls)
    config["litellm_settings"]["default_team_settings"] = [
        {"team_id": "team-engineering", "alerting": ["slack"],
         "slack_webhook_url": "os.environ/ENGINEERING_SLACK_WEBHOOK"}]
    proxy = make_proxy(config, **FAST)
    admin = proxy.admin_client("sk-1234")
    reply = admin.post("/alerts/test").json()
    assert reply["ok"] is True
    assert [(r["channel"], r["teams"], r["ok"]) for r in reply["results"]] == [
        ("slack", [None], True), ("webhook", [None], True), ("email", [None], True),
        ("slack", ["team-engineering"], True)]
    assert reply["results"][0]["destination"] == f"http://127.0.0.1:{http_receiver.port}/…"
    assert XXXX_NOT_IN(reply)
    [test_hook] = http_receiver.bodies("/alerts")
    assert test_hook["event"] == "test_alert" and set(test_hook) == WEBHOOK_FIELDS
    assert http_receiver.bodies(SLACK_PATH)[0]["text"].startswith("🚨 Budget Alert (test)\n")
    assert len(http_receiver.bodies(ENG_PATH)) == 1
    assert len(smtp_tls.wait_for(1)) == 1

    http_receiver.answer(500, b"no_service")
    reply = admin.post("/alerts/test", json={"team_id": "team-engineering"}).json()
    assert reply["ok"] is False
    [result] = reply["results"]
    assert (result["ok"], result["status"], result["error"]) == (False, 500, "HTTP 500: no_service")
    assert XXXX_NOT_IN(reply) and "B111" not in json.dumps(reply)
    assert ledger_has_no_test_alerts(proxy)
    assert "B111" not in proxy.log_text() and "XXXX" not in proxy.log_text()


def ledger_has_no_test_alerts(proxy) -> bool:
    return Ledger(proxy.ledger_path).query("SELECT COUNT(*) AS n FROM alerts")[0]["n"] == 0


def test_alerts_test_without_channels_says_what_to_configure(make_proxy):
    proxy = make_proxy({"general_settings": {"master_key": "sk-1234"}})
    reply = proxy.admin_client("sk-1234").post("/alerts/test").json()
    assert reply["ok"] is False and reply["results"] == []
    assert "litellm_settings.alerting" in reply["message"]
