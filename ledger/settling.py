"""Settlements written together, a batch at a time.

Settlements that end within `delay` (25 ms) of each other go to the writer thread as one
batch (up to `max_batch`), written by `Store.settle_many` in one transaction with one read
and one write per scope: what a call costs the writer is little more than its ledger row.
A call's row is therefore committed within `delay` of the end of its response
(docs/ledger.md).

When the database is away, a batch's settlements go to the spool (ledger/spool.py) and
their callers learn (None, []); when one settlement of a batch is bad, each is retried
alone so that it fails alone. `drain` waits until everything queued is written (mitmdump's
shutdown); `write_now` writes, blocking, what is still queued when the ledger closes
without a drain. Runs on the event loop, except `write_now`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from core.background import Background
from .model import SpendChange
from .spool import Entry, Spool
from .store import Settlement, Store
from .unavailable import LedgerUnavailable
from .writer import WriterThread

log = logging.getLogger("spendgate")

Done = Callable[[Any, BaseException | None], None]  # done(result, exception), on the event loop


class SettlementBatcher:
    def __init__(self, writer: WriterThread, spool: Spool, background: Background, *,
                 settled: Callable[[list[SpendChange]], None], spooled: Callable[[], None],
                 delay: float = 0.025, max_batch: int = 256):
        self.writer = writer
        self.spool = spool
        self.background = background
        self.settled = settled  # told each written settlement's spend changes
        self.spooled = spooled  # told a settlement went to the spool (the database is away)
        self.delay = delay
        self.max_batch = max_batch
        self._pending: list[tuple[Settlement, Done | None]] = []
        self._outstanding = 0  # settlements queued or being written
        self._drained_event: asyncio.Event | None = None
        self._flush_timer: asyncio.TimerHandle | None = None

    def add(self, item: Settlement, done: Done | None) -> None:
        """Queue a settlement; `done(result, exception)` once it is written (or spooled)."""
        self._pending.append((item, done))
        self._outstanding += 1
        if len(self._pending) >= self.max_batch:
            self.flush()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(self.delay, self.flush)

    def flush(self) -> None:
        """Send what is queued to the writer now, without waiting out the delay."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        batch, self._pending = self._pending, []
        if batch:
            written = asyncio.wrap_future(
                self.writer.submit(Store.settle_many, [item for item, _ in batch], batch=True))
            written.add_done_callback(lambda f: self._written(f, batch))

    async def drain(self) -> None:
        """Write every queued settlement now and wait until they are all written."""
        self.flush()
        while self._outstanding:
            self._drained.clear()
            await self._drained.wait()

    def write_now(self) -> None:
        """Settlements still waiting to be written together (shutting down without `drain`):
        each written now, blocking, or spooled."""
        batch, self._pending = self._pending, []
        for item, _ in batch:
            try:
                self.writer.run_now(Store.settle, *item)
            except LedgerUnavailable:
                self._to_spool(item)
            except Exception:
                log.exception("spendgate: a settlement could not be written at shutdown")
                self._to_spool(item)

    @property
    def _drained(self) -> asyncio.Event:
        if self._drained_event is None:
            self._drained_event = asyncio.Event()
        return self._drained_event

    def _written(self, written: asyncio.Future, batch: list[tuple[Settlement, Done | None]]) -> None:
        exc = written.exception()
        if exc is None:
            for (_, done), result in zip(batch, written.result()):
                self._finished(done, result)
        elif self.writer.unavailable(exc):
            log.warning("spendgate: ledger database unreachable: %s", exc)
            for item, done in batch:
                self._finished(done, self._spool_settlement(item))
        else:  # one bad settlement sinks its batch: each is retried alone, so it fails alone
            for item, done in batch:
                self.background.spawn(self._settle_alone(item, done))

    async def _settle_alone(self, item: Settlement, done: Done | None) -> None:
        try:
            result = await self.writer.run(Store.settle, *item, batch=True)
        except LedgerUnavailable:
            result = self._spool_settlement(item)
        except BaseException as e:
            self._finished(done, None, e)
            return
        self._finished(done, result)

    def _spool_settlement(self, item: Settlement) -> tuple[None, list]:
        self.spooled()
        self._to_spool(item)
        log.warning("spendgate: settlement of a %s call spooled until the ledger is back (%d waiting)",
                    item.record.provider, len(self.spool))
        return None, []

    def _to_spool(self, item: Settlement) -> None:
        self.spool.add(Entry.settle(item.reservation, item.refs, item.record, item.now))

    def _finished(self, done: Done | None, result: Any, exc: BaseException | None = None) -> None:
        if result is not None:
            self.settled(result[1])
        self._outstanding -= 1
        if not self._outstanding and self._drained_event is not None:
            self._drained_event.set()
        if done is not None:
            try:
                done(result, exc)
            except Exception:
                log.exception("spendgate: a settlement's follow-up failed")
