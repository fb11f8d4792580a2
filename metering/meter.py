"""The metering core: a call is admitted, then settled, whatever transport carried it.

admit   identify the key (swapping a virtual key for the real credential) → estimate the
        most the call can cost → reserve it in every budget scope at once, or refuse.
settle  price the usage the response reported → one ledger row, written with other calls'
        settlements after the response is on its way → the listeners hear of it.

The HTTP hooks (addon/http.py) are one adapter over this; a transport adapter owns its
flows and tells the core what happened to a call: `admit`, then `finish` (or `abandon`
for a call that never left). Nothing here blocks the event loop: the ledger runs on its
own threads, and settlements are priced and queued on the loop's next turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from core.vocab import CallStatus, PriceSource, UsageSource
from ledger import Denial, LedgerUnavailable
from core.background import Background
from metering.call import HELD, Ending, MeteredCall, settled_record
from metering.credentials import fingerprint
from metering.identity import Identity, identify
from metering.refusals import Refusal, budget_exceeded, refusal
from metering.runtime import Denied, Settled
from pricing.estimate import estimate_max_cost
from providers.base import UNMETERED

if TYPE_CHECKING:
    from mitmproxy import http

    from ledger import CallRecord, SpendChange, Store
    from metering.runtime import ProcessState, Runtime

log = logging.getLogger("spendgate")

UNMETERED_SEEN_MAX = 10_000  # paths come from clients: the once-per-path log remembers this many

__all__ = ["Meter"]


class Meter:
    """Admits and settles metered calls; one per process, shared by every transport."""

    def __init__(self, state: ProcessState):
        self.state = state
        self._background = Background("ledger write")  # releases and refusal rows
        self._finished: list[tuple[Runtime, MeteredCall, Ending]] = []  # to settle
        self._last_open_warning = 0.0
        self._unmetered_seen: set[tuple[str, str, str]] = set()  # logged once each

    # -- admission --------------------------------------------------------------------------

    async def admit(self, rt: Runtime, call: MeteredCall, request: http.Request,
                    proxy_user: str | None = None, headers: Mapping[str, str] | None = None, *,
                    hold: bool = True, model_later: bool = False) -> Refusal | None:
        """Identify, estimate and reserve; None when the call may go upstream (its holds
        are in `call.reservation`), else the refusal to answer with (already recorded).
        `hold` False: nothing is estimated or held, the call is only refused where a scope
        is already spent (a WebSocket handshake, a warm-up turn). `model_later`: the
        model is named later (by each turn on a socket), and a key's model list is
        checked then.

        With the ledger unreachable, `general_settings.on_ledger_error` decides: fail_closed
        refuses with 503, fail_open lets the call through unchecked — and still metered."""
        try:
            found = await self.identify(rt, call, request, proxy_user, headers, check_model=not model_later)
            if found is None and call.endpoint.api is UNMETERED:
                found = self._unmetered(rt, call)
            elif found is None:
                found = await self.reserve(rt, call) if hold else await self.check(rt, call)
        except Exception as e:  # the ledger is unreachable or broken
            if not isinstance(e, LedgerUnavailable):
                log.exception("spendgate: could not admit %s %s", call.endpoint.provider, call.path)
            if rt.config.general_settings.on_ledger_error == "fail_closed":
                # LedgerUnavailable says what is away in words of ours; any other error's text
                # (a path, a statement) is for the proxy's log, not for the client
                why = str(e) if isinstance(e, LedgerUnavailable) else "an internal error (in the proxy's log)"
                return refusal(503, "ledger_unavailable", f"Spend ledger unavailable: {why}")
            self._admit_unchecked(call, request, proxy_user)
            return None
        if found is not None:
            self.refused(rt, call, found)
        return found

    async def identify(self, rt: Runtime, call: MeteredCall, request: http.Request,
                       proxy_user: str | None = None, headers: Mapping[str, str] | None = None, *,
                       check_model: bool = True) -> Refusal | None:
        """Whose call it is (`call.identity`), or why it may not be made at all (`headers`:
        the request's by lower-case name, when the transport has them so)."""
        try:
            call.identity = await identify(rt, request, call.endpoint, call.model, call.started_at, proxy_user,
                                           headers, check_model=check_model)
        except Refusal as refused:
            return refused
        return None

    async def reserve(self, rt: Runtime, call: MeteredCall) -> Refusal | None:
        """Hold the most the call can cost in every scope of its identity, or refuse."""
        settings = rt.config.general_settings
        model = call.request.model
        estimate = estimate_max_cost(
            rt.prices, call.endpoint.price_provider, call.request, call.endpoint.kind,
            call.started_at, settings.default_max_output_tokens,
        )
        if estimate.nanos is None:
            self._warn_unpriced(rt, call, model)
            if settings.unpriced_models == "block":
                return refusal(
                    400, "model_not_priced",
                    f"Model {model!r} has no known price and this proxy blocks unpriced models "
                    "(general_settings.unpriced_models: block). Add it under `pricing:` in the config.",
                )
        outcome = await rt.ledger.reserve(call.identity.scopes(), estimate.nanos or 0, call.started_at)
        if isinstance(outcome, Denial):
            label = rt.directory.label(outcome.scope.kind, outcome.scope.id)
            return budget_exceeded(outcome, datetime.now(UTC), label)
        call.reservation = outcome
        return None

    async def check(self, rt: Runtime, call: MeteredCall) -> Refusal | None:
        """Refuse where a scope of the call's identity is already spent; hold nothing."""
        outcome = await rt.ledger.reserve(call.identity.scopes(), 0, call.started_at)
        if isinstance(outcome, Denial):
            label = rt.directory.label(outcome.scope.kind, outcome.scope.id)
            return budget_exceeded(outcome, datetime.now(UTC), label)
        call.reservation = outcome
        return None

    def _unmetered(self, rt: Runtime, call: MeteredCall) -> Refusal | None:
        """A call spendgate cannot price: recorded as unmetered at its end, or refused."""
        key = (call.endpoint.provider, call.method, call.path.split("?", 1)[0])
        if key not in self._unmetered_seen and len(self._unmetered_seen) < UNMETERED_SEEN_MAX:
            self._unmetered_seen.add(key)
            log.warning("spendgate: %s %s %s is not an endpoint spendgate meters; its calls are %s", *key,
                        "refused" if rt.config.general_settings.unmetered_endpoints == "block"
                        else "recorded as unmetered")
        if rt.config.general_settings.unmetered_endpoints == "block":
            return refusal(
                403, "endpoint_not_metered",
                f"spendgate cannot meter {call.method} {key[2]} on {call.endpoint.provider}, and this proxy "
                "refuses calls it cannot meter (general_settings.unmetered_endpoints: block).",
            )
        return None

    def _admit_unchecked(self, call: MeteredCall, request: http.Request, proxy_user: str | None) -> None:
        """fail_open while the ledger is unreachable: the call goes without a budget check,
        but is still metered — its settlement is recorded, or spooled until the ledger is back."""
        if call.identity.key is None:  # the ledger failed while identifying: keep what we know
            call.identity = Identity(key=fingerprint(request, call.endpoint.credential), user_id=proxy_user)
        now = time.monotonic()
        if now - self._last_open_warning > 10:
            self._last_open_warning = now
            log.warning("spendgate: ledger unavailable; serving calls without budget checks "
                        "(general_settings.on_ledger_error: fail_open)")

    def refused(self, rt: Runtime, call: MeteredCall, refused: Refusal) -> None:
        """Keep a ledger row of a refusal, and tell the listeners."""
        call.done = True
        record = call.base_record(
            refused.status, cost_nanos=0, price_source=PriceSource.BLOCKED, usage_source=UsageSource.NONE,
            status=CallStatus.BLOCKED, error=refused.type,
        )
        self._background.spawn(rt.ledger.record(record))
        self.state.tell(Denied(rt, record, refused.denial))

    def forwarded(self, rt: Runtime, call: MeteredCall) -> None:
        """The call is on its way upstream: from now on it ends as exactly one ledger row,
        whatever happens to this process (the journal has it)."""
        rt.journal.opened(call.uid, *call.opening())

    def abandon(self, rt: Runtime, call: MeteredCall) -> None:
        """The call was admitted but never left (its client went away meanwhile): its holds go back."""
        call.done = True
        self._background.spawn(rt.ledger.release(call.reservation))

    # -- settlement -------------------------------------------------------------------------

    def finish(self, call: MeteredCall, status: int | None, error: str | None) -> None:
        """The call is over (`status`: the provider's HTTP status, if any; `error`: why it
        ended early): it is priced and settled on the loop's next turn."""
        call.done = True
        rt = self.state.runtime
        if rt is None:
            return
        ending = call.ending(status, error)
        rt.journal.ended(call.uid, ending.to_json())  # before the end of the response is released
        self._finished.append((rt, call, ending))
        if len(self._finished) == 1:
            # Priced and queued on the loop's next turn: after the response (or the end of
            # the stream) is on its way, and for every call that ended meanwhile at once.
            asyncio.get_running_loop().call_soon(self._settle_finished)

    def _settle_finished(self) -> None:
        finished, self._finished = self._finished, []
        now = datetime.now(UTC)
        for rt, call, ending in finished:
            try:
                record = settled_record(rt.prices, call.base_record(ending.http_status), ending,
                                        call.endpoint.price_provider, call.request.input_bytes,
                                        call.request.max_output_tokens)
            except Exception as e:  # a bug must not leave the call unrecorded and its hold in place
                log.exception("spendgate: could not price a %s call; recording what was held for it",
                              call.endpoint.provider)
                record = call.unpriceable_record(ending.http_status, f"spendgate could not price this call: {e!r}")
            if record.status == CallStatus.UNPRICED:
                self._warn_unpriced(rt, call, record.model)
            if record.error and record.status in (CallStatus.PARSE_ERROR, CallStatus.PARTIAL):
                log.info("spendgate: %s call settled as %s: %s", call.endpoint.provider, record.status,
                         record.error)
            if record.anomaly:
                log.warning("spendgate: a %s %s call reported more than it could have used; clamped: %s",
                            call.endpoint.provider, record.model, record.anomaly)
            self._settle(rt, call, record, now)

    def _settle(self, rt: Runtime, call: MeteredCall, record: CallRecord, now: datetime, *,
                alerts: bool = True) -> None:
        then = self._in_settlement(rt, record) if alerts else None
        try:
            rt.ledger.settle_soon(call.reservation, call.identity.scopes(), record, now,
                                  then, partial(self._settled, rt, call, record, then is not None))
        except Exception:
            log.exception("spendgate: could not settle a %s call", call.endpoint.provider)
            self._background.spawn(rt.ledger.release(call.reservation))

    def _settled(self, rt: Runtime, call: MeteredCall, record: CallRecord, with_alerts: bool, result,
                  exc: BaseException | None) -> None:
        if exc is None:
            # (spooled in memory only, the disk refusing: the journal keeps the call until the
            # spool's replay writes it, so a kill meanwhile does not lose it)
            if result[0] is not None or not rt.ledger.kept_in_memory_only(call.uid):
                rt.journal.done(call.uid)
            self.state.tell(Settled(rt, record, result[1], with_alerts and result[0] is not None))
            return
        log.error("spendgate: ledger write failed: %r", exc)
        if with_alerts:  # the alerts' work in the transaction may be what failed: the row goes first
            log.error("spendgate: a %s call is recorded without the alerts it would have raised",
                      call.endpoint.provider)
            self._settle(rt, call, record, datetime.now(UTC), alerts=False)
            return
        if record.price_source == HELD:  # the fallback failed too: at least the hold goes back
            rt.journal.done(call.uid)
            self._background.spawn(rt.ledger.release(call.reservation))
            return
        # The row could not be written as it was (bad data): it is written as a parse error
        # charged what was held for it, so the call is on the record and holds nothing.
        self._settle(rt, call, call.unpriceable_record(record.http_status, f"ledger write failed: {exc!r}"),
                     datetime.now(UTC))

    def _in_settlement(self, rt: Runtime, record: CallRecord) -> Callable[[Store, list[SpendChange]], None] | None:
        """The listeners' work that must commit with the settlement itself (alerts)."""
        hooks = [hook for listener in self.state.listeners if (hook := listener.in_settlement(rt, record))]
        if not hooks:
            return None
        return lambda store, changes: [hook(store, changes) for hook in hooks]

    async def done(self) -> None:
        """Let every settlement under way reach the ledger before shutdown."""
        self._settle_finished()
        await self._background.wait()
        rt = self.state.runtime
        if rt is not None:
            await rt.ledger.drain()

    def _warn_unpriced(self, rt: Runtime, call: MeteredCall, model: str | None) -> None:
        if rt.prices.unpriced_first_seen(call.endpoint.price_provider, model):
            log.warning("spendgate: no price known for model %r (%s); its calls are recorded as unpriced",
                        model, call.endpoint.provider)
