"""Reading numbers out of untrusted JSON without raising."""

from __future__ import annotations

import math
from typing import Any


def count(value: Any) -> int | None:
    """A non-negative integer count, or None for anything else (bools, strings, negatives, NaN)."""
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
