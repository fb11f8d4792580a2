"""Replaying the spool: ledger writes kept while the database was away, recorded once it answers.

One loop (`SpoolReplay._replay`) serves both paths: `flush`, on the event loop every second
(the budget clock), and `replay_now`, blocking, when the ledger closes. Entries are replayed
in order, each in its own transaction on the writer thread, so hot-path writes are not held
up behind a long spool. The replay stops at the first entry the database can't take now and
drops — logged — one it refuses (bad data must not block the spool forever). Replaying an
entry twice charges nothing twice (see ledger/spool.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from .model import CallRecord, SpendChange, parse_iso
from .spool import Entry, Spool, refs_from_json, reservation_from_json
from .store import Store
from .unavailable import LedgerUnavailable
from .writer import WriterThread

T = TypeVar("T")
log = logging.getLogger("spendgate")

ADOPT_EVERY = 30  # flushes between two looks for spools left by stopped processes


def apply(store: Store, entry: Entry) -> Any:
    """One spooled write, run on the store (what the call would have returned)."""
    a = entry.args
    if entry.op == "settle":
        return store.settle(reservation_from_json(a["reservation"]), refs_from_json(a["refs"]),
                            CallRecord.from_json(a["record"]), parse_iso(a["now"]))
    if entry.op == "record":
        return store.record(CallRecord.from_json(a["record"]))
    if entry.op == "release":
        return store.release(reservation_from_json(a["reservation"]))
    raise ValueError(f"unknown spooled operation {entry.op!r}")


def run_unsuspended(coro: Coroutine[Any, Any, T]) -> T:
    """Run to its end, without an event loop, a coroutine whose awaits never suspend."""
    try:
        coro.send(None)
    except StopIteration as finished:
        return finished.value
    coro.close()
    raise RuntimeError("a coroutine run without an event loop tried to wait")


class SpoolReplay:
    def __init__(self, spool: Spool, writer: WriterThread):
        self.spool = spool
        self.writer = writer
        # Told about each settlement replayed by `flush` (what `settle` returns), so that
        # alerting sees the crossings of calls recorded late.
        self.on_replayed: Callable[[CallRecord, list[SpendChange]], None] | None = None
        self._replaying = False
        self._flushes = 0

    async def flush(self) -> int:
        """Replay what is spooled while the database answers; returns how many writes were
        recorded. Cheap when nothing is spooled (called every second); every `ADOPT_EVERY`
        calls, spools of stopped processes on this host are adopted first."""
        self._flushes += 1
        if self._flushes % ADOPT_EVERY == 0 and self.spool.adopt_orphans():
            log.warning("spendgate: adopted ledger writes spooled by a stopped process")
        if not self.spool.entries or self._replaying:
            return 0
        self._replaying = True
        try:
            recorded = await self._replay(self._apply, notify=True)
        finally:
            self._replaying = False
        if recorded:
            log.warning("spendgate: recorded %d spooled ledger writes (%d still waiting)", recorded, len(self.spool))
        return recorded

    def replay_now(self) -> int:
        """The same replay, blocking, as the ledger closes. No one is told of the settlements
        replayed: the event loop their listeners run on is ending."""
        return run_unsuspended(self._replay(self._apply_now, notify=False))

    async def _replay(self, apply_entry: Callable[[Entry], Awaitable[Any]], notify: bool) -> int:
        recorded = 0
        for entry in list(self.spool.entries):
            try:
                result = await apply_entry(entry)
            except LedgerUnavailable:
                break
            except Exception:
                log.exception("spendgate: a spooled ledger write was refused; dropped: %.500s", entry.line())
                self.spool.done(entry)
                continue
            self.spool.done(entry)
            recorded += 1
            if notify and entry.op == "settle" and self.on_replayed is not None:
                try:
                    self.on_replayed(CallRecord.from_json(entry.args["record"]), result[1])
                except Exception:
                    log.exception("spendgate: replay listener failed")
        return recorded

    async def _apply(self, entry: Entry) -> Any:
        return await self.writer.run(apply, entry)

    async def _apply_now(self, entry: Entry) -> Any:
        """Blocks the caller and never suspends: `replay_now` needs no event loop."""
        return self.writer.run_now(apply, entry)
