"""What every framer shares: the event callback's shape and the size bound."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["MAX_EVENT_BYTES", "Emit", "EventTooLarge"]

#: Largest single SSE line / JSON element / binary message buffered for parsing. Beyond it
#: the parser gives up (memory stays bounded) and bytes keep flowing unchanged.
MAX_EVENT_BYTES = 32 * 1024 * 1024

#: (data, event name, absolute end offset in the decoded stream). data is None for a
#: block without data (comments, stray blank lines), emitted so that byte ranges between
#: events can be accounted for.
Emit = Callable[[bytes | None, str | None, int], None]


class EventTooLarge(Exception):
    """One event grew past MAX_EVENT_BYTES."""
