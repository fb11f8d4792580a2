"""The admin API's ledger side, without a proxy: spend views, the spend report, and the
one-transaction directory writes (ledger/views.py, DirectoryOps.apply), on SQLite and PostgreSQL.

Money is in integer nano-dollars, so every figure below is exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.usage import TokenUsage
from ledger import views
from ledger.directory import KeyRecord, TeamRecord, UserRecord
from ledger.model import BudgetSpec, CallRecord, ScopeRef

USD = 1_000_000_000
T0 = datetime(2026, 11, 1, 10, 30, tzinfo=UTC)


def call(cost_nanos, at=T0, *, model="gpt-4o", key="k1", team=None, user=None, metadata=None, status="ok",
         provider="openai"):
    return CallRecord(started_at=at, finished_at=at, provider=provider, endpoint="chat",
                      path="/v1/chat/completions", model=model, cost_nanos=cost_nanos, price_source="test",
                      key_hash=key, key_masked=f"sk-{key}...", team_id=team, user_id=user,
                      metadata=metadata or {}, status=status, usage=TokenUsage(input_tokens=100, output_tokens=50))


def settle(store, rec, at=None):
    refs = [ScopeRef("key", rec.key_hash)] if rec.key_hash else []
    refs += [ScopeRef("team", rec.team_id)] if rec.team_id else []
    refs += [ScopeRef("user", rec.user_id)] if rec.user_id else []
    store.settle(None, refs, rec, at or rec.finished_at)


# --- current spend -----------------------------------------------------------------------------


def test_spend_equals_the_rows_of_the_period_through_a_manual_reset(store):
    store.save(KeyRecord("k1", "sk-k1...", issued=True), BudgetSpec(10 * USD, 8 * USD, "30d"), T0)
    for i in range(3):
        settle(store, call(1_234_567, T0 + timedelta(minutes=i)))
    spend = views.scope_spend(store, ScopeRef("key", "k1"), T0 + timedelta(hours=1))
    assert spend.spend_nanos == 3 * 1_234_567 == views.sum_calls(store, "key_hash", "k1", spend.period_start)
    assert (spend.max_nanos, spend.soft_nanos, spend.duration, spend.reset_at) == (
        10 * USD, 8 * USD, "30d", T0 + timedelta(days=30))

    store.apply(T0 + timedelta(hours=2), [], [], [], [ScopeRef("key", "k1")])
    settle(store, call(5, T0 + timedelta(hours=3)))
    spend = views.scope_spend(store, ScopeRef("key", "k1"), T0 + timedelta(hours=4))
    assert spend.period_start == T0 + timedelta(hours=2)
    assert spend.spend_nanos == 5 == views.sum_calls(store, "key_hash", "k1", spend.period_start)
    assert spend.reset_at == T0 + timedelta(days=30)  # a manual reset keeps the schedule


def test_a_due_reset_is_applied_when_read_without_writing(store):
    store.save(KeyRecord("k1", "sk-k1...", issued=True), BudgetSpec(USD, None, "1d"), T0)
    settle(store, call(700, T0 + timedelta(hours=1)))
    later = T0 + timedelta(days=2, hours=3)
    spend = views.scope_spend(store, ScopeRef("key", "k1"), later)
    assert (spend.spend_nanos, spend.period_start, spend.reset_at) == (
        0, T0 + timedelta(days=2), T0 + timedelta(days=3))
    assert store.scope(ScopeRef("key", "k1")).spend_nanos == 700  # nothing written by a read
    assert views.sum_calls(store, "key_hash", "k1", spend.period_start) == 0


def test_no_budget_row_reads_as_zero(store):
    assert views.scope_spend(store, ScopeRef("team", "nobody"), T0) == views.NO_SPEND


# --- key entries -------------------------------------------------------------------------------


def test_key_entries_cover_records_and_provider_keys_seen_in_traffic(store):
    store.save(KeyRecord("virt", "sk-vi...", issued=True), BudgetSpec(USD), T0)
    store.save(KeyRecord("gone", "sk-go...", issued=True), BudgetSpec(USD), T0)
    store.remove(KeyRecord, "gone", T0)
    settle(store, call(42, key="dev"))
    entries = {e.hash: e for e in views.key_entries(store)}
    assert set(entries) == {"virt", "dev"}
    assert entries["dev"].masked == "sk-dev..." and entries["dev"].state.spend_nanos == 42
    assert entries["dev"].record is None or entries["dev"].record.issued is False
    assert views.key_entry(store, "nothing") is None


def test_key_entries_from_records_already_held_are_those_read_from_the_ledger(store):
    """The admin API lists keys from the proxy's directory cache (every record, tombstones
    too): the same entries as the ledger's own records give."""
    store.save(KeyRecord("virt", "sk-vi...", issued=True), BudgetSpec(USD), T0)
    store.save(KeyRecord("gone", "sk-go...", issued=True), BudgetSpec(USD), T0)
    store.remove(KeyRecord, "gone", T0)
    settle(store, call(42, key="dev"))
    revision, held = store.directory()[:2]
    assert "gone" in {k.hash for k in held}
    assert views.key_entries(store, (revision, held)) == views.key_entries(store)
    assert {e.hash for e in views.key_entries(store, (revision, held))} == {"virt", "dev"}


def test_key_entries_read_the_ledger_when_the_records_held_are_out_of_date(store):
    store.save(KeyRecord("virt", "sk-vi...", issued=True), BudgetSpec(USD), T0)
    revision, held = store.directory()[:2]
    store.save(KeyRecord("new", "sk-ne...", issued=True), BudgetSpec(USD), T0)  # another instance's write
    entries = {e.hash: e for e in views.key_entries(store, (revision, held))}
    assert entries["new"].record is not None and entries["new"].masked == "sk-ne..."


def test_removing_a_provider_key_forgets_it_but_an_issued_key_stays_a_tombstone(store):
    store.save(KeyRecord("virt", "sk-vi...", issued=True), None, T0)
    store.save(KeyRecord("prov", "sk-pr...", issued=False), None, T0)
    assert store.remove(KeyRecord, "virt", T0) and store.remove(KeyRecord, "prov", T0)
    assert store.get(KeyRecord, "virt").deleted_at == T0
    assert store.get(KeyRecord, "prov") is None
    assert not store.remove(KeyRecord, "virt", T0)  # already deleted


# --- apply -------------------------------------------------------------------------------------


def test_apply_is_one_transaction_and_one_revision(store):
    before = store.revision()
    team = TeamRecord("t1", "eng", members=["u1"])
    user = UserRecord("u1", team_id="t1")
    key = KeyRecord("k1", "sk-k1...", user_id="u1", team_id="t1", issued=True)
    states = store.apply(T0, [(team, BudgetSpec(100 * USD, None, "30d")), (user, None), (key, BudgetSpec(USD))])
    assert store.revision() == before + 1
    assert [s.max_nanos if s else None for s in states] == [100 * USD, None, USD]
    assert store.get(UserRecord, "u1").team_id == "t1" and store.get(TeamRecord, "t1").members == ["u1"]

    # a failure part-way leaves nothing behind
    with pytest.raises(ValueError):
        store.apply(T0, [(TeamRecord("t2"), None)], [(UserRecord, "u1")],
                    [(ScopeRef("team", "t2"), BudgetSpec(USD, None, "30x"))])
    assert store.get(TeamRecord, "t2") is None and store.get(UserRecord, "u1") is not None
    assert store.revision() == before + 1


# --- the spend report --------------------------------------------------------------------------


@pytest.fixture
def traffic(store):
    day = timedelta(days=1)
    settle(store, call(100, T0, model="gpt-4o", team="t1", user="u1", metadata={"project": "chatbot-v2"}))
    settle(store, call(200, T0 + day, model="gpt-4o-mini", team="t1", user="u2",
                       metadata={"project": "search", "cost_center": 42}))
    settle(store, call(None, T0 + day, model="mystery", key="k2", provider="custom"))  # unpriced
    store.record(call(0, T0 + day, key="k2", status="blocked"))
    settle(store, call(400, T0 + 3 * day, model="gpt-4o", key="k2", metadata={"project": "chatbot-v2"}))
    return store


def report(store, group_by, first=T0, days=3):
    start = first.replace(hour=0, minute=0)
    return {r["group_by_value"]: r for r in views.spend_report(store, start, start + timedelta(days=days), group_by)}


def test_report_by_model_provider_team_user_and_key(traffic):
    by_model = report(traffic, "model")
    assert {m: r["spend_nanos"] for m, r in by_model.items()} == {"gpt-4o-mini": 200, "gpt-4o": 100,
                                                                   "mystery": 0}
    assert by_model["mystery"]["unpriced_calls"] == 1 and by_model["mystery"]["calls"] == 1
    assert by_model["gpt-4o"]["blocked_calls"] == 1 and by_model["gpt-4o"]["calls"] == 1
    assert (by_model["gpt-4o"]["input_tokens"], by_model["gpt-4o"]["output_tokens"]) == (100, 50)
    assert {p: r["spend_nanos"] for p, r in report(traffic, "provider").items()} == {"openai": 300, "custom": 0}
    assert report(traffic, "team")["t1"]["spend_nanos"] == 300 and report(traffic, "team")[None]["calls"] == 1
    assert report(traffic, "user")["u2"]["spend_nanos"] == 200
    by_key = report(traffic, "key", days=4)
    assert by_key["k2"]["spend_nanos"] == 400 and by_key["k2"]["key_masked"] == "sk-k2..."


def test_report_by_metadata_field_and_date_range(traffic):
    assert {p: r["spend_nanos"] for p, r in report(traffic, "project", days=4).items()} == {
        "chatbot-v2": 500, "search": 200, None: 0}
    assert report(traffic, "project", days=1)["chatbot-v2"]["spend_nanos"] == 100  # end is exclusive here
    assert report(traffic, "cost_center")["42"]["spend_nanos"] == 200  # values come back as strings
    assert report(traffic, "project", first=T0 + timedelta(days=10)) == {}


def test_report_group_names_cannot_reach_the_sql(traffic):
    for bad in ("'; DROP TABLE calls; --", 'a"b', "$.x", "", "a b"):
        assert not views.report_group_ok(bad)
        with pytest.raises(ValueError):
            views.spend_report(traffic, T0, T0 + timedelta(days=1), bad)
    assert views.report_group_ok("cost_center") and views.report_group_ok("team.name")


def test_report_by_client_counts_unmetered_and_anomalous_calls(store):
    """`group_by=client`: spend per client application; unmetered calls are calls with an
    unknown cost but not unpriced ones; anomalous calls are counted where they were charged."""
    rows = [call(300, T0), call(200, T0), call(None, T0, status="unmetered", model=None), call(50, T0)]
    for rec, client in zip(rows, ["claude-code/2.1", "codex/0.169", "codex/0.169", None]):
        rec.client = client
    rows[1].anomaly = {"output_tokens": 2**63}
    for rec in rows:
        settle(store, rec)
    by_client = report(store, "client", days=1)
    assert {c: (r["spend_nanos"], r["calls"]) for c, r in by_client.items()} == {
        "claude-code/2.1": (300, 1), "codex/0.169": (200, 2), None: (50, 1)}
    codex = by_client["codex/0.169"]
    assert (codex["unmetered_calls"], codex["unpriced_calls"], codex["anomalous_calls"]) == (1, 0, 1)
    assert by_client["claude-code/2.1"]["unmetered_calls"] == by_client["claude-code/2.1"]["anomalous_calls"] == 0
