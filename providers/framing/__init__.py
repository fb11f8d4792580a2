"""Cutting a streamed response into events, whatever its framing and content encoding.

A framer is fed decoded bytes in arbitrary splits and calls `emit(data, event, end)` for
each complete event: its payload, its name (SSE `event:`), and its end offset in the
decoded stream. Everything runs per chunk of every stream, so the work is incremental: an
incomplete line or element is the only thing kept between chunks, and the part of it
already scanned is never scanned again. `framer_for` picks one by `Framing`.
"""

from __future__ import annotations

from collections.abc import Callable

from core.vocab import Framing
from providers.framing.aws_eventstream import EventStreamFramer
from providers.framing.base import MAX_EVENT_BYTES, Emit, EventTooLarge
from providers.framing.json_array import JSONArrayFramer
from providers.framing.raw import RawFramer
from providers.framing.sse import SSEFramer

__all__ = ["MAX_EVENT_BYTES", "Emit", "EventTooLarge", "Framer", "framer_for"]

Framer = SSEFramer | JSONArrayFramer | EventStreamFramer | RawFramer

_FRAMERS: dict[Framing, Callable[[Emit], Framer]] = {
    Framing.SSE: SSEFramer,
    Framing.JSON_ARRAY: JSONArrayFramer,
    Framing.AWS_EVENTSTREAM: EventStreamFramer,
    Framing.RAW: RawFramer,
}


def framer_for(framing: Framing, emit: Emit) -> Framer:
    return _FRAMERS[framing](emit)
