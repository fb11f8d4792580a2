"""tests/test_e2e_keys.py again, every ledger on PostgreSQL: virtual keys, teams and users end to end — key swap, allow-lists, expiry, each scope blocking, manual reset, proxy auth, parallel clients on one and two proxies (tests/backends.py)."""

import backends
import pytest

from test_e2e_keys import *  # noqa: F401,F403  (its tests and fixtures, collected here again)


@pytest.fixture(scope="module", autouse=True)
def _ledgers_on_postgresql(pg_server):
    yield from backends.on_postgresql(pg_server)
