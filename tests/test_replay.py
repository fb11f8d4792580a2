"""The spool's replay (ledger/replay.py): one loop, run by the budget clock on the event loop
(`flush`) and, blocking, when the ledger closes (`replay_now`) — both must keep the same
order, stop at the first write the database can't take, and drop only a refused one.

The loop's policy is tested against a writer whose outcome per entry is scripted; the
shutdown path once more on a real SQLite file whose write lock is held, then freed.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime

import pytest

from backends import LedgerTarget, open_async_ledger, open_store
from ledger import LedgerUnavailable
from ledger.model import CallRecord, ScopeRef
from ledger.replay import SpoolReplay, run_unsuspended
from ledger.spool import Entry, Spool

USD = 1_000_000_000
T0 = datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
GLOBAL = ScopeRef.global_()


def call(model: str, cost_nanos: int = USD) -> CallRecord:
    return CallRecord(started_at=T0, provider="openai", endpoint="chat", path="/v1/chat/completions",
                      model=model, cost_nanos=cost_nanos, price_source="test", finished_at=T0)


class ScriptedWriter:
    """Stands in for the writer thread: the outcome of each entry is named by its call's model
    (`ok`, `bad`: the database refuses it, `away`: the database can't be reached)."""

    def __init__(self):
        self.applied: list[str] = []

    def outcome(self, entry: Entry):
        model = entry.args["record"]["model"]
        self.applied.append(model)
        if model.startswith("away"):
            raise LedgerUnavailable("the spend ledger's database is unreachable")
        if model.startswith("bad"):
            raise ValueError("refused")
        return 7, [f"changes of {model}"]

    async def run(self, op, entry):
        await asyncio.sleep(0)  # a real await on the event loop path
        return self.outcome(entry)

    def run_now(self, op, entry):
        return self.outcome(entry)


def spooled(tmp_path, *models: str) -> Spool:
    spool = Spool(tmp_path / "spool", "this-instance")
    for model in models:
        spool.add(Entry.settle(None, [GLOBAL], call(model), T0))
    return spool


@pytest.mark.parametrize("path", ["flush", "replay_now"])
def test_both_paths_replay_in_order_drop_a_refused_write_and_stop_when_the_database_is_away(path, tmp_path, caplog):
    spool = spooled(tmp_path, "ok-1", "bad", "ok-2", "away", "ok-3")
    writer = ScriptedWriter()
    replay = SpoolReplay(spool, writer)
    told = []
    replay.on_replayed = lambda record, changes: told.append((record.model, changes))

    with caplog.at_level(logging.ERROR, logger="spendgate"):
        recorded = asyncio.run(replay.flush()) if path == "flush" else replay.replay_now()

    assert recorded == 2
    assert writer.applied == ["ok-1", "bad", "ok-2", "away"]  # nothing after the database went away
    assert [e.args["record"]["model"] for e in spool.entries] == ["away", "ok-3"]  # kept, in order
    assert len((tmp_path / "spool" / "this-instance.jsonl").read_text().splitlines()) == 5  # not truncated yet
    assert "a spooled ledger write was refused; dropped" in caplog.text and '"model": "bad"' in caplog.text
    if path == "flush":  # alerting hears of replayed settlements on the event loop...
        assert told == [("ok-1", ["changes of ok-1"]), ("ok-2", ["changes of ok-2"])]
    else:  # ...not at shutdown, when that loop is ending
        assert told == []
    spool.close()


@pytest.mark.parametrize("path", ["flush", "replay_now"])
def test_a_spool_replayed_to_the_end_starts_its_file_over(path, tmp_path):
    spool = spooled(tmp_path, "ok-1", "ok-2")
    replay = SpoolReplay(spool, ScriptedWriter())
    assert (asyncio.run(replay.flush()) if path == "flush" else replay.replay_now()) == 2
    assert spool.entries == []
    assert (tmp_path / "spool" / "this-instance.jsonl").read_text() == ""
    spool.close()


def test_the_shutdown_path_needs_no_event_loop_and_never_waits_on_one():
    async def immediate():
        return 42

    async def waits():
        await asyncio.sleep(0)

    assert run_unsuspended(immediate()) == 42
    with pytest.raises(RuntimeError, match="tried to wait"):
        run_unsuspended(waits())


def test_what_is_still_spooled_when_the_ledger_closes_is_recorded_if_the_database_is_back(tmp_path):
    target = LedgerTarget("sqlite", str(tmp_path / "ledger.db"))
    ledger = open_async_ledger(target, spool_dir=tmp_path / "spool")
    ledger._writer.conn.execute("PRAGMA busy_timeout = 100")
    other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the file's write lock, held past the busy timeout
    try:
        assert asyncio.run(ledger.settle(None, [GLOBAL], call("gpt-4o"), T0)) == (None, [])
        assert asyncio.run(ledger.record(call("gpt-4o", 0))) is None
    finally:
        other.execute("ROLLBACK")
    assert len(ledger.spool.entries) == 2
    ledger.close_sync()  # no flush since: the shutdown path replays them

    store = open_store(target)
    assert store.scope(GLOBAL).spend_nanos == USD
    assert store.conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 2
    store.close()
    assert list((tmp_path / "spool").glob("*.jsonl")) == []


def test_a_spool_line_the_disk_refuses_part_way_leaves_the_next_readable(tmp_path, monkeypatch):
    """Half of the second entry's line is written, then the disk refuses (ENOSPC): it stays in
    memory (its call in the journal), and the third, written when there is room, is adopted."""
    import os

    import core.files
    from disk import filling_disk_write

    spool = spooled(tmp_path, "first")
    monkeypatch.setattr(core.files.os, "write", filling_disk_write())
    second = call("second")
    spool.add(Entry.settle(None, [GLOBAL], second, T0))
    monkeypatch.undo()
    assert spool.unsaved == {second.uid}
    spool.add(Entry.settle(None, [GLOBAL], call("third"), T0))
    os.close(spool._fd)  # the process is gone: its file is an orphan (its lock went with the fd)
    spool._fd = None
    heir = Spool(tmp_path / "spool", "next-instance")
    assert heir.adopt_orphans() == 2
    assert [Entry.parse(e.line()).args["record"]["model"] for e in heir.entries] == ["first", "third"]
