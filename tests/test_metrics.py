"""End to end: `/metrics` after real traffic through mitmdump, checked against the ledger.

The seed's PromQL queries are evaluated in Python over the scraped text, with the
label matching Prometheus does for `a / b`. Then the proxy is restarted on the same
ledger (with `metrics_require_auth` on) and, before any traffic, every ledger-derived
series must read exactly as before.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import httpx
import openai
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from metering.credentials import key_hash, mask
from alert_receivers import HttpReceiver
from e2e_helpers import start_proxy, wait_for
from ledger import BudgetSpec, usd_to_nanos
from ledger.directory import KeyRecord, TeamRecord, UserRecord
from ledger.sqlite import SQLiteStore

MASTER = "sk-master-metrics"
ALPHA = "sk-alpha-0000000000000001"  # team eng, user alice, $0.0175 budget: two calls → 83 %
BETA = "sk-beta-00000000000000002"  # no budget, no alias: labelled by its masked form
TINY = "sk-tiny-00000000000000003"  # a budget smaller than one call's estimate: blocked
NARROW = "sk-narrow-000000000000004"  # may only call gpt-3.5-turbo
CALL_NANOS = 7_250_000  # gpt-4o at the fake's default usage
CONFIG = {
    "litellm_settings": {"success_callback": ["prometheus"], "max_budget": 100.0, "budget_duration": "30d"},
    "general_settings": {"master_key": MASTER},
    "providers": {"openai": {"api_key": "sk-real-upstream"}, "anthropic": {"api_key": "sk-ant-real"}},
}


def seed_directory(path) -> None:
    """Keys, a team and a user written straight into the ledger before the proxy starts,
    so these tests need nothing from the key-management endpoints."""
    store = SQLiteStore(path)
    store.migrate()
    now = datetime.now(UTC)
    store.save(TeamRecord(team_id="team-eng", team_alias="engineering"), BudgetSpec(usd_to_nanos(1.0)), now)
    store.save(TeamRecord(team_id="team-mkt", team_alias="marketing"), None, now)
    store.save(UserRecord(user_id="alice@example.com", team_id="team-eng"), BudgetSpec(usd_to_nanos(5.0)), now)
    for raw, alias, budget, models in [
        (ALPHA, "alpha", 0.0175, []), (BETA, None, None, []), (TINY, "tiny", 0.0001, []),
        (NARROW, "narrow", None, ["gpt-3.5-turbo"]),
    ]:
        rec = KeyRecord(hash=key_hash(raw), key_masked=mask(raw), key_alias=alias, issued=True, models=models,
                        team_id="team-eng" if raw == ALPHA else None,
                        user_id="alice@example.com" if raw == ALPHA else None)
        store.save(rec, BudgetSpec(usd_to_nanos(budget)) if budget is not None else None, now)
    store.close()


def scrape(proxy, token: str | None = MASTER) -> dict[str, list[tuple[dict[str, str], float]]]:
    """sample name → [(labels, value)], the way PromQL sees the series."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(f"{proxy.admin_url}/metrics", headers=headers, trust_env=False, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def divide(a, b):
    """PromQL `a / b`: one-to-one on identical label sets; unmatched series drop out."""
    right = {frozenset(labels.items()): value for labels, value in b}
    return [(labels, value / right[frozenset(labels.items())])
            for labels, value in a if frozenset(labels.items()) in right]


def sum_by(samples, *labels):
    out: dict[tuple, float] = {}
    for lab, value in samples:
        key = tuple(lab.get(n, "") for n in labels)
        out[key] = out.get(key, 0.0) + value
    return out


PER_PROCESS = ("spendgate_added_latency", "spendgate_alert_deliveries_total")


def ledger_derived(m) -> dict:
    """Every series whose value comes from the ledger (not this process's own counters)."""
    return {name: sorted((sorted(labels.items()), value) for labels, value in samples)
            for name, samples in m.items() if not name.startswith(PER_PROCESS)}


@pytest.fixture(scope="module")
def traffic(fake_provider_session, tmp_path_factory):
    """One proxy, a fixed mix of calls; yields (proxy, ledger, scraped metrics, outcomes)."""
    workdir = tmp_path_factory.mktemp("metrics")
    seed_directory(workdir / "ledger.db")
    receiver = HttpReceiver()  # alert webhooks: key alpha passes 50 % of its budget
    config = {**CONFIG, "litellm_settings": {**CONFIG["litellm_settings"], "alerting": ["webhook"],
                                             "alerting_threshold": 0.5, "webhook_url": receiver.url("/hook")}}
    proxy = start_proxy(fake_provider_session.url, workdir, config)
    proxy.receiver = receiver
    outcomes = {"ok": 0, "blocked": 0}

    def chat(key, model="gpt-4o"):
        try:
            proxy.openai_client(api_key=key).chat.completions.create(
                model=model, max_tokens=100, messages=[{"role": "user", "content": "hi"}])
            outcomes["ok"] += 1
        except (openai.RateLimitError, openai.PermissionDeniedError):
            outcomes["blocked"] += 1

    try:
        chat(ALPHA)
        chat(ALPHA)
        chat(BETA)
        chat(BETA, model="my-inhouse-model")  # unpriced
        chat(TINY)  # budget_exceeded
        chat(NARROW)  # key_model_access_denied
        with proxy.anthropic_client(api_key="sk-ant-developer-own-key-77") as client:
            client.messages.create(model="claude-sonnet-4-5", max_tokens=100,
                                   messages=[{"role": "user", "content": "hi"}])
        outcomes["ok"] += 1
        ledger = proxy.ledger
        assert wait_for(lambda: len(ledger.query("SELECT id FROM calls")) == 7)
        assert wait_for(lambda: ledger.query("SELECT SUM(reserved_nanos) AS r FROM budgets")[0]["r"] == 0)
        assert wait_for(lambda: receiver.received and not ledger.query(
            "SELECT id FROM alert_deliveries WHERE status != 'sent'"))
        yield proxy, ledger, scrape(proxy), outcomes
    finally:
        proxy.stop()
        receiver.stop()


def test_the_traffic_went_as_planned(traffic):
    _, ledger, _, outcomes = traffic
    assert outcomes == {"ok": 5, "blocked": 2}
    assert ledger.query("SELECT COUNT(*) AS n FROM calls WHERE cost_nanos IS NULL")[0]["n"] == 1


def test_spend_total_matches_the_ledger_by_model_and_in_sum(traffic):
    _, ledger, m, _ = traffic
    spend = m["litellm_spend_total"]
    total = ledger.query("SELECT SUM(cost_nanos) AS s FROM calls WHERE status != 'blocked'")[0]["s"]
    # sum(litellm_spend_total)
    assert math.isclose(sum(v for _, v in spend), total / 1e9, rel_tol=1e-12)
    # sum by (model) (litellm_spend_total)
    by_model = {(r["model"],): (r["s"] or 0) / 1e9 for r in ledger.query(
        "SELECT model, SUM(cost_nanos) AS s FROM calls WHERE status != 'blocked' GROUP BY model")}
    got = sum_by(spend, "model")
    assert got.keys() == by_model.keys() == {("gpt-4o",), ("my-inhouse-model",), ("claude-sonnet-4-5",)}
    for model, usd in by_model.items():
        assert math.isclose(got[model], usd, rel_tol=1e-12, abs_tol=1e-15), model
    assert math.isclose(got[("gpt-4o",)], 3 * CALL_NANOS / 1e9)


def test_spend_total_labels_name_the_model_provider_team_user_and_key(traffic):
    _, _, m, _ = traffic
    labels = {tuple(sorted(lab.items())) for lab, _ in m["litellm_spend_total"]}
    assert tuple(sorted({"model": "gpt-4o", "provider": "openai", "team": "team-eng",
                         "user": "alice@example.com", "key": "alpha"}.items())) in labels
    keys = {lab["key"] for lab, _ in m["litellm_spend_total"]}
    assert keys == {"alpha", mask(BETA), "sk-an...y-77"}  # alias, else the masked fingerprint
    assert not any(raw in str(m) for raw in (ALPHA, BETA, "sk-ant-developer-own-key-77"))


def test_keys_approaching_their_budget_query(traffic):
    """litellm_key_spend / litellm_key_budget > 0.8"""
    _, _, m, _ = traffic
    ratios = divide(m["litellm_key_spend"], m["litellm_key_budget"])
    assert {lab["key"] for lab, _ in ratios} == {"alpha", "tiny"}  # only keys with a budget
    hot = [(lab, r) for lab, r in ratios if r > 0.8]
    assert [lab["key"] for lab, _ in hot] == ["alpha"]
    assert hot[0][0]["key_hash"] == key_hash(ALPHA)
    assert math.isclose(hot[0][1], 2 * CALL_NANOS / usd_to_nanos(0.0175))


def test_budget_gauges_agree_with_the_budgets_table_and_skip_scopes_without_one(traffic):
    _, ledger, m, _ = traffic
    rows = {(r["kind"], r["id"]): r for r in ledger.query("SELECT * FROM budgets")}
    remaining = {(lab["scope"], lab["id"]): v for lab, v in m["litellm_budget_remaining"]}
    budgeted = {k for k, r in rows.items() if r["max_nanos"] is not None}
    assert remaining.keys() == budgeted
    for ref in budgeted:
        r = rows[ref]
        assert math.isclose(remaining[ref], (r["max_nanos"] - r["spend_nanos"]) / 1e9, abs_tol=1e-12), ref
    assert math.isclose(remaining[("global", "global")], 100 - (3 * CALL_NANOS + 10_035_000) / 1e9)
    team = {lab["team_alias"]: v for lab, v in m["litellm_team_spend"]}
    assert team == {"engineering": 2 * CALL_NANOS / 1e9, "marketing": 0.0}
    assert {lab["team_alias"] for lab, _ in m["litellm_team_budget"]} == {"engineering"}
    users = {lab["user"]: v for lab, v in m["litellm_user_spend"]}
    assert users == {"alice@example.com": 2 * CALL_NANOS / 1e9}
    key_spend = {lab["key"]: v for lab, v in m["litellm_key_spend"]}
    assert key_spend[mask(BETA)] == CALL_NANOS / 1e9 and key_spend["narrow"] == 0.0
    for name, samples in m.items():
        assert all(math.isfinite(v) for _, v in samples), name  # never +Inf or NaN


def test_call_counters_match_the_ledger(traffic):
    _, ledger, m, _ = traffic
    calls = {(lab["model"], lab["status"]): v for lab, v in m["spendgate_calls_total"]}
    assert calls == {("gpt-4o", "ok"): 3, ("my-inhouse-model", "unpriced"): 1, ("claude-sonnet-4-5", "ok"): 1}
    blocked = {lab["reason"]: v for lab, v in m["spendgate_blocked_calls_total"]}
    assert blocked == {"budget_exceeded": 1, "key_model_access_denied": 1}
    assert {lab["model"]: v for lab, v in m["spendgate_unpriced_calls_total"]} == {"my-inhouse-model": 1}
    tokens = sum_by(m["spendgate_tokens_total"], "class")
    [t] = ledger.query("SELECT SUM(input_tokens) i, SUM(cache_read_tokens) cr, SUM(cache_write_tokens) cw,"
                       " SUM(output_tokens) o, SUM(reasoning_tokens) r FROM calls WHERE status != 'blocked'")
    assert tokens == {("input",): t["i"], ("cache_read",): t["cr"], ("cache_write",): t["cw"],
                      ("output",): t["o"], ("reasoning",): t["r"]}


def test_alert_deliveries_by_channel_and_outcome(traffic):
    proxy, ledger, m, _ = traffic
    sent = len(proxy.receiver.received)
    assert sent >= 1
    assert {(lab["channel"], lab["outcome"]): v for lab, v in m["spendgate_alert_deliveries_total"]} == {
        ("webhook", "sent"): sent}
    assert {(lab["channel"], lab["status"]): v for lab, v in m["spendgate_alert_outbox"]} == {("webhook", "sent"): sent}
    assert any(a["json"]["key_alias"] == "alpha" for a in proxy.receiver.received)


def test_added_latency_is_observed_for_each_metered_call(traffic):
    _, _, m, _ = traffic
    count = {lab["phase"]: v for lab, v in m["spendgate_added_latency_seconds_count"]}
    assert count["request"] == 7  # five forwarded, two refused by spendgate
    assert count["response"] == 5
    total = {lab["phase"]: v for lab, v in m["spendgate_added_latency_seconds_sum"]}
    assert 0 < total["request"] < 7 * 1.0


def test_after_a_restart_values_are_unchanged_and_auth_is_enforced(traffic, fake_provider_session, tmp_path):
    proxy, ledger, before, _ = traffic
    config = {**CONFIG, "general_settings": {**CONFIG["general_settings"], "metrics_require_auth": True,
                                             "database_url": f"sqlite:///{ledger.path}"}}
    again = start_proxy(fake_provider_session.url, tmp_path / "again", config)
    try:
        r = httpx.get(f"{again.admin_url}/metrics", trust_env=False)
        assert r.status_code == 401 and "master_key" in r.json()["error"]["message"]
        r = httpx.get(f"{again.admin_url}/metrics", headers={"Authorization": "Bearer wrong"}, trust_env=False)
        assert r.status_code == 401
        after = scrape(again)
        assert ledger_derived(after) == ledger_derived(before)
        assert "spendgate_alert_outbox" in after
        om = httpx.get(f"{again.admin_url}/metrics", trust_env=False, headers={
            "Authorization": f"Bearer {MASTER}", "Accept": "application/openmetrics-text; version=1.0.0"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n")
        families = {f.name for f in openmetrics_families(om.text)}
        assert {"litellm_spend", "litellm_key_spend", "litellm_budget_remaining"} <= families
        assert {lab["phase"]: v for lab, v in after["spendgate_added_latency_seconds_count"]}.get("request", 0) == 0
    finally:
        again.stop()


def test_metrics_are_off_without_the_prometheus_callback(fake_provider_session, tmp_path):
    proxy = start_proxy(fake_provider_session.url, tmp_path, {"general_settings": {"master_key": MASTER}})
    try:
        r = httpx.get(f"{proxy.admin_url}/metrics", trust_env=False)
        assert r.status_code == 404 and "success_callback" in r.json()["error"]["message"]
    finally:
        proxy.stop()
