"""The few expressions spelled differently per engine, apart from the store that uses them.

The store's SQL is the portable subset both engines speak; what is not (a JSON path, which
form of a migration's DDL to run) is asked of the engine's `Dialect`. It lives on its own so
that migrations and views can name it without importing the store.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Dialect:
    """SQLite's spelling; `ledger.postgres.PgDialect` overrides what PostgreSQL spells otherwise."""

    name: ClassVar[str] = "sqlite"

    def json_field(self, column: str, field: str) -> tuple[str, list[Any]]:
        """An expression reading top-level `field` of a JSON text column, typed (numbers stay
        numbers), with its parameters: the field name is always a bound parameter."""
        return f"json_extract({column}, ?)", [f'$."{field}"']
