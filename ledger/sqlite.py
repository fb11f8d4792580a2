"""The embedded ledger: one SQLite file in WAL mode, shared safely by several processes.

Every budget decision is one `BEGIN IMMEDIATE` transaction: SQLite grants one writer
at a time across processes, so checking and reserving every scope of a call is atomic
even with two mitmdump processes on one file. The operations themselves are
`ledger.store.Store`'s, shared with PostgreSQL; the async face is `ledger.aio.AsyncLedger`.
"""

from __future__ import annotations

import os
import sqlite3
from functools import partial
from pathlib import Path

from .aio import AsyncLedger
from .dialect import Dialect
from .store import Store
from .writer import LocalRunner
from .writer_process import ProcessRunner


WAL_AUTOCHECKPOINT_PAGES = 256  # 1 MiB of 4 KiB pages
WAL_SIZE_LIMIT = 4 * 1024 * 1024  # bytes the WAL file is cut back to after a checkpoint


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection tuned for the ledger: autocommit driver, WAL, a generous busy wait."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a commit survives a crash of the process; only an OS crash
    # or power loss can lose the last transactions. See docs/ledger.md.
    conn.execute("PRAGMA synchronous = NORMAL")
    # Keep the WAL small: checkpoint once it holds 1 MiB (SQLite's default, 4 MiB, can fill a
    # small volume before the first checkpoint), and cut the file back after one.
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class SQLiteStore(Store):
    """The ledger operations on one SQLite connection."""

    dialect = Dialect()

    def __init__(self, path: str | Path, instance_id: str | None = None):
        super().__init__(instance_id)
        self.path = str(path)
        self.conn = connect(self.path)

    def _begin_write(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it to zero bytes.

        SQLite checkpoints by itself only when a commit leaves the WAL over 1000 pages: on a
        small volume the WAL can fill the disk first, after which no commit succeeds, so no
        checkpoint ever runs, even once space is freed — the ledger stays unwritable until a
        restart. The clock calls this every minute, and before each retry of what was
        spooled while the disk was full: once there is room for the database to take the
        WAL's pages, the WAL goes and writes succeed again."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def close(self) -> None:
        self.conn.close()


class SQLiteLedger(AsyncLedger):
    """The async face on a SQLite file."""

    engine = "sqlite"

    def __init__(self, path: str | Path, instance_id: str | None = None, *, writer_process: bool = False,
                 **kwargs):
        super().__init__(instance_id, **kwargs)
        self.path = Path(path)
        self.writer_process = writer_process

    def _prepare(self) -> None:
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def _make_store(self) -> SQLiteStore:
        return SQLiteStore(self.path, self.instance_id)

    def _make_runner(self) -> LocalRunner | ProcessRunner:
        if self.writer_process:  # the child starts in the code's directory: a relative path is made whole here
            return ProcessRunner(partial(SQLiteStore, os.path.abspath(self.path), self.instance_id))
        return super()._make_runner()

    def unavailable(self, exc: BaseException) -> bool:
        # "database is locked" past the 30 s busy wait, "disk I/O error", "unable to open":
        # the file can't be written now. A programming error is sqlite3.ProgrammingError /
        # IntegrityError and is not spooled.
        return isinstance(exc, sqlite3.OperationalError) and "no such" not in str(exc) and "syntax" not in str(exc)
