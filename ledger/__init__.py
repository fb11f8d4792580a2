"""The spend ledger: budgets, reservations and one row per metered call.

`open_ledger(url)` picks the backend from `general_settings.database_url`; SQLite is
the embedded default. Every backend offers the same async operations (see
`ledger.sqlite.SQLiteLedger`), so the addon never knows which one it talks to.
"""

from __future__ import annotations

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

__all__ = [
    "BudgetSpec", "CallRecord", "Denial", "Reservation", "ScopeRef", "ScopeState",
    "SpendChange", "SQLiteLedger", "nanos_to_usd", "open_ledger", "usd_to_nanos",
]


def open_ledger(engine: str, target: str) -> SQLiteLedger:
    """Open (and migrate) the ledger a `database_url` names."""
    if engine != "sqlite":
        raise ValueError(f"database engine {engine!r} is not supported yet (use a SQLite path)")
    ledger = SQLiteLedger(target)
    ledger.open_sync()
    return ledger
