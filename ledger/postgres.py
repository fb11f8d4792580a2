"""The shared ledger: PostgreSQL, for a fleet of proxies on one or many hosts.

`general_settings.database_url: postgresql://user:pass@host:5432/db` selects it. The store
operations are `ledger.store.Store`'s — the same code as SQLite's — over a thin adapter
(`PgConnection`) that turns the store's `?` / `:name` placeholders into psycopg's, and loads
`numeric` results (PostgreSQL's SUM of BIGINT) as Python ints, as SQLite returns them.

**Atomic across instances.** Every write transaction starts with
`BEGIN; SELECT pg_advisory_xact_lock(K)` (one round trip): the exact counterpart of SQLite's
`BEGIN IMMEDIATE`. Every proxy process on the database takes turns, so a reservation's
check-and-hold over all its scopes, a settlement's before/after spend (which alerting
relies on to see each threshold crossing once) and an outbox claim are each atomic
fleet-wide, with no deadlocks and no unique-key races to retry. Row locks (`SELECT ... FOR
UPDATE` in a fixed order) would buy nothing here: every call's reservation and settlement
touches the global budget row anyway, so the global row would serialize them all the same.
What keeps this single lock from capping the fleet is group commit (ledger/writer.py): each
process takes the lock once per batch of calls, not once per call (docs/deploy.md).

A side effect the metrics rely on: `calls.id` values are drawn inside the lock, so they
become visible in id order, as with SQLite — a reader that remembers the last id it saw
never skips a row committed later with a smaller id. Readers never take the lock (MVCC).

**Connections.** Sync psycopg 3 on the ledger's writer and reader threads (see ledger/aio.py
for why not the async API), from a small `psycopg_pool.ConnectionPool` (2..4). Each thread
keeps one connection checked out; a broken one is given back (the pool discards and replaces
it in the background) and the next operation takes a fresh one. A transaction whose very
first round trip fails on a dead connection — the server restarted since — is retried once
on a new one, so a database restart costs no call. After a failure the thread connects
directly (one attempt, no waiting on the pool's reconnect backoff) until it succeeds, and
between attempts (`retry_after`, 1 s) fails at once: while the server is down, calls get
`LedgerUnavailable` in microseconds instead of waiting for a connection, and service
resumes within about a second of the server's return.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool

from .aio import AsyncLedger
from .dialect import Dialect
from .store import Store

T = TypeVar("T")

# pg_advisory_xact_lock key of the ledger's write lock: "spendgat" as a big-endian int64.
WRITE_LOCK_KEY = int.from_bytes(b"spendgat", "big")

_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|\?|%|(?<![:\w]):([A-Za-z_]\w*)""")


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """The store's SQL with psycopg placeholders: `?` → `%s`, `:name` → `%(name)s`, a literal
    `%` → `%%`; string literals and quoted identifiers are left alone."""

    def sub(m: re.Match) -> str:
        token = m.group(0)
        if token[0] in "'\"":
            return token
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return f"%({m.group(1)})s"

    return _TOKENS.sub(sub, sql)


class PgConnection:
    """The slice of the sqlite3 connection API the store uses, over a psycopg connection."""

    __slots__ = ("raw", "round_trips")

    def __init__(self, raw: psycopg.Connection):
        self.raw = raw
        self.round_trips = 0  # statements sent (executemany is pipelined: one), for the figures

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> psycopg.Cursor:
        self.round_trips += 1
        if params is None:
            return self.raw.execute(sql)
        return self.raw.execute(translate(sql), params)

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> psycopg.Cursor:
        self.round_trips += 1
        cur = self.raw.cursor()
        cur.executemany(translate(sql), seq)  # pipelined by psycopg: one round trip
        return cur


class _NumericLoader(Loader):
    """numeric → int when whole (SUM over BIGINT columns), else float: what SQLite returns."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        if "." in text or "e" in text or "N" in text:
            return float(text)
        return int(text)


def configure_connection(conn: psycopg.Connection) -> None:
    conn.adapters.register_loader("numeric", _NumericLoader)


class PgDialect(Dialect):
    name = "postgresql"

    def json_field(self, column: str, field: str) -> tuple[str, list[Any]]:
        # jsonb `->` keeps the JSON type (psycopg loads numbers as numbers), like json_extract.
        return f"(CAST({column} AS jsonb) -> ?)", [field]


class PostgresStore(Store):
    """The ledger operations on a connection of `pool`, kept while it works."""

    dialect = PgDialect()

    def __init__(self, pool: ConnectionPool, instance_id: str | None = None, *,
                 connect_timeout: float = 3.0, retry_after: float = 1.0):
        super().__init__(instance_id)
        self.pool = pool
        self.connect_timeout = connect_timeout
        self.retry_after = retry_after
        self._raw: psycopg.Connection | None = None
        self._conn: PgConnection | None = None
        self._down_until = 0.0
        self._recovering = False  # the last connection broke: connect directly, not via the pool
        self._unpooled = False  # the connection held came from such a direct connect
        self._owns_pool = False

    # -- connections --------------------------------------------------------------------

    @property
    def conn(self) -> PgConnection:
        raw = self._raw
        if raw is None or raw.broken or raw.closed:
            self._checkout()
        return self._conn

    def _checkout(self) -> None:
        self._giveback()
        if time.monotonic() < self._down_until:
            raise psycopg.OperationalError("the ledger database was unreachable a moment ago")
        try:
            if self._recovering:
                raw = psycopg.connect(self.pool.conninfo, **{**(self.pool.kwargs or {}),
                                                             "connect_timeout": max(1, int(self.connect_timeout))})
                configure_connection(raw)
                self._unpooled, self._recovering = True, False
            else:
                raw = self.pool.getconn(timeout=self.connect_timeout)
                self._unpooled = False
        except psycopg.OperationalError:
            self._recovering = True
            self._down_until = time.monotonic() + self.retry_after
            raise
        self._raw, self._conn = raw, PgConnection(raw)

    def _giveback(self) -> None:
        raw, self._raw, self._conn = self._raw, None, None
        if raw is None:
            return
        if raw.broken or raw.closed:
            self._recovering = True
        try:
            if self._unpooled:
                raw.close()
            else:
                self.pool.putconn(raw)  # a broken one is discarded and replaced by the pool
        except Exception:
            pass

    def _first(self, sql: str) -> None:
        """A transaction's first round trip: retried once on a fresh connection when the
        one we held turns out dead (nothing has happened yet, so retrying is safe)."""
        try:
            self.conn.execute(sql)
        except psycopg.OperationalError:
            if self._raw is not None and not self._raw.broken:
                raise
            self._giveback()
            self.conn.execute(sql)

    def run_read(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except psycopg.OperationalError:
            if self._raw is not None and not self._raw.broken:
                raise
            self._giveback()  # a read is safe to retry once on a fresh connection
            return fn(*args)

    # -- transactions -------------------------------------------------------------------

    def _begin_write(self) -> None:
        self._first(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")

    def _begin_read(self) -> None:
        self._first("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def _rollback(self) -> None:
        if self._raw is None or self._raw.broken or self._raw.closed:
            self._giveback()
            return
        try:
            self._raw.execute("ROLLBACK")
        except psycopg.Error:
            self._giveback()

    @classmethod
    def open(cls, dsn: str, instance_id: str | None = None) -> PostgresStore:
        """A store with a pool of its own (scripts, tests): `close()` closes both."""
        store = cls(open_pool(dsn, min_size=1, max_size=2), instance_id)
        store._owns_pool = True
        return store

    def close(self) -> None:
        self._giveback()
        if self._owns_pool:
            self.pool.close()


def open_pool(dsn: str, *, min_size: int = 2, max_size: int = 4, timeout: float = 15.0) -> ConnectionPool:
    """A small pool on `dsn`, opened now. A bad DSN, password or database fails here with
    the server's own message (one direct connection first), not as a pool timeout."""
    kwargs = {"autocommit": True, "connect_timeout": 5, "application_name": "spendgate"}
    with psycopg.connect(dsn, **kwargs):
        pass
    pool = ConnectionPool(
        dsn, min_size=min_size, max_size=max_size, kwargs=kwargs, configure=configure_connection,
        check=ConnectionPool.check_connection, name="spendgate-ledger", open=False,
        reconnect_timeout=3600.0,  # keep trying to reconnect through a long outage
    )
    pool.open(wait=True, timeout=timeout)
    return pool


class PostgresLedger(AsyncLedger):
    """The async face on a PostgreSQL database shared by every proxy of a fleet."""

    engine = "postgresql"

    def __init__(self, dsn: str, instance_id: str | None = None, **kwargs):
        super().__init__(instance_id, **kwargs)
        self.dsn = dsn
        self.pool: ConnectionPool | None = None

    def _prepare(self) -> None:
        self.pool = open_pool(self.dsn)

    def _make_store(self) -> PostgresStore:
        return PostgresStore(self.pool, self.instance_id)

    def _dispose(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
