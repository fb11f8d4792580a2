"""Reading numbers out of untrusted JSON without raising."""

from __future__ import annotations

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
