"""The spend ledger: budgets, reservations and one row per metered call.

`open_ledger(engine, target)` picks the backend from `general_settings.database_url`:
SQLite (the embedded default) or PostgreSQL (shared by a fleet of proxies). Both run the
same store operations (`ledger.store.Store`) behind the same async face
(`ledger.aio.AsyncLedger`), so the addon never knows which one it talks to.
"""

from __future__ import annotations

from pathlib import Path

from .aio import AsyncLedger
from .model import (
    BudgetSpec,
    CallRecord,
    Denial,
    Reservation,
    ScopeRef,
    ScopeState,
    SpendChange,
    nanos_to_usd,
    usd_to_nanos,
)
from .sqlite import SQLiteLedger
from .store import Store
from .unavailable import LedgerUnavailable

__all__ = [
    "AsyncLedger", "BudgetSpec", "CallRecord", "Denial", "LedgerUnavailable", "Reservation", "ScopeRef",
    "ScopeState", "SpendChange", "SQLiteLedger", "Store", "nanos_to_usd", "open_ledger", "usd_to_nanos",
]


def open_ledger(engine: str, target: str, *, spool_dir: str | Path | None = None,
                writer_process: bool = False) -> AsyncLedger:
    """Open (and migrate) the ledger a `database_url` names. `spool_dir` keeps the writes
    made while the database is unreachable (see ledger/spool.py); `writer_process`: SQLite's
    writes run in a process of their own (ledger/writer_process.py)."""
    if engine == "sqlite":
        ledger: AsyncLedger = SQLiteLedger(target, spool_dir=spool_dir, writer_process=writer_process)
    elif engine == "postgresql":
        from .postgres import PostgresLedger  # psycopg is only needed for PostgreSQL

        ledger = PostgresLedger(target, spool_dir=spool_dir)
    else:
        raise ValueError(f"unknown database engine {engine!r}")
    try:
        ledger.open_sync()
    except BaseException:
        ledger.close_sync_quietly()
        raise
    return ledger
