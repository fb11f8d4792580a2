"""The ledger's store: reservations, settlement, periods, crash recovery — every test on
SQLite and on PostgreSQL (the `ledger_target` fixture), since one implementation serves both.

Money is in integer nano-dollars (1 USD = 1_000_000_000), so every figure below is exact.
"""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backends import open_store

from ledger.model import BudgetSpec, CallRecord, Denial, Reservation, ScopeRef

USD = 1_000_000_000
T0 = datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
GLOBAL = ScopeRef.global_()
KEY = ScopeRef("key", "abc")


def call(cost_nanos, at=T0):
    return CallRecord(started_at=at, provider="openai", endpoint="chat", path="/v1/chat/completions",
                      model="gpt-4o", cost_nanos=cost_nanos, price_source="test", finished_at=at)


def spend_in_rows(store, since):
    return store.conn.execute(
        "SELECT COALESCE(SUM(cost_nanos), 0) FROM calls WHERE ts >= ?", (since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),)
    ).fetchone()[0]


def test_migrations_are_versioned_and_idempotent(store):
    from ledger.migrations import MIGRATIONS

    # every migration, once, in order (v1 core, v2 directory, v3 alerts, ...)
    assert len(MIGRATIONS) >= 3
    assert store.migrate() == len(MIGRATIONS)
    assert [tuple(r) for r in store.conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [
        (n,) for n in range(1, len(MIGRATIONS) + 1)]
    if store.target.engine == "sqlite":
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_new_sqlite_ledger_gets_exactly_the_schema_of_older_ledger_files(tmp_path):
    """Migrations 1-4 created most SQLite ledgers in use (v1-v3 through sqlite-utils): today's
    steps must give the very same schema, statement for statement (tests/data/)."""
    from ledger.dialect import Dialect
    from ledger.migrations import MIGRATIONS, current_version
    from ledger.sqlite import connect

    conn = connect(tmp_path / "ledger.db")
    current_version(conn)
    for step in MIGRATIONS[:4]:
        step.apply(conn, Dialect())
    made = [r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")]
    conn.close()
    recorded = (Path(__file__).parent / "data" / "sqlite_schema_v4.sql").read_text()
    assert ";\n\n".join(made) + ";\n" == recorded.split("\n\n", 1)[1]


def test_the_migrate_command_migrates_now_and_prints_the_version(ledger_target, capsys):
    from ledger.migrate_command import main
    from ledger.migrations import MIGRATIONS

    assert main([ledger_target.database_url]) == 0
    out = capsys.readouterr().out
    assert f"ledger at schema version {len(MIGRATIONS)} (was 0)" in out
    assert "  v1 core: applied " in out
    assert main([ledger_target.database_url]) == 0  # nothing left to do
    assert f"at schema version {len(MIGRATIONS)} (was {len(MIGRATIONS)})" in capsys.readouterr().out
    assert main([]) == 2 and "usage:" in capsys.readouterr().err


def test_spendgate_migrate_is_the_same_command(tmp_path, capsys):
    from addon.cli import main as spendgate

    assert spendgate(["migrate", f"sqlite:///{tmp_path / 'ledger.db'}"]) == 0
    assert "sqlite ledger at schema version" in capsys.readouterr().out


def test_reserve_holds_the_estimate_and_settle_charges_the_real_cost(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=10 * USD, duration="30d"), T0)
    r = store.reserve([GLOBAL, KEY], 3 * USD, T0)
    assert isinstance(r, Reservation) and r.scopes == (GLOBAL,)  # only budgeted scopes hold
    assert store.scope(GLOBAL).reserved_nanos == 3 * USD

    _, changes = store.settle(r, [GLOBAL, KEY], call(USD // 2), T0)
    g = store.scope(GLOBAL)
    assert (g.spend_nanos, g.reserved_nanos) == (USD // 2, 0)
    assert store.scope(KEY).spend_nanos == USD // 2  # unbudgeted scopes still count spend
    assert [(c.scope.kind, c.before_nanos, c.scope.spend_nanos) for c in changes] == [
        ("global", 0, USD // 2), ("key", 0, USD // 2)]
    assert store.conn.execute("SELECT COUNT(*) FROM reservations").fetchone()[0] == 0


def test_a_call_that_could_overrun_the_budget_is_refused(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=10 * USD), T0)
    first = store.reserve([GLOBAL], 6 * USD, T0)
    assert isinstance(first, Reservation)
    second = store.reserve([GLOBAL], 6 * USD, T0)  # 0 spent + 6 held + 6 > 10
    assert isinstance(second, Denial) and second.scope.reserved_nanos == 6 * USD
    store.release(first)
    assert isinstance(store.reserve([GLOBAL], 6 * USD, T0), Reservation)


def test_spent_budget_refuses_even_a_call_of_unknown_cost(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=USD), T0)
    store.settle(None, [GLOBAL], call(USD), T0)
    assert isinstance(store.reserve([GLOBAL], 0, T0), Denial)


def test_release_and_settle_give_a_hold_back_once(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=10 * USD), T0)
    r = store.reserve([GLOBAL], 2 * USD, T0)
    store.release(r)
    store.release(r)
    store.settle(r, [GLOBAL], call(USD), T0)
    assert store.scope(GLOBAL).reserved_nanos == 0


def test_periods_roll_at_reset_time_and_are_logged_without_traffic(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=10 * USD, duration="1d"), T0)
    store.settle(None, [GLOBAL], call(4 * USD), T0)
    assert store.reset_due(T0 + timedelta(hours=23)) == []
    later = T0 + timedelta(days=3, hours=1)  # down for three days: lands in the current period
    [rolled] = store.reset_due(later)
    assert rolled.spend_nanos == 0
    assert rolled.period_start == T0 + timedelta(days=3)
    assert rolled.reset_at == T0 + timedelta(days=4)
    events = store.conn.execute("SELECT event, spend_nanos FROM budget_events ORDER BY id").fetchall()
    assert events == [("created", None), ("reset", 4 * USD)]


def test_scope_spend_equals_the_rows_of_its_period(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=100 * USD, duration="1d"), T0)
    for hour in range(0, 48, 5):
        at = T0 + timedelta(hours=hour)
        store.settle(store.reserve([GLOBAL], USD, at), [GLOBAL], call(123_456_789, at), at)
    g = store.scope(GLOBAL)
    assert g.spend_nanos == spend_in_rows(store, g.period_start) == 5 * 123_456_789


def test_manual_reset_starts_a_new_period_now(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=10 * USD, duration="30d"), T0)
    store.settle(None, [GLOBAL], call(7 * USD), T0)
    later = T0 + timedelta(days=2)
    st = store.set_spend(GLOBAL, later)
    assert (st.spend_nanos, st.period_start, st.reset_at) == (0, later, T0 + timedelta(days=30))
    assert spend_in_rows(store, st.period_start) == 0


def test_changing_the_duration_retimes_the_current_period(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=10 * USD, duration="30d"), T0)
    st = store.configure(GLOBAL, BudgetSpec(max_nanos=20 * USD, duration="1d"), T0 + timedelta(hours=1))
    assert (st.max_nanos, st.reset_at) == (20 * USD, T0 + timedelta(days=1))


def test_holds_of_a_dead_instance_are_released(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=10 * USD), T0)
    dead = open_store(store.target, instance_id="dead")
    dead.register_instance(T0)
    dead.reserve([GLOBAL], 4 * USD, T0)
    dead.close()
    store.heartbeat(T0 + timedelta(seconds=60))
    assert store.reap(T0 + timedelta(seconds=60), timedelta(seconds=30)) == 1
    assert store.scope(GLOBAL).reserved_nanos == 0


def _spend_in_another_process(target, n, amount, results):
    s = open_store(target)
    ok = 0
    for _ in range(n):
        r = s.reserve([GLOBAL], amount, T0)
        if isinstance(r, Reservation):
            s.settle(r, [GLOBAL], call(amount), T0)
            ok += 1
    s.close()
    results.put(ok)


def test_two_processes_never_overspend_one_budget(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=10 * USD), T0)
    results = multiprocessing.get_context("spawn").Queue()
    procs = [multiprocessing.get_context("spawn").Process(
        target=_spend_in_another_process, args=(store.target, 20, USD, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert results.get() + results.get() == 10
    assert store.scope(GLOBAL).spend_nanos == 10 * USD


def test_a_key_and_its_budget_are_saved_together_and_bump_the_revision(store):
    from ledger.directory import KeyRecord, TeamRecord

    rev = store.revision()
    state = store.save(KeyRecord("h1", "sk-12...abcd", key_alias="prod", models=["gpt-4o"], issued=True),
                       BudgetSpec(max_nanos=100 * USD, soft_nanos=80 * USD, duration="30d"), T0)
    assert (state.kind, state.id, state.max_nanos, state.reset_at) == ("key", "h1", 100 * USD, T0 + timedelta(days=30))
    key = store.get(KeyRecord, "h1")
    assert (key.key_alias, key.models, key.issued, key.created_at) == ("prod", ["gpt-4o"], True, T0)
    store.save(TeamRecord("t1", team_alias="engineering", members=["u1"]), None, T0)
    assert [t.team_alias for t in store.find(TeamRecord, team_alias="engineering")] == ["engineering"]
    assert store.revision() == rev + 2
    assert store.remove(KeyRecord, "h1", T0)
    assert store.get(KeyRecord, "h1").deleted_at == T0  # a tombstone, still known
    revision, keys, teams, users = store.directory()
    assert (revision, len(keys), len(teams), users) == (rev + 3, 1, 1, [])


def test_adding_a_duration_to_a_scope_with_spend_keeps_the_spend(store):
    store.settle(None, [KEY], call(5 * USD), T0)  # spend before any budget
    later = T0 + timedelta(days=45)
    st = store.configure(KEY, BudgetSpec(max_nanos=10 * USD, duration="30d"), later)
    assert (st.spend_nanos, st.reset_at) == (5 * USD, later + timedelta(days=30))


def test_work_given_to_settle_commits_with_the_settlement_or_not_at_all(store):
    """Alerts are enqueued inside the settlement's transaction: a failure after the
    enqueue leaves neither the charge nor the alert behind."""
    store.configure(GLOBAL, BudgetSpec(max_nanos=10 * USD), T0)
    seen = []

    def then(s, changes):
        seen.append([(c.scope.kind, c.before_nanos, c.scope.spend_nanos) for c in changes])
        s.conn.execute("INSERT INTO budget_events (ts, kind, scope_id, event) VALUES (?, 'global', 'global', 'probe')",
                       ("2026-11-01T10:30:00.000000Z",))

    store.settle(None, [GLOBAL], call(USD), T0, then)
    assert seen == [[("global", 0, USD)]]
    assert len(store.conn.execute("SELECT * FROM budget_events WHERE event = 'probe'").fetchall()) == 1

    def failing(s, changes):
        then(s, changes)
        raise RuntimeError("after the enqueue")

    with pytest.raises(RuntimeError):
        store.settle(None, [GLOBAL], call(USD), T0, failing)
    assert store.scope(GLOBAL).spend_nanos == USD  # the second charge was rolled back...
    assert len(store.conn.execute("SELECT * FROM budget_events WHERE event = 'probe'").fetchall()) == 1  # ...and its work


def test_docs_ledger_lists_every_call_status():
    from core.vocab import CallStatus

    text = (Path(__file__).resolve().parents[1] / "docs" / "ledger.md").read_text()
    assert [s for s in CallStatus if f"| `{s}` |" not in text] == []


def test_a_new_keys_first_call_is_inside_the_period_it_starts(store):
    """The scope is created by the call's own settlement, a batch window after the call
    ended: its period starts no later than that call, so the period's spend is its rows."""
    settled_at = T0 + timedelta(milliseconds=25)
    store.settle(None, [GLOBAL, KEY], call(1_234, at=T0), settled_at)
    key = store.scope(KEY)
    assert key.period_start <= T0
    assert spend_in_rows(store, key.period_start) == key.spend_nanos == 1_234
