"""Helpers shared by the end-to-end test modules (not fixtures: plain functions).

start_proxy(...)   a real mitmdump with the addon, for module-scoped fixtures: several tests
                   share one proxy (and one ledger) when their config is the same.
Ledger(target)     reads the ledger the proxy writes — a SQLite file path or a PostgreSQL DSN,
                   with the same SQL (`?` placeholders); settlement is asynchronous, so every
                   read that expects a row polls for it.
"""

from __future__ import annotations

import copy
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

import backends
from proxy import DEFAULT_SCRIPT, MitmProxy

SETTLE_WINDOW = 0.1  # > the ledger's settle delay (ledger/settling.py): a finished call's row is written by then


def start_proxy(fake_url: str, workdir: Path, config: dict, *, extra_hosts=(), **options: Any) -> MitmProxy:
    """Write `config` (database_url defaulting to workdir/ledger.db, or a PostgreSQL database of
    this workdir: tests/backends.py) and start mitmdump on it. The caller stops it. The proxy
    gets `.ledger` (a Ledger), `.ledger_path` (file path or DSN) and `.database_url`."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = copy.deepcopy(config)
    gs = data.setdefault("general_settings", {})
    gs.setdefault("database_url", backends.current().url(workdir))
    config_path = workdir / "budget.yaml"
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    proxy = MitmProxy(
        fake_url, script=DEFAULT_SCRIPT, budget_config=config_path, extra_hosts=extra_hosts,
        options=options, workdir=workdir / "mitm",
    )
    proxy.config_path = config_path
    proxy.database_url = gs["database_url"]
    proxy.ledger_path = backends.ledger_location(gs["database_url"])
    proxy.ledger = Ledger(proxy.ledger_path)
    proxy.start()
    return proxy


def module_proxy(config: dict, master_key: str | None = None, upstream: str = "fake_provider_session",
                 **options: Any):
    """A module-scoped `proxy` fixture: one mitmdump on `config` for the module's tests
    (`proxy = module_proxy(CONFIG)`), every provider host sent to the fake that the fixture
    named `upstream` starts (the HTTP fake; `socket_fake` for WebSockets). `master_key`
    (default: the config's) is what the shared `admin` fixture (conftest.py) and
    `virtual_key` log in with."""

    @pytest.fixture(scope="module")
    def proxy(tmp_path_factory, request):
        name = request.module.__name__.removeprefix("test_")
        fake = request.getfixturevalue(upstream)
        p = start_proxy(fake.url, tmp_path_factory.mktemp(name), config, **options)
        p.master_key = master_key or config.get("general_settings", {}).get("master_key")
        yield p
        p.stop()

    return proxy


def virtual_key(proxy: MitmProxy, **body: Any) -> str:
    """A new virtual key (`/key/generate` with `body`), made with the proxy's master key."""
    r = proxy.admin_client(proxy.master_key).post("/key/generate", json=body)
    assert r.status_code == 200, r.text
    return r.json()["key"]


def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `check()` until it returns something truthy (returned), or until `timeout`
    (then the last falsy value is returned, for the caller's assert to show)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Ledger:
    """Read-only view of a spendgate ledger: a SQLite file, or a PostgreSQL DSN."""

    def __init__(self, path: str | Path):
        text = str(path)
        self.dsn = text if text.startswith(("postgresql://", "postgres://")) else None
        self.path = None if self.dsn else Path(path)

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        if self.dsn:
            from pg import query

            return query(self.dsn, sql, params)
        with sqlite3.connect(self.path, timeout=30) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql, params)]

    def mark(self) -> int:
        """The id of the newest call row: pass it to `rows` to see only later ones. Calls
        that already ended are written within the ledger's settle delay (25 ms): waited for
        first, so that a previous test's last row can't pass for this test's first."""
        time.sleep(SETTLE_WINDOW)
        return self.query("SELECT COALESCE(MAX(id), 0) AS id FROM calls")[0]["id"]

    def rows(self, since: int = 0, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The call rows after id `since`, once at least `n` are there."""
        def enough() -> list[dict[str, Any]] | None:
            found = self.query("SELECT * FROM calls WHERE id > ? ORDER BY id", (since,))
            return found if len(found) >= n else None

        return wait_for(enough, timeout) or self.query("SELECT * FROM calls WHERE id > ? ORDER BY id", (since,))

    def row(self, since: int, timeout: float = 10.0) -> dict[str, Any]:
        """The single call row after id `since` (fails if there is more than one)."""
        found = self.rows(since, 1, timeout)
        assert len(found) == 1, found
        return found[0]

    def budget(self, kind: str = "global", id_: str = "global") -> dict[str, Any]:
        [row] = self.query("SELECT * FROM budgets WHERE kind = ? AND id = ?", (kind, id_))
        return row

    def reservations(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM reservations")

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM budget_events", ()
        if event:
            sql, params = sql + " WHERE event = ?", (event,)
        return self.query(sql + " ORDER BY id", params)

    def settled(self, timeout: float = 10.0) -> dict[str, Any]:
        """The global budget once nothing is reserved any more (every call settled)."""
        def idle() -> dict[str, Any] | None:
            budget = self.budget()
            return budget if budget["reserved_nanos"] == 0 else None

        return wait_for(idle, timeout) or self.budget()
