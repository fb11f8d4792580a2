"""Time-driven ledger work: budget periods roll over, and this instance's holds stay alive.

Resets are applied on a timer, not only when traffic arrives, so the ledger shows a
new period at its reset time even on a quiet proxy. The heartbeat lets other
instances release the reservations of one that died (see ledger.sqlite.reap).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from addon.loader import BudgetConfig

log = logging.getLogger("spendgate")

TICK = 1.0  # seconds between reset checks
HEARTBEAT_EVERY = 5  # ticks
STALE_AFTER = timedelta(seconds=30)  # an instance silent this long is dead


class BudgetClock:
    def __init__(self, config: BudgetConfig):
        self.config = config
        self._task: asyncio.Task | None = None

    def running(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(TICK)
            rt = self.config.runtime
            if rt is None:
                continue
            try:
                now = datetime.now(UTC)
                await rt.directory.refresh(rt.ledger)
                for scope in await rt.ledger.reset_due(now):
                    log.info("spendgate: %s budget %s reset; next reset %s", scope.kind, scope.id, scope.reset_at)
                ticks += 1
                if ticks % HEARTBEAT_EVERY == 0:
                    released = await rt.ledger.heartbeat(now, STALE_AFTER)
                    if released:
                        log.warning("spendgate: released %d reservations of a stopped instance", released)
            except Exception:
                log.exception("spendgate: budget clock tick failed")

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
