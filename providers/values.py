"""Reading numbers out of untrusted JSON without raising."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


def count(value: Any) -> int | None:
    """A non-negative integer count, or None for anything else (bools, strings, negatives, NaN)."""
    if value is None:  # the usual absent field: answered before any isinstance
        return None
    if value.__class__ is int:  # the usual present one (a bool is not exactly an int)
        return value if value >= 0 else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def billed_count(value: Any) -> int | None:
    """A count a provider may send as a float (Cohere's `50.0`): `count`, and a fractional
    one rounded up (never billed below what was reported)."""
    n = count(value)
    if n is None and isinstance(value, float) and value > 0 and math.isfinite(value):
        return math.ceil(value)
    return n


def usd_nanos(value: Any) -> int | None:
    """A USD amount a reply states (OpenRouter's `usage.cost`) in nano-dollars, rounded half
    up; None for anything but a finite number (bools, strings, NaN). Negative amounts are
    returned as they are: whether to believe them is metering's call (metering/bounds.py)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    amount = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    return int((amount * _NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_UP))  # (quantize fails past 28 digits)


_NANOS_PER_USD = Decimal(1_000_000_000)
