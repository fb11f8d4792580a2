"""Payloads, secrets and the delivery loop, without mitmdump.

The renderers are checked against the seed's examples; the SMTP policy (STARTTLS, AUTH only
over TLS) against aiosmtpd on loopback; the delivery loop against a real ledger file and a
real HTTP receiver, with a controllable clock for the give-up rule.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from alert_receivers import HttpReceiver, SmtpReceiver, self_signed_cert

from alerts import channels, outbox, render
from alerts.delivery import AlertDelivery, DeliverySettings, RetryPolicy
from alerts.events import (
    BUDGET_ALERT,
    BUDGET_EXCEEDED,
    PROJECTED_SPEND_ALERT,
    SOFT_BUDGET_ALERT,
    USAGE_ANOMALY,
    Alert,
    Subject,
)
from alerts.rules import Candidate
from config.load import parse_config
from ledger import SQLiteLedger

USD = 1_000_000_000
RAISED = datetime(2024, 4, 15, 10, 30, tzinfo=UTC)
RESET = datetime(2024, 5, 15, 10, 30, tzinfo=UTC)
KEY = Subject(label="production-key", key_masked="sk-1234...abcd", key_alias="production-key",
              team_id="team-backend", user_id="john@example.com",
              metadata={"environment": "production", "team": "backend"}, route_team="team-backend")


def seed_alert(event=BUDGET_ALERT, spend=82.45, **kw) -> Alert:
    fields = dict(event=event, scope="key", scope_id="hash", level="0.8", threshold=0.8, period_start=RESET - timedelta(days=30),
                  reset_at=RESET, max_nanos=100 * USD, soft_nanos=None, spend_nanos=round(spend * USD),
                  raised_at=RAISED, subject=KEY)
    fields.update(kw)
    return Alert(**fields)


# --- payloads ----------------------------------------------------------------------------------


def test_slack_text_is_the_seeds_alert_line_by_line():
    body = render.slack(seed_alert())
    assert body["text"] == (
        "🚨 Budget Alert\n"
        "Key: sk-1234...abcd (production-key)\n"
        "Spend: $82.45 / $100.00 (82%)\n"
        "Budget Reset: 2024-05-15 10:30:00 UTC\n"
        "Consider increasing budget or optimizing usage."
    )
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "🚨 Budget Alert",
                                                            "emoji": True}}
    assert {"type": "mrkdwn", "text": "*Spend:*\n$82.45 / $100.00 (82%)"} in body["blocks"][1]["fields"]


def test_webhook_payload_is_the_seeds_plus_scope_and_owners():
    assert render.webhook(seed_alert()) == {
        "event": "budget_alert",
        "timestamp": "2024-04-15T10:30:00Z",
        "key": "sk-1234...abcd",
        "key_alias": "production-key",
        "spend": 82.45,
        "max_budget": 100.0,
        "budget_threshold": 80.0,
        "percentage": 0.8245,
        "budget_reset_at": "2024-05-15T10:30:00Z",
        "metadata": {"environment": "production", "team": "backend"},
        "scope": "key",
        "team_id": "team-backend",
        "user_id": "john@example.com",
    }


def test_each_event_says_what_happened():
    soft = seed_alert(SOFT_BUDGET_ALERT, level=f"soft={80 * USD}", soft_nanos=80 * USD)
    assert "Soft budget of $80.00 reached (requests are not blocked)." in render.slack(soft)["text"]
    assert render.webhook(soft)["budget_threshold"] == 80.0
    over = seed_alert(BUDGET_EXCEEDED, spend=100.5, level="1", threshold=1.0)
    assert render.webhook(over)["budget_threshold"] == 100.0
    assert "Spend: $100.50 / $100.00 (100%)\nBudget exceeded:" in render.slack(over)["text"]
    proj = seed_alert(PROJECTED_SPEND_ALERT, spend=40, level="0.9", threshold=0.9, projected_nanos=200 * USD,
                      exhausted_at=datetime(2024, 4, 30, 10, 30, tzinfo=UTC))
    assert ("Projected spend: $200.00 by the reset (200% of budget); at this rate the budget runs out "
            "2024-04-30 10:30:00 UTC.") in render.slack(proj)["text"]
    hook = render.webhook(proj)
    assert (hook["projected_spend"], hook["projected_exhausted_at"]) == (200.0, "2024-04-30T10:30:00Z")


def test_other_scopes_are_named_by_their_label():
    team = seed_alert(scope="team", scope_id="team-eng", subject=Subject(label="engineering", team_id="team-eng"))
    assert render.slack(team)["text"].split("\n")[1] == "Team: engineering (team-eng)"
    assert render.webhook(team)["key"] == "engineering" and render.webhook(team)["team_id"] == "team-eng"
    glob = seed_alert(scope="global", scope_id="global", subject=Subject(label="global"), reset_at=None)
    assert render.slack(glob)["text"].split("\n")[1:4:2] == ["Proxy: global budget", "Budget Reset: never"]


def test_sub_dollar_budgets_keep_four_decimals_and_percent_rounds_down():
    small = seed_alert(spend=0.00724, max_nanos=7_300_000)
    assert "Spend: $0.0072 / $0.0073 (99%)" in render.slack(small)["text"]  # 99.2 %
    assert render.percent(seed_alert(spend=99.999)) == 99  # not "100%" before it is spent


def test_email_has_a_text_and_an_html_part():
    msg = channels.email_message(seed_alert(), "alerts@example.com", ["a@example.com", "b@example.com"], "uid-1")
    assert msg["To"] == "a@example.com, b@example.com" and msg["X-Spendgate-Alert-Id"] == "uid-1"
    assert msg["Subject"] == "🚨 Budget Alert: Key: sk-1234...abcd (production-key) at 82% of $100.00"
    assert msg.get_body(("plain",)).get_content().startswith("🚨 Budget Alert\n")
    html = msg.get_body(("html",)).get_content()
    assert "<td>$82.45 / $100.00 (82%)</td>" in html and "<script" not in html


def anomaly_alert(**kw) -> Alert:
    facts = {"call_id": "0123abcd", "provider": "openai", "model": "gpt-4o", "path": "/v1/chat/completions",
             "reported": {"input_tokens": 9 * 10**15}, "recorded": {"input_tokens": 128_000}}
    return seed_alert(USAGE_ANOMALY, spend=12, level="window", threshold=None, anomaly=facts, **kw)


def test_a_usage_anomaly_says_which_call_and_what_it_claimed():
    a = anomaly_alert()
    text = render.slack(a)["text"].split("\n")
    assert text[:4] == ["⚠️ Usage Anomaly", "Key: sk-1234...abcd (production-key)",
                        "Call: openai gpt-4o /v1/chat/completions (id 0123abcd)",
                        "Reported → recorded: input_tokens 9,000,000,000,000,000 → 128,000"]
    assert "Spend: $12.00 / $100.00 (12%)" in text and "Budget Reset" not in render.slack(a)["text"]
    hook = render.webhook(a)
    assert (hook["event"], hook["anomaly"], hook["budget_threshold"]) == ("usage_anomaly", a.anomaly, None)
    msg = channels.email_message(a, "alerts@example.com", ["a@example.com"], "uid-2")
    assert msg["Subject"] == "⚠️ Usage Anomaly: Key: sk-1234...abcd (production-key) (openai gpt-4o)"
    assert "<td>input_tokens 9,000,000,000,000,000 → 128,000</td>" in msg.get_body(("html",)).get_content()
    assert Alert.from_json(a.to_json()) == a  # the outbox keeps it whole


# --- secrets ------------------------------------------------------------------------------------


def test_urls_are_masked_to_scheme_and_host():
    assert channels.mask_url("https://hooks.slack.com/services/T000/B000/XXXX") == "https://hooks.slack.com/…"
    assert channels.mask_url("http://127.0.0.1:8080/hook?token=abc") == "http://127.0.0.1:8080/…"
    url = "https://hooks.slack.com/services/T000/B000/XXXX"
    assert channels.scrub(f"error for url '{url}' at /services/T000/B000/XXXX", url) == (
        "error for url 'https://hooks.slack.com/…' at /…")


def test_slack_alert_to_webhook_url_is_used_when_slack_webhook_url_is_not_set():
    routing = parse_config({"litellm_settings": {
        "alerting": ["slack"], "slack_alert_to_webhook_url": "https://hooks.slack.com/services/T/B/Z"}}
    ).litellm_settings.alerts_for(None)
    assert channels.slack_url(routing) == "https://hooks.slack.com/services/T/B/Z"
    assert channels.destination("slack", routing, settings()) == "https://hooks.slack.com/…"


# --- SMTP -------------------------------------------------------------------------------------


def settings(**litellm):
    return parse_config({"litellm_settings": litellm}).litellm_settings


@pytest.fixture
def tls(tmp_path):
    cert, key = self_signed_cert(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    return server_ctx, ssl.create_default_context(cafile=str(cert))


def test_smtp_upgrades_with_starttls_and_logs_in(tls):
    server_ctx, client_ctx = tls
    server = SmtpReceiver(tls_context=server_ctx, auth=("u", "pw"))
    try:
        s = settings(smtp_host="127.0.0.1", smtp_port=server.port, smtp_user="u", smtp_password="pw",
                     smtp_sender="alerts@example.com")
        result = asyncio.run(channels.send_email(s, ["a@example.com"], seed_alert(), "uid", 5, client_ctx))
        assert result.ok, result
        [mail] = server.wait_for(1)
        assert mail["tls"] and mail["authenticated"] and mail["mail_from"] == "alerts@example.com"
    finally:
        server.stop()


def test_smtp_wrong_password_is_reported_without_the_password(tls):
    server_ctx, client_ctx = tls
    server = SmtpReceiver(tls_context=server_ctx, auth=("u", "pw"))
    try:
        s = settings(smtp_host="127.0.0.1", smtp_port=server.port, smtp_user="u", smtp_password="wrong-pw")
        result = asyncio.run(channels.send_email(s, ["a@example.com"], seed_alert(), "uid", 5, client_ctx))
        assert not result.ok and result.error.startswith("SMTP 535") and "wrong-pw" not in result.error
    finally:
        server.stop()


def test_port_587_refuses_a_server_without_starttls(monkeypatch):
    """The submission port always upgrades; a server that can't is not sent the alert in clear.
    (The connection is redirected from 587 to a plain loopback server on a free port.)"""
    server = SmtpReceiver()
    real_smtp = smtplib.SMTP

    class Redirect(real_smtp):
        def __init__(self, host, port, **kw):
            super().__init__(host, server.port if port == 587 else port, **kw)

    monkeypatch.setattr(channels.smtplib, "SMTP", Redirect)
    try:
        s = settings(smtp_host="127.0.0.1", smtp_port=587)
        result = asyncio.run(channels.send_email(s, ["a@example.com"], seed_alert(), "uid", 5))
        assert not result.ok and "does not offer STARTTLS" in result.error
        assert server.messages == []
        s = settings(smtp_host="127.0.0.1", smtp_port=server.port)  # another port: plain is allowed
        assert asyncio.run(channels.send_email(s, ["a@example.com"], seed_alert(), "uid", 5)).ok
    finally:
        server.stop()


# --- the delivery loop --------------------------------------------------------------------------


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def receiver():
    r = HttpReceiver()
    yield r
    r.stop()


def runtime(tmp_path, receiver, **litellm):
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    ledger.open_sync()
    config = parse_config({"litellm_settings": {"alerting": ["webhook"], "webhook_url": receiver.url("/h"),
                                                **litellm}})
    return SimpleNamespace(ledger=ledger, config=config, directory=SimpleNamespace(keys={}, teams={}, users={}))


def test_a_delivery_is_retried_then_given_up_after_a_day(tmp_path, receiver):
    receiver.answer(503, b"maintenance")
    rt = runtime(tmp_path, receiver)
    now = datetime.now(UTC)
    clock = Clock(now)
    d = AlertDelivery(lambda: rt, DeliverySettings(retry=RetryPolicy(base=1, cap=300, give_up_after=86400)), clock)

    async def scenario():
        await rt.ledger.write(outbox.enqueue, [Candidate(seed_alert(raised_at=now), ("webhook",))], now)
        [c] = await rt.ledger.write(outbox.claim, d.owner, now, timedelta(seconds=60), 10)
        await d.deliver(rt, c)
        clock.now = now + timedelta(hours=23, minutes=59)
        [c] = await rt.ledger.write(outbox.claim, d.owner, clock.now, timedelta(seconds=60), 10)
        await d.deliver(rt, c)  # still within the day: retried
        clock.now = now + timedelta(days=1, minutes=5)
        [c] = await rt.ledger.write(outbox.claim, d.owner, clock.now, timedelta(seconds=60), 10)
        await d.deliver(rt, c)  # a day old: given up
        await d.stop()
        return await rt.ledger.read(outbox.recent, 10, None)

    [row] = asyncio.run(scenario())
    rt.ledger.close_sync()
    [delivery] = row["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("failed", 3, "HTTP 503: maintenance")
    assert d.deliveries_total == {("webhook", "failed"): 2, ("webhook", "gave_up"): 1}
    assert len(receiver.refused) == 3


def test_a_channel_removed_from_the_config_is_dropped_not_retried(tmp_path, receiver):
    rt = runtime(tmp_path, receiver)
    d = AlertDelivery(lambda: rt)
    now = datetime.now(UTC)

    async def scenario():
        await rt.ledger.write(outbox.enqueue, [Candidate(seed_alert(raised_at=now), ("slack", "webhook"))], now)
        d.start()
        d.wake()
        for _ in range(200):
            if (await rt.ledger.read(outbox.counts)).keys() <= {"sent", "dropped"}:
                break
            await asyncio.sleep(0.02)
        await d.stop()
        return await rt.ledger.read(outbox.counts)

    assert asyncio.run(scenario()) == {"sent": 1, "dropped": 1}
    rt.ledger.close_sync()
    assert [b["event"] for b in receiver.bodies("/h")] == ["budget_alert"]
    assert d.deliveries_total == {("webhook", "sent"): 1, ("slack", "dropped"): 1}
