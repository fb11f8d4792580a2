"""What an alert is: the event, the scope and budget period it is about, and the facts
every channel renders.

An alert is a snapshot taken when it is raised — spend, budget, who the scope is — so a
delivery retried an hour later (or by another proxy process) says what was true then,
and needs neither the directory nor the config's budgets to be rendered.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ledger.model import iso, parse_iso

BUDGET_ALERT = "budget_alert"
"""Spend crossed one of `alerting_threshold(s)` × `max_budget` (below 100 %)."""

SOFT_BUDGET_ALERT = "soft_budget_alert"
"""Spend crossed the scope's `soft_budget`; calls are not blocked."""

PROJECTED_SPEND_ALERT = "projected_spend_alert"
"""The period's spend rate projects its end above `projected_spend_threshold` × `max_budget`."""

BUDGET_EXCEEDED = "budget_exceeded"
"""Spend reached 100 % of `max_budget`, or a call was refused by the budget: calls are blocked."""

USAGE_ANOMALY = "usage_anomaly"
"""A response reported more usage than its request could produce (metering/bounds.py): the
figures were clamped, the raw ones kept. Not about a budget: once per key (the global scope
for a call without a key) per rate-limit window (`budget_alert_anomaly_window`)."""

TEST_ALERT = "test_alert"
"""Sent by `POST /alerts/test` only; never stored in the outbox."""

EVENTS = (BUDGET_ALERT, SOFT_BUDGET_ALERT, PROJECTED_SPEND_ALERT, BUDGET_EXCEEDED, USAGE_ANOMALY)


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a scope is, as people know it. `route_team` is the team whose
    `default_team_settings` decide where the alert goes (None: the global settings)."""

    label: str
    key_masked: str | None = None
    key_alias: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    route_team: str | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    event: str
    scope: str  # global | team | user | key
    scope_id: str
    level: str
    """What within the event this alert is for, part of the dedupe key: the threshold
    fraction (`0.75`), `soft=<nanos>` for a soft budget, `1` for budget_exceeded."""
    threshold: float | None  # fraction of max_budget the alert is about (None: soft budget without a max)
    period_start: datetime
    reset_at: datetime | None
    max_nanos: int | None
    soft_nanos: int | None
    spend_nanos: int
    raised_at: datetime
    subject: Subject
    projected_nanos: int | None = None  # projected_spend_alert: spend at the period's end
    exhausted_at: datetime | None = None  # projected_spend_alert: when the budget runs out (None: not before the reset)
    anomaly: dict[str, Any] | None = None
    """usage_anomaly: the call (`call_id`, `provider`, `model`, `path`) and its figures as
    `reported` and as `recorded` after clamping, by name (`input_tokens`, `units.…`, `cost_nanos`)."""

    @property
    def dedupe_key(self) -> str:
        """One alert per (scope, event, threshold, budget period, max budget): a restart, a
        second process or a repeated call can't raise it twice, while a new period or a
        changed budget can raise it anew."""
        return "|".join((self.scope, self.scope_id, self.event, self.level,
                         iso(self.period_start), str(self.max_nanos)))

    def to_json(self) -> str:
        data = asdict(self)
        for name in ("period_start", "reset_at", "raised_at", "exhausted_at"):
            data[name] = iso(data[name])
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Alert:
        data = json.loads(text)
        for name in ("period_start", "reset_at", "raised_at", "exhausted_at"):
            data[name] = parse_iso(data[name])
        data["subject"] = Subject(**data["subject"])
        return cls(**data)
