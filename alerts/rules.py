"""When to alert: pure functions from a settlement's spend changes (or a refusal) to alerts.

Thresholds are edge-triggered — an alert when one settlement takes spend from below
`t × max_budget` to at or above it — so each crossing is seen by exactly one settlement,
even with several proxy processes (the ledger computes before/after in the settlement's
transaction). The outbox's dedupe key then makes "once per (scope, threshold, period,
max budget)" hold across repeats, restarts and processes.

- `budget_alert`: every threshold of `alerting_threshold(s)` below 1.0.
- `budget_exceeded`: spend reaching 100 % of `max_budget`, or a call refused by the budget.
  A threshold of 1.0 is this alert (one message when calls start being blocked, not two).
- `soft_budget_alert`: spend crossing the scope's `soft_budget` (never blocks).
- `projected_spend_alert`: see `project`.
- `usage_anomaly`: a settled call whose reported usage was clamped (see `from_anomaly`).

Time comes in as `now`, so tests control the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, Protocol

from alerts.events import (
    BUDGET_ALERT,
    BUDGET_EXCEEDED,
    PROJECTED_SPEND_ALERT,
    SOFT_BUDGET_ALERT,
    USAGE_ANOMALY,
    Alert,
    Subject,
)
from config.schema import AlertRouting
from ledger.model import CallRecord, Denial, ScopeState, SpendChange

DEFAULT_ANOMALY_WINDOW = 3600.0
"""Seconds: a key's usage anomalies raise one alert per window (UTC-aligned). A response
that lies once usually lies on every call (a broken or hostile upstream): one message an
hour says so without flooding the channel; the ledger keeps every call's figures."""

DEFAULT_MIN_ELAPSED = 0.1
"""A projection needs at least this fraction of the period behind it (3 days of a 30-day
budget, 2.4 hours of a daily one): extrapolating the first minutes of a period turns one
early call into a wild projection."""


class AlertContext(Protocol):
    """What the rules need to know beyond the numbers."""

    def subject(self, kind: str, id_: str) -> Subject: ...

    def routing(self, team_id: str | None) -> AlertRouting: ...


@dataclass(frozen=True, slots=True)
class Projection:
    """`general_settings.projected_spend_alerts` in force: alert when the projected spend at
    the period's end reaches `threshold` × max_budget."""

    threshold: float
    min_elapsed: float = DEFAULT_MIN_ELAPSED


@dataclass(frozen=True, slots=True)
class Candidate:
    """An alert and the channels it goes to (decided by the scope's routing when raised)."""

    alert: Alert
    channels: tuple[str, ...]


def fraction_of(fraction: float, nanos: int) -> int:
    """`fraction × nanos`, rounded up, with the fraction read as written (0.9 is 9/10, not
    the binary float just above it): spend of exactly 90 % crosses a 0.9 threshold."""
    return -((-Fraction(repr(fraction)) * nanos) // 1)


def _crossed(before: int, after: int, line: int) -> bool:
    return before < line <= after


def _level(fraction: float) -> str:
    return format(fraction, ".6g")


def _alert(st: ScopeState, event: str, level: str, threshold: float | None, subject: Subject,
           now: datetime, **extra) -> Alert:
    return Alert(
        event=event, scope=st.kind, scope_id=st.id, level=level, threshold=threshold,
        period_start=st.period_start, reset_at=st.reset_at, max_nanos=st.max_nanos,
        soft_nanos=st.soft_nanos, spend_nanos=st.spend_nanos, raised_at=now, subject=subject, **extra,
    )


def from_settlement(changes: list[SpendChange], ctx: AlertContext, now: datetime,
                    projection: Projection | None = None) -> list[Candidate]:
    """Every alert one settlement raises, for every scope it was charged to."""
    out: list[Candidate] = []
    for change in changes:
        st = change.scope
        if st.max_nanos is None and st.soft_nanos is None:
            continue
        if change.before_nanos == st.spend_nanos and projection is None:
            continue
        subject = ctx.subject(st.kind, st.id)
        routing = ctx.routing(subject.route_team)
        channels = tuple(dict.fromkeys(routing.alerting))
        if not channels:
            continue
        alerts = _crossings(st, change.before_nanos, routing, subject, now)
        if projection is not None:
            alerts += project(st, subject, now, projection)
        out += [Candidate(a, channels) for a in alerts]
    return out


def _crossings(st: ScopeState, before: int, routing: AlertRouting, subject: Subject,
               now: datetime) -> list[Alert]:
    after = st.spend_nanos
    alerts = []
    if st.max_nanos is not None:
        for t in routing.thresholds():
            if t < 1 and _crossed(before, after, fraction_of(t, st.max_nanos)):
                alerts.append(_alert(st, BUDGET_ALERT, _level(t), t, subject, now))
        if _crossed(before, after, st.max_nanos):
            alerts.append(_alert(st, BUDGET_EXCEEDED, "1", 1.0, subject, now))
    if st.soft_nanos is not None and _crossed(before, after, st.soft_nanos):
        threshold = st.soft_nanos / st.max_nanos if st.max_nanos else None
        alerts.append(_alert(st, SOFT_BUDGET_ALERT, f"soft={st.soft_nanos}", threshold, subject, now))
    return alerts


def from_denial(denial: Denial, ctx: AlertContext, now: datetime) -> list[Candidate]:
    """A call refused by a budget: `budget_exceeded` for that scope (once per period, like
    reaching 100 % — whichever comes first is the alert)."""
    st = denial.scope
    if st.max_nanos is None:
        return []
    subject = ctx.subject(st.kind, st.id)
    channels = tuple(dict.fromkeys(ctx.routing(subject.route_team).alerting))
    if not channels:
        return []
    return [Candidate(_alert(st, BUDGET_EXCEEDED, "1", 1.0, subject, now), channels)]


def project(st: ScopeState, subject: Subject, now: datetime, projection: Projection) -> list[Alert]:
    """`projected_spend_alert` when the current period's spend rate, kept up until the reset,
    reaches `projection.threshold` × max_budget.

    Linear: projected = spend × period length / time elapsed. Only for budgets with a
    period (`budget_duration`) that are not yet spent, once `min_elapsed` of the period has
    passed. The alert carries the projected spend and when the budget runs out at this rate
    (None when that is not before the reset).
    """
    if st.max_nanos is None or st.reset_at is None or st.spend_nanos <= 0 or st.spend_nanos >= st.max_nanos:
        return []
    length = (st.reset_at - st.period_start).total_seconds()
    elapsed = (now - st.period_start).total_seconds()
    if length <= 0 or elapsed <= 0 or elapsed < projection.min_elapsed * length:
        return []
    elapsed = min(elapsed, length)
    projected = round(st.spend_nanos * length / elapsed)
    if projected < fraction_of(projection.threshold, st.max_nanos):
        return []
    runs_out = st.period_start + (now - st.period_start) * (st.max_nanos / st.spend_nanos)
    exhausted_at = runs_out if runs_out < st.reset_at else None
    return [_alert(st, PROJECTED_SPEND_ALERT, _level(projection.threshold), projection.threshold, subject, now,
                   projected_nanos=projected, exhausted_at=exhausted_at)]


def from_anomaly(record: CallRecord, changes: list[SpendChange], ctx: AlertContext, now: datetime,
                 window: float = DEFAULT_ANOMALY_WINDOW) -> list[Candidate]:
    """`usage_anomaly` for a settled call whose reported usage was clamped (`record.anomaly`).

    About the call's key (the global scope for a call without one), routed like that key's
    budget alerts, whether or not it has a budget. Once per key per `window` seconds: the
    window's start is the alert's `period_start`, so the outbox's dedupe key keeps it once
    across repeats, restarts and processes. `window` 0: one alert per anomalous call."""
    if not record.anomaly:
        return []
    kind, id_ = ("key", record.key_hash) if record.key_hash else ("global", "global")
    subject = ctx.subject(kind, id_)
    if kind == "key" and subject.key_masked is None and record.key_masked:
        # a provider key the directory does not list (seen in traffic only): as the call named it
        subject = replace(subject, label=record.key_alias or record.key_masked, key_masked=record.key_masked,
                          key_alias=record.key_alias, team_id=subject.team_id or record.team_id,
                          user_id=subject.user_id or record.user_id)
    channels = tuple(dict.fromkeys(ctx.routing(subject.route_team).alerting))
    if not channels:
        return []
    st = next((c.scope for c in changes if c.scope.kind == kind and c.scope.id == id_), None)
    if window > 0:
        epoch = int(now.timestamp() // window * window)
        start, level = datetime.fromtimestamp(epoch, UTC), "window"
    else:
        start, level = now, f"call={record.uid}"
    alert = Alert(
        event=USAGE_ANOMALY, scope=kind, scope_id=id_, level=level, threshold=None, period_start=start,
        reset_at=st.reset_at if st else None, max_nanos=st.max_nanos if st else None,
        soft_nanos=st.soft_nanos if st else None, spend_nanos=st.spend_nanos if st else 0,
        raised_at=now, subject=subject, anomaly=anomaly_facts(record),
    )
    return [Candidate(alert, channels)]


def anomaly_facts(record: CallRecord) -> dict[str, Any]:
    """The call and each clamped figure as reported and as recorded."""
    reported = dict(record.anomaly or {})
    recorded: dict[str, Any] = {}
    for name in reported:
        if name == "cost_nanos":
            recorded[name] = record.cost_nanos
        elif name.startswith("units."):
            recorded[name] = record.usage.units.get(name.removeprefix("units."))
        else:
            recorded[name] = getattr(record.usage, name, None)
    return {"call_id": record.uid, "provider": record.provider, "model": record.model, "path": record.path,
            "reported": reported, "recorded": recorded}
