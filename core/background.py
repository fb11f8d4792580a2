"""Work a component starts on the event loop and does not wait for.

asyncio keeps only a weak reference to a task: one nobody holds can be collected before
it finishes. `Background` holds each until it is done, logs a failure nobody else will
see, and lets the owner wait for all of them at shutdown. The ledger, the Meter and the
alert raiser each keep one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("spendgate")


class Background:
    def __init__(self, what: str, expected: tuple[type[BaseException], ...] = ()):
        self.what = what  # for the log: "ledger write", "alert queueing"...
        self.expected = expected  # failures the work reports itself (not logged again)
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, self.expected):
            log.error("spendgate: %s failed: %r", self.what, exc)

    async def wait(self) -> None:
        """Until every task started so far (and any they start) has finished."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
