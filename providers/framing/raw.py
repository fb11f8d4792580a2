"""An opaque body (audio) passed through as it arrives: no events to cut out of it."""

from __future__ import annotations

from providers.framing.base import Emit

__all__ = ["RawFramer"]


class RawFramer:
    """Keeps nothing and emits nothing: a parser of such a body learns only that it
    ended (`UsageParser.end_of_stream`), which is all a binary speech reply says."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit

    def feed(self, data: bytes) -> None:
        pass

    def finish(self) -> None:
        pass
