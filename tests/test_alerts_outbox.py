"""The alert outbox in the ledger: exactly one alert per dedupe key across connections
(= processes) and restarts, deliveries claimed under leases, retries and give-up.

Two stores on one ledger are what two mitmdump processes are to it; every test runs on
SQLite (two connections to one file) and on PostgreSQL (two connections to one database).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.delivery import RetryPolicy
from alerts.events import BUDGET_ALERT, Alert, Subject
from alerts.rules import Candidate
from backends import open_store
from alerts import outbox

T0 = datetime(2024, 4, 15, 10, 30, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def alert(level="0.5", period_start=T0, max_nanos=100, scope_id="global", raised_at=T0) -> Alert:
    return Alert(BUDGET_ALERT, "global" if scope_id == "global" else "key", scope_id, level, float(level),
                 period_start, period_start + timedelta(days=30), max_nanos, None, 60, raised_at,
                 Subject(label=scope_id, metadata={"team": "backend"}))


def cand(*channels, **kw) -> Candidate:
    return Candidate(alert(**kw), channels or ("slack",))


@pytest.fixture
def path(ledger_target):
    store = open_store(ledger_target)
    store.migrate()
    store.close()
    return ledger_target


@pytest.fixture
def two(path):
    """Two processes' connections to one ledger."""
    a, b = open_store(path), open_store(path)
    yield a, b
    a.close()
    b.close()


def count(store, table):
    return store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_the_same_alert_from_two_processes_is_stored_once_with_its_deliveries(two):
    a, b = two
    first = outbox.enqueue(a, [cand("slack", "webhook")], T0)
    again = outbox.enqueue(b, [cand("slack", "webhook")], T0 + timedelta(seconds=1))
    assert len(first) == 1 and again == {}
    assert count(a, "alerts") == 1
    assert sorted(r[0] for r in a.conn.execute("SELECT channel FROM alert_deliveries")) == ["slack", "webhook"]


def test_a_restart_does_not_raise_it_again(path):
    s = open_store(path)
    outbox.enqueue(s, [cand()], T0)
    s.close()
    s = open_store(path)
    s.migrate()  # a new process migrates (a no-op) and evaluates the same crossing
    assert outbox.enqueue(s, [cand()], T0) == {}
    assert count(s, "alerts") == 1
    s.close()


def test_a_new_period_or_a_changed_budget_is_a_new_alert(two):
    a, _ = two
    outbox.enqueue(a, [cand()], T0)
    assert len(outbox.enqueue(a, [cand(period_start=T0 + timedelta(days=30))], T0)) == 1
    assert len(outbox.enqueue(a, [cand(max_nanos=200)], T0)) == 1
    assert len(outbox.enqueue(a, [cand(level="0.75")], T0)) == 1
    assert count(a, "alerts") == 4


def test_the_alert_survives_the_round_trip_through_the_ledger(two):
    a, _ = two
    original = alert()
    outbox.enqueue(a, [Candidate(original, ("slack",))], T0)
    [c] = outbox.claim(a, "p1", T0, LEASE)
    assert c.alert == original and c.channel == "slack" and c.attempts == 1 and c.alert_uid


def test_a_claimed_delivery_is_not_claimed_by_another_process_until_its_lease_expires(two):
    a, b = two
    outbox.enqueue(a, [cand("slack", "webhook")], T0)
    got_a = outbox.claim(a, "p1", T0, LEASE, limit=1)
    got_b = outbox.claim(b, "p2", T0, LEASE)
    assert len(got_a) == 1 and len(got_b) == 1 and got_a[0].channel != got_b[0].channel
    assert outbox.succeed(b, got_b[0].delivery_id, "p2", T0)
    assert outbox.claim(b, "p2", T0 + timedelta(seconds=59), LEASE) == []
    # p1 died mid-delivery: after its lease, p2 takes it over
    [taken] = outbox.claim(b, "p2", T0 + timedelta(seconds=60), LEASE)
    assert taken.delivery_id == got_a[0].delivery_id and taken.attempts == 2
    # p1's late answer is not recorded over p2's lease
    assert outbox.succeed(a, taken.delivery_id, "p1", T0) is False
    assert outbox.succeed(b, taken.delivery_id, "p2", T0 + timedelta(seconds=61)) is True
    assert outbox.claim(a, "p1", T0 + timedelta(hours=1), LEASE) == []


def test_a_sent_delivery_is_never_claimed_again(two):
    a, b = two
    outbox.enqueue(a, [cand()], T0)
    [c] = outbox.claim(a, "p1", T0, LEASE)
    assert outbox.succeed(a, c.delivery_id, "p1", T0)
    assert outbox.claim(b, "p2", T0 + timedelta(days=1), LEASE) == []
    assert outbox.next_due(b) is None


def test_a_failed_attempt_is_retried_when_due(two):
    a, _ = two
    outbox.enqueue(a, [cand()], T0)
    [c] = outbox.claim(a, "p1", T0, LEASE)
    assert outbox.fail(a, c.delivery_id, "p1", "HTTP 500: oops", T0 + timedelta(seconds=2))
    assert outbox.next_due(a) == T0 + timedelta(seconds=2)
    assert outbox.claim(a, "p1", T0 + timedelta(seconds=1), LEASE) == []
    [again] = outbox.claim(a, "p1", T0 + timedelta(seconds=2), LEASE)
    assert again.attempts == 2
    [row] = outbox.recent(a)
    assert row["deliveries"][0]["last_error"] == "HTTP 500: oops"


def test_give_up_and_drop_end_the_retries(two):
    a, _ = two
    outbox.enqueue(a, [cand("slack", "email")], T0)
    c1, c2 = outbox.claim(a, "p1", T0, LEASE)
    outbox.fail(a, c1.delivery_id, "p1", "ConnectError", None)
    outbox.drop(a, c2.delivery_id, "p1", "email is no longer an alerting channel")
    assert outbox.next_due(a) is None
    assert outbox.counts(a) == {"failed": 1, "dropped": 1}


def test_release_hands_unfinished_deliveries_to_the_next_process_at_once(two):
    a, b = two
    outbox.enqueue(a, [cand()], T0)
    outbox.claim(a, "p1", T0, LEASE)
    assert outbox.release(a, "p1", T0 + timedelta(seconds=1)) == 1
    [c] = outbox.claim(b, "p2", T0 + timedelta(seconds=1), LEASE)
    assert c.attempts == 2


def test_recent_lists_newest_first_with_each_channel(two):
    a, _ = two
    outbox.enqueue(a, [cand("slack", "webhook", level="0.5")], T0)
    outbox.enqueue(a, [cand("slack", level="0.75")], T0 + timedelta(minutes=1))
    rows = outbox.recent(a)
    assert [r["alert"].level for r in rows] == ["0.75", "0.5"]
    assert [d["channel"] for d in rows[1]["deliveries"]] == ["slack", "webhook"]
    assert all(d["status"] == "pending" for r in rows for d in r["deliveries"])
    assert [r["alert"].level for r in outbox.recent(a, limit=1)] == ["0.75"]


# --- the retry schedule ---------------------------------------------------------------------------


def test_backoff_doubles_to_the_cap_and_gives_up_only_after_a_day():
    p = RetryPolicy()
    assert [p.delay(n) for n in (1, 2, 3, 4, 9, 10, 500)] == [1, 2, 4, 8, 256, 300, 300]
    assert p.next_attempt(3, T0 + timedelta(hours=23), T0) == T0 + timedelta(hours=23, seconds=4)
    assert p.next_attempt(300, T0 + timedelta(days=1), T0) is None
    # a receiver's Retry-After is respected, within the cap
    assert p.next_attempt(1, T0, T0, retry_after=30) == T0 + timedelta(seconds=30)
    assert p.next_attempt(1, T0, T0, retry_after=3600) == T0 + timedelta(seconds=300)
    # attempts within a day: ~290, never fewer than the doubling phase allows
    t, n = T0, 0
    while (nxt := p.next_attempt(n + 1, t, T0)) is not None:
        t, n = nxt, n + 1
    assert 280 <= n <= 300
