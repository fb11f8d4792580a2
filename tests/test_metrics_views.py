"""The ledger reads behind /metrics and the admin UI (ledger/views_metrics.py,
ledger/views_ui.py), without a proxy, on SQLite and on PostgreSQL.

Money is in integer nano-dollars, so every figure below is exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts import outbox
from core.usage import TokenUsage
from ledger import views_metrics as vm
from ledger import views_ui as vu
from ledger.directory import KeyRecord, TeamRecord, UserRecord
from ledger.model import BudgetSpec, CallRecord, ScopeRef

USD = 1_000_000_000
T0 = datetime(2026, 11, 1, 10, 30, tzinfo=UTC)


def call(cost, at=T0, *, model="gpt-4o", key="k1", alias=None, team=None, user=None, status="ok", error=None,
         metadata=None):
    return CallRecord(started_at=at, finished_at=at, provider="openai", endpoint="chat", path="/v1/chat/completions",
                      model=model, cost_nanos=cost, key_hash=key, key_masked=f"sk-{key}...", key_alias=alias,
                      team_id=team, user_id=user, status=status, error=error, metadata=metadata or {},
                      usage=TokenUsage(input_tokens=100, cache_read_tokens=20, output_tokens=50, reasoning_tokens=10))


def settle(store, rec):
    refs = [ScopeRef.global_()] + [ScopeRef(k, v) for k, v in
                                   (("team", rec.team_id), ("user", rec.user_id), ("key", rec.key_hash)) if v]
    store.settle(None, refs, rec, rec.finished_at)


def test_call_totals_aggregate_new_rows_only(store):
    settle(store, call(3 * USD, alias="alpha", team="t1", user="u1"))
    settle(store, call(2 * USD, T0 + timedelta(minutes=1), alias="alpha", team="t1", user="u1"))
    settle(store, call(None, T0 + timedelta(minutes=2), model="mystery", status="unpriced"))
    store.record(call(0, T0 + timedelta(minutes=3), status="blocked", error="budget_exceeded"))
    batch = vm.call_totals(store, 0)
    groups = {(g.model, g.status, g.key): g for g in batch.groups}
    alpha = groups[("gpt-4o", "ok", "alpha")]
    assert (alpha.calls, alpha.cost_nanos, alpha.team, alpha.user, alpha.tokens) == (
        2, 5 * USD, "t1", "u1", (200, 40, 0, 100, 20))
    unpriced = groups[("mystery", "unpriced", "sk-k1...")]  # no alias: the masked key
    assert (unpriced.calls, unpriced.cost_nanos, unpriced.unpriced) == (1, 0, 1)
    assert groups[("gpt-4o", "blocked", "sk-k1...")].error == "budget_exceeded"
    assert vm.call_totals(store, batch.last_id).groups == []  # nothing new
    settle(store, call(USD, T0 + timedelta(minutes=4), alias="alpha", team="t1", user="u1"))
    [new] = vm.call_totals(store, batch.last_id).groups
    assert (new.calls, new.cost_nanos) == (1, USD)


def test_budget_snapshot_lists_every_scope_and_only_budgets_that_exist(store):
    store.configure(ScopeRef.global_(), BudgetSpec(100 * USD, None, "30d"), T0)
    store.save(TeamRecord(team_id="t1", team_alias="engineering"), BudgetSpec(10 * USD, 8 * USD, "30d"), T0)
    store.save(UserRecord(user_id="u1"), None, T0)
    store.save(KeyRecord(hash="k1", key_masked="sk-k1...", key_alias="alpha", issued=True),
               BudgetSpec(5 * USD, None, "1d"), T0)
    store.save(KeyRecord(hash="k2", key_masked="sk-k2...", issued=True), None, T0)
    store.save(KeyRecord(hash="k3", key_masked="sk-k3...", issued=True), BudgetSpec(USD), T0)
    store.remove(KeyRecord, "k3", T0)  # deleted: gone from the gauges
    settle(store, call(2 * USD, T0 + timedelta(hours=1), key="k1", team="t1", user="u2"))  # u2: no users row
    snap = {(s.kind, s.id): s for s in vm.budget_snapshot(store, T0 + timedelta(hours=2)).scopes}
    assert set(snap) == {("global", "global"), ("team", "t1"), ("user", "u1"), ("user", "u2"),
                         ("key", "k1"), ("key", "k2")}
    assert (snap[("key", "k1")].name, snap[("key", "k1")].spend_nanos, snap[("key", "k1")].max_nanos) == (
        "alpha", 2 * USD, 5 * USD)
    assert (snap[("key", "k2")].name, snap[("key", "k2")].max_nanos) == ("sk-k2...", None)
    assert (snap[("team", "t1")].name, snap[("team", "t1")].soft_nanos) == ("engineering", 8 * USD)
    assert snap[("user", "u2")].spend_nanos == 2 * USD and snap[("user", "u1")].spend_nanos == 0
    assert snap[("global", "global")].spend_nanos == 2 * USD
    later = {(s.kind, s.id): s for s in vm.budget_snapshot(store, T0 + timedelta(days=1, hours=1)).scopes}
    assert later[("key", "k1")].spend_nanos == 0  # its day ended: read as a new period, nothing written
    assert later[("team", "t1")].spend_nanos == 2 * USD


def test_alert_outbox_starts_empty(store):
    assert outbox.counts_by_channel(store) == {}


def test_ui_views_window_days_top_and_recent_calls(store):
    store.save(KeyRecord(hash="k1", key_masked="sk-k1...", issued=True), None, T0)
    day1, day2 = T0, T0 + timedelta(days=1)
    settle(store, call(3 * USD, day1, model="gpt-4o", team="t1", metadata={"project": "chatbot"}))
    settle(store, call(USD, day1 + timedelta(hours=1), model="claude", key="k2", team="t2"))
    settle(store, call(2 * USD, day2, model="gpt-4o", team="t1"))
    settle(store, call(None, day2 + timedelta(minutes=5), model="mystery", status="unpriced"))
    store.record(call(0, day2 + timedelta(minutes=6), status="blocked", error="budget_exceeded"))
    w = vu.window(store, day2)
    assert (w.spend_nanos, w.calls, w.blocked, w.unpriced) == (2 * USD, 2, 1, 1)
    assert vu.window(store, None).spend_nanos == 6 * USD
    assert vu.counts(store) == {"keys": 2, "teams": 0, "users": 0}  # k2 registered by its first call
    assert vu.daily_spend(store, day1, "model") == [
        ("2026-11-01", "claude", USD), ("2026-11-01", "gpt-4o", 3 * USD),
        ("2026-11-02", "gpt-4o", 2 * USD), ("2026-11-02", "mystery", 0)]
    assert vu.daily_spend(store, day1, "team", ("key", "k2")) == [("2026-11-01", "t2", USD)]
    assert vu.top_spenders(store, day1, "team", 10) == [("t1", 5 * USD, 2), ("t2", USD, 1)]
    recent = vu.recent_calls(store, ("team", "t1"), 10)
    assert [c["cost_nanos"] for c in recent] == [2 * USD, 3 * USD]  # newest first
    assert recent[1]["metadata"] == {"project": "chatbot"}
    assert len(vu.recent_calls(store, None, 3)) == 3
    assert vu.days_back(datetime(2026, 11, 30, 15, tzinfo=UTC), 30) == datetime(2026, 11, 1, tzinfo=UTC)


def test_clients_unmetered_and_anomalous_calls_are_counted_apart(store):
    """By client: the spend per client application, for everything and for one key. An
    unmetered call has an unknown cost, yet it is not unpriced (nothing to price); an
    anomalous one is counted wherever it was charged."""
    rows = [
        call(3 * USD, T0, key="k1"), call(USD, T0 + timedelta(minutes=1), key="k2"),
        call(2 * USD, T0 + timedelta(minutes=2), key="k1"),
        call(None, T0 + timedelta(minutes=3), key="k1", status="unmetered", model=None),
        call(None, T0 + timedelta(minutes=4), model="mystery", status="unpriced"),
    ]
    for rec, client in zip(rows, ["claude-code/2.1", "codex/0.169", "codex/0.169", "curl", None]):
        rec.client = client
    rows[2].anomaly = {"input_tokens": 9 * 10**15}
    for rec in rows:
        settle(store, rec)
    w = vu.window(store, T0)
    assert (w.calls, w.unpriced, w.unmetered, w.anomalous) == (5, 1, 1, 1)
    assert vu.top_spenders(store, T0, "client", 10) == [("claude-code/2.1", 3 * USD, 1), ("codex/0.169", 3 * USD, 2)]
    assert vu.top_spenders(store, T0, "client", 10, ("key", "k1")) == [
        ("claude-code/2.1", 3 * USD, 1), ("codex/0.169", 2 * USD, 1)]
    assert vu.daily_spend(store, T0, "client", ("key", "k2")) == [("2026-11-01", "codex/0.169", USD)]
    assert vu.daily_spend(store, T0, "client")[-1] == ("2026-11-01", "curl", 0)
    assert [c["client"] for c in vu.recent_calls(store, None, 10)] == [
        None, "curl", "codex/0.169", "codex/0.169", "claude-code/2.1"]
    assert [c["anomaly"] for c in vu.recent_calls(store, ("key", "k1"), 10) if c["anomaly"]] == [
        {"input_tokens": 9 * 10**15}]
    groups = vm.call_totals(store, 0).groups
    assert sum(g.anomalous for g in groups) == 1
    assert sum(g.unpriced for g in groups) == 1  # the mystery model, not the unmetered call
    assert [g.calls for g in groups if g.status == "unmetered"] == [1]
