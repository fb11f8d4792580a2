"""The ledger's async face on mitmproxy's event loop, the same for every engine.

The event loop never touches the database. Each ledger has two threads, each with its own
`Store` (its own connection): a writer and a reader, so a slow view never queues behind a
settlement. Both engines use the same synchronous store code on these threads — with
PostgreSQL too (psycopg 3's sync API and a small psycopg_pool pool), because an async
driver would need a second, async copy of every store operation; psycopg releases the
GIL while it waits on the network, so the threads cost the loop nothing.

`AsyncLedger` puts together the parts, one module each:

- ledger/writer.py — the writer thread, which group-commits the hot path's writes;
- ledger/leasing.py — admission from this process's budget leases, and the exact path;
- ledger/settling.py — settlements written together, a batch every 25 ms at most;
- ledger/replay.py — the spool's replay, once the database answers again.

**Losing the database.** An engine error that means "unreachable" (connection refused or
lost, pool timeout, SQLite's lock timeout) becomes `LedgerUnavailable` (ledger/unavailable.py).
Admission then follows `general_settings.on_ledger_error` (addon/meter.py). Settlements,
refused calls' rows and released holds are never dropped: they go to the spool
(ledger/spool.py, memory plus an fsync'ed local file) and `flush_spool` — called every
second by the budget clock — replays them once the database answers; connections come back
by themselves (the pool).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from core.background import Background
from .leases import LEASE_PREFIX, LeaseBook
from .leasing import LeaseKeeper
from .model import BudgetSpec, CallRecord, Denial, Reservation, ScopeRef, ScopeState, SpendChange
from .replay import SpoolReplay
from .settling import Done, SettlementBatcher
from .spool import Entry, Spool
from .store import Settlement, Store
from .unavailable import LedgerUnavailable, awaited
from .writer import LocalRunner, WriterGone, WriterThread

T = TypeVar("T")
log = logging.getLogger("spendgate")


class AsyncLedger:
    """What the addon talks to; the engine subclass says how to make a `Store`."""

    engine: ClassVar[str] = "?"

    def __init__(self, instance_id: str | None = None, *, spool_dir: str | Path | None = None,
                 max_batch: int = 64):
        self.instance_id = instance_id or uuid.uuid4().hex
        self._writer_thread = WriterThread("spendgate-ledger-w", max_batch)
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="spendgate-ledger-r")
        self._runner: LocalRunner | Any = None  # where the writes run (ledger/writer.py)
        self._reader: Store | None = None
        self.spool = Spool(spool_dir, self.instance_id)
        self.leases = LeaseBook(LEASE_PREFIX + self.instance_id)
        background = Background("background ledger work", expected=(LedgerUnavailable,))
        self._leasing = LeaseKeeper(self.leases, self._writer_thread, background)
        self._settlements = SettlementBatcher(self._writer_thread, self.spool, background,
                                              settled=self._leasing.revoke_exhausted,
                                              spooled=self._leasing.distrust)
        self._replay = SpoolReplay(self.spool, self._writer_thread)

    @property
    def on_replayed(self) -> Callable[[CallRecord, list[SpendChange]], None] | None:
        """Told about each settlement replayed from the spool (what `settle` returns), so that
        alerting sees the crossings of calls recorded late: set by addon/loader.py."""
        return self._replay.on_replayed

    @on_replayed.setter
    def on_replayed(self, listener: Callable[[CallRecord, list[SpendChange]], None] | None) -> None:
        self._replay.on_replayed = listener

    # -- engine hooks ---------------------------------------------------------------------

    def _make_store(self) -> Store:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Before the first store is made (e.g. create the SQLite file's directory)."""

    def _dispose(self) -> None:
        """After both stores are closed (e.g. close the connection pool)."""

    def unavailable(self, exc: BaseException) -> bool:
        """Whether `exc` means the database can't be reached (vs. a bug or bad data)."""
        return False

    # -- life cycle -------------------------------------------------------------------------

    def open_sync(self) -> None:
        """Open and migrate now (at start-up, before traffic: a bad target fails loudly)."""
        self._prepare()
        w = self._writer_thread
        w.unavailable = self._writer_unavailable
        w.runner = self._runner = w.submit_call(self._make_runner).result()
        w.submit(Store.migrate).result()
        w.submit(Store.register_instance, datetime.now(UTC)).result()
        self._reader = self._reader_pool.submit(self._make_store).result()
        adopted = self.spool.adopt_orphans()
        if adopted:
            log.warning("spendgate: %d ledger writes spooled by a stopped process will be replayed", adopted)

    @property
    def _writer(self) -> Store | None:
        """The writer thread's own store, when the writes run here (tests and scripts look in)."""
        return getattr(self._runner, "store", None)

    def _make_runner(self) -> LocalRunner | Any:
        """Where the writes run: a store on the writer thread (the engine's own)."""
        return LocalRunner(self._make_store())

    def _writer_unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, WriterGone) or self.unavailable(exc)

    def close_sync(self) -> None:
        """Finish queued writes, replay what was spooled if the database is back, give back
        this instance's holds, close. Whatever is still spooled stays in the spool file."""
        if self._runner is not None:
            try:
                self._settlements.write_now()
                self._replay.replay_now()
                self._writer_thread.submit(Store.retire).result()
            except Exception as e:
                log.error("spendgate: could not retire from the ledger cleanly: %s", e)
            self._writer_thread.submit_call(self._runner.close).result()
            self._runner = None
        if self._reader is not None:
            self._reader_pool.submit(self._reader.close).result()
            self._reader = None
        self._writer_thread.shutdown()
        self._reader_pool.shutdown(wait=True)
        if self.spool.entries:
            log.error("spendgate: %d ledger writes could not be recorded; kept in %s for the next start",
                      len(self.spool), self.spool.path or "memory (lost: no spool directory)")
        self.spool.close()
        self._dispose()

    def close_sync_quietly(self) -> None:
        """Tear down after a failed `open_sync` (no database work)."""
        for closer in (self._runner, self._reader):
            if closer is not None:
                try:
                    closer.close()
                except Exception:
                    pass
        self._runner = self._reader = None
        self._writer_thread.shutdown()
        self._reader_pool.shutdown(wait=True)
        self.spool.close()
        try:
            self._dispose()
        except Exception:
            pass

    # -- running store operations ----------------------------------------------------------

    async def write(self, op: Callable[..., T], *args: Any) -> T:
        """Run any Store operation on the writer thread: `await ledger.write(Store.save, ...)`."""
        return await self._writer_thread.run(op, *args)

    async def read(self, op: Callable[..., T], *args: Any) -> T:
        """Run a read-only Store operation on the reader thread."""
        return await awaited(self._reader_pool.submit(self._reader.run_read, op, self._reader, *args),
                             self.unavailable)

    def read_sync(self, op: Callable[..., T], *args: Any) -> T:
        """A read at start-up or config reload, outside the hot path."""
        return self._reader_pool.submit(self._reader.run_read, op, self._reader, *args).result()

    def configure_sync(self, ref: ScopeRef, spec: BudgetSpec, now: datetime) -> ScopeState:
        """For start-up and config reloads, which run outside the event loop's hot path."""
        return self._writer_thread.submit(Store.configure, ref, spec, now).result()

    # -- the hot path (group-committed; spooled when the database is away) ------------------

    async def configure(self, ref: ScopeRef, spec: BudgetSpec, now: datetime) -> ScopeState:
        return await self.write(Store.configure, ref, spec, now)

    async def reserve(self, refs: Iterable[ScopeRef], amount_nanos: int, now: datetime) -> Reservation | Denial:
        """Hold `amount_nanos` in every budgeted scope of `refs`, or the scope that refuses.

        From this process's leases when they cover it (no database work: ledger/leasing.py);
        otherwise the exact path, one group-committed transaction that also asks for fresh
        leases."""
        refs = tuple(refs)
        held = self._leasing.admit(refs, amount_nanos, now)
        if held is not None:
            return held
        # Calls that ended before this one arrived are settled first: a client calling one
        # call after another is judged on its settled spend, not on the holds of calls that
        # have finished but wait for their batch (the settle delay).
        self._settlements.flush()
        return await self._leasing.reserve_exact(refs, amount_nanos, now)

    async def return_leases(self, now: datetime) -> None:
        """Give back credit left unused (idle leases, or owed since the database was away).
        Called every second by the budget clock."""
        await self._leasing.give_back(now)

    async def release(self, reservation: Reservation | None) -> None:
        if reservation is None or not reservation.scopes or not reservation.amount_nanos:
            return
        if reservation.lease:
            self.leases.put_back(reservation)
            return
        try:
            await self._writer_thread.run(Store.release, reservation, batch=True)
        except LedgerUnavailable:
            self.spool.add(Entry.release(reservation))

    async def settle(self, reservation, refs, record: CallRecord, now: datetime, then=None):
        """(call id, spend changes); (None, []) when the database is away and the settlement
        was spooled (its changes reach `on_replayed` when it is replayed, without `then`).
        `then(store, changes)` runs on the writer thread inside the settlement's transaction."""
        fut = asyncio.get_running_loop().create_future()

        def done(result, exc):
            if not fut.done():
                fut.set_exception(exc) if exc is not None else fut.set_result(result)

        self.settle_soon(reservation, refs, record, now, then, done)
        return await fut

    def settle_soon(self, reservation, refs, record: CallRecord, now: datetime, then=None,
                    done: Done | None = None) -> None:
        """`settle` without a coroutine per call: `done(result, exception)` is called on the
        event loop once it is written (or spooled), within the settle delay (25 ms) of now,
        together with the settlements around it (ledger/settling.py)."""
        self._settlements.add(Settlement(reservation, tuple(refs), record, now, then), done)

    async def drain(self) -> None:
        """Write every queued settlement now and wait until they are all written."""
        await self._settlements.drain()

    async def record(self, record: CallRecord) -> int | None:
        try:
            return await self._writer_thread.run(Store.record, record, batch=True)
        except LedgerUnavailable:
            self.spool.add(Entry.record(record))
            return None

    async def reset_due(self, now: datetime) -> list[ScopeState]:
        return await self.write(Store.reset_due, now)

    async def set_spend(self, ref: ScopeRef, now: datetime) -> ScopeState | None:
        return await self.write(Store.set_spend, ref, now)

    async def retire(self, instance_id: str) -> int:
        """Release the holds of an instance known to be gone (see Store.retire)."""
        return await self.write(Store.retire, instance_id)

    async def beat_and_reap(self, now: datetime, stale_after: timedelta) -> int:
        """Beat, and release the holds of instances silent for `stale_after` (how many)."""
        return await self.write(Store.beat_and_reap, now, stale_after)

    async def scope(self, ref: ScopeRef) -> ScopeState | None:
        return await self.read(Store.scope, ref)

    async def scopes(self, kind: str | None = None) -> list[ScopeState]:
        return await self.read(Store.scopes, kind)

    # -- the spool ----------------------------------------------------------------------------

    def kept_in_memory_only(self, uid: str) -> bool:
        """Whether call `uid`'s settlement waits in the spool's memory only (its disk refused
        the line): a kill now would lose it, so its journal entry is not done yet."""
        return uid in self.spool.unsaved

    async def flush_spool(self) -> int:
        """Replay spooled writes in order while the database answers; returns how many
        were recorded. Cheap when nothing is spooled (called every second). A full disk
        may have left the WAL holding the space: it is checkpointed before each retry."""
        if self.spool.entries:
            await self.checkpoint()
        return await self._replay.flush()

    async def checkpoint(self) -> None:
        """Fold the write-ahead log into the database (SQLite; see SQLiteStore.checkpoint).
        A failure is logged by the caller's next write, not raised here."""
        try:
            await self._writer_thread.run(_checkpoint)
        except Exception as e:
            log.debug("spendgate: ledger checkpoint failed: %s", e)


def _checkpoint(store: Store) -> None:
    """`store.checkpoint()`, the engine's own (an operation the writer can run anywhere)."""
    store.checkpoint()
