"""Keeping this process's budget leases in step with the ledger.

`ledger/leases.py` holds the two halves: `LeaseBook`, the leases' credit in memory, and the
store's lease operations. `LeaseKeeper` is what runs between them on the event loop:

- `admit`: a call's holds carved from the leases, with no database work; leases running low
  or going stale are topped up in the background (`Store.lease`).
- `reserve_exact`: the exact path, for a call the leases don't cover — one group-committed
  transaction (`Store.admit`) that gives back this process's unused credit on the call's
  scopes, reserves the call or refuses it, and grants fresh leases.
- Credit that must go back to its scopes — idle, revoked after a settlement, or taken out
  of memory because the database went away — is `owed` until `give_back` returns it (every
  second, from the budget clock).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core.background import Background
from .leases import LeaseBook, Want
from .model import Denial, Reservation, ScopeRef, SpendChange
from .store import Store
from .unavailable import LedgerUnavailable
from .writer import WriterThread


class LeaseKeeper:
    def __init__(self, book: LeaseBook, writer: WriterThread, background: Background):
        self.book = book
        self.writer = writer
        self.background = background
        self.owed: list[tuple[ScopeRef, int]] = []  # lease credit to give back

    def admit(self, refs: Sequence[ScopeRef], amount: int, now: datetime) -> Reservation | None:
        """The call's holds from the leases (topping them up in the background before they
        run out), or None: the call must take the exact path."""
        held = self.book.admit(refs, amount)
        if held is not None:
            wants = self.book.wants(refs, amount)
            if wants:
                self.background.spawn(self._refill(wants, now))
        return held

    async def reserve_exact(self, refs: Sequence[ScopeRef], amount: int, now: datetime) -> Reservation | Denial:
        """Reserve the call in the ledger, or the scope that refuses it, with fresh leases."""
        book = self.book
        returns = book.take_credit(refs)
        wants = book.wants(refs, amount)
        try:
            outcome, grants = await self.writer.run(
                Store.admit, refs, amount, now, book.lease_id, returns, wants, batch=True)
        except LedgerUnavailable:
            book.learnt_nothing(wants)
            self.owed += returns + book.take_all_credit()
            raise
        except BaseException:
            book.learnt_nothing(wants)
            book.restore(returns)
            raise
        self.owed += book.learn(grants, wants)
        return outcome

    async def _refill(self, wants: list[Want], now: datetime) -> None:
        try:
            grants = await self.writer.run(Store.lease, self.book.lease_id, wants, now, batch=True)
        except BaseException:
            self.book.learnt_nothing(wants)
            raise
        self.owed += self.book.learn(grants, wants)

    async def give_back(self, now: datetime) -> None:
        """Give back credit left unused (idle leases, or owed since the database was away)."""
        returns = self.owed + self.book.idle()
        self.owed = []
        if not returns:
            return
        try:
            await self.writer.run(Store.return_leases, self.book.lease_id, returns, now, batch=True)
        except BaseException:
            self.owed += returns
            raise

    def revoke_exhausted(self, changes: list[SpendChange]) -> None:
        """A settlement left a scope spent, or over-committed (a call cost more than its
        estimate): no more calls from its lease — the exact path decides (and refuses)."""
        for change in changes:
            st = change.scope
            if st.max_nanos is not None and (
                    st.spend_nanos >= st.max_nanos or st.spend_nanos + st.reserved_nanos > st.max_nanos):
                self.owed += self.book.revoke(st.ref)

    def distrust(self) -> None:
        """A write could not reach the database: unsure what it still holds for us, trust no
        credit until it is back (all of it is owed back)."""
        self.owed += self.book.take_all_credit()
