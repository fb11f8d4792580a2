"""End to end: spend by client, unmetered calls and usage anomalies, made visible.

- Every row names the client application that made the call, from the real SDKs' own
  User-Agents (openai, anthropic, boto3, google-genai, groq, mistralai), curl's, and Claude Code's and Codex's
  as they send them; `/spend/report?group_by=client` and the dashboard's views add them up.
- Calls spendgate cannot meter are counted on the overview, in `/spend/report` and in
  `spendgate_unmetered_calls_total`, and logged once per path.
- A response that claims more usage than possible alerts the operator through the alert
  outbox (once per key per window) and counts in `spendgate_anomalous_calls_total`.
"""

from __future__ import annotations

import json

import anthropic
import boto3
import groq
import openai
import pytest
from alert_receivers import HttpReceiver
from e2e_helpers import Ledger
from google import genai
from mistralai.client import VERSION as mistralai_version
from test_e2e_alerts import FAST, all_sent
from test_metrics import scrape

MASTER = "sk-1234"
HI = [{"role": "user", "content": "hi"}]
CLAUDE_CODE_UA = "claude-cli/2.1.3 (external, cli)"
CODEX_UA = "codex_cli_rs/0.169.0 (Ubuntu 24.04.2 LTS; x86_64) xterm-256color"
ADMIN = {"general_settings": {"master_key": MASTER},
         "litellm_settings": {"max_budget": 100.0, "budget_duration": "30d", "success_callback": ["prometheus"]}}


def major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def by_value(rows: list[dict]) -> dict:
    return {r["group_by_value"]: r for r in rows}


@pytest.fixture
def http_receiver():
    r = HttpReceiver()
    yield r
    r.stop()


# --- spend by client ---------------------------------------------------------------------------


def test_every_call_names_its_client_and_spend_adds_up_by_client(make_proxy, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK"):
        monkeypatch.delenv(name, raising=False)
    proxy = make_proxy(ADMIN)
    ledger = Ledger(proxy.ledger_path)
    since = ledger.mark()
    proxy.openai_client().chat.completions.create(model="gpt-4o", messages=HI)
    proxy.anthropic_client().messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=HI)
    proxy.bedrock_client().converse(modelId="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                                    messages=[{"role": "user", "content": [{"text": "hi"}]}])
    proxy.genai_client(api_key="AIza-test-gemini-key-0001").models.generate_content(
        model="gemini-2.5-flash", contents="hi")
    proxy.groq_client().chat.completions.create(model="llama-3.3-70b-versatile", messages=HI, max_tokens=100)
    proxy.mistral_client().chat.complete(model="codestral-latest", messages=HI, max_tokens=100)
    curl = proxy.curl("https://api.openai.com/v1/chat/completions", "-H", "authorization: Bearer sk-test-curl",
                      "-H", "content-type: application/json",
                      "-d", json.dumps({"model": "gpt-4o-mini", "messages": HI}))
    assert curl.returncode == 0, curl.stderr
    # Claude Code and Codex as they identify themselves (their npm packages are not here)
    web = proxy.httpx_client()
    for _ in range(2):
        web.post("https://api.anthropic.com/v1/messages?beta=true", json={
            "model": "claude-sonnet-4-5", "max_tokens": 100, "messages": HI}, headers={
            "user-agent": CLAUDE_CODE_UA, "x-app": "cli", "x-api-key": "sk-ant-claude-code",
            "anthropic-version": "2023-06-01"}).raise_for_status()
    web.post("https://api.openai.com/v1/responses", json={"model": "gpt-4o", "input": "hi"}, headers={
        "user-agent": CODEX_UA, "originator": "codex_cli_rs", "authorization": "Bearer sk-test-codex",
    }).raise_for_status()

    rows = ledger.rows(since, n=10)
    expected = {
        f"openai-python/{major_minor(openai.__version__)}": 1,
        f"anthropic-python/{major_minor(anthropic.__version__)}": 1,
        f"boto3/{major_minor(boto3.__version__)}": 1,
        f"google-genai/{major_minor(genai.__version__)}": 1,
        f"groq-python/{major_minor(groq.__version__)}": 1,
        f"mistralai-python/{major_minor(mistralai_version)}": 1,
        "curl": 1, "claude-code/2.1": 2, "codex/0.169": 1,
    }
    assert {c: sum(r["client"] == c for r in rows) for c in expected} == expected
    assert all(r["status"] == "ok" and r["cost_nanos"] > 0 for r in rows)
    spend = {c: sum(r["cost_nanos"] for r in rows if r["client"] == c) for c in expected}

    admin = proxy.admin_client(MASTER)
    report = by_value(admin.get("/spend/report", params={"group_by": "client"}).json())
    assert {c: (round(r["spend"] * 1e9), r["calls"]) for c, r in report.items()} == {
        c: (spend[c], expected[c]) for c in expected}
    top = admin.get("/ui/api/top", params={"by": "client", "days": 1, "limit": 20}).json()["items"]
    assert {i["id"]: round(i["spend"] * 1e9) for i in top} == spend
    # one key's spend, broken down by client: Claude Code's key
    claude_key = next(r["key_hash"] for r in rows if r["client"] == "claude-code/2.1")
    mine = admin.get("/ui/api/top", params={"by": "client", "key": claude_key}).json()["items"]
    assert [(i["name"], i["calls"]) for i in mine] == [("claude-code/2.1", 2)]
    daily = admin.get("/ui/api/daily", params={"by": "client", "days": 1, "key": claude_key}).json()
    assert [s["name"] for s in daily["series"]] == ["claude-code/2.1"]
    calls = admin.get("/ui/api/calls", params={"key": claude_key}).json()["calls"]
    assert [c["client"] for c in calls] == ["claude-code/2.1"] * 2


# --- unmetered calls ---------------------------------------------------------------------------


def test_unmetered_calls_are_counted_everywhere_and_logged_once_per_path(make_proxy, fake_provider):
    proxy = make_proxy(ADMIN)
    ledger = Ledger(proxy.ledger_path)
    since = ledger.mark()
    web = proxy.httpx_client()
    auth = {"authorization": "Bearer sk-test-unmetered-0001"}
    for path in ("/v1/batches", "/v1/batches?after=1", "/v1/fine_tuning/jobs", "/v1/batches"):
        web.post(f"https://api.openai.com{path}", json={"model": "gpt-4o", "input_file_id": "f"}, headers=auth)
    proxy.openai_client().chat.completions.create(model="gpt-4o", messages=HI)
    rows = ledger.rows(since, n=5)
    assert sorted(r["status"] for r in rows) == ["ok"] + ["unmetered"] * 4
    assert len(fake_provider.requests()) == 5  # every one went through

    log = proxy.log_text()
    assert log.count("POST /v1/batches is not an endpoint spendgate meters") == 1
    assert log.count("POST /v1/fine_tuning/jobs is not an endpoint spendgate meters") == 1

    admin = proxy.admin_client(MASTER)
    overview = admin.get("/ui/api/overview").json()
    assert (overview["period"]["unmetered"], overview["period"]["unpriced"], overview["today"]["unmetered"]) == (4, 0, 4)
    openai_row = by_value(admin.get("/spend/report", params={"group_by": "provider"}).json())["openai"]
    assert (openai_row["calls"], openai_row["unmetered_calls"], openai_row["unpriced_calls"]) == (5, 4, 0)
    metrics = scrape(proxy, MASTER)
    assert [(labels, value) for labels, value in metrics["spendgate_unmetered_calls_total"]] == [
        ({"provider": "openai", "model": "gpt-4o"}, 4.0)]
    assert metrics.get("spendgate_unpriced_calls_total", []) == []


# --- usage anomalies ---------------------------------------------------------------------------


def impossible(client, tokens: int = 9 * 10**15):
    usage = {"prompt_tokens": tokens, "completion_tokens": 5, "total_tokens": tokens + 5}
    return client.chat.completions.create(model="gpt-4o", messages=HI, max_tokens=10,
                                          extra_headers={"x-fake-usage": json.dumps(usage)})


def test_an_impossible_usage_report_alerts_once_per_key_and_is_counted(make_proxy, http_receiver):
    config = {**ADMIN, "litellm_settings": {
        **ADMIN["litellm_settings"], "alerting": ["slack", "webhook"],
        "slack_webhook_url": http_receiver.url("/slack"), "webhook_url": http_receiver.url("/hook")}}
    proxy = make_proxy(config, **FAST)
    ledger = Ledger(proxy.ledger_path)
    since = ledger.mark()
    alpha, beta = proxy.openai_client(api_key="sk-test-alpha-0001"), proxy.openai_client(api_key="sk-test-beta-0002")
    impossible(alpha)
    impossible(alpha, 2**63)  # the same key within the hour: on the record, not alerted again
    impossible(beta)
    alpha.chat.completions.create(model="gpt-4o", messages=HI)  # an honest call
    rows = ledger.rows(since, n=4)
    assert sum(r["anomaly"] is not None for r in rows) == 3

    deliveries = all_sent(ledger, 4)  # two alerts (alpha's, beta's), each on two channels
    assert {(d["event"], d["scope_kind"]) for d in deliveries} == {("usage_anomaly", "key")}
    hooks = http_receiver.bodies("/hook")
    assert sorted(h["key"] for h in hooks) == ["sk-te...0001", "sk-te...0002"]
    first = next(h for h in hooks if h["key"] == "sk-te...0001")
    assert first["event"] == "usage_anomaly" and first["scope"] == "key"
    assert first["anomaly"]["reported"] == {"input_tokens": 9 * 10**15}
    assert first["anomaly"]["recorded"] == {"input_tokens": 128_000}  # gpt-4o's context window
    assert (first["anomaly"]["provider"], first["anomaly"]["model"]) == ("openai", "gpt-4o")
    assert first["anomaly"]["call_id"] in {r["uid"] for r in rows}
    slack = [p["json"]["text"] for p in http_receiver.posts("/slack")]
    assert len(slack) == 2 and all(t.startswith("⚠️ Usage Anomaly\nKey: sk-te...") for t in slack)
    assert all(p["headers"]["x-spendgate-event"] == "usage_anomaly" for p in http_receiver.posts())

    admin = proxy.admin_client(MASTER)
    assert admin.get("/ui/api/overview").json()["period"]["anomalous"] == 3
    listed = admin.get("/alerts").json()["alerts"]
    assert sorted(a["event"] for a in listed) == ["usage_anomaly"] * 2
    calls = admin.get("/ui/api/calls").json()["calls"]
    assert sorted(json.dumps(c["anomaly"]) for c in calls if c["anomaly"]) == sorted(
        [json.dumps({"input_tokens": 9 * 10**15})] * 2 + [json.dumps({"input_tokens": 2**63})])
    metrics = scrape(proxy, MASTER)
    assert sum(v for _, v in metrics["spendgate_anomalous_calls_total"]) == 3
    assert len(http_receiver.posts()) == 4  # every delivery is sent: nothing more can arrive
