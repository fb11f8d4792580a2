"""Budget leases: admitting a call without a trip to the database, and still never overspending.

A per-call reservation costs a round trip to the ledger's writer before every forwarded
call: the wait is the request's added latency and the work competes with mitmproxy for
the core. So each proxy process keeps, per budgeted scope, a *lease*: a block of holds
reserved in the ledger ahead of time, exactly like per-call reservations (it counts in
the scope's `reserved_nanos` and has a row in `reservations`, so a crashed instance's
lease is reaped like any hold). Admission then carves the call's hold out of the lease
in memory, on the event loop:

- `LeaseBook.admit` takes the call's estimate from the *credit* of every budgeted scope
  of the call, or declines (the caller then takes the exact path below). It never
  refuses a call: only the ledger does, on the exact path.
- Settling a lease-backed call is a per-call settlement whose hold comes from the lease
  row: the row and the scope's `reserved_nanos` go down by the call's estimate, its spend
  up by its real cost (`Store.settle_many`). Credit is never given back on settlement, so
  memory and database agree whatever order the writes land in: the lease row always
  covers the credit left plus the estimates of the calls in flight.
- The exact path (`LeaseOps.admit`, one transaction): give back this process's unused
  credit on the call's scopes, reserve the call as before (refused with the scope that
  cannot take it), and grant fresh leases.
- A lease is granted only while it is small next to what the scope has free: at most
  1/`LEASE_SHARE` of it, and at least `MIN_CALLS` calls' worth. Near a budget's end no
  lease is granted and every call takes the exact path, as without leases; what other
  instances lease is at most an eighth of the free budget each, and returned after
  `IDLE_AFTER` seconds without use.

What a scope allows is learnt when a lease is granted and trusted for `TTL` seconds, or
until the directory changes (a budget set or reset through the admin API on any
instance bumps its revision, which every instance checks each second).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .model import Denial, Reservation, ScopeRef, iso

LEASE_PREFIX = "lease:"
LEASE_SHARE = 8  # a lease takes at most this fraction (1/8) of a scope's free budget
LEASE_CALLS = 64  # a lease is sized for this many calls like the one asking
MIN_CALLS = 4  # a lease smaller than this many calls is not worth granting
TTL = 2.0  # seconds a scope's lease (or its having no budget) is trusted without news
IDLE_AFTER = 2.0  # seconds without admissions after which credit goes back to the scope


def lease_row_id(lease_id: str, ref: ScopeRef) -> str:
    """The `reservations` row holding one instance's lease on one scope."""
    return f"{lease_id}:{ref.kind}:{ref.id}"


@dataclass(frozen=True, slots=True)
class Grant:
    """What the ledger said about one scope when asked for a lease."""

    ref: ScopeRef
    budgeted: bool
    granted: int
    overcommitted: bool = False  # spent, or spend and holds exceed the max (lowered, or a call cost more)


Want = tuple[ScopeRef, int, int]  # (scope, nanos wanted, fewest worth granting)


@dataclass(slots=True)
class LeaseRow:
    """A lease's `reservations` row as a settlement batch reads it, changes it in memory and
    writes it back once (only when `changed`)."""

    amount: int
    changed: bool = False


class LeaseOps:
    """The ledger side, a mixin of `ledger.store.Store` (provides conn, write_transaction, reserve, ...)."""

    conn: Any

    def admit(
        self, refs: Sequence[ScopeRef], amount: int, now: datetime, lease_id: str,
        returns: Sequence[tuple[ScopeRef, int]] = (), wants: Sequence[Want] = (),
    ) -> tuple[Reservation | Denial, list[Grant]]:
        """The exact path: give back `returns`, reserve the call, grant `wants` — one
        transaction. No lease is granted with a refusal."""

        def work() -> tuple[Reservation | Denial, list[Grant]]:
            self._adjust_leases(lease_id, returns, now)
            outcome = self.reserve(refs, amount, now)
            grants = [] if isinstance(outcome, Denial) else self._grant(lease_id, wants, now)
            return outcome, grants

        return self.write_transaction(work)

    def lease(self, lease_id: str, wants: Sequence[Want], now: datetime) -> list[Grant]:
        """Top leases up (in the background, before they run out)."""
        return self.write_transaction(lambda: self._grant(lease_id, wants, now))

    def return_leases(self, lease_id: str, returns: Sequence[tuple[ScopeRef, int]], now: datetime) -> None:
        """Give unused credit back to its scopes."""
        self.write_transaction(lambda: self._adjust_leases(lease_id, returns, now))

    # -- inside a transaction ------------------------------------------------------------

    def _grant(self, lease_id: str, wants: Sequence[Want], now: datetime) -> list[Grant]:
        grants = []
        states = self._current_many([ref for ref, _, _ in wants], now)
        for (ref, want, fewest), st in zip(wants, states):
            if st is None or st.max_nanos is None:
                grants.append(Grant(ref, False, 0))
                continue
            free = st.max_nanos - st.spend_nanos - st.reserved_nanos
            granted = min(want, free // LEASE_SHARE)
            if granted < fewest:
                granted = 0
            if granted:
                self._move_lease(lease_id, ref, granted, now)
            grants.append(Grant(ref, True, granted, overcommitted=free < 0 or st.spend_nanos >= st.max_nanos))
        return grants

    def _adjust_leases(self, lease_id: str, returns: Sequence[tuple[ScopeRef, int]], now: datetime) -> None:
        rows = self._lease_rows_by_id([lease_row_id(lease_id, ref) for ref, amount in returns if amount > 0])
        for ref, amount in returns:
            row = rows.get(lease_row_id(lease_id, ref))
            have = row.amount if row is not None else 0
            if min(amount, have) > 0:
                self._move_lease(lease_id, ref, -min(amount, have), now)

    def _move_lease(self, lease_id: str, ref: ScopeRef, delta: int, now: datetime) -> None:
        """Grow (delta > 0) or shrink a lease row, and the scope's reserved total with it."""
        row_id = lease_row_id(lease_id, ref)
        self.conn.execute(
            "INSERT INTO reservations (id, instance_id, created_at, amount_nanos, scopes) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET amount_nanos = reservations.amount_nanos + excluded.amount_nanos",
            (row_id, self.instance_id, iso(now), delta, json.dumps([[ref.kind, ref.id]])),
        )
        self.conn.execute("DELETE FROM reservations WHERE id = ? AND amount_nanos <= 0", (row_id,))
        self.conn.execute(
            "UPDATE budgets SET reserved_nanos = CASE WHEN reserved_nanos + ? > 0 THEN reserved_nanos + ? ELSE 0 END"
            " WHERE kind = ? AND id = ?",
            (delta, delta, ref.kind, ref.id),
        )

    def _lease_rows_by_id(self, ids: Sequence[str]) -> dict[str, LeaseRow]:
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        return {row_id: LeaseRow(amount) for row_id, amount in self.conn.execute(
            f"SELECT id, amount_nanos FROM reservations WHERE id IN ({marks})", list(ids))}

    def _lease_rows(self, reservations: Iterable[Reservation | None]) -> dict[str, LeaseRow]:
        """The lease rows behind lease-backed reservations, by row id."""
        ids = {lease_row_id(r.id, ref) for r in reservations if r is not None and r.lease and r.amount_nanos
               for ref in r.scopes}
        return self._lease_rows_by_id(sorted(ids))

    def _write_lease_rows(self, rows: dict[str, LeaseRow]) -> None:
        kept = [(row.amount, row_id) for row_id, row in rows.items() if row.changed and row.amount > 0]
        gone = [(row_id,) for row_id, row in rows.items() if row.changed and row.amount <= 0]
        if kept:
            self.conn.executemany("UPDATE reservations SET amount_nanos = ? WHERE id = ?", kept)
        if gone:
            self.conn.executemany("DELETE FROM reservations WHERE id = ?", gone)


@dataclass(slots=True)
class _Lease:
    budgeted: bool
    credit: int = 0  # nanos held in the ledger for this process and not yet given to a call
    learnt: float = 0.0  # monotonic time the ledger last told us about this scope
    used: float = 0.0  # monotonic time of the last admission from it
    refilling: bool = False
    size: int = 0  # how much to hold: grows while leases run out within a second


class LeaseBook:
    """This process's leases, on the event loop (never touched from another thread)."""

    def __init__(self, lease_id: str, clock=time.monotonic):
        self.lease_id = lease_id
        self.clock = clock
        self._scopes: dict[ScopeRef, _Lease] = {}
        self.admitted = 0  # calls admitted from leases (for tests and benchmarks)

    def admit(self, refs: Sequence[ScopeRef], amount: int) -> Reservation | None:
        """The call's holds, carved from the leases; None when a scope must be asked."""
        now = self.clock()
        held = []
        for ref in refs:
            lease = self._scopes.get(ref)
            if lease is None or now - lease.learnt > TTL:
                return None
            if lease.budgeted:
                if lease.credit < amount:
                    return None
                held.append(lease)
        for lease in held:
            lease.credit -= amount
            lease.used = now
        self.admitted += 1
        return Reservation(self.lease_id, amount,
                           tuple(ref for ref in refs if self._scopes[ref].budgeted) if held else ())

    def put_back(self, reservation: Reservation) -> None:
        """A lease-backed call that never went upstream: its holds return to the credit."""
        for ref in reservation.scopes:
            lease = self._scopes.get(ref)
            if lease is not None:
                lease.credit += reservation.amount_nanos

    def wants(self, refs: Sequence[ScopeRef], amount: int) -> list[Want]:
        """Leases worth asking for around a call of `amount`: scopes unknown, going stale
        or running low. One request per scope at a time: they are marked as refilling
        until `learn` (or `learnt_nothing`) is called with them.

        A lease is sized for `LEASE_CALLS` calls like this one, and doubles (up to 64 times
        that) each time it runs low less than a second after the last grant, so a busy
        scope is topped up a few times a second whatever its traffic."""
        now = self.clock()
        base = max(amount, 1) * LEASE_CALLS
        out = []
        for ref in refs:
            lease = self._scopes.get(ref)
            if lease is None:  # a placeholder nothing is admitted from until the ledger answers
                lease = self._scopes[ref] = _Lease(budgeted=True, learnt=float("-inf"), used=now)
            elif lease.refilling:
                continue
            else:
                fresh = now - lease.learnt < TTL / 2
                low = lease.budgeted and lease.credit < max(lease.size, base) // 2
                if fresh and not low:
                    continue
                if fresh and low:
                    lease.size = min(max(lease.size, base) * 2, base * 64)
            lease.size = max(lease.size, base)
            lease.refilling = True
            out.append((ref, max(lease.size - lease.credit, 0), max(amount, 1) * MIN_CALLS))
        return out

    def take_credit(self, refs: Iterable[ScopeRef]) -> list[tuple[ScopeRef, int]]:
        """All unused credit on `refs`, taken out of memory to be given back."""
        out = []
        for ref in refs:
            lease = self._scopes.get(ref)
            if lease is not None and lease.credit > 0:
                out.append((ref, lease.credit))
                lease.credit = 0
        return out

    def learn(self, grants: Iterable[Grant], wants: Iterable[Want] = ()) -> list[tuple[ScopeRef, int]]:
        """Take in what the ledger granted; returns credit to give back at once (scopes
        whose max was lowered below what is spent and held)."""
        self.learnt_nothing(wants)
        now = self.clock()
        for g in grants:
            lease = self._scopes.get(g.ref)
            if lease is None:
                lease = self._scopes[g.ref] = _Lease(g.budgeted, used=now)
            lease.budgeted = g.budgeted
            lease.credit += g.granted
            lease.learnt = now
        return self.take_credit([g.ref for g in grants if g.overcommitted])

    def learnt_nothing(self, wants: Iterable[Want]) -> None:
        """The request for `wants` failed or was refused: they may be asked for again."""
        for ref, _, _ in wants:
            lease = self._scopes.get(ref)
            if lease is not None:
                lease.refilling = False

    def idle(self) -> list[tuple[ScopeRef, int]]:
        """Credit unused for `IDLE_AFTER` seconds, taken out to be given back."""
        now = self.clock()
        return self.take_credit([ref for ref, lease in self._scopes.items()
                                 if lease.credit > 0 and now - lease.used > IDLE_AFTER])

    def invalidate(self) -> None:
        """Budgets changed somewhere: ask the ledger again before trusting any lease."""
        for lease in self._scopes.values():
            lease.learnt = float("-inf")

    def revoke(self, ref: ScopeRef) -> list[tuple[ScopeRef, int]]:
        """The scope is spent or over-committed: its credit, to give back; ask the ledger next time."""
        lease = self._scopes.get(ref)
        if lease is not None:
            lease.learnt = float("-inf")
        return self.take_credit([ref])

    def take_all_credit(self) -> list[tuple[ScopeRef, int]]:
        """Every lease's credit (the ledger went away: trust nothing until it is back)."""
        return self.take_credit(list(self._scopes))

    def restore(self, returns: Iterable[tuple[ScopeRef, int]]) -> None:
        """Credit taken out to be given back, when the giving back failed (rolled back)."""
        for ref, amount in returns:
            lease = self._scopes.get(ref)
            if lease is not None:
                lease.credit += amount

    def credit(self, ref: ScopeRef) -> int:
        lease = self._scopes.get(ref)
        return lease.credit if lease is not None else 0
