"""The ledger's timestamps: sortable ISO-8601 UTC text with microseconds and a trailing Z,
whatever the datetime's zone, and read back as the same instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger.model import iso, parse_iso

INSTANTS = [
    datetime(2026, 12, 2, 19, 3, 40, 123456, tzinfo=UTC),
    datetime(2026, 12, 2, 19, 3, 40, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 1, 9, 0, 0, 0, 7, tzinfo=UTC),
    datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # a four-digit year, zero-padded
    datetime(2026, 6, 1, 2, 0, 0, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),  # another zone
]


@pytest.mark.parametrize("dt", INSTANTS, ids=lambda dt: dt.isoformat())
def test_iso_is_isoformat_in_utc_with_a_z(dt):
    text = iso(dt)
    assert text == dt.astimezone(UTC).isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"
    assert len(text) == 27
    assert parse_iso(text) == dt


def test_iso_text_sorts_as_the_instants_do():
    texts = [iso(dt) for dt in INSTANTS]
    assert sorted(texts) == [iso(dt) for dt in sorted(INSTANTS)]


def test_none_is_none():
    assert iso(None) is None and parse_iso(None) is None
