"""ledger/background.py: work started and not awaited is kept, waited for, and never fails silently."""

from __future__ import annotations

import asyncio
import logging

from core.background import Background


class Expected(Exception):
    pass


def test_failures_are_logged_unless_the_work_reports_them_itself(caplog):
    async def fail(exc):
        raise exc

    async def scenario():
        bg = Background("test work", expected=(Expected,))
        bg.spawn(fail(RuntimeError("disk on fire")))
        bg.spawn(fail(Expected("already reported")))
        await bg.wait()
        return bg

    with caplog.at_level(logging.ERROR, logger="spendgate"):
        bg = asyncio.run(scenario())
    assert not bg.tasks
    assert [r.getMessage() for r in caplog.records] == ["spendgate: test work failed: RuntimeError('disk on fire')"]


def test_wait_includes_work_started_by_work():
    done = []

    async def scenario():
        bg = Background("test work")

        async def second():
            await asyncio.sleep(0.01)
            done.append("second")

        async def first():
            await asyncio.sleep(0.01)
            bg.spawn(second())
            done.append("first")

        bg.spawn(first())
        await bg.wait()

    asyncio.run(scenario())
    assert done == ["first", "second"]
