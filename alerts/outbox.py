"""The alert outbox: store operations on the `alerts` and `alert_deliveries` tables (v3).

It belongs to the alerts (it stores `alerts.events.Alert`), and runs on the ledger: plain
functions taking a ledger `Store` first, on the ledger's writer or reader thread
(`await ledger.write(outbox.enqueue, items, now)`). Each is one write transaction under the
ledger's write lock (`BEGIN IMMEDIATE` on SQLite, the advisory lock on PostgreSQL), so they
are atomic across every process sharing the ledger:

- `enqueue` inserts an alert only if its dedupe key is new, and its deliveries (one per
  channel) in the same transaction: an alert is never stored without its deliveries, and
  never twice.
- `claim` hands due deliveries to one process under a lease; a lease that expires (its
  process died mid-delivery) makes the delivery claimable again. Claims are serialized by
  the write lock, so two processes never claim the same delivery (the effect of `FOR UPDATE
  SKIP LOCKED`, without a second locking scheme).
- `succeed` / `fail` / `drop` record the outcome only while the caller still holds the lease.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from alerts.events import Alert
from ledger.model import iso, parse_iso

if TYPE_CHECKING:
    from alerts.rules import Candidate
    from ledger.store import Store

PENDING, SENDING, SENT, FAILED, DROPPED = "pending", "sending", "sent", "failed", "dropped"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this process now holds the lease on."""

    delivery_id: int
    alert_id: int
    alert_uid: str
    channel: str
    attempts: int  # including this one
    created_at: datetime  # when the alert was raised: the give-up clock starts there
    route_team: str | None
    alert: Alert


def enqueue(store: Store, candidates: list[Candidate], now: datetime) -> dict[str, int]:
    """Insert each alert whose dedupe key is new, with its pending deliveries; returns
    {dedupe key: alert id} of the alerts inserted (duplicates are silently ignored)."""

    def work() -> dict[str, int]:
        inserted = {}
        for c in candidates:
            a = c.alert
            row = store.conn.execute(
                "INSERT INTO alerts (uid, dedupe_key, event, scope_kind, scope_id, threshold,"
                " period_start, max_nanos, spend_nanos, route_team, created_at, facts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
                (uuid.uuid4().hex, a.dedupe_key, a.event, a.scope, a.scope_id, a.threshold,
                 iso(a.period_start), a.max_nanos, a.spend_nanos, a.subject.route_team, iso(now), a.to_json()),
            ).fetchone()
            if row is None:  # already raised (by this process or another)
                continue
            alert_id = row[0]
            store.conn.executemany(
                "INSERT INTO alert_deliveries (alert_id, channel, status, attempts, next_attempt_at)"
                " VALUES (?, ?, 'pending', 0, ?)",
                [(alert_id, channel, iso(now)) for channel in c.channels],
            )
            inserted[a.dedupe_key] = alert_id
        return inserted

    return store.write_transaction(work)


_DUE = (
    "(d.status = 'pending' AND d.next_attempt_at <= :now)"
    " OR (d.status = 'sending' AND d.lease_until <= :now)"
)


def claim(store: Store, owner: str, now: datetime, lease: timedelta, limit: int = 20) -> list[Claimed]:
    """Take up to `limit` due deliveries (pending and due, or sending with an expired
    lease), oldest first, leasing them to `owner` until now + `lease`."""

    def work() -> list[Claimed]:
        rows = store.conn.execute(
            "SELECT d.id, d.alert_id, a.uid, d.channel, d.attempts, a.created_at, a.route_team, a.facts"
            f" FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id WHERE {_DUE}"
            " ORDER BY d.next_attempt_at, d.id LIMIT :limit",
            {"now": iso(now), "limit": limit},
        ).fetchall()
        until = iso(now + lease)
        store.conn.executemany(
            "UPDATE alert_deliveries SET status = 'sending', lease_owner = ?, lease_until = ?,"
            " attempts = attempts + 1, last_attempt_at = ? WHERE id = ?",
            [(owner, until, iso(now), r[0]) for r in rows],
        )
        return [
            Claimed(r[0], r[1], r[2], r[3], r[4] + 1, parse_iso(r[5]), r[6], Alert.from_json(r[7]))
            for r in rows
        ]

    return store.write_transaction(work)


def _finish(store: Store, delivery_id: int, owner: str, sets: str, params: tuple) -> bool:
    return bool(store.write_transaction(lambda: store.conn.execute(
        f"UPDATE alert_deliveries SET {sets}, lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND status = 'sending' AND lease_owner = ?",
        (*params, delivery_id, owner),
    ).rowcount))


def succeed(store: Store, delivery_id: int, owner: str, now: datetime) -> bool:
    """Delivered. False when the lease was lost meanwhile (the other holder records it)."""
    return _finish(store, delivery_id, owner, "status = 'sent', sent_at = ?, last_error = NULL", (iso(now),))


def fail(store: Store, delivery_id: int, owner: str, error: str, retry_at: datetime | None) -> bool:
    """An attempt failed: pending again from `retry_at`, or `failed` for good when None."""
    if retry_at is None:
        return _finish(store, delivery_id, owner, "status = 'failed', last_error = ?", (error,))
    return _finish(store, delivery_id, owner, "status = 'pending', next_attempt_at = ?, last_error = ?",
                   (iso(retry_at), error))


def drop(store: Store, delivery_id: int, owner: str, reason: str) -> bool:
    """Not deliverable any more (the channel was removed from the config): stop trying."""
    return _finish(store, delivery_id, owner, "status = 'dropped', last_error = ?", (reason,))


def release(store: Store, owner: str, now: datetime) -> int:
    """A clean shutdown: hand this process's unfinished deliveries back, due at once, so
    the next process sends them without waiting for the lease to expire."""
    return store.write_transaction(lambda: store.conn.execute(
        "UPDATE alert_deliveries SET status = 'pending', next_attempt_at = ?, lease_owner = NULL,"
        " lease_until = NULL WHERE status = 'sending' AND lease_owner = ?",
        (iso(now), owner),
    ).rowcount)


def next_due(store: Store) -> datetime | None:
    """When the next delivery becomes claimable (a read: polling costs no write lock)."""
    row = store.conn.execute(
        "SELECT MIN(t) FROM (SELECT MIN(next_attempt_at) AS t FROM alert_deliveries WHERE status = 'pending'"
        " UNION ALL SELECT MIN(lease_until) FROM alert_deliveries WHERE status = 'sending') AS due"
    ).fetchone()
    return parse_iso(row[0]) if row and row[0] else None


def recent(store: Store, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
    """The newest alerts with their deliveries, for `GET /alerts`. `status` keeps only
    alerts with a delivery in that status."""
    sql = "SELECT id, uid, created_at, route_team, facts FROM alerts"
    params: list[Any] = []
    if status:
        sql += " WHERE id IN (SELECT alert_id FROM alert_deliveries WHERE status = ?)"
        params.append(status)
    rows = store.conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
    out = []
    for id_, uid, created_at, route_team, facts in rows:
        deliveries = store.conn.execute(
            "SELECT channel, status, attempts, next_attempt_at, last_attempt_at, sent_at, last_error"
            " FROM alert_deliveries WHERE alert_id = ? ORDER BY id", (id_,),
        ).fetchall()
        out.append({
            "id": id_, "uid": uid, "created_at": parse_iso(created_at), "route_team": route_team,
            "alert": Alert.from_json(facts),
            "deliveries": [
                {"channel": d[0], "status": d[1], "attempts": d[2],
                 "next_attempt_at": parse_iso(d[3]) if d[1] == PENDING else None,
                 "last_attempt_at": parse_iso(d[4]), "sent_at": parse_iso(d[5]), "last_error": d[6]}
                for d in deliveries
            ],
        })
    return out


def counts(store: Store) -> dict[str, int]:
    """Deliveries by status, across the whole outbox."""
    return dict(store.conn.execute("SELECT status, COUNT(*) FROM alert_deliveries GROUP BY status").fetchall())


def counts_by_channel(store: Store) -> dict[tuple[str, str], int]:
    """(channel, status) → deliveries in the outbox (pending, sending, sent, failed, dropped),
    for the metrics: ledger-wide and durable, unlike a process's delivery counters."""
    rows = store.conn.execute("SELECT channel, status, COUNT(*) FROM alert_deliveries GROUP BY channel, status")
    return {(channel, status): n for channel, status, n in rows}
