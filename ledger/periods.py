"""Budget periods: rolling windows of a scope's `budget_duration`, anchored at its start.

A scope created at 10:30 on the 3rd with `30d` resets at 10:30 on the 3rd + 30 days,
then every 30 days after; a proxy that was down across several boundaries lands in
the period that contains now, not in one long overdue period.
"""

from __future__ import annotations

from datetime import datetime

from config.durations import Duration, next_boundary


def first_period(start: datetime, duration: str | None) -> tuple[datetime, datetime | None]:
    if duration is None:
        return start, None
    return start, Duration.parse(duration).add_to(start)


def period_containing(start: datetime, duration: str, now: datetime) -> tuple[datetime, datetime]:
    return next_boundary(start, Duration.parse(duration), now)
