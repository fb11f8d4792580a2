"""What is particular to the PostgreSQL ledger, on a real server (tests/pg.py): the two engines
end with the same schema, migrations race safely, the placeholder adapter, group commit, and
writes spooled while the database is away are recorded exactly once when it is back.

The operations themselves are tested on both engines by test_ledger.py, test_alerts_outbox.py
and test_admin_views.py (their `ledger_target` fixture).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest

from backends import LedgerTarget, open_async_ledger, open_store
from alerts import outbox
from ledger import LedgerUnavailable
from ledger.migrations import MIGRATIONS
from ledger.model import BudgetSpec, CallRecord, Reservation, ScopeRef
from ledger.postgres import translate
from pg import query

USD = 1_000_000_000
T0 = datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
GLOBAL = ScopeRef.global_()


def call(cost_nanos, at=T0, **kw):
    return CallRecord(started_at=at, provider="openai", endpoint="chat", path="/v1/chat/completions",
                      model="gpt-4o", cost_nanos=cost_nanos, price_source="test", finished_at=at, **kw)


@pytest.fixture
def pg_target(pg_server):
    dsn = pg_server.create_database()
    yield LedgerTarget("postgresql", dsn)
    pg_server.drop_database(dsn)


# --- schema --------------------------------------------------------------------------------------


def test_both_engines_end_with_the_same_tables_and_columns(pg_target, tmp_path):
    sq = open_store(LedgerTarget("sqlite", str(tmp_path / "ledger.db")))
    sq.migrate()
    pg = open_store(pg_target)
    assert pg.migrate() == len(MIGRATIONS) == sq.migrate()
    tables = [r[0] for r in sq.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    sqlite_columns = {t: [r[1] for r in sq.conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    pg_columns = {}
    for r in query(pg_target.target, "SELECT table_name, column_name FROM information_schema.columns"
                   " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"):
        pg_columns.setdefault(r["table_name"], []).append(r["column_name"])
    assert pg_columns == sqlite_columns
    indexes = {r["indexname"] for r in query(pg_target.target, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    sqlite_indexes = {r[0] for r in sq.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    assert sqlite_indexes <= indexes  # the same named indexes (PostgreSQL adds its pkey/unique ones)
    sq.close()
    pg.close()


def test_an_older_ledger_is_migrated_in_place_on_both_engines(ledger_target):
    """A v3 ledger (before calls.uid) with a call in it: the next start adds v4, keeps the row."""
    s = open_store(ledger_target)

    def v3_ledger_with_a_call():
        s.conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        for step in MIGRATIONS[:3]:
            step.apply(s.conn, s.dialect)
            s.conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (step.version,))
        s.conn.execute("INSERT INTO calls (ts, provider, cost_nanos) VALUES (?, 'openai', 5)", ("x",))

    s.write_transaction(v3_ledger_with_a_call)
    assert s.migrate() == len(MIGRATIONS)  # every later step, v4 (calls.uid) among them
    assert [tuple(r) for r in s.conn.execute("SELECT uid, cost_nanos FROM calls")] == [(None, 5)]
    s.settle(None, [GLOBAL], call(7), T0)
    assert s.conn.execute("SELECT COUNT(*) FROM calls WHERE uid IS NOT NULL").fetchone()[0] == 1
    s.close()


def _migrate(target, barrier, results):
    s = open_store(target)
    barrier.wait(30)
    try:
        results.put(s.migrate())
    except Exception as e:  # pragma: no cover - reported by the assertion
        results.put(repr(e))
    s.close()


def test_processes_starting_together_migrate_once(pg_target):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_migrate, args=(pg_target, barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert outcomes == [len(MIGRATIONS)] * 4
    assert [r["version"] for r in query(pg_target.target, "SELECT version FROM schema_migrations ORDER BY 1")] == [
        n for n in range(1, len(MIGRATIONS) + 1)]


# --- the adapter ------------------------------------------------------------------------------------


def test_placeholders_are_translated_outside_literals_only():
    assert translate("SELECT * FROM t WHERE a = ? AND b = '?' AND c LIKE 'x%'") == (
        "SELECT * FROM t WHERE a = %s AND b = '?' AND c LIKE 'x%'")
    assert translate("SELECT 100 % 7, :now, CAST(x AS jsonb)::text, ':no' FROM t WHERE t = :now") == (
        "SELECT 100 %% 7, %(now)s, CAST(x AS jsonb)::text, ':no' FROM t WHERE t = %(now)s")


def test_sums_come_back_as_integers_as_on_sqlite(pg_target):
    s = open_store(pg_target)
    s.migrate()
    for cost in (1, 2, 3 * 10**17):  # beyond 2**53: exact, not a float
        s.settle(None, [GLOBAL], call(cost), T0)
    [total] = s.conn.execute("SELECT SUM(cost_nanos) FROM calls").fetchone()
    assert total == 3 * 10**17 + 3 and isinstance(total, int)
    s.close()


# --- atomic across instances -------------------------------------------------------------------------


def _spend_many_scopes(target, n, results):
    s = open_store(target)
    refs = [GLOBAL, ScopeRef("team", "t"), ScopeRef("user", "u"), ScopeRef("key", "k")]
    ok = 0
    for _ in range(n):
        r = s.reserve(refs, USD, T0)
        if isinstance(r, Reservation):
            ok += 1
            s.settle(r, refs, call(USD // 2), T0)
    s.close()
    results.put(ok)


def test_four_processes_never_push_any_scope_past_its_max(pg_target):
    """Each call reserves $1 and costs $0.50 in four scopes; the tightest scope ($6, the team)
    admits calls while settled + held + $1 ≤ $6 — so exactly 11 across all processes."""
    s = open_store(pg_target)
    s.migrate()
    for ref, usd in ((GLOBAL, 100), (ScopeRef("team", "t"), 6), (ScopeRef("user", "u"), 50), (ScopeRef("key", "k"), 8)):
        s.configure(ref, BudgetSpec(max_nanos=usd * USD), T0)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_spend_many_scopes, args=(pg_target, 15, results)) for _ in range(4)]
    for p in procs:
        p.start()
    served = sum(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
    team = s.scope(ScopeRef("team", "t"))
    assert team.spend_nanos <= team.max_nanos and team.reserved_nanos == 0
    assert served == 11 and team.spend_nanos == 11 * USD // 2
    for ref in (GLOBAL, ScopeRef("user", "u"), ScopeRef("key", "k")):
        assert s.scope(ref).spend_nanos == 11 * USD // 2
    s.close()


def test_concurrent_claims_hand_each_delivery_to_one_process(pg_target):
    from test_alerts_outbox import cand

    stores = [open_store(pg_target) for _ in range(4)]
    stores[0].migrate()
    outbox.enqueue(stores[0], [cand("slack", "webhook", "email", level=str(lvl)) for lvl in (0.5, 0.75, 0.9)], T0)
    claimed: list[int] = []
    lock = threading.Lock()

    def claim(i):
        for _ in range(5):
            got = outbox.claim(stores[i], f"p{i}", T0, timedelta(seconds=60), limit=2)
            with lock:
                claimed.extend(c.delivery_id for c in got)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 9
    for s in stores:
        s.close()


# --- group commit ---------------------------------------------------------------------------------------


def test_a_batch_is_one_transaction_that_sees_its_own_writes(ledger_target):
    s = open_store(ledger_target)
    s.migrate()
    s.configure(GLOBAL, BudgetSpec(max_nanos=3 * USD), T0)
    a, b, c = s.batch([lambda: s.reserve([GLOBAL], USD, T0) for _ in range(3)])
    assert all(isinstance(r, Reservation) for r in (a, b, c))
    denied, = s.batch([lambda: s.reserve([GLOBAL], USD, T0)])
    assert not isinstance(denied, Reservation)  # the three holds of the batch count
    s.batch([lambda r=r: s.settle(r, [GLOBAL], call(USD // 4), T0) for r in (a, b, c)])
    g = s.scope(GLOBAL)
    assert (g.spend_nanos, g.reserved_nanos) == (3 * USD // 4, 0)
    s.close()


def test_the_async_ledger_group_commits_and_a_bad_operation_fails_alone(ledger_target, tmp_path):
    ledger = open_async_ledger(ledger_target, spool_dir=tmp_path / "spool")

    async def scenario():
        await ledger.configure(GLOBAL, BudgetSpec(max_nanos=1000 * USD), T0)
        reservations = await asyncio.gather(*[ledger.reserve([GLOBAL], USD, T0) for _ in range(40)])
        bad = call(1)
        bad.metadata = {"x": object()}  # can't be written: fails inside its batch
        results = await asyncio.gather(
            *[ledger.settle(r, [GLOBAL], call(USD // 2), T0) for r in reservations[:20]],
            ledger.settle(None, [GLOBAL], bad, T0),
            *[ledger.settle(r, [GLOBAL], call(USD // 2), T0) for r in reservations[20:]],
            return_exceptions=True,
        )
        return results

    results = asyncio.run(scenario())
    assert isinstance(results[20], TypeError)
    assert all(isinstance(r, tuple) and r[0] for i, r in enumerate(results) if i != 20)
    assert ledger._writer_thread.batches >= 1  # some of them did share a transaction
    g = ledger.read_sync(lambda s: s.scope(GLOBAL))
    # nothing held but the credit of this process's lease (ledger/leases.py)
    assert (g.spend_nanos, g.reserved_nanos) == (20 * USD, ledger.leases.credit(GLOBAL))
    assert ledger.spool.entries == []
    ledger.close_sync()


# --- losing the database ------------------------------------------------------------------------------


def test_writes_made_while_the_database_is_down_are_recorded_once_it_is_back(pg_server, pg_target, tmp_path):
    ledger = open_async_ledger(pg_target, spool_dir=tmp_path / "spool")
    replayed = []
    ledger.on_replayed = lambda record, changes: replayed.append((record.uid, [c.before_nanos for c in changes]))

    async def before():
        await ledger.configure(GLOBAL, BudgetSpec(max_nanos=100 * USD), T0)
        return await ledger.reserve([GLOBAL], 2 * USD, T0)

    held = asyncio.run(before())
    pg_server.stop()
    try:
        async def down():
            leased = await ledger.reserve([GLOBAL], USD, T0)  # within this process's lease: no database needed
            assert leased.lease
            ledger.leases.put_back(leased)
            ledger.leases.invalidate()  # past what the leases can tell
            with pytest.raises(LedgerUnavailable):  # admission can't be decided: the addon's on_ledger_error
                await ledger.reserve([GLOBAL], USD, T0)
            first = await ledger.settle(held, [GLOBAL], call(USD), T0)
            second = await ledger.settle(None, [GLOBAL], call(3 * USD), T0)
            blocked = await ledger.record(call(0, status="blocked"))
            return first, second, blocked

        assert asyncio.run(down()) == ((None, []), (None, []), None)
        assert len(ledger.spool.entries) == 3
        assert len((tmp_path / "spool" / f"{ledger.instance_id}.jsonl").read_text().splitlines()) == 3  # durable
    finally:
        pg_server.start()

    async def back():
        for _ in range(50):  # the pool reconnects by itself
            if await ledger.flush_spool() or not ledger.spool.entries:
                break
            await asyncio.sleep(0.2)
        await ledger.flush_spool()
        # the lease credit stopped being trusted when the database went away: given back now
        await ledger.return_leases(T0)

    asyncio.run(back())
    assert ledger.spool.entries == []
    assert [before for _, before in replayed] == [[0], [1 * USD]]
    g = ledger.read_sync(lambda s: s.scope(GLOBAL))
    assert (g.spend_nanos, g.reserved_nanos) == (4 * USD, 0)
    rows = query(pg_target.target, "SELECT status, cost_nanos FROM calls ORDER BY id")
    assert [(r["status"], r["cost_nanos"]) for r in rows] == [("ok", USD), ("ok", 3 * USD), ("blocked", 0)]
    ledger.close_sync()


def test_a_spool_left_by_a_dead_process_is_replayed_by_the_next_one_without_double_charges(pg_target, tmp_path):
    from ledger.spool import Entry, Spool

    first = open_store(pg_target)
    first.migrate()
    first.configure(GLOBAL, BudgetSpec(max_nanos=100 * USD), T0)
    recorded = call(USD)
    first.settle(None, [GLOBAL], recorded, T0)  # this one did commit before the process died
    first.close()
    dead = Spool(tmp_path / "spool", "dead-instance")
    dead.add(Entry.settle(None, [GLOBAL], recorded, T0))  # ...but was spooled too (commit outcome unknown)
    dead.add(Entry.settle(None, [GLOBAL], call(2 * USD), T0))
    dead.close()  # the process is gone, and its lock with it (the file stays: it has entries)

    ledger = open_async_ledger(pg_target, spool_dir=tmp_path / "spool")
    assert len(ledger.spool.entries) == 2  # adopted at start-up
    assert asyncio.run(ledger.flush_spool()) == 2
    g = ledger.read_sync(lambda s: s.scope(GLOBAL))
    assert g.spend_nanos == 3 * USD  # $1 once, not twice
    assert query(pg_target.target, "SELECT COUNT(*) AS n FROM calls")[0]["n"] == 2
    assert not (tmp_path / "spool" / "dead-instance.jsonl").exists()
    ledger.close_sync()
    assert list((tmp_path / "spool").glob("*.jsonl")) == []  # nothing left: nothing kept


def test_sqlite_is_spooled_the_same_way_when_its_file_is_locked(tmp_path):
    """The same spool serves SQLite: a write lock held past the busy timeout is 'unavailable'."""
    ledger = open_async_ledger(LedgerTarget("sqlite", str(tmp_path / "ledger.db")), spool_dir=tmp_path / "spool")
    ledger._writer.conn.execute("PRAGMA busy_timeout = 100")
    other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        assert asyncio.run(ledger.settle(None, [GLOBAL], call(USD), T0)) == (None, [])
    finally:
        other.execute("ROLLBACK")
    assert asyncio.run(ledger.flush_spool()) == 1
    assert ledger.read_sync(lambda s: s.scope(GLOBAL)).spend_nanos == USD
    ledger.close_sync()
