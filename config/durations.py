"""Budget periods: the `30d` / `1mo` durations LiteLLM configs use, and where a period ends.

Budgets reset on a rolling schedule anchored at a start time (start, start+d, start+2d, ...),
so the ledger, the 429 `retry-after` and the alerts' dedupe key must all agree on which period
`now` falls in. `next_boundary` is that one computation. Use timezone-aware UTC datetimes:
fixed-length units are exact elapsed time, and months are calendar months.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic_core import PydanticCustomError, core_schema

Unit = Literal["s", "m", "h", "d", "mo"]

_SECONDS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"([1-9][0-9]*)(s|m|h|d|mo)")
_HINT = "use 30s, 15m, 12h, 1d, 7d, 30d, 1mo"
_ERROR = "{value} is not a duration (" + _HINT + ")"


@dataclass(frozen=True, slots=True)
class Duration:
    """A count of seconds, minutes, hours, days or calendar months; `str()` is the config text."""

    count: int
    unit: Unit

    def __post_init__(self) -> None:
        if self.count < 1 or self.unit not in (*_SECONDS, "mo"):
            raise ValueError(f"invalid duration {self.count!r}{self.unit!r}")

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Read `30d`-style text; the ValueError names the accepted forms."""
        match = _PATTERN.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(_ERROR.format(value=repr(text)))
        return cls(int(match[1]), match[2])  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"

    @property
    def fixed(self) -> timedelta | None:
        """The exact length, or None for months (whose length depends on the calendar)."""
        if self.unit == "mo":
            return None
        return timedelta(seconds=self.count * _SECONDS[self.unit])

    def add_to(self, dt: datetime, times: int = 1) -> datetime:
        """`dt` plus `times` durations; months clamp the day (Jan 31 + 1mo = Feb 28/29)."""
        fixed = self.fixed
        if fixed is not None:
            return dt + fixed * times
        return _add_months(dt, self.count * times)

    # pydantic: a field typed `Duration | None` accepts the YAML text and dumps it back.
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate,
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="json"),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{_PATTERN.pattern}$", "examples": ["30d", "1mo"]}


def _validate(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    try:
        return Duration.parse(value)
    except ValueError:
        raise PydanticCustomError("duration", _ERROR, {"value": repr(value)}) from None


def _add_months(dt: datetime, months: int) -> datetime:
    index = dt.year * 12 + (dt.month - 1) + months
    year, month = divmod(index, 12)
    day = min(dt.day, calendar.monthrange(year, month + 1)[1])
    return dt.replace(year=year, month=month + 1, day=day)


def next_boundary(start: datetime, duration: Duration, now: datetime) -> tuple[datetime, datetime]:
    """The period of the rolling schedule from `start` that contains `now`: (period_start, reset_at).

    Every boundary is computed from `start` itself (start + k·d), never by stepping from the
    previous boundary, so month clamping does not drift (Jan 31 → Feb 28 → Mar 31) and a start
    years in the past costs no loop. A `now` before `start` gets the earlier period likewise.
    """
    fixed = duration.fixed
    if fixed is not None:
        k = (now - start) // fixed
    else:
        elapsed_months = (now.year - start.year) * 12 + (now.month - start.month)
        k = elapsed_months // duration.count
        # The month estimate is off by at most one period (day/time within the month).
        while duration.add_to(start, k) > now:
            k -= 1
        while duration.add_to(start, k + 1) <= now:
            k += 1
    return duration.add_to(start, k), duration.add_to(start, k + 1)
