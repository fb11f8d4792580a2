"""tests/test_admin_api.py again, every ledger on PostgreSQL: the admin API's key, team, user and spend endpoints — every write and read path of the directory and the spend views (tests/backends.py)."""

import backends
import pytest

from test_admin_api import *  # noqa: F401,F403  (its tests and fixtures, collected here again)


@pytest.fixture(scope="module", autouse=True)
def _ledgers_on_postgresql(pg_server):
    yield from backends.on_postgresql(pg_server)
