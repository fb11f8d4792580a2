"""Time-driven ledger work: budget periods roll over, this instance's holds stay alive,
budget leases left idle go back to their scopes, writes spooled while the database was away
are recorded once it is back, and the calls a killed instance left in its journal are
recorded (metering/recovery.py; at start-up, then every 30 s).

Resets are applied on a timer, not only when traffic arrives, so the ledger shows a
new period at its reset time even on a quiet proxy. The heartbeat lets other
instances release the reservations of one that died (see ledger.store.Store.reap):
`budget_instance_stale_after` seconds of silence (default 30) mark an instance dead.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from mitmproxy import ctx, exceptions

from ledger import LedgerUnavailable
from metering.recovery import recover_orphans

if TYPE_CHECKING:
    from metering.runtime import ProcessState

log = logging.getLogger("spendgate")

TICK = 1.0  # seconds between reset checks
HEARTBEAT_EVERY = 5  # ticks
RECOVER_EVERY = 30  # ticks between looks for the journals of stopped instances
CHECKPOINT_EVERY = 60  # ticks between folds of SQLite's WAL into the database (ledger/sqlite.py)
STALE_AFTER = timedelta(seconds=30)  # an instance silent this long is dead


class BudgetClock:
    def __init__(self, state: ProcessState):
        self.state = state
        self._task: asyncio.Task | None = None
        self.stale_after = STALE_AFTER
        self.heartbeat_every = HEARTBEAT_EVERY

    def load(self, loader) -> None:
        loader.add_option(
            "budget_instance_stale_after", int, int(STALE_AFTER.total_seconds()),
            "Seconds without a heartbeat after which another proxy instance on the same ledger is "
            "taken for dead and its in-flight reservations are released.",
        )

    def configure(self, updated: set[str]) -> None:
        if "budget_instance_stale_after" in updated:
            seconds = ctx.options.budget_instance_stale_after
            if seconds < 3:
                raise exceptions.OptionsError("budget_instance_stale_after must be at least 3 seconds")
            self.stale_after = timedelta(seconds=seconds)
            # at least three beats per stale period, so a live instance is never taken for dead
            self.heartbeat_every = max(1, min(HEARTBEAT_EVERY, seconds // 3))

    def running(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(TICK)
            rt = self.state.runtime
            if rt is None:
                continue
            ticks += 1
            try:
                now = datetime.now(UTC)
                if ticks % self.heartbeat_every == 0:
                    released = await rt.ledger.beat_and_reap(now, self.stale_after)
                    if released:
                        log.warning("spendgate: released %d reservations of a stopped instance", released)
                await rt.ledger.flush_spool()
                if ticks % RECOVER_EVERY == 1:  # at start-up, and for instances that die later
                    await recover_orphans(self.state)
                if ticks % CHECKPOINT_EVERY == 0:
                    await rt.ledger.checkpoint()
                await rt.ledger.return_leases(now)
                await rt.directory.refresh(rt.ledger)
                self.state.heap.notice(self.state.long_lived())  # a reload's new records out of the GC's scans
                for scope in await rt.ledger.reset_due(now):
                    log.info("spendgate: %s budget %s reset; next reset %s", scope.kind, scope.id, scope.reset_at)
            except LedgerUnavailable:
                pass  # logged by the ledger; the next tick tries again
            except Exception:
                log.exception("spendgate: budget clock tick failed")

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
