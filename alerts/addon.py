"""`AlertRaiser`: the mitmproxy addon that turns budget movements into alerts.

It listens to the Meter (a `SpendListener`): after each settlement or budget refusal it evaluates
the rules (in memory, microseconds), and queues any new alert in a task that writes it
to the ledger's outbox and wakes the delivery loop. The listener never awaits and never
raises, so a proxied call can neither wait for nor fail because of an alert.

Options (seconds unless noted; tests shrink them):
  budget_alert_retry_base            first retry delay (1), doubling per attempt
  budget_alert_retry_max             retry delay cap (300)
  budget_alert_give_up_after         stop retrying an alert this old (86400: one day)
  budget_alert_poll_interval         outbox check for other processes' alerts (2)
  budget_alert_lease                 how long a claimed delivery is ours (60)
  budget_alert_timeout               per HTTP request / SMTP operation (10)
  budget_alert_projection_min_elapsed  fraction of a period before projecting (0.1)
  budget_alert_anomaly_window        one usage_anomaly alert per key per this many (3600; 0: every call)
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mitmproxy import ctx, exceptions

from alerts import outbox, rules
from alerts.delivery import AlertDelivery, RetryPolicy
from alerts.render import usd
from alerts.subjects import RuntimeContext
from core.background import Background

if TYPE_CHECKING:
    from ledger import CallRecord, SpendChange
    from metering.runtime import Denied, Runtime, Settled
    from metering.runtime import ProcessState

log = logging.getLogger("spendgate.alerts")

SEEN_CAP = 4096  # dedupe keys remembered in memory, so a repeated refusal costs no ledger write

OPTIONS: dict[str, tuple[str, str]] = {
    "budget_alert_retry_base": ("1", "Seconds before the first retry of a failed alert delivery; doubles per attempt."),
    "budget_alert_retry_max": ("300", "Longest wait in seconds between retries of an alert delivery."),
    "budget_alert_give_up_after": ("86400", "Seconds after which an undeliverable alert is given up."),
    "budget_alert_poll_interval": ("2", "Seconds between checks of the alert outbox for other processes' "
                                        "alerts and due retries."),
    "budget_alert_lease": ("60", "Seconds a claimed alert delivery stays with this process before another may "
                                 "take it over."),
    "budget_alert_timeout": ("10", "Timeout in seconds of one alert HTTP request or SMTP operation."),
    "budget_alert_projection_min_elapsed": ("0.1", "Fraction of a budget period that must have passed before "
                                                   "projected-spend alerts are considered."),
    "budget_alert_anomaly_window": ("3600", "Seconds: at most one usage_anomaly alert per key in each window "
                                            "(UTC-aligned); 0 alerts on every anomalous call."),
}


def _number(name: str) -> float:
    text = getattr(ctx.options, name)
    try:
        value = float(text)
    except ValueError:
        raise exceptions.OptionsError(f"{name}: expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise exceptions.OptionsError(f"{name}: expected a number ≥ 0, got {text!r}")
    return value


class AlertRaiser:
    """Raises alerts (rules, into the outbox) and runs this process's delivery of them."""

    def __init__(self, state: ProcessState):
        self.state = state
        self.delivery = AlertDelivery(lambda: state.runtime)
        self.min_elapsed = rules.DEFAULT_MIN_ELAPSED
        self.anomaly_window = rules.DEFAULT_ANOMALY_WINDOW
        self.alerts_raised_total: Counter[str] = Counter()  # by event
        self._seen: OrderedDict[str, None] = OrderedDict()
        # call uid → (candidates, inserted ids), set on the writer thread by in_settlement's
        # hook and taken on the loop by `settled`
        self._enqueued: dict[str, tuple[list[rules.Candidate], dict[str, int]]] = {}
        self._background = Background("alert queueing")
        state.listeners.append(self)

    @property
    def deliveries_total(self) -> Counter[tuple[str, str]]:
        """(channel, outcome) → count; outcome: sent | failed | gave_up | dropped."""
        return self.delivery.deliveries_total

    # -- mitmproxy hooks ----------------------------------------------------------------------

    def load(self, loader) -> None:
        for name, (default, help_) in OPTIONS.items():
            loader.add_option(name, str, default, help_)

    def configure(self, updated: set[str]) -> None:
        if updated & OPTIONS.keys():
            n = {name: _number(name) for name in OPTIONS}
            if n["budget_alert_timeout"] <= 0 or n["budget_alert_poll_interval"] <= 0:
                raise exceptions.OptionsError("budget_alert_timeout and budget_alert_poll_interval must be > 0")
            self.delivery.settings = replace(
                self.delivery.settings,
                retry=RetryPolicy(n["budget_alert_retry_base"], n["budget_alert_retry_max"],
                                  n["budget_alert_give_up_after"]),
                poll=n["budget_alert_poll_interval"], lease=n["budget_alert_lease"],
                timeout=n["budget_alert_timeout"],
            )
            self.min_elapsed = n["budget_alert_projection_min_elapsed"]
            self.anomaly_window = n["budget_alert_anomaly_window"]

    def running(self) -> None:
        self._warn_about_config()
        self.delivery.start()

    async def done(self) -> None:
        """Runs after the Meter's `done` (chain order): its last settlements have called us,
        so their alerts reach the outbox before the ledger closes."""
        await self._background.wait()
        await self.delivery.stop()

    def _warn_about_config(self) -> None:
        rt = self.state.runtime
        if rt is None:
            return
        s = rt.config.litellm_settings
        uses_email = "email" in s.alerting or any("email" in t.alerting for t in s.default_team_settings)
        if uses_email and not s.smtp_host:
            log.warning("spendgate: email alerts are enabled but litellm_settings.smtp_host is not set; "
                        "they will fail until it is")

    # -- SpendListener -------------------------------------------------------------------------

    def in_settlement(self, runtime: Runtime, record: CallRecord):
        """Alerts of a settlement are enqueued in the settlement's own transaction, so a
        process killed right after the commit can't lose them. Runs on the writer thread
        (`store.call`: in the writer's process too, ledger/writer_process.py):
        it only reads config and directory and hands its result to `settled` by uid."""
        if not self.delivery.routes.any_channel(runtime.config):
            return None

        def enqueue(store, changes: list[SpendChange]) -> None:
            try:
                candidates = self._settlement_candidates(runtime, record, changes)
            except Exception:  # a rules bug must not fail the settlement
                log.exception("spendgate: alert evaluation failed")
                return
            if candidates:
                self._enqueued[record.uid] = (candidates, store.call(outbox.enqueue, candidates, datetime.now(UTC)))

        return enqueue

    def settled(self, event: Settled) -> None:
        runtime, record, changes = event.runtime, event.record, event.changes
        try:
            done = self._enqueued.pop(record.uid, None)
            if done is not None and event.in_settlement_committed:  # enqueued inside the settlement: count, log, wake
                for c in done[0]:
                    self._remember(c.alert.dedupe_key)
                self._raised(*done)
                return
            if not self.delivery.routes.any_channel(runtime.config):
                return
            # a settlement replayed from the spool, or written without its in_settlement work (a
            # `done` left by a rolled-back attempt is stale: its alerts were rolled back with it)
            self._queue(runtime, self._settlement_candidates(runtime, record, changes))
        except Exception:
            log.exception("spendgate: alert evaluation failed")

    def _settlement_candidates(self, runtime: Runtime, record: CallRecord,
                               changes: list[SpendChange]) -> list[rules.Candidate]:
        general = runtime.config.general_settings
        projection = (rules.Projection(general.projected_spend_threshold, self.min_elapsed)
                      if general.projected_spend_alerts else None)
        context, now = self._context(runtime), datetime.now(UTC)
        candidates = rules.from_settlement(changes, context, now, projection)
        if record.anomaly:
            candidates += rules.from_anomaly(record, changes, context, now, self.anomaly_window)
        return candidates

    def denied(self, event: Denied) -> None:
        """Called from the flow's hook: evaluates in memory and queues, nothing more."""
        runtime, denial = event.runtime, event.denial
        try:
            if denial is not None and self.delivery.routes.any_channel(runtime.config):
                self._queue(runtime, rules.from_denial(denial, self._context(runtime), datetime.now(UTC)))
        except Exception:
            log.exception("spendgate: alert evaluation failed")

    def _context(self, runtime: Runtime) -> RuntimeContext:
        return RuntimeContext(runtime.config, runtime.directory, self.delivery.routes)

    def _queue(self, runtime: Runtime, candidates: list[rules.Candidate]) -> None:
        fresh = [c for c in candidates if c.alert.dedupe_key not in self._seen]
        if not fresh:
            return
        for c in fresh:  # claimed now, so a burst of refusals queues one write, not one each
            self._remember(c.alert.dedupe_key)
        self._background.spawn(self._enqueue(runtime, fresh))

    def _remember(self, key: str) -> None:
        self._seen[key] = None
        self._seen.move_to_end(key)
        while len(self._seen) > SEEN_CAP:
            self._seen.popitem(last=False)

    async def _enqueue(self, runtime: Runtime, candidates: list[rules.Candidate]) -> None:
        try:
            inserted = await runtime.ledger.write(outbox.enqueue, candidates, datetime.now(UTC))
        except Exception:
            for c in candidates:
                self._seen.pop(c.alert.dedupe_key, None)
            log.exception("spendgate: could not queue %d budget alert(s)", len(candidates))
            return
        self._raised(candidates, inserted)

    def _raised(self, candidates: list[rules.Candidate], inserted: dict[str, int]) -> None:
        """Count and log the alerts that were new in the outbox, and wake the delivery."""
        for c in candidates:
            if c.alert.dedupe_key in inserted:
                a = c.alert
                self.alerts_raised_total[a.event] += 1
                log.info("spendgate: %s for %s %s: spend %s of %s (alert %d → %s)", a.event, a.scope,
                         a.subject.label, usd(a.spend_nanos), usd(a.max_nanos) if a.max_nanos else "no max",
                         inserted[a.dedupe_key], ", ".join(c.channels))
        if inserted:
            self.delivery.wake()


def find(state: ProcessState) -> AlertRaiser | None:
    """The running AlertRaiser (for the admin API), found among the listeners."""
    return next((x for x in state.listeners if isinstance(x, AlertRaiser)), None)
