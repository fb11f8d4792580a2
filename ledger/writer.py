"""The ledger's writer thread: every write of a process, in order, group-committed.

The hot path's writes — reserve, settle, a refused call's row, release — are queued to this
one thread, each an operation `op(store, *args)`; it takes every batchable write waiting
(up to `max_batch`) and runs them in ONE transaction of its store: one write-lock acquisition and one commit for all of them,
each still seeing the effects of those before it, exactly as if run one by one. Results are
handed back only after the commit. Under load this is what keeps the ledger's single writer
lock (SQLite's file lock; on PostgreSQL the advisory lock that every proxy process shares,
i.e. the hot global budget row) from capping throughput: the lock is taken once per batch,
not once per call (docs/deploy.md has the measurements). If an operation fails inside a
batch, the batch is rolled back and its operations are re-run one by one, so one bad
operation fails alone; if the database is unreachable, every operation of the batch fails
with that error.

Where the writes run is the thread's `runner`: `LocalRunner`, on this thread's own `Store`, or
`ledger.writer_process.ProcessRunner`, in a process of its own (`general_settings.ledger_writer`),
which takes the SQLite work off the proxy's core; either way this thread keeps the order,
the batching and the hand-back.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from .unavailable import Unreachable, awaited, waited

if TYPE_CHECKING:
    from .store import Store

T = TypeVar("T")
log = logging.getLogger("spendgate")


class WriterGone(ConnectionError):
    """The process the writes ran in died under an operation: its outcome is unknown, as
    when a database connection drops (the ledger counts it unreachable: spooled, retried)."""


class LocalRunner:
    """Operations run on a `Store` of this thread's own."""

    def __init__(self, store: Store):
        self.store = store

    def one(self, op: Callable[..., Any], args: tuple) -> Any:
        return op(self.store, *args)

    def many(self, jobs: list[tuple[Callable[..., Any], tuple]]) -> list[Any]:
        return self.store.batch([partial(op, self.store, *args) for op, args in jobs])

    def close(self) -> None:
        self.store.close()


class _Job:
    __slots__ = ("fn", "args", "future", "batch")

    def __init__(self, fn: Callable[..., Any], args: tuple, batch: bool):
        self.fn, self.args, self.batch = fn, args, batch
        self.future: concurrent.futures.Future = concurrent.futures.Future()


class WriterThread:
    """One thread running jobs in submission order; consecutive batchable jobs run as one
    transaction of `store` (group commit)."""

    def __init__(self, name: str, max_batch: int = 64):
        self.max_batch = max_batch
        self.runner: LocalRunner | Any = None  # made on this thread by the async face, then set here
        self.unavailable: Unreachable = lambda e: False
        self.batches = 0  # transactions that ran more than one job
        self.batched_jobs = 0
        self._jobs: collections.deque[_Job] = collections.deque()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, op: Callable[..., T], *args: Any, batch: bool = False) -> concurrent.futures.Future:
        """`op(store, *args)` on this thread, its result in the future. `batch`: may share a
        transaction with the writes around it."""
        return self._submit(_Job(op, args, batch))

    def submit_call(self, fn: Callable[[], T]) -> concurrent.futures.Future:
        """`fn()` on this thread, not an operation on the store (making the runner)."""
        return self._submit(_Job(fn, None, False))

    def _submit(self, job: _Job) -> concurrent.futures.Future:
        with self._cv:
            if self._closed:
                raise RuntimeError("the ledger is closed")
            self._jobs.append(job)
            self._cv.notify()
        return job.future

    async def run(self, op: Callable[..., T], *args: Any, batch: bool = False) -> T:
        """`op(store, *args)` on this thread, awaited; `LedgerUnavailable` when the database
        can't be reached. `batch`: may share a transaction with the writes around it."""
        return await awaited(self.submit(op, *args, batch=batch), self.unavailable)

    def run_now(self, op: Callable[..., T], *args: Any) -> T:
        """The same, blocking (the ledger's shutdown)."""
        return waited(self.submit(op, *args), self.unavailable)

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

    def _one(self, job: _Job) -> None:
        try:
            result = job.fn() if job.args is None else self.runner.one(job.fn, job.args)
        except BaseException as e:
            job.future.set_exception(e)
        else:
            job.future.set_result(result)

    def _many(self, group: list[_Job]) -> None:
        try:
            results = self.runner.many([(j.fn, j.args) for j in group])
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
