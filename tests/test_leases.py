"""Budget leases (ledger/leases.py): calls admitted from memory, the ledger still never
overspent — on each engine, with one process and with several sharing the ledger.

The ledger-side operations take a `store` (both engines); the in-memory side is exercised
through `AsyncLedger.reserve/settle` exactly as the Meter uses it.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from backends import open_async_ledger, open_store
from ledger import Denial, Reservation
from ledger.leases import LEASE_CALLS, LeaseBook, lease_row_id
from ledger.model import BudgetSpec, CallRecord, ScopeRef
from ledger.store import Settlement

USD = 1_000_000_000
T0 = datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
GLOBAL = ScopeRef.global_()
KEY = ScopeRef("key", "k1")
LEASE = "lease:test-instance"


def call(cost_nanos: int, **kw) -> CallRecord:
    return CallRecord(started_at=T0, provider="openai", endpoint="chat", path="/v1/chat/completions",
                      model="gpt-4o", cost_nanos=cost_nanos, price_source="test", finished_at=T0, **kw)


def lease_rows(store) -> dict[str, int]:
    return dict(store.conn.execute("SELECT id, amount_nanos FROM reservations WHERE id LIKE 'lease:%'").fetchall())


# --- the ledger side ------------------------------------------------------------------------------


def test_a_lease_is_a_hold_like_any_reservation(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=1000 * USD), T0)
    [grant] = store.lease(LEASE, [(GLOBAL, 64 * USD, 4 * USD)], T0)
    assert (grant.budgeted, grant.granted) == (True, 64 * USD)
    assert store.scope(GLOBAL).reserved_nanos == 64 * USD
    assert lease_rows(store) == {lease_row_id(LEASE, GLOBAL): 64 * USD}


def test_a_lease_takes_at_most_an_eighth_of_what_is_free_and_none_near_the_end(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=100 * USD), T0)
    [grant] = store.lease(LEASE, [(GLOBAL, 64 * USD, 4 * USD)], T0)
    assert grant.granted == 100 * USD // 8
    store.settle(None, [GLOBAL], call(60 * USD), T0)  # free: 100 - 60 - 12.5 = 27.5, an eighth < 4
    [grant] = store.lease(LEASE, [(GLOBAL, 64 * USD, 4 * USD)], T0)
    assert (grant.budgeted, grant.granted) == (True, 0)
    [unbudgeted] = store.lease(LEASE, [(KEY, 64 * USD, 4 * USD)], T0)
    assert (unbudgeted.budgeted, unbudgeted.granted) == (False, 0)


def test_settling_a_lease_backed_call_moves_its_hold_from_the_lease_to_spend(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=1000 * USD), T0)
    store.lease(LEASE, [(GLOBAL, 64 * USD, 4 * USD)], T0)
    held = Reservation(LEASE, 2 * USD, (GLOBAL,))  # the estimate, carved out in memory
    _, [change] = store.settle(held, [GLOBAL], call(USD // 2), T0)
    assert (change.before_nanos, change.scope.spend_nanos) == (0, USD // 2)
    g = store.scope(GLOBAL)
    assert (g.spend_nanos, g.reserved_nanos) == (USD // 2, 62 * USD)
    assert lease_rows(store) == {lease_row_id(LEASE, GLOBAL): 62 * USD}


def test_giving_a_lease_back_releases_it_and_its_row(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=1000 * USD), T0)
    store.lease(LEASE, [(GLOBAL, 64 * USD, 4 * USD)], T0)
    store.return_leases(LEASE, [(GLOBAL, 100 * USD)], T0)  # more than held: gives back what is there
    assert store.scope(GLOBAL).reserved_nanos == 0
    assert lease_rows(store) == {}


def test_a_dead_instances_lease_is_reaped_like_its_other_holds(store):
    store.configure(GLOBAL, BudgetSpec(max_nanos=1000 * USD), T0)
    store.lease(f"lease:{store.instance_id}", [(GLOBAL, 64 * USD, 4 * USD)], T0)
    assert store.scope(GLOBAL).reserved_nanos == 64 * USD
    other = open_store(store.target)
    other.register_instance(T0 + timedelta(minutes=5))
    assert other.reap(T0 + timedelta(minutes=5), timedelta(seconds=30)) == 1
    assert store.scope(GLOBAL).reserved_nanos == 0
    other.close()


def test_the_exact_path_gives_back_this_instances_credit_before_it_checks(store):
    """Without it, a process's own lease would refuse a call its budget can take."""
    store.configure(GLOBAL, BudgetSpec(max_nanos=10 * USD), T0)
    store.lease(LEASE, [(GLOBAL, 64 * USD, USD // 100)], T0)  # 1.25 held by the lease
    outcome, _ = store.admit([GLOBAL], 9 * USD, T0, LEASE)
    assert isinstance(outcome, Denial)  # 9 + 1.25 > 10
    outcome, grants = store.admit([GLOBAL], 9 * USD, T0, LEASE, returns=[(GLOBAL, 10 * USD // 8)])
    assert isinstance(outcome, Reservation) and grants == []
    assert store.scope(GLOBAL).reserved_nanos == 9 * USD


def test_settling_many_at_once_is_settling_each_in_turn(ledger_target):
    """`settle_many` (one read and one write per scope) against `settle` one by one."""
    rng = random.Random(7)
    plan = []
    for i in range(40):
        refs = [GLOBAL] + ([KEY] if i % 3 else []) + ([ScopeRef("team", "t")] if i % 4 == 0 else [])
        plan.append((refs, rng.randrange(0, 3 * USD), rng.randrange(0, 2 * USD), i % 5 == 0))

    def run(together: bool):
        s = open_store(ledger_target)
        s.migrate()
        for ref in (GLOBAL, KEY):
            s.configure(ref, BudgetSpec(max_nanos=10_000 * USD), T0)
        s.lease(LEASE, [(GLOBAL, 500 * USD, 1), (KEY, 500 * USD, 1)], T0)
        items = []
        for n, (refs, estimate, cost, per_call) in enumerate(plan):
            held = s.reserve(refs, estimate, T0) if per_call else Reservation(LEASE, estimate, (GLOBAL, KEY))
            items.append(Settlement(held, tuple(refs), call(cost, uid=f"{n:032x}", key_hash=f"h{n % 3}"), T0))
        results = s.settle_many(items) if together else [s.settle(*item) for item in items]
        changes = [[(c.scope.kind, c.before_nanos, c.scope.spend_nanos, c.scope.reserved_nanos) for c in r[1]]
                   for r in results]
        state = [(st.kind, st.id, st.spend_nanos, st.reserved_nanos) for st in s.scopes()]
        rows = s.conn.execute("SELECT id, amount_nanos FROM reservations ORDER BY id").fetchall()
        keys = s.conn.execute("SELECT hash FROM keys ORDER BY hash").fetchall()
        s.conn.execute("DELETE FROM calls")
        s.close()
        return changes, state, [tuple(r) for r in rows if r[0].startswith("lease:")], keys

    one_by_one = run(together=False)
    _reset(ledger_target)
    assert run(together=True) == one_by_one


def _reset(target) -> None:
    s = open_store(target)
    for table in ("reservations", "budgets", "budget_events", "keys", "calls"):
        s.conn.execute(f"DELETE FROM {table}")
    s.close()


# --- the in-memory side, through the async ledger ---------------------------------------------------


def test_calls_after_the_first_are_admitted_from_memory(ledger_target):
    ledger = open_async_ledger(ledger_target)

    async def scenario():
        await ledger.configure(GLOBAL, BudgetSpec(max_nanos=1000 * USD), T0)
        first = await ledger.reserve([GLOBAL, KEY], USD // 100, T0)  # exact path, asks for leases
        writes = ledger._writer.write_txs
        rest = [await ledger.reserve([GLOBAL, KEY], USD // 100, T0) for _ in range(20)]
        return first, rest, ledger._writer.write_txs - writes

    first, rest, writes = asyncio.run(scenario())
    assert not first.lease and all(r.lease for r in rest)
    assert rest[0].scopes == (GLOBAL,)  # the key has no budget: nothing held there
    assert writes == 0  # not one trip to the database for the 20 calls
    assert ledger.leases.credit(GLOBAL) == LEASE_CALLS * USD // 100 - 20 * USD // 100
    ledger.close_sync()


def test_a_budget_changed_anywhere_is_asked_again(ledger_target):
    ledger = open_async_ledger(ledger_target)

    async def scenario():
        await ledger.configure(GLOBAL, BudgetSpec(max_nanos=1000 * USD), T0)
        await ledger.reserve([GLOBAL], USD, T0)
        assert (await ledger.reserve([GLOBAL], USD, T0)).lease
        await ledger.configure(GLOBAL, BudgetSpec(max_nanos=2 * USD), T0)  # far below what is held
        ledger.leases.invalidate()  # what a directory revision change does (addon/directory.py)
        return await ledger.reserve([GLOBAL], USD, T0)

    assert isinstance(asyncio.run(scenario()), Denial)
    ledger.close_sync()


def test_idle_credit_goes_back_to_the_budget(ledger_target):
    ledger = open_async_ledger(ledger_target)
    clock = [0.0]
    ledger.leases.clock = lambda: clock[0]

    async def scenario():
        await ledger.configure(GLOBAL, BudgetSpec(max_nanos=1000 * USD), T0)
        held = await ledger.reserve([GLOBAL], USD, T0)
        await ledger.settle(held, [GLOBAL], call(USD // 2), T0)
        clock[0] += 1
        await ledger.return_leases(T0)  # still in use
        busy = await ledger.scope(GLOBAL)
        clock[0] += 5
        await ledger.return_leases(T0)
        return busy, await ledger.scope(GLOBAL)

    busy, idle = asyncio.run(scenario())
    assert busy.reserved_nanos == 64 * USD
    assert (idle.spend_nanos, idle.reserved_nanos) == (USD // 2, 0)
    ledger.close_sync()


@pytest.mark.parametrize("instances", [1, 3])
def test_no_overspend_when_many_calls_race_through_leases(ledger_target, instances):
    """Calls racing on several processes' leases: what is spent never exceeds the max,
    and every hold — leases included — is back once they are idle."""
    max_nanos = 400 * USD // 100  # $4 ...
    estimate, cost = USD // 100, USD // 100  # ... for calls that each cost their full estimate
    ledgers = [open_async_ledger(ledger_target) for _ in range(instances)]
    clock = [0.0]
    for ledger in ledgers:
        ledger.leases.clock = lambda: clock[0]

    async def one(ledger, refs, start):
        await asyncio.sleep(start)  # calls arriving over 0.2 s, hundreds in flight at once
        outcome = await ledger.reserve(refs, estimate, T0)
        if isinstance(outcome, Denial):
            return "denied"
        await asyncio.sleep(random.random() / 1000)
        await ledger.settle(outcome, refs, call(cost), T0)
        return "lease" if outcome.lease else "exact"

    async def scenario():
        await ledgers[0].configure(GLOBAL, BudgetSpec(max_nanos=max_nanos), T0)
        for ledger in ledgers:  # one call each first, so every process holds leases when the race starts
            assert await one(ledger, [GLOBAL, KEY], 0) == "exact"
        outcomes = await asyncio.gather(*[one(ledgers[i % instances], [GLOBAL, KEY], i / 4000) for i in range(800)])
        clock[0] += 10
        for ledger in ledgers:
            await ledger.return_leases(T0)
        return outcomes, await ledgers[0].scope(GLOBAL)

    outcomes, g = asyncio.run(scenario())
    # However late the loop wakes the racers, the first leases' worth (1/8 of $4: 50 calls,
    # less the warm-up calls) is admitted in memory: many calls never waited on the database.
    assert outcomes.count("lease") >= 40
    assert g.spend_nanos <= max_nanos
    assert g.spend_nanos >= max_nanos * 3 // 4  # and the leases did not strand much of the budget
    assert g.reserved_nanos == 0
    for ledger in ledgers:
        ledger.close_sync()


def test_the_book_declines_rather_than_refuses():
    book = LeaseBook(LEASE, clock=lambda: 0.0)
    assert book.admit([GLOBAL], USD) is None  # never heard of it: ask the ledger
    [want] = book.wants([GLOBAL], USD)
    assert book.wants([GLOBAL], USD) == []  # one request per scope at a time
    from ledger.leases import Grant

    book.learn([Grant(GLOBAL, True, 3 * USD)], [want])
    assert book.admit([GLOBAL], 2 * USD).amount_nanos == 2 * USD
    assert book.admit([GLOBAL], 2 * USD) is None  # 1 left: the exact path decides
    assert book.take_credit([GLOBAL]) == [(GLOBAL, USD)]


def test_a_settlement_that_spends_the_budget_stops_its_leases(ledger_target):
    """A call that cost more than its estimate (no max_tokens, an unpriced model) can take
    spend past the max: the lease must not let the next call through."""
    ledger = open_async_ledger(ledger_target)

    async def scenario():
        await ledger.configure(GLOBAL, BudgetSpec(max_nanos=100 * USD), T0)
        first = await ledger.reserve([GLOBAL], USD // 10, T0)
        second = await ledger.reserve([GLOBAL], USD // 10, T0)
        assert second.lease and ledger.leases.credit(GLOBAL) > 0
        await ledger.settle(first, [GLOBAL], call(101 * USD), T0)  # far more than reserved
        return await ledger.reserve([GLOBAL], USD // 10, T0)

    refused = asyncio.run(scenario())
    assert isinstance(refused, Denial) and refused.scope.spend_nanos == 101 * USD
    assert ledger.leases.credit(GLOBAL) == 0
    ledger.close_sync()
