"""The embedded ledger: one SQLite file in WAL mode, shared safely by several processes.

Every budget decision is one `BEGIN IMMEDIATE` transaction: SQLite grants one writer
at a time across processes, so checking and reserving every scope of a call is atomic
even with two mitmdump processes on one file. Work runs on one dedicated writer
thread (the event loop never touches the file) and a reader thread for views.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from . import migrations
from .directory import DirectoryOps
from .model import (
    BudgetSpec,
    CallRecord,
    Denial,
    Reservation,
    ScopeRef,
    ScopeState,
    SpendChange,
    iso,
    parse_iso,
)
from .periods import first_period, period_containing

T = TypeVar("T")

_SCOPE_COLUMNS = "kind, id, max_nanos, soft_nanos, duration, spend_nanos, reserved_nanos, period_start, reset_at"


def _state(row: Sequence[Any]) -> ScopeState:
    return ScopeState(
        kind=row[0],
        id=row[1],
        max_nanos=row[2],
        soft_nanos=row[3],
        duration=row[4],
        spend_nanos=row[5],
        reserved_nanos=row[6],
        period_start=parse_iso(row[7]),
        reset_at=parse_iso(row[8]),
    )


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection tuned for the ledger: autocommit driver, WAL, a generous busy wait."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a commit survives a crash of the process; only an OS crash
    # or power loss can lose the last transactions. See docs/ledger.md.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class SQLiteStore(DirectoryOps):
    """The synchronous ledger operations, each one transaction. Not thread-safe: one
    store per thread (SQLiteLedger gives the writer thread its own)."""

    def __init__(self, path: str | Path, instance_id: str | None = None):
        self.path = str(path)
        self.conn = connect(self.path)
        self.db = sqlite_utils.Database(self.conn)
        self.instance_id = instance_id or uuid.uuid4().hex

    def migrate(self) -> int:
        return migrations.migrate(self.db)

    def close(self) -> None:
        self.conn.close()

    # -- transactions -------------------------------------------------------------------

    def _tx(self, work: Callable[[], T]) -> T:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = work()
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return result

    # -- scope rows -----------------------------------------------------------------------

    def _select(self, ref: ScopeRef) -> ScopeState | None:
        row = self.conn.execute(
            f"SELECT {_SCOPE_COLUMNS} FROM budgets WHERE kind = ? AND id = ?", (ref.kind, ref.id)
        ).fetchone()
        return _state(row) if row else None

    def _event(self, st: ScopeState, event: str, now: datetime, spend_nanos: int | None = None) -> None:
        self.conn.execute(
            "INSERT INTO budget_events (ts, kind, scope_id, event, spend_nanos, period_start, reset_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (iso(now), st.kind, st.id, event, spend_nanos, iso(st.period_start), iso(st.reset_at)),
        )

    def _current(self, ref: ScopeRef, now: datetime) -> ScopeState | None:
        """The scope's row, rolled over to a new period first if its reset time passed."""
        st = self._select(ref)
        if st is None or st.reset_at is None or st.reset_at > now or st.duration is None:
            return st
        # Boundaries run on from the last reset time, so a period re-timed by a
        # duration change keeps its rhythm afterwards.
        period_start, reset_at = period_containing(st.reset_at, st.duration, now)
        self.conn.execute(
            "UPDATE budgets SET spend_nanos = 0, period_start = ?, reset_at = ?, updated_at = ?"
            " WHERE kind = ? AND id = ?",
            (iso(period_start), iso(reset_at), iso(now), st.kind, st.id),
        )
        new = ScopeState(
            st.kind, st.id, st.max_nanos, st.soft_nanos, st.duration, 0,
            st.reserved_nanos, period_start, reset_at,
        )
        self._event(new, "reset", now, spend_nanos=st.spend_nanos)
        return new

    def _ensure(self, ref: ScopeRef, now: datetime) -> ScopeState:
        st = self._current(ref, now)
        if st is not None:
            return st
        self.conn.execute(
            "INSERT INTO budgets (kind, id, spend_nanos, reserved_nanos, period_start, updated_at)"
            " VALUES (?, ?, 0, 0, ?, ?)",
            (ref.kind, ref.id, iso(now), iso(now)),
        )
        return ScopeState(ref.kind, ref.id, None, None, None, 0, 0, now, None)

    # -- operations -----------------------------------------------------------------------

    def configure(self, ref: ScopeRef, spec: BudgetSpec, now: datetime) -> ScopeState:
        return self._tx(lambda: self._configure(ref, spec, now))

    def _configure(self, ref: ScopeRef, spec: BudgetSpec, now: datetime) -> ScopeState:
        """Create or change a scope's budget. A changed duration re-times the current
        period from its start (rolled over at once if that time has passed)."""
        st = self._select(ref)
        if st is None:
            period_start, reset_at = first_period(now, spec.duration)
            self.conn.execute(
                "INSERT INTO budgets (kind, id, max_nanos, soft_nanos, duration, spend_nanos,"
                " reserved_nanos, period_start, reset_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
                (ref.kind, ref.id, spec.max_nanos, spec.soft_nanos, spec.duration,
                 iso(period_start), iso(reset_at), iso(now)),
            )
            st = self._select(ref)
            self._event(st, "created", now)
            return st
        if (st.max_nanos, st.soft_nanos, st.duration) == (spec.max_nanos, spec.soft_nanos, spec.duration):
            return self._current(ref, now)
        reset_at = st.reset_at
        if spec.duration != st.duration:
            # A scope that had no period keeps its spend and first resets one duration
            # from now (LiteLLM #34492: adding a duration to a key with spend must not
            # reset it at once because the key is old).
            anchor = st.period_start if st.duration else now
            reset_at = first_period(anchor, spec.duration)[1]
        self.conn.execute(
            "UPDATE budgets SET max_nanos = ?, soft_nanos = ?, duration = ?, reset_at = ?, updated_at = ?"
            " WHERE kind = ? AND id = ?",
            (spec.max_nanos, spec.soft_nanos, spec.duration, iso(reset_at), iso(now), ref.kind, ref.id),
        )
        st = self._current(ref, now)
        self._event(st, "updated", now)
        return st

    def reserve(self, refs: Iterable[ScopeRef], amount_nanos: int, now: datetime) -> Reservation | Denial:
        """Check every scope and hold `amount_nanos` in each budgeted one, all or nothing.

        A scope is refused when its settled spend has reached its max, or when what is
        settled, what in-flight calls hold and this call's most together exceed it.
        """
        refs = tuple(refs)

        def work() -> Reservation | Denial:
            held: list[ScopeRef] = []
            for ref in refs:
                st = self._current(ref, now)
                if st is None or st.max_nanos is None:
                    continue
                if st.spend_nanos >= st.max_nanos or st.spend_nanos + st.reserved_nanos + amount_nanos > st.max_nanos:
                    return Denial(st, amount_nanos)
                held.append(ref)
            reservation = Reservation(uuid.uuid4().hex, amount_nanos, tuple(held))
            if held and amount_nanos:
                self.conn.executemany(
                    "UPDATE budgets SET reserved_nanos = reserved_nanos + ? WHERE kind = ? AND id = ?",
                    [(amount_nanos, r.kind, r.id) for r in held],
                )
                self.conn.execute(
                    "INSERT INTO reservations (id, instance_id, created_at, amount_nanos, scopes) VALUES (?, ?, ?, ?, ?)",
                    (reservation.id, self.instance_id, iso(now), amount_nanos,
                     json.dumps([[r.kind, r.id] for r in held])),
                )
            return reservation

        return self._tx(work)

    def _unhold(self, reservation: Reservation | None) -> None:
        """Give back a reservation's hold, once: a reaped reservation is already gone."""
        if reservation is None or not reservation.scopes or not reservation.amount_nanos:
            return
        gone = self.conn.execute("DELETE FROM reservations WHERE id = ?", (reservation.id,)).rowcount
        if gone:
            self.conn.executemany(
                "UPDATE budgets SET reserved_nanos = MAX(reserved_nanos - ?, 0) WHERE kind = ? AND id = ?",
                [(reservation.amount_nanos, r.kind, r.id) for r in reservation.scopes],
            )

    def release(self, reservation: Reservation | None) -> None:
        if reservation is None or not reservation.scopes or not reservation.amount_nanos:
            return
        self._tx(lambda: self._unhold(reservation))

    def settle(
        self, reservation: Reservation | None, refs: Iterable[ScopeRef], record: CallRecord, now: datetime
    ) -> tuple[int, list[SpendChange]]:
        """Turn a reservation into the call's real cost: drop the hold, add the cost to
        every scope, write the ledger row — one transaction, so spend and rows agree."""
        refs = tuple(refs)
        if record.finished_at is None:
            record.finished_at = now

        def work() -> tuple[int, list[SpendChange]]:
            self._unhold(reservation)
            cost = record.cost_nanos or 0
            changes = []
            for ref in refs:
                st = self._ensure(ref, now)
                if cost:
                    self.conn.execute(
                        "UPDATE budgets SET spend_nanos = spend_nanos + ?, updated_at = ? WHERE kind = ? AND id = ?",
                        (cost, iso(now), ref.kind, ref.id),
                    )
                after = ScopeState(
                    st.kind, st.id, st.max_nanos, st.soft_nanos, st.duration,
                    st.spend_nanos + cost, st.reserved_nanos, st.period_start, st.reset_at,
                )
                changes.append(SpendChange(after, st.spend_nanos))
            if record.key_hash and self.conn.execute(
                "INSERT OR IGNORE INTO keys (hash, key_masked, issued, blocked, created_at, updated_at)"
                " VALUES (?, ?, 0, 0, ?, ?)", (record.key_hash, record.key_masked, iso(now), iso(now)),
            ).rowcount:
                self._bump()  # a provider key seen for the first time: now listed and budgetable
            row = record.row()
            columns = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            call_id = self.conn.execute(
                f"INSERT INTO calls ({columns}) VALUES ({marks})", tuple(row.values())
            ).lastrowid
            return call_id, changes

        return self._tx(work)

    def record(self, record: CallRecord) -> int:
        """A ledger row that moves no money (a blocked call)."""
        row = record.row()
        return self._tx(
            lambda: self.conn.execute(
                f"INSERT INTO calls ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                tuple(row.values()),
            ).lastrowid
        )

    def reset_due(self, now: datetime) -> list[ScopeState]:
        """Roll every scope whose period has ended, traffic or not."""

        def work() -> list[ScopeState]:
            due = self.conn.execute(
                "SELECT kind, id FROM budgets WHERE reset_at IS NOT NULL AND reset_at <= ?", (iso(now),)
            ).fetchall()
            return [self._current(ScopeRef(kind, id_), now) for kind, id_ in due]

        return self._tx(work)

    def set_spend(self, ref: ScopeRef, now: datetime) -> ScopeState | None:
        """Manual reset: spend back to zero and a new period starting now (reset time kept)."""
        return self._tx(lambda: self._set_spend(ref, now))

    def _set_spend(self, ref: ScopeRef, now: datetime) -> ScopeState | None:
        st = self._current(ref, now)
        if st is None:
            return None
        self.conn.execute(
            "UPDATE budgets SET spend_nanos = 0, period_start = ?, updated_at = ? WHERE kind = ? AND id = ?",
            (iso(now), iso(now), ref.kind, ref.id),
        )
        new = self._select(ref)
        self._event(new, "manual_reset", now, spend_nanos=st.spend_nanos)
        return new

    # -- instances and stale reservations ---------------------------------------------------

    def register_instance(self, now: datetime) -> None:
        self._tx(
            lambda: self.conn.execute(
                "INSERT OR REPLACE INTO instances (id, pid, host, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
                (self.instance_id, os.getpid(), socket.gethostname(), iso(now), iso(now)),
            )
        )

    def heartbeat(self, now: datetime) -> None:
        self._tx(
            lambda: self.conn.execute(
                "UPDATE instances SET heartbeat_at = ? WHERE id = ?", (iso(now), self.instance_id)
            )
        )

    def _release_where(self, where: str, params: Sequence[Any]) -> int:
        rows = self.conn.execute(
            f"SELECT id, amount_nanos, scopes FROM reservations WHERE {where}", params
        ).fetchall()
        for id_, amount, scopes in rows:
            self._unhold(Reservation(id_, amount, tuple(ScopeRef(k, i) for k, i in json.loads(scopes))))
        return len(rows)

    def reap(self, now: datetime, stale_after: timedelta) -> int:
        """Release the holds of instances that stopped beating (killed, crashed)."""

        def work() -> int:
            cutoff = iso(now - stale_after)
            released = self._release_where(
                "instance_id NOT IN (SELECT id FROM instances WHERE heartbeat_at >= ?)", (cutoff,)
            )
            self.conn.execute("DELETE FROM instances WHERE heartbeat_at < ?", (cutoff,))
            return released

        return self._tx(work)

    def retire(self) -> int:
        """A clean shutdown: give back this instance's remaining holds and leave."""

        def work() -> int:
            released = self._release_where("instance_id = ?", (self.instance_id,))
            self.conn.execute("DELETE FROM instances WHERE id = ?", (self.instance_id,))
            return released

        return self._tx(work)

    # -- reads ----------------------------------------------------------------------------

    def scope(self, ref: ScopeRef) -> ScopeState | None:
        return self._select(ref)

    def scopes(self, kind: str | None = None) -> list[ScopeState]:
        sql = f"SELECT {_SCOPE_COLUMNS} FROM budgets"
        params: tuple = ()
        if kind:
            sql += " WHERE kind = ?"
            params = (kind,)
        return [_state(r) for r in self.conn.execute(sql + " ORDER BY kind, id", params)]

    def calls(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM calls ORDER BY id DESC LIMIT ?", [limit]))


class SQLiteLedger:
    """The async face of SQLiteStore for use on mitmproxy's event loop.

    All writes go through one thread in submission order; reads use their own
    connection on another thread, so a slow view never queues behind a settlement.
    """

    engine = "sqlite"

    def __init__(self, path: str | Path, instance_id: str | None = None):
        self.path = Path(path)
        self.instance_id = instance_id or uuid.uuid4().hex
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="spendgate-ledger-w")
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="spendgate-ledger-r")
        self._writer: SQLiteStore | None = None
        self._reader: SQLiteStore | None = None

    def open_sync(self) -> None:
        """Open and migrate now (at start-up, before traffic: a bad path fails loudly)."""
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._writer_pool.submit(SQLiteStore, self.path, self.instance_id).result()
        self._writer_pool.submit(self._writer.migrate).result()
        self._writer_pool.submit(self._writer.register_instance, datetime.now(UTC)).result()
        self._reader = self._reader_pool.submit(SQLiteStore, self.path, self.instance_id).result()

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn, *args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader_pool, fn, *args)

    async def write(self, op: Callable[..., T], *args: Any) -> T:
        """Run any SQLiteStore operation on the writer thread: `await ledger.write(SQLiteStore.save, ...)`."""
        return await self._write(op, self._writer, *args)

    async def read(self, op: Callable[..., T], *args: Any) -> T:
        """Run a read-only SQLiteStore operation on the reader thread."""
        return await self._read(op, self._reader, *args)

    async def configure(self, ref: ScopeRef, spec: BudgetSpec, now: datetime) -> ScopeState:
        return await self._write(self._writer.configure, ref, spec, now)

    def read_sync(self, op: Callable[..., T], *args: Any) -> T:
        """A read at start-up or config reload, outside the hot path."""
        return self._reader_pool.submit(op, self._reader, *args).result()

    def configure_sync(self, ref: ScopeRef, spec: BudgetSpec, now: datetime) -> ScopeState:
        """For start-up and config reloads, which run outside the event loop's hot path."""
        return self._writer_pool.submit(self._writer.configure, ref, spec, now).result()

    async def reserve(self, refs: Iterable[ScopeRef], amount_nanos: int, now: datetime) -> Reservation | Denial:
        return await self._write(self._writer.reserve, tuple(refs), amount_nanos, now)

    async def release(self, reservation: Reservation | None) -> None:
        await self._write(self._writer.release, reservation)

    async def settle(self, reservation, refs, record: CallRecord, now: datetime):
        return await self._write(self._writer.settle, reservation, tuple(refs), record, now)

    async def record(self, record: CallRecord) -> int:
        return await self._write(self._writer.record, record)

    async def reset_due(self, now: datetime) -> list[ScopeState]:
        return await self._write(self._writer.reset_due, now)

    async def set_spend(self, ref: ScopeRef, now: datetime) -> ScopeState | None:
        return await self._write(self._writer.set_spend, ref, now)

    async def heartbeat(self, now: datetime, stale_after: timedelta) -> int:
        await self._write(self._writer.heartbeat, now)
        return await self._write(self._writer.reap, now, stale_after)

    async def scope(self, ref: ScopeRef) -> ScopeState | None:
        return await self._read(self._reader.scope, ref)

    async def scopes(self, kind: str | None = None) -> list[ScopeState]:
        return await self._read(self._reader.scopes, kind)

    def close_sync(self) -> None:
        """Finish queued writes, give back this instance's holds, close."""
        if self._writer is not None:
            self._writer_pool.submit(self._writer.retire).result()
            self._writer_pool.submit(self._writer.close).result()
            self._writer = None
        if self._reader is not None:
            self._reader_pool.submit(self._reader.close).result()
            self._reader = None
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
