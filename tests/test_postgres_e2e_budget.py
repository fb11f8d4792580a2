"""tests/test_e2e_budget.py again, every ledger on PostgreSQL: budgets, reservations under 50
parallel calls, two proxies on one ledger, resets, released holds (tests/backends.py)."""

import backends
import pytest

from test_e2e_budget import *  # noqa: F401,F403  (its tests and fixtures, collected here again)


@pytest.fixture(scope="module", autouse=True)
def _ledgers_on_postgresql(pg_server):
    yield from backends.on_postgresql(pg_server)
