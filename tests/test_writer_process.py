"""The ledger's writes in a process of their own (`ledger_writer: process`, ledger/writer_process.py):
the same results as the writer thread, an alert hook still inside its settlement's transaction,
and a killed writer process losing nothing (its writes spooled, then replayed by a new one) —
in-process, and through a real mitmdump with the openai SDK and the admin API."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from datetime import UTC, datetime

import pytest

from config.load import parse_config
from e2e_helpers import module_proxy, wait_for
from ledger import BudgetSpec, CallRecord, ScopeRef, Store
from ledger.sqlite import SQLiteLedger
from ledger.writer_process import RESPAWN_GAP, ProcessRunner

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
GLOBAL = ScopeRef.global_()


def _record(uid: str, cost: int) -> CallRecord:
    return CallRecord(started_at=NOW, provider="openai", endpoint="chat", path="/v1/chat/completions",
                      model="gpt-4o", cost_nanos=cost, price_source="genai-prices", uid=uid,
                      key_hash="h" * 64, key_masked="sk-...abcd")


@pytest.fixture
def ledger(tmp_path):
    lg = SQLiteLedger(tmp_path / "ledger.db", spool_dir=tmp_path / "spool", writer_process=True)
    lg.open_sync()
    lg.configure_sync(GLOBAL, BudgetSpec(max_nanos=10**12), NOW)
    yield lg
    lg.close_sync()


def _rows(ledger: SQLiteLedger) -> list[tuple]:
    with sqlite3.connect(ledger.path) as conn:
        return conn.execute("SELECT uid, cost_nanos FROM calls ORDER BY uid").fetchall()


def test_the_writes_run_in_another_process_with_the_same_results(ledger):
    runner = ledger._runner
    assert isinstance(runner, ProcessRunner) and runner.pid not in (None, os.getpid())

    async def go():
        held = await ledger.reserve([GLOBAL], 5_000, NOW)
        call_id, changes = await ledger.settle(held, [GLOBAL], _record("c1", 3_000), NOW)
        return held, call_id, changes

    held, call_id, changes = asyncio.run(go())
    assert call_id >= 1
    assert [(c.scope.ref, c.before_nanos, c.scope.spend_nanos) for c in changes] == [(GLOBAL, 0, 3_000)]
    assert _rows(ledger) == [("c1", 3_000)]
    assert asyncio.run(ledger.scope(GLOBAL)).spend_nanos == 3_000


def test_a_relative_ledger_path_is_the_same_file_for_the_writer_process_and_the_proxy(tmp_path, monkeypatch):
    """`sqlite:///spendgate.db` names a file in the proxy's working directory; the writer
    process starts elsewhere (the code's directory) and must write that same file."""
    monkeypatch.chdir(tmp_path)
    lg = SQLiteLedger("spendgate.db", spool_dir=tmp_path / "spool", writer_process=True)
    lg.open_sync()
    try:
        lg.configure_sync(GLOBAL, BudgetSpec(max_nanos=10**12), NOW)

        async def go():
            held = await lg.reserve([GLOBAL], 5_000, NOW)
            await lg.settle(held, [GLOBAL], _record("c1", 3_000), NOW)
            return await lg.scope(GLOBAL)  # read on the proxy's own reader

        assert asyncio.run(go()).spend_nanos == 3_000
    finally:
        lg.close_sync()
    with sqlite3.connect(tmp_path / "spendgate.db") as conn:
        assert conn.execute("SELECT uid, cost_nanos FROM calls").fetchall() == [("c1", 3_000)]


def test_a_settlement_hook_writes_inside_the_transaction_in_the_writer_process(ledger):
    seen = []

    def hook(store, changes):  # as the alerts' in_settlement hook does it
        seen.append([c.scope.spend_nanos for c in changes])
        store.call(Store.record, _record("alerted", 0))

    async def go():
        return await ledger.settle(None, [GLOBAL], _record("c2", 7), NOW, then=hook)

    asyncio.run(go())
    assert seen == [[7]]
    with sqlite3.connect(ledger.path) as conn:
        assert conn.execute("SELECT uid FROM calls WHERE uid = 'alerted'").fetchone() == ("alerted",)


def test_a_writer_process_killed_between_writes_is_replaced_before_the_next(ledger, monkeypatch):
    """Dead before a write reaches it, none of the write ran: a new child takes it at once
    (here as soon as the ledger opened: no RESPAWN_GAP since the first start)."""
    monkeypatch.setattr("ledger.writer_process.RESPAWN_GAP", 0.0)
    first = ledger._runner.pid

    async def go():
        await ledger.settle(None, [GLOBAL], _record("a", 1), NOW)
        os.kill(first, signal.SIGKILL)
        await asyncio.sleep(0.2)
        return await ledger.settle(None, [GLOBAL], _record("b", 2), NOW)

    call_id, changes = asyncio.run(go())
    assert call_id is not None and [c.scope.spend_nanos for c in changes] == [3]  # written, not spooled
    assert ledger._runner.pid != first and ledger._runner.starts == 2
    assert _rows(ledger) == [("a", 1), ("b", 2)]


def test_a_writer_process_killed_under_a_write_loses_nothing(ledger, monkeypatch):
    """Dead under a write, its outcome unknown: the settlement is spooled, and replayed by a
    new child (once by its uid, whether or not the dead one had committed it)."""
    monkeypatch.setattr("ledger.writer_process.RESPAWN_GAP", 0.0)
    first = ledger._runner.pid

    def kill_the_writer(store, changes):  # runs in the proxy while the child holds the transaction
        os.kill(first, signal.SIGKILL)

    async def go():
        await ledger.settle(None, [GLOBAL], _record("a", 1), NOW)
        result = await ledger.settle(None, [GLOBAL], _record("b", 2), NOW, then=kill_the_writer)
        await ledger.flush_spool()  # what was spooled, replayed by a new writer process
        await ledger.settle(None, [GLOBAL], _record("c", 4), NOW)
        return result

    result = asyncio.run(go())
    assert result == (None, [])  # spooled, not lost
    assert ledger._runner.pid != first and ledger._runner.starts == 2
    assert _rows(ledger) == [("a", 1), ("b", 2), ("c", 4)]
    assert asyncio.run(ledger.scope(GLOBAL)).spend_nanos == 7


def test_the_config_says_where_the_writes_run():
    # the default, auto: a process where there is another core to run it on
    assert parse_config({}).general_settings.writer_process() is ((os.cpu_count() or 1) > 1)
    assert parse_config({"general_settings": {"ledger_writer": "thread"}}).general_settings.writer_process() is False
    assert parse_config({"general_settings": {"database_url": "postgresql://u@localhost/db"}}
                        ).general_settings.writer_process() is False
    assert parse_config({"general_settings": {"ledger_writer": "process"}}).general_settings.writer_process()
    with pytest.raises(Exception, match="general_settings.ledger_writer"):
        parse_config({"general_settings": {"ledger_writer": "process",
                                           "database_url": "postgresql://u@localhost/db"}})


# --- through mitmdump ----------------------------------------------------------------------------

MASTER = "sk-1234"
proxy = module_proxy({"litellm_settings": {"max_budget": 100.0, "budget_duration": "30d"},
                      "general_settings": {"master_key": MASTER, "ledger_writer": "process"},
                      "providers": {"openai": {"api_key": "sk-real-openai-upstream-0000"}}})


def _writers(pid: int) -> list[int]:
    """mitmdump's writer processes (children of any of its threads: the writer thread starts it)."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            for child in map(int, f.read().split()):
                with open(f"/proc/{child}/cmdline", "rb") as cmd:
                    if b"writer_process" in cmd.read():
                        found.append(child)
    return found


def _chat(proxy, key: str) -> None:
    proxy.openai_client(api_key=key).chat.completions.create(
        model="gpt-4o", max_tokens=50, messages=[{"role": "user", "content": "hi"}])


def test_through_mitmdump_calls_and_admin_answers_are_the_same_with_the_writer_process(proxy, admin, fake):
    """mitmdump starts the writer process; calls get their rows and spend; the admin API's
    answers show what was saved (a record's times are set before it crosses to the writer)."""
    assert len(_writers(proxy.proc.pid)) == 1
    team = admin.post("/team/new", json={"team_alias": "wp-team", "max_budget": 5.0}).json()
    made = admin.post("/key/generate", json={"team_id": team["team_id"], "max_budget": 1.0}).json()
    assert team["created_at"] and made["created_at"] and made["updated_at"]
    info = admin.get("/key/info", params={"key": made["key"]}).json()
    assert info["created_at"] == made["created_at"]
    mark = proxy.ledger.mark()
    _chat(proxy, made["key"])
    row = proxy.ledger.row(mark)
    assert row["status"] == "ok" and row["cost_nanos"] > 0 and row["team_id"] == team["team_id"]
    spent = wait_for(lambda: admin.get("/key/info", params={"key": made["key"]}).json()["spend"])
    assert spent == row["cost_nanos"] / 1e9


def test_through_mitmdump_a_killed_writer_process_loses_no_call(proxy, admin, fake):
    [writer] = _writers(proxy.proc.pid)
    key = admin.post("/key/generate", json={"max_budget": 1.0}).json()["key"]
    mark = proxy.ledger.mark()
    time.sleep(RESPAWN_GAP)  # (a writer is replaced at most once per gap: this one has had its time)
    os.kill(writer, signal.SIGKILL)
    for _ in range(3):
        _chat(proxy, key)
    rows = proxy.ledger.rows(mark, n=3, timeout=30)  # the next write started a new writer process
    assert len(rows) == 3 and all(r["status"] == "ok" for r in rows)
    assert wait_for(lambda: [p for p in _writers(proxy.proc.pid) if p != writer])  # a new writer process
    assert proxy.is_running()
