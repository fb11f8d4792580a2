"""tests/test_e2e_alerts.py again, every ledger on PostgreSQL: budget alerts end to end — thresholds exactly once on every channel, a restart, two proxies on one ledger, team routing (tests/backends.py)."""

import backends
import pytest

from test_e2e_alerts import *  # noqa: F401,F403  (its tests and fixtures, collected here again)


@pytest.fixture(scope="module", autouse=True)
def _ledgers_on_postgresql(pg_server):
    yield from backends.on_postgresql(pg_server)
