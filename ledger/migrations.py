"""Versioned schema migrations for the SQLite ledger.

Each migration is a function applied once, in order, inside one transaction; the
`schema_migrations` table records which have run, so an upgraded spendgate can open
an older ledger and several processes can start against one file at the same time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils


def _v1_core(db: sqlite_utils.Database) -> None:
    """Budgets with their reservations, the call ledger, budget events, live instances."""
    db["budgets"].create(
        {
            "kind": str,
            "id": str,
            "max_nanos": int,
            "soft_nanos": int,
            "duration": str,
            "spend_nanos": int,
            "reserved_nanos": int,
            "period_start": str,
            "reset_at": str,
            "updated_at": str,
        },
        pk=("kind", "id"),
        not_null={"spend_nanos", "reserved_nanos", "period_start"},
        defaults={"spend_nanos": 0, "reserved_nanos": 0},
    )
    db["reservations"].create(
        {
            "id": str,
            "instance_id": str,
            "created_at": str,
            "amount_nanos": int,
            "scopes": str,  # JSON [[kind, id], ...]
        },
        pk="id",
    )
    db["reservations"].create_index(["instance_id"])
    db["calls"].create(
        {
            "id": int,
            "ts": str,  # when the call was settled: the period it is charged to
            "started_at": str,
            "provider": str,
            "endpoint": str,
            "path": str,
            "model": str,
            "streamed": int,
            "input_tokens": int,
            "cache_read_tokens": int,
            "cache_write_tokens": int,
            "output_tokens": int,
            "reasoning_tokens": int,
            "cost_nanos": int,  # NULL: unpriced
            "cost_usd": float,
            "priced": int,
            "price_source": str,
            "usage_source": str,
            "status": str,
            "http_status": int,
            "latency_ms": float,
            "key_hash": str,
            "key_masked": str,
            "key_alias": str,
            "user_id": str,
            "team_id": str,
            "metadata": str,  # JSON
            "error": str,
        },
        pk="id",
    )
    for columns in (["ts"], ["key_hash", "ts"], ["user_id", "ts"], ["team_id", "ts"], ["model"]):
        db["calls"].create_index(columns)
    db["budget_events"].create(
        {
            "id": int,
            "ts": str,
            "kind": str,
            "scope_id": str,
            "event": str,  # reset | manual_reset | created | updated
            "spend_nanos": int,  # spend of the period that ended (resets)
            "period_start": str,
            "reset_at": str,
        },
        pk="id",
    )
    db["instances"].create(
        {"id": str, "pid": int, "host": str, "started_at": str, "heartbeat_at": str},
        pk="id",
    )


def _v2_directory(db: sqlite_utils.Database) -> None:
    """Virtual keys, teams and users. Their budgets live in `budgets` (kind key/team/user);
    `directory_revision` lets every process notice another's change and refresh its cache."""
    db["keys"].create(
        {
            "hash": str,  # SHA-256 of the raw key: the raw key is never stored
            "key_masked": str,
            "key_alias": str,
            "user_id": str,
            "team_id": str,
            "models": str,  # JSON list; empty: every model
            "metadata": str,  # JSON object
            "issued": int,  # 1: a virtual key spendgate issued; 0: a provider key seen in traffic
            "blocked": int,
            "expires_at": str,
            "created_at": str,
            "updated_at": str,
            "deleted_at": str,  # kept as a tombstone so a deleted virtual key is refused, not passed on
        },
        pk="hash",
        not_null={"issued", "blocked"},
        defaults={"issued": 0, "blocked": 0},
    )
    db["keys"].create_index(["key_alias"])
    db["keys"].create_index(["team_id"])
    db["keys"].create_index(["user_id"])
    db["teams"].create(
        {
            "team_id": str,
            "team_alias": str,
            "members": str,  # JSON list of user ids
            "models": str,
            "metadata": str,
            "blocked": int,
            "created_at": str,
            "updated_at": str,
        },
        pk="team_id",
        not_null={"blocked"},
        defaults={"blocked": 0},
    )
    db["teams"].create_index(["team_alias"])
    db["users"].create(
        {
            "user_id": str,
            "user_email": str,
            "team_id": str,
            "metadata": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="user_id",
    )
    db.execute("CREATE TABLE directory_revision (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL)")
    db.execute("INSERT INTO directory_revision (id, revision) VALUES (1, 0)")


def _v3_alerts(db: sqlite_utils.Database) -> None:
    """The alert outbox: an alert is written once (UNIQUE dedupe key: scope, event,
    threshold, budget period, max budget), with one delivery row per channel in the same
    transaction; deliveries are claimed with a lease, retried with backoff, and their
    outcome kept for `GET /alerts`. See ledger/outbox.py and docs/alerts.md."""
    db.execute(
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL,              -- sent as X-Spendgate-Alert-Id, for receivers to dedupe
            dedupe_key TEXT NOT NULL UNIQUE,
            event TEXT NOT NULL,            -- budget_alert | soft_budget_alert | projected_spend_alert | budget_exceeded
            scope_kind TEXT NOT NULL,
            scope_id TEXT NOT NULL,
            threshold REAL,
            period_start TEXT NOT NULL,
            max_nanos INTEGER,
            spend_nanos INTEGER NOT NULL,
            route_team TEXT,                -- whose alert settings route it (NULL: the global ones)
            created_at TEXT NOT NULL,
            facts TEXT NOT NULL             -- JSON of alerts.events.Alert: what the channels render
        )"""
    )
    db.execute("CREATE INDEX alerts_created ON alerts (created_at)")
    db.execute("CREATE INDEX alerts_scope ON alerts (scope_kind, scope_id)")
    db.execute(
        """CREATE TABLE alert_deliveries (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
            channel TEXT NOT NULL,          -- slack | webhook | email
            status TEXT NOT NULL,           -- pending | sending | sent | failed | dropped
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            lease_owner TEXT,
            lease_until TEXT,
            last_error TEXT,
            last_attempt_at TEXT,
            sent_at TEXT,
            UNIQUE (alert_id, channel)
        )"""
    )
    db.execute("CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at)")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1_core, _v2_directory, _v3_alerts]


def current_version(db: sqlite_utils.Database) -> int:
    if "schema_migrations" not in db.table_names():
        return 0
    row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return row[0] or 0


def migrate(db: sqlite_utils.Database) -> int:
    """Bring the schema up to date; returns the version now in force.

    Runs under BEGIN IMMEDIATE so two processes starting together don't both migrate.
    """
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        version = current_version(db)
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            step(db)
            db.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                [number, datetime.now(UTC).isoformat()],
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)
