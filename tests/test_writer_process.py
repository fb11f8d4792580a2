"""The ledger's writes in a process of their own (`ledger_writer: process`, ledger/writer_process.py):
the same results as the writer thread, an alert hook still inside its settlement's transaction,
and a killed writer process losing nothing (its writes spooled, then replayed by a new one)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from datetime import UTC, datetime

import pytest

from config.load import parse_config
from ledger import BudgetSpec, CallRecord, ScopeRef, Store
from ledger.sqlite import SQLiteLedger
from ledger.writer_process import ProcessRunner

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


def test_a_killed_writer_process_loses_nothing(ledger, monkeypatch):
    monkeypatch.setattr("ledger.writer_process.RESPAWN_GAP", 0.0)
    first = ledger._runner.pid

    async def go():
        await ledger.settle(None, [GLOBAL], _record("a", 1), NOW)
        os.kill(first, signal.SIGKILL)
        await asyncio.sleep(0.2)
        result = await ledger.settle(None, [GLOBAL], _record("b", 2), NOW)  # the writer died under it
        await ledger.flush_spool()  # what was spooled, replayed by a new writer process
        await ledger.settle(None, [GLOBAL], _record("c", 4), NOW)
        return result

    result = asyncio.run(go())
    assert result == (None, [])  # spooled, not lost
    assert ledger._runner.pid != first and ledger._runner.starts == 2
    assert _rows(ledger) == [("a", 1), ("b", 2), ("c", 4)]
    assert asyncio.run(ledger.scope(GLOBAL)).spend_nanos == 7


def test_the_config_says_where_the_writes_run():
    assert parse_config({}).general_settings.writer_process() is False  # the default: a thread
    assert parse_config({"general_settings": {"ledger_writer": "process"}}).general_settings.writer_process()
    with pytest.raises(Exception, match="general_settings.ledger_writer"):
        parse_config({"general_settings": {"ledger_writer": "process",
                                           "database_url": "postgresql://u@localhost/db"}})
