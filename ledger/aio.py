"""The ledger's async face on mitmproxy's event loop, the same for every engine.

The event loop never touches the database. Each ledger has two threads, each with its own
`Store` (its own connection): a writer and a reader, so a slow view never queues behind a
settlement. Both engines use the same synchronous store code on these threads — with
PostgreSQL too (psycopg 3's sync API and a small psycopg_pool pool), because an async
driver would need a second, async copy of every store operation; psycopg releases the
GIL while it waits on the network, so the threads cost the loop nothing.

**Group commit.** The hot path's writes — reserve, settle, a refused call's row, release —
are queued to the writer thread, which takes every such write waiting (up to `max_batch`)
and runs them in ONE transaction: one write-lock acquisition and one commit for all of
them, each still seeing the effects of those before it, exactly as if run one by one.
Results are handed back only after the commit. Under load this is what keeps the ledger's
single writer lock (SQLite's file lock; on PostgreSQL the advisory lock that every proxy
process shares, i.e. the hot global budget row) from capping throughput: the lock is taken
once per batch, not once per call (docs/deploy.md has the measurements). If an operation
fails inside a batch, the batch is rolled back and its operations are re-run one by one,
so one bad operation fails alone.

**Losing the database.** An engine error that means "unreachable" (connection refused or
lost, pool timeout, SQLite's lock timeout) becomes `LedgerUnavailable`. Admission then
follows `general_settings.on_ledger_error` (addon/meter.py). Settlements, refused calls'
rows and released holds are never dropped: they go to the spool (ledger/spool.py, memory
plus an fsync'ed local file) and `flush_spool` — called every second by the budget clock —
replays them once the database answers; connections come back by themselves (the pool).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .background import Background
from .leases import LEASE_PREFIX, LeaseBook
from .model import (
    BudgetSpec,
    CallRecord,
    Denial,
    Reservation,
    ScopeRef,
    ScopeState,
    SpendChange,
    parse_iso,
)
from .spool import Entry, Spool, record_from_json, refs_from_json, reservation_from_json
from .store import Settlement, Store

T = TypeVar("T")
log = logging.getLogger("spendgate")


class LedgerUnavailable(Exception):
    """The ledger's database cannot be reached right now (the details are logged)."""


class _Job:
    __slots__ = ("fn", "args", "future", "batch")

    def __init__(self, fn: Callable[..., Any], args: tuple, batch: bool):
        self.fn, self.args, self.batch = fn, args, batch
        self.future: concurrent.futures.Future = concurrent.futures.Future()


class WriterThread:
    """One thread running jobs in submission order; consecutive batchable jobs run as one
    transaction of `store_of()` (group commit)."""

    def __init__(self, name: str, max_batch: int = 64):
        self.max_batch = max_batch
        self.store: Store | None = None
        self.unavailable: Callable[[BaseException], bool] = lambda e: False
        self.batches = 0  # transactions that ran more than one job
        self.batched_jobs = 0
        self._jobs: collections.deque[_Job] = collections.deque()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any, batch: bool = False) -> concurrent.futures.Future:
        job = _Job(fn, args, batch)
        with self._cv:
            if self._closed:
                raise RuntimeError("the ledger is closed")
            self._jobs.append(job)
            self._cv.notify()
        return job.future

    def shutdown(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._jobs and not self._closed:
                    self._cv.wait()
                if not self._jobs:
                    return
                group = [self._jobs.popleft()]
                if group[0].batch:
                    while self._jobs and self._jobs[0].batch and len(group) < self.max_batch:
                        group.append(self._jobs.popleft())
            group = [j for j in group if j.future.set_running_or_notify_cancel()]
            if len(group) == 1:
                self._one(group[0])
            elif group:
                self._many(group)

    @staticmethod
    def _one(job: _Job) -> None:
        try:
            result = job.fn(*job.args)
        except BaseException as e:
            job.future.set_exception(e)
        else:
            job.future.set_result(result)

    def _many(self, group: list[_Job]) -> None:
        try:
            results = self.store.batch([partial(j.fn, *j.args) for j in group])
        except BaseException as e:
            if self.unavailable(e):
                for job in group:
                    job.future.set_exception(e)
                return
            log.warning("spendgate: a batched ledger write failed (%r); running its %d operations one by one",
                        e, len(group))
            for job in group:
                self._one(job)
            return
        self.batches += 1
        self.batched_jobs += len(group)
        for job, result in zip(group, results):
            job.future.set_result(result)


class AsyncLedger:
    """What the addon talks to; the engine subclass says how to make a `Store`."""

    engine: ClassVar[str] = "?"

    def __init__(self, instance_id: str | None = None, *, spool_dir: str | Path | None = None,
                 max_batch: int = 64):
        self.instance_id = instance_id or uuid.uuid4().hex
        self._writer_thread = WriterThread("spendgate-ledger-w", max_batch)
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="spendgate-ledger-r")
        self._writer: Store | None = None
        self._reader: Store | None = None
        self.spool = Spool(spool_dir, self.instance_id)
        # Told about each settlement replayed from the spool (what `settle` returns), so that
        # alerting sees the crossings of calls recorded late: set by addon/loader.py.
        self.on_replayed: Callable[[CallRecord, list[SpendChange]], None] | None = None
        self._flushing = False
        self._flush_ticks = 0
        self.leases = LeaseBook(LEASE_PREFIX + self.instance_id)
        self._owed: list[tuple[ScopeRef, int]] = []  # lease credit to give back
        self._background = Background("background ledger work", expected=(LedgerUnavailable,))
        self._pending: list[tuple[Settlement, Callable | None]] = []  # settlements to write together
        self._outstanding = 0  # settlements queued or being written
        self._drained_event: asyncio.Event | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        self.settle_delay = 0.025
        self.max_settle_batch = 256

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
        self._writer = self._writer_thread.submit(self._make_store).result()
        self._writer_thread.store = self._writer
        self._writer_thread.unavailable = self.unavailable
        self._writer_thread.submit(self._writer.migrate).result()
        self._writer_thread.submit(self._writer.register_instance, datetime.now(UTC)).result()
        self._reader = self._reader_pool.submit(self._make_store).result()
        adopted = self.spool.adopt_orphans()
        if adopted:
            log.warning("spendgate: %d ledger writes spooled by a stopped process will be replayed", adopted)

    def close_sync(self) -> None:
        """Finish queued writes, replay what was spooled if the database is back, give back
        this instance's holds, close. Whatever is still spooled stays in the spool file."""
        if self._writer is not None:
            try:
                self._settle_pending_sync()
                self._replay_sync()
                self._writer_thread.submit(self._writer.retire).result()
            except Exception as e:
                log.error("spendgate: could not retire from the ledger cleanly: %s", e)
            self._writer_thread.submit(self._writer.close).result()
            self._writer = None
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

    def _settle_pending_sync(self) -> None:
        """Settlements still waiting to be written together (shutting down without `drain`)."""
        batch, self._pending = self._pending, []
        for item, _ in batch:
            try:
                self._writer_thread.submit(self._writer.settle, *item).result()
            except Exception as e:
                if not self.unavailable(e):
                    log.exception("spendgate: a settlement could not be written at shutdown")
                self.spool.add(Entry.settle(item.reservation, item.refs, item.record, item.now))

    def close_sync_quietly(self) -> None:
        """Tear down after a failed `open_sync` (no database work)."""
        for store in (self._writer, self._reader):
            if store is not None:
                try:
                    store.close()
                except Exception:
                    pass
        self._writer = self._reader = None
        self._writer_thread.shutdown()
        self._reader_pool.shutdown(wait=True)
        self.spool.close()
        try:
            self._dispose()
        except Exception:
            pass

    # -- running store operations ----------------------------------------------------------

    async def _await(self, fut: concurrent.futures.Future) -> Any:
        try:
            return await asyncio.wrap_future(fut)
        except Exception as e:
            if self.unavailable(e):
                log.warning("spendgate: ledger database unreachable: %s", e)
                raise LedgerUnavailable("the spend ledger's database is unreachable") from e
            raise

    async def _write(self, fn: Callable[..., T], *args: Any, batch: bool = False) -> T:
        return await self._await(self._writer_thread.submit(fn, *args, batch=batch))

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._await(self._reader_pool.submit(self._reader.run_read, fn, *args))

    async def write(self, op: Callable[..., T], *args: Any) -> T:
        """Run any Store operation on the writer thread: `await ledger.write(Store.save, ...)`."""
        return await self._write(op, self._writer, *args)

    async def read(self, op: Callable[..., T], *args: Any) -> T:
        """Run a read-only Store operation on the reader thread."""
        return await self._read(op, self._reader, *args)

    def read_sync(self, op: Callable[..., T], *args: Any) -> T:
        """A read at start-up or config reload, outside the hot path."""
        return self._reader_pool.submit(self._reader.run_read, op, self._reader, *args).result()

    def write_sync(self, op: Callable[..., T], *args: Any) -> T:
        return self._writer_thread.submit(op, self._writer, *args).result()

    def configure_sync(self, ref: ScopeRef, spec: BudgetSpec, now: datetime) -> ScopeState:
        """For start-up and config reloads, which run outside the event loop's hot path."""
        return self._writer_thread.submit(self._writer.configure, ref, spec, now).result()

    # -- the hot path (group-committed; spooled when the database is away) ------------------

    async def configure(self, ref: ScopeRef, spec: BudgetSpec, now: datetime) -> ScopeState:
        return await self._write(self._writer.configure, ref, spec, now)

    async def reserve(self, refs: Iterable[ScopeRef], amount_nanos: int, now: datetime) -> Reservation | Denial:
        """Hold `amount_nanos` in every budgeted scope of `refs`, or the scope that refuses.

        From this process's leases when they cover it (no database work: ledger/leases.py),
        topping them up in the background before they run out; otherwise the exact path,
        one group-committed transaction that also asks for fresh leases."""
        refs = tuple(refs)
        leases = self.leases
        held = leases.admit(refs, amount_nanos)
        if held is not None:
            wants = leases.wants(refs, amount_nanos)
            if wants:
                self._background.spawn(self._refill(wants, now))
            return held
        # Calls that ended before this one arrived are settled first: a client calling one
        # call after another is judged on its settled spend, not on the holds of calls that
        # have finished but wait for their batch (settle_delay).
        self._flush_settlements()
        returns = leases.take_credit(refs)
        wants = leases.wants(refs, amount_nanos)
        try:
            outcome, grants = await self._write(
                self._writer.admit, refs, amount_nanos, now, leases.lease_id, returns, wants, batch=True)
        except LedgerUnavailable:
            leases.learnt_nothing(wants)
            self._owed += returns + leases.take_all_credit()
            raise
        except BaseException:
            leases.learnt_nothing(wants)
            leases.restore(returns)
            raise
        self._owed += leases.learn(grants, wants)
        return outcome

    async def _refill(self, wants: list, now: datetime) -> None:
        try:
            grants = await self._write(self._writer.lease, self.leases.lease_id, wants, now, batch=True)
        except BaseException:
            self.leases.learnt_nothing(wants)
            raise
        self._owed += self.leases.learn(grants, wants)

    async def return_leases(self, now: datetime) -> None:
        """Give back credit left unused (idle leases, or owed since the database was away).
        Called every second by the budget clock."""
        returns = self._owed + self.leases.idle()
        self._owed = []
        if not returns:
            return
        try:
            await self._write(self._writer.return_leases, self.leases.lease_id, returns, now, batch=True)
        except BaseException:
            self._owed += returns
            raise

    def _revoke_exhausted(self, changes: list[SpendChange]) -> None:
        """A settlement left a scope spent, or over-committed (a call cost more than its
        estimate): no more calls from its lease — the exact path decides (and refuses)."""
        for change in changes:
            st = change.scope
            if st.max_nanos is not None and (
                    st.spend_nanos >= st.max_nanos or st.spend_nanos + st.reserved_nanos > st.max_nanos):
                self._owed += self.leases.revoke(st.ref)

    @property
    def _drained(self) -> asyncio.Event:
        if self._drained_event is None:
            self._drained_event = asyncio.Event()
        return self._drained_event

    async def release(self, reservation: Reservation | None) -> None:
        if reservation is None or not reservation.scopes or not reservation.amount_nanos:
            return
        if reservation.lease:
            self.leases.put_back(reservation)
            return
        try:
            await self._write(self._writer.release, reservation, batch=True)
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
                    done: Callable[[Any, BaseException | None], None] | None = None) -> None:
        """`settle` without a coroutine per call: `done(result, exception)` is called on the
        event loop once it is written (or spooled).

        Settlements wait up to `settle_delay` seconds to be written together, in one
        transaction with one read and one write per scope (`Store.settle_many`): the writer's
        work per call is little more than its ledger row. A call's row is committed within
        that delay after its response ended (docs/ledger.md)."""
        self._pending.append((Settlement(reservation, tuple(refs), record, now, then), done))
        self._outstanding += 1
        if len(self._pending) >= self.max_settle_batch:
            self._flush_settlements()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(self.settle_delay, self._flush_settlements)

    async def drain(self) -> None:
        """Write every queued settlement now and wait until they are all written."""
        self._flush_settlements()
        while self._outstanding:
            self._drained.clear()
            await self._drained.wait()

    def _flush_settlements(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        batch, self._pending = self._pending, []
        if batch:
            written = asyncio.wrap_future(
                self._writer_thread.submit(self._writer.settle_many, [item for item, _ in batch], batch=True))
            written.add_done_callback(lambda f: self._written(f, batch))

    def _written(self, written: asyncio.Future, batch: list) -> None:
        exc = written.exception()
        if exc is None:
            for (_, done), result in zip(batch, written.result()):
                self._settled(done, result)
        elif self.unavailable(exc):
            log.warning("spendgate: ledger database unreachable: %s", exc)
            for item, done in batch:
                self._settled(done, self._spool_settlement(item))
        else:  # one bad settlement sinks its batch: each is retried alone, so it fails alone
            for item, done in batch:
                self._background.spawn(self._settle_alone(item, done))

    async def _settle_alone(self, item: Settlement, done) -> None:
        try:
            result = await self._write(self._writer.settle, *item, batch=True)
        except LedgerUnavailable:
            result = self._spool_settlement(item)
        except BaseException as e:
            self._settled(done, None, e)
            return
        self._settled(done, result)

    def _spool_settlement(self, item: Settlement) -> tuple[None, list]:
        self._owed += self.leases.take_all_credit()  # unsure what the database still holds
        self.spool.add(Entry.settle(item.reservation, item.refs, item.record, item.now))
        log.warning("spendgate: settlement of a %s call spooled until the ledger is back (%d waiting)",
                    item.record.provider, len(self.spool))
        return None, []

    def _settled(self, done, result, exc: BaseException | None = None) -> None:
        if result is not None:
            self._revoke_exhausted(result[1])
        self._outstanding -= 1
        if not self._outstanding and self._drained_event is not None:
            self._drained_event.set()
        if done is not None:
            try:
                done(result, exc)
            except Exception:
                log.exception("spendgate: a settlement's follow-up failed")

    async def record(self, record: CallRecord) -> int | None:
        try:
            return await self._write(self._writer.record, record, batch=True)
        except LedgerUnavailable:
            self.spool.add(Entry.record(record))
            return None

    async def reset_due(self, now: datetime) -> list[ScopeState]:
        return await self._write(self._writer.reset_due, now)

    async def set_spend(self, ref: ScopeRef, now: datetime) -> ScopeState | None:
        return await self._write(self._writer.set_spend, ref, now)

    async def retire(self, instance_id: str) -> int:
        """Release the holds of an instance known to be gone (see Store.retire)."""
        return await self._write(self._writer.retire, instance_id)

    async def heartbeat(self, now: datetime, stale_after: timedelta) -> int:
        """Beat, and release the holds of instances silent for `stale_after`."""
        return await self._write(self._writer.beat_and_reap, now, stale_after)

    async def scope(self, ref: ScopeRef) -> ScopeState | None:
        return await self._read(self._reader.scope, ref)

    async def scopes(self, kind: str | None = None) -> list[ScopeState]:
        return await self._read(self._reader.scopes, kind)

    # -- the spool ----------------------------------------------------------------------------

    def _apply(self, store: Store, entry: Entry) -> Any:
        a = entry.args
        if entry.op == "settle":
            return store.settle(reservation_from_json(a["reservation"]), refs_from_json(a["refs"]),
                                record_from_json(a["record"]), parse_iso(a["now"]))
        if entry.op == "record":
            return store.record(record_from_json(a["record"]))
        if entry.op == "release":
            return store.release(reservation_from_json(a["reservation"]))
        raise ValueError(f"unknown spooled operation {entry.op!r}")

    async def flush_spool(self) -> int:
        """Replay spooled writes in order while the database answers; returns how many
        were recorded. Cheap when nothing is spooled (called every second)."""
        self._flush_ticks += 1
        if self._flush_ticks % 30 == 0 and self.spool.adopt_orphans():
            log.warning("spendgate: adopted ledger writes spooled by a stopped process")
        if not self.spool.entries or self._flushing:
            return 0
        self._flushing = True
        done = 0
        try:
            for entry in list(self.spool.entries):
                try:
                    result = await self._write(self._apply, self._writer, entry)
                except LedgerUnavailable:
                    break
                except Exception:
                    log.exception("spendgate: a spooled ledger write was refused; dropped: %.500s", entry.line())
                    self.spool.done(entry)
                    continue
                self.spool.done(entry)
                done += 1
                if entry.op == "settle" and self.on_replayed is not None:
                    try:
                        self.on_replayed(record_from_json(entry.args["record"]), result[1])
                    except Exception:
                        log.exception("spendgate: replay listener failed")
        finally:
            self._flushing = False
        if done:
            log.warning("spendgate: recorded %d spooled ledger writes (%d still waiting)", done, len(self.spool))
        return done

    def _replay_sync(self) -> None:
        for entry in list(self.spool.entries):
            try:
                self._writer_thread.submit(self._apply, self._writer, entry).result()
            except Exception as e:
                if self.unavailable(e):
                    return
                log.exception("spendgate: a spooled ledger write was refused; dropped: %.500s", entry.line())
            self.spool.done(entry)
