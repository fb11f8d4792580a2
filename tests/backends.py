"""Which database the tests' ledgers live in: SQLite (the default) or PostgreSQL.

- Store-level tests take the `ledger_target` fixture (conftest.py), parametrized over both
  engines, and open stores with `open_store(target)`.
- End-to-end tests write configs through `conftest.write_config` / `e2e_helpers.start_proxy`,
  whose default `database_url` comes from `current()`: a SQLite file in the test's directory,
  or — inside a `tests/test_postgres_*.py` module, which re-runs an e2e module's tests with
  `using(PostgresBackend(...))` — a fresh PostgreSQL database per directory, so proxies started
  in one test directory share one ledger exactly as they share one file on SQLite.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass(frozen=True)
class LedgerTarget:
    engine: str  # sqlite | postgresql
    target: str  # file path | DSN

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.target}" if self.engine == "sqlite" else self.target


class SQLiteBackend:
    name = "sqlite"

    def url(self, directory: Path) -> str:
        return f"sqlite:///{directory}/ledger.db"


class PostgresBackend:
    name = "postgresql"

    def __init__(self, server):
        self.server = server
        self._databases: dict[Path, str] = {}

    def url(self, directory: Path) -> str:
        """One database per directory (created on first use)."""
        directory = Path(directory).resolve()
        if directory not in self._databases:
            self._databases[directory] = self.server.create_database("e2e")
        return self._databases[directory]


_current: list = [SQLiteBackend()]


def current():
    return _current[-1]


@contextlib.contextmanager
def using(backend) -> Iterator[None]:
    _current.append(backend)
    try:
        yield
    finally:
        _current.remove(backend)


def on_postgresql(server) -> Iterator[None]:
    """The body of a `test_postgres_*` module's autouse module fixture: every ledger the
    module's proxies default to is a PostgreSQL database; afterwards, check they did."""
    backend = PostgresBackend(server)
    with using(backend):
        yield
    assert backend._databases, "no proxy of this module opened a PostgreSQL ledger"


def ledger_location(database_url: str) -> str | Path:
    """What `e2e_helpers.Ledger` opens for a `database_url`: the SQLite file's path, or the DSN."""
    if database_url.startswith(("postgresql://", "postgres://")):
        return database_url
    return Path(database_url.removeprefix("sqlite:///"))


def open_store(target: LedgerTarget, instance_id: str | None = None):
    """A synchronous ledger store on `target` (not migrated)."""
    if target.engine == "sqlite":
        from ledger.sqlite import SQLiteStore

        return SQLiteStore(target.target, instance_id=instance_id)
    from ledger.postgres import PostgresStore

    return PostgresStore.open(target.target, instance_id=instance_id)


def open_async_ledger(target: LedgerTarget, **kwargs):
    """The async ledger the addon uses, on `target` (opened and migrated)."""
    from ledger import open_ledger

    return open_ledger(target.engine, target.target, **kwargs)
