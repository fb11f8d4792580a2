"""`LedgerUnavailable`: what the async face raises when the database can't be reached.

An engine's own errors (psycopg's OperationalError, SQLite's lock timeout) mean nothing to
the addon. Each engine says which of them mean "unreachable" (`AsyncLedger.unavailable`);
those become this one exception, which admission (`general_settings.on_ledger_error`) and
the spool act on. Any other error — a bug, bad data — is raised as it is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("spendgate")

Unreachable = Callable[[BaseException], bool]  # the engine's test: does this error mean "unreachable"?


class LedgerUnavailable(Exception):
    """The ledger's database cannot be reached right now (the details are logged)."""


def raise_if_unreachable(exc: BaseException, unavailable: Unreachable) -> None:
    """LedgerUnavailable from `exc`, logged here once, when the engine says it is unreachable."""
    if unavailable(exc):
        log.warning("spendgate: ledger database unreachable: %s", exc)
        raise LedgerUnavailable("the spend ledger's database is unreachable") from exc


async def awaited(fut: concurrent.futures.Future, unavailable: Unreachable) -> Any:
    """The result of work on a ledger thread, awaited on the event loop."""
    try:
        return await asyncio.wrap_future(fut)
    except Exception as e:
        raise_if_unreachable(e, unavailable)
        raise


def waited(fut: concurrent.futures.Future, unavailable: Unreachable) -> Any:
    """The same, blocking: for the ledger's shutdown, outside the event loop's hot path."""
    try:
        return fut.result()
    except Exception as e:
        raise_if_unreachable(e, unavailable)
        raise
