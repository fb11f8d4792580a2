"""The ledger's operations, written once for every engine.

`Store` holds the budget logic — periods, reservations, settlement, resets, reaping —
as plain SQL over `self.conn.execute(sql, params)` with `?` placeholders. Each engine
subclass supplies the connection and how a write transaction starts:

- SQLite (`ledger.sqlite.SQLiteStore`): the sqlite3 connection itself; `BEGIN IMMEDIATE`
  takes the file's single write lock.
- PostgreSQL (`ledger.postgres.PostgresStore`): a psycopg connection behind a thin adapter
  that turns `?` into `%s`; `BEGIN` then `pg_advisory_xact_lock`, the same one-writer-at-a-
  time guarantee across every proxy process on the database.

The SQL is the portable subset both engines speak (SQLite ≥ 3.35): `INSERT ... ON CONFLICT
DO NOTHING / DO UPDATE`, `RETURNING id`, `CASE` instead of scalar `MAX(a, b)`, `COUNT(*)
FILTER`-free sums of `CASE`. What truly differs (a JSON path, the migrations' DDL) is a
method of the engine's `dialect` (ledger/dialect.py).

Not thread-safe: one store per thread (the async face gives each of its threads one).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, NamedTuple, TypeVar

from . import migrations
from .dialect import Dialect
from .directory import DirectoryOps
from .leases import LeaseOps, LeaseRow, lease_row_id
from .model import (
    BudgetSpec,
    ROW_COLUMNS,
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

class Settlement(NamedTuple):
    """One call's settlement, as `Store.settle` takes it (see there)."""

    reservation: Reservation | None
    refs: tuple[ScopeRef, ...]
    record: CallRecord
    now: datetime
    then: Callable[[Any, list[SpendChange]], Any] | None = None


def _refs_and_holds(it: Settlement) -> Iterable[ScopeRef]:
    yield from it.refs
    if it.reservation is not None:
        yield from it.reservation.scopes


def _charged(st: ScopeState, cost: int, back: int, moved: dict[ScopeRef, list[int]]) -> ScopeState:
    """`st` after a call's `cost` is added and `back` of its hold given back (noted in `moved`)."""
    m = moved.setdefault(ScopeRef(st.kind, st.id), [0, 0])
    m[0] += cost
    m[1] += back
    return ScopeState(st.kind, st.id, st.max_nanos, st.soft_nanos, st.duration, st.spend_nanos + cost,
                      max(st.reserved_nanos - back, 0), st.period_start, st.reset_at)


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


_INSERT_CALLS_SQL = (f"INSERT INTO calls ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' * len(ROW_COLUMNS))})"
                     " ON CONFLICT (uid) DO NOTHING")


@functools.cache
def _insert_call_sql(columns: tuple[str, ...]) -> str:
    """The INSERT for a ledger row, built once (not joined anew for every call)."""
    return (f"INSERT INTO calls ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            " ON CONFLICT (uid) DO NOTHING RETURNING id")


class Store(DirectoryOps, LeaseOps):
    """The synchronous ledger operations, each one transaction (see module doc)."""

    dialect: ClassVar[Dialect] = Dialect()
    conn: Any
    instance_id: str

    def __init__(self, instance_id: str | None = None):
        self.instance_id = instance_id or uuid.uuid4().hex
        self._in_tx = False
        # Contention figures (scripts/ledger_contention.py, docs/deploy.md): write
        # transactions run, and the time spent starting them, i.e. waiting for the write lock.
        self.write_txs = 0
        self.lock_wait_s = 0.0
        self.lock_hold_s = 0.0  # from holding the write lock to the end of the commit

    # -- engine hooks ---------------------------------------------------------------------

    def _begin_write(self) -> None:
        """Start a write transaction holding the ledger's write lock (engine-specific)."""
        raise NotImplementedError

    def _begin_read(self) -> None:
        """Start a read-only transaction that sees one consistent snapshot."""
        self.conn.execute("BEGIN")

    def migrate(self) -> int:
        """Bring the schema up to date (ledger/migrations.py) in one write transaction;
        returns the version now in force."""
        return self.write_transaction(lambda: migrations.migrate(self.conn, self.dialect))

    def checkpoint(self) -> None:
        """Fold the engine's write-ahead log back into the database, where it has one to fold
        (SQLite's WAL); nothing elsewhere."""

    def close(self) -> None:
        raise NotImplementedError

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(self, *args)`: how a settlement's `then` hook writes, the same whether the store
        is here or in the writer's process (ledger/writer_process.py, `StoreInChild`)."""
        return fn(self, *args)

    def run_read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read; an engine may retry it once on a fresh connection."""
        return fn(*args)

    # -- transactions -------------------------------------------------------------------

    def write_transaction(self, work: Callable[[], T]) -> T:
        """Run `work` in one write transaction under the ledger's write lock; inside another
        one (a batch), just run it. Public: the operations kept beside the store (the
        directory, leases, the alert outbox, migrations) make their transactions with it."""
        if self._in_tx:
            return work()
        t0 = time.perf_counter()
        self._begin_write()
        t1 = time.perf_counter()
        self.lock_wait_s += t1 - t0
        self.write_txs += 1
        self._in_tx = True
        try:
            result = work()
        except BaseException:
            self._in_tx = False
            self._rollback()
            self.lock_hold_s += time.perf_counter() - t1
            raise
        self._in_tx = False
        self.conn.execute("COMMIT")
        self.lock_hold_s += time.perf_counter() - t1
        return result

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except Exception:  # the connection is gone: nothing to roll back
            pass

    def read_transaction(self, work: Callable[[], T]) -> T:
        """Several reads that must agree with each other (one snapshot)."""
        if self._in_tx:
            return work()
        self._begin_read()
        try:
            return work()
        finally:
            self._rollback()  # read-only: ending it either way is the same

    def batch(self, ops: Sequence[Callable[[], Any]]) -> list[Any]:
        """Several operations in ONE write transaction (group commit): one lock acquisition
        and one commit for all. Any exception aborts the whole batch (the caller re-runs
        the operations one by one to find the culprit)."""
        return self.write_transaction(lambda: [op() for op in ops])

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

    def _select_many(self, refs: Sequence[ScopeRef]) -> list[ScopeState | None]:
        """Several scopes' rows in one round trip (the hot path holds the write lock while
        it waits on the database: every round trip saved there is fleet throughput)."""
        if not refs:
            return []
        where = " OR ".join("(kind = ? AND id = ?)" for _ in refs)
        found = {
            (st.kind, st.id): st
            for st in map(_state, self.conn.execute(
                f"SELECT {_SCOPE_COLUMNS} FROM budgets WHERE {where}", [v for r in refs for v in (r.kind, r.id)]))
        }
        return [found.get((r.kind, r.id)) for r in refs]

    def _current_many(self, refs: Sequence[ScopeRef], now: datetime) -> list[ScopeState | None]:
        """`_current` of several scopes, read in one round trip."""
        return [self._rolled(st, now) for st in self._select_many(refs)]

    def _current(self, ref: ScopeRef, now: datetime) -> ScopeState | None:
        """The scope's row, rolled over to a new period first if its reset time passed."""
        return self._rolled(self._select(ref), now)

    def _rolled(self, st: ScopeState | None, now: datetime) -> ScopeState | None:
        """`st` as of `now`: rolled over (written, with a `reset` event) if its period ended."""
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
        return self.write_transaction(lambda: self._configure(ref, spec, now))

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
            for ref, st in zip(refs, self._current_many(refs, now)):
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

        return self.write_transaction(work)

    def _unhold(self, reservation: Reservation | None) -> None:
        """Give back a reservation's hold, once: a reaped reservation is already gone."""
        if reservation is None or not reservation.scopes or not reservation.amount_nanos:
            return
        gone = self.conn.execute("DELETE FROM reservations WHERE id = ?", (reservation.id,)).rowcount
        if gone:
            amount = reservation.amount_nanos
            self.conn.executemany(
                "UPDATE budgets SET reserved_nanos = CASE WHEN reserved_nanos > ? THEN reserved_nanos - ? ELSE 0 END"
                " WHERE kind = ? AND id = ?",
                [(amount, amount, r.kind, r.id) for r in reservation.scopes],
            )

    def release(self, reservation: Reservation | None) -> None:
        if reservation is None or not reservation.scopes or not reservation.amount_nanos:
            return
        self.write_transaction(lambda: self._unhold(reservation))

    def _insert_call(self, record: CallRecord) -> int | None:
        """The call's ledger row; None when a row with its uid is already there (a
        settlement replayed from the spool after its first attempt did commit)."""
        row = record.row()
        found = self.conn.execute(_insert_call_sql(tuple(row)), tuple(row.values())).fetchone()
        return found[0] if found else None

    def _call_id(self, uid: str) -> int | None:
        row = self.conn.execute("SELECT id FROM calls WHERE uid = ?", (uid,)).fetchone()
        return row[0] if row else None

    def _call_ids(self, uids: Sequence[str]) -> dict[str, int]:
        """The rows already there for `uids`, by uid: one statement."""
        if not uids:
            return {}
        return dict(self.conn.execute(
            f"SELECT uid, id FROM calls WHERE uid IN ({', '.join('?' * len(uids))})", list(uids)).fetchall())

    def _insert_calls(self, records: Sequence[CallRecord]) -> list[int | None]:
        """`_insert_call` of each record, in order, as one statement for the batch's rows
        (executemany: the writer's per-row cost is mostly the statement run per row) and
        one read of their new ids by uid. None for a record whose uid has a row already, or
        comes twice (the second is the replay of the first)."""
        uids = [r.uid for r in records]
        there = self._call_ids(uids)
        fresh: dict[str, CallRecord] = {}
        for r in records:
            if r.uid not in there and r.uid not in fresh:
                fresh[r.uid] = r
        if not fresh:
            return [None] * len(records)
        self.conn.executemany(_INSERT_CALLS_SQL, [r.row_values() for r in fresh.values()])
        ids = self._call_ids(list(fresh))
        out: list[int | None] = []
        for r in records:
            out.append(ids[r.uid] if fresh.get(r.uid) is r else None)
        return out

    def settle(
        self, reservation: Reservation | None, refs: Iterable[ScopeRef], record: CallRecord, now: datetime,
        then: Callable[[Store, list[SpendChange]], Any] | None = None,
    ) -> tuple[int, list[SpendChange]]:
        """Turn a reservation into the call's real cost: drop the hold, add the cost to
        every scope, write the ledger row — one transaction, so spend and rows agree.
        Idempotent by the record's uid: settling the same call again changes nothing.
        `then(store, changes)` runs inside the same transaction (alerts are enqueued there,
        so a crash can't commit a threshold crossing without its alert)."""
        return self.settle_many([Settlement(reservation, tuple(refs), record, now, then)])[0]

    def settle_many(self, items: Sequence[Settlement]) -> list[tuple[int, list[SpendChange]]]:
        """Several settlements in one transaction, each exactly as `settle` alone would do
        it, in order (each sees the spend of those before it), but each touched scope's row
        is read once and written once: what a settlement costs the writer is its ledger row.

        A per-call reservation's hold is given back in full (once: a reaped one is gone
        already). A lease-backed call's cost is taken out of this instance's lease row
        instead (ledger/leases.py): its spend moves from held to spent."""

        def work() -> list[tuple[int, list[SpendChange]]]:
            results: list[Any] = [None] * len(items)
            live: list[tuple[int, int]] = []
            for it in items:
                if it.record.finished_at is None:
                    it.record.finished_at = it.now
            for i, call_id in enumerate(self._insert_calls([it.record for it in items])):
                if call_id is None:  # already settled: no second charge
                    results[i] = (self._call_id(items[i].record.uid), [])
                else:
                    live.append((i, call_id))
            if not live:
                return results
            now = max(items[i].now for i, _ in live)
            leases = self._lease_rows([items[i].reservation for i, _ in live])
            touched = list(dict.fromkeys(ref for i, _ in live for ref in _refs_and_holds(items[i])))
            states = dict(zip(touched, self._current_many(touched, now)))
            moved: dict[ScopeRef, list[int]] = {}  # ref -> [cost added, hold given back]
            keys: dict[str, str | None] = {}
            for i, call_id in live:
                it = items[i]
                cost = it.record.cost_nanos or 0
                held = self._given_back(it.reservation, leases)
                changes = []
                for ref in it.refs:
                    before = states[ref] or self._ensure(ref, min(it.record.finished_at, now))
                    after = _charged(before, cost, held.pop(ref, 0), moved)
                    states[ref] = after
                    changes.append(SpendChange(after, before.spend_nanos))
                for ref, back in held.items():  # a hold on a scope the settlement does not name
                    if states[ref] is not None:
                        states[ref] = _charged(states[ref], 0, back, moved)
                if it.record.key_hash:
                    keys.setdefault(it.record.key_hash, it.record.key_masked)
                results[i] = (call_id, changes)
            stamp = iso(now)
            self.conn.executemany(
                "UPDATE budgets SET spend_nanos = spend_nanos + ?,"
                " reserved_nanos = CASE WHEN reserved_nanos > ? THEN reserved_nanos - ? ELSE 0 END,"
                " updated_at = COALESCE(?, updated_at) WHERE kind = ? AND id = ?",
                [(cost, back, back, stamp if cost else None, ref.kind, ref.id)
                 for ref, (cost, back) in moved.items() if cost or back],
            )
            self._write_lease_rows(leases)
            new_keys = sum(self.conn.execute(
                "INSERT INTO keys (hash, key_masked, issued, blocked, created_at, updated_at)"
                " VALUES (?, ?, 0, 0, ?, ?) ON CONFLICT (hash) DO NOTHING",
                (hash_, masked, stamp, stamp),
            ).rowcount for hash_, masked in keys.items())
            if new_keys:
                self._bump()  # a provider key seen for the first time: now listed and budgetable
            for i, _ in live:
                it = items[i]
                if it.then is not None and results[i][1]:
                    it.then(self, results[i][1])
            return results

        return self.write_transaction(work)

    def _given_back(self, reservation: Reservation | None, leases: dict[str, LeaseRow]) -> dict[ScopeRef, int]:
        """What a settling call gives back from the holds, per scope."""
        if reservation is None or not reservation.scopes or not reservation.amount_nanos:
            return {}
        if reservation.lease:
            back = {}
            for ref in reservation.scopes:
                row = leases.get(lease_row_id(reservation.id, ref))
                if row is not None and row.amount > 0:
                    back[ref] = min(reservation.amount_nanos, row.amount)
                    row.amount -= back[ref]
                    row.changed = True
            return back
        if self.conn.execute("DELETE FROM reservations WHERE id = ?", (reservation.id,)).rowcount:
            return dict.fromkeys(reservation.scopes, reservation.amount_nanos)
        return {}

    def record(self, record: CallRecord) -> int:
        """A ledger row that moves no money (a blocked call). Idempotent by uid."""
        return self.write_transaction(lambda: self._insert_call(record) or self._call_id(record.uid))

    def reset_due(self, now: datetime) -> list[ScopeState]:
        """Roll every scope whose period has ended, traffic or not."""

        def work() -> list[ScopeState]:
            due = self.conn.execute(
                "SELECT kind, id FROM budgets WHERE reset_at IS NOT NULL AND reset_at <= ? ORDER BY kind, id",
                (iso(now),),
            ).fetchall()
            return [self._current(ScopeRef(kind, id_), now) for kind, id_ in due]

        return self.write_transaction(work)

    def set_spend(self, ref: ScopeRef, now: datetime) -> ScopeState | None:
        """Manual reset: spend back to zero and a new period starting now (reset time kept)."""
        return self.write_transaction(lambda: self._set_spend(ref, now))

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

    def _beat(self, now: datetime, started: bool) -> None:
        # An upsert: an instance whose row was reaped while it could not reach the ledger
        # (the database was down, the machine slept) comes back as live, instead of
        # having every later reservation of its own reaped as a dead instance's.
        self.conn.execute(
            "INSERT INTO instances (id, pid, host, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at"
            + (", pid = excluded.pid, host = excluded.host, started_at = excluded.started_at" if started else ""),
            (self.instance_id, os.getpid(), socket.gethostname(), iso(now), iso(now)),
        )

    def register_instance(self, now: datetime) -> None:
        self.write_transaction(lambda: self._beat(now, started=True))

    def heartbeat(self, now: datetime) -> None:
        self.write_transaction(lambda: self._beat(now, started=False))

    def _release_where(self, where: str, params: Sequence[Any]) -> int:
        rows = self.conn.execute(
            f"SELECT id, amount_nanos, scopes FROM reservations WHERE {where} ORDER BY id", params
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

        return self.write_transaction(work)

    def beat_and_reap(self, now: datetime, stale_after: timedelta) -> int:
        """This instance's heartbeat, then the reaping of silent ones: one transaction."""

        def work() -> int:
            self._beat(now, started=False)
            return self.reap(now, stale_after)

        return self.write_transaction(work)

    def retire(self, instance_id: str | None = None) -> int:
        """Give back an instance's remaining holds and remove it: this one at a clean
        shutdown, or one known to be gone (its journal's lock is free) without waiting for
        its heartbeat to go stale."""
        instance = instance_id or self.instance_id

        def work() -> int:
            released = self._release_where("instance_id = ?", (instance,))
            self.conn.execute("DELETE FROM instances WHERE id = ?", (instance,))
            return released

        return self.write_transaction(work)

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
        cur = self.conn.execute("SELECT * FROM calls ORDER BY id DESC LIMIT ?", (limit,))
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
