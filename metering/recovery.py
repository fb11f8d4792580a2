"""Recovering the calls of a process that was killed: its journal replayed into the ledger.

A process that is gone (its journal's lock is free) left calls it had forwarded but not yet
recorded. Each becomes its one ledger row now: a call that ended is settled as it ended
(priced as a live call is, `metering.call.settled_record`); a call cut by the kill is
recorded `interrupted`, charged what was held for it. The dead instance's holds are given
back first, so its budget leases stop counting against the scopes it charged. Settling by
the call's uid makes the replay idempotent: a call the dead process did record is not
charged again, and a replay interrupted half-way is simply done again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ledger import CallRecord, LedgerUnavailable, ScopeRef
from metering.call import Ending, interrupted_record, opened_record, settled_record
from metering.journal import JournaledCall, orphans
from metering.runtime import Settled

if TYPE_CHECKING:
    from metering.runtime import ProcessState, Runtime

log = logging.getLogger("spendgate")

__all__ = ["recover_orphans"]


def record_of(rt: Runtime, call: JournaledCall) -> CallRecord:
    """The ledger row of a journaled call of a process that is gone."""
    opened = call.opened
    record = opened_record(call.uid, opened)
    if call.ended is None:
        return interrupted_record(record, opened.get("held"))
    return settled_record(rt.prices, record, Ending.from_json(call.ended), opened.get("price_provider"),
                          opened.get("input_bytes") or 0, opened.get("max_output_tokens"))


async def recover_orphans(state: ProcessState) -> int:
    """Record the calls left in the journals of processes that are gone; how many. The
    listeners (alerts) hear of each settlement as of a live one."""
    rt = state.runtime
    if rt is None or rt.journal.directory is None:
        return 0
    recovered = 0
    for orphan in orphans(rt.journal.directory, rt.journal.instance_id):
        try:
            released = await rt.ledger.retire(orphan.instance_id)
        except LedgerUnavailable:
            orphan.forget_lock()
            return recovered  # the next tick tries again
        now = datetime.now(UTC)
        for call in orphan.calls:
            try:
                record = record_of(rt, call)
                refs = tuple(ScopeRef(kind, id_) for kind, id_ in call.opened["refs"])
                _, changes = await rt.ledger.settle(None, refs, record, now)
            except LedgerUnavailable:
                orphan.forget_lock()
                return recovered
            except Exception:
                log.exception("spendgate: could not record journaled call %s of stopped instance %s",
                              call.uid, orphan.instance_id)
                continue
            recovered += 1
            state.tell(Settled(rt, record, changes))
        orphan.forget()
        log.warning("spendgate: recorded %d calls in flight when instance %s stopped (%d holds released)",
                    len(orphan.calls), orphan.instance_id, released)
    return recovered
