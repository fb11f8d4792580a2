"""application/vnd.amazon.eventstream (AWS Bedrock's streams), decoded by botocore.

Each message is length-prefixed and CRC-checked: `total_length:uint32`,
`headers_length:uint32`, a prelude CRC, typed headers, the payload, a message CRC. This
framer only reads the first four bytes to know when a message is complete; botocore's
`EventStreamBuffer` then checks and decodes it (lengths, both CRCs, headers). Handing it
whole messages one at a time keeps the work linear: its own buffer copies what follows a
message after each one.

A message is emitted as (payload, name, end): the name is its `:event-type` for an event
(`chunk`, `metadata`...), and `exception:<:exception-type>` or `error:<:error-code>` for
the two ways AWS reports a failure mid-stream; a failure's payload is always a JSON object
with its `message` (an error's comes from its `:error-message` header).
"""

from __future__ import annotations

import json

from botocore.eventstream import EventStreamBuffer

import providers.framing.base as base
from providers.framing.base import Emit, EventTooLarge

__all__ = ["EventStreamFramer", "is_failure"]

_MIN_MESSAGE = 16  # prelude (12) + message CRC (4)
_FAILURES = ("exception:", "error:")


def is_failure(event: str | None) -> bool:
    """Whether an emitted name is an exception or error message rather than an event."""
    return event is not None and event.startswith(_FAILURES)


class EventStreamFramer:
    """Splits an AWS event stream into messages, in arbitrary byte splits."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._buf = bytearray()
        self._base = 0  # absolute offset of _buf[0]

    def feed(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, n = 0, len(buf)
        while n - pos >= 4:
            total = int.from_bytes(buf[pos:pos + 4], "big")
            if total < _MIN_MESSAGE:
                raise ValueError(f"event stream message length {total} is shorter than its prelude")
            if total > base.MAX_EVENT_BYTES:
                raise EventTooLarge
            if n - pos < total:
                break
            decoder = EventStreamBuffer()
            decoder.add_data(bytes(buf[pos:pos + total]))
            message = next(decoder)  # validates the prelude, both CRCs and the headers
            pos += total
            self._message(message.headers, message.payload, self._base + pos)
        if pos:
            del buf[:pos]
            self._base += pos

    def _message(self, headers: dict, payload: bytes, end: int) -> None:
        kind = headers.get(":message-type", "event")
        if kind == "event":
            name = headers.get(":event-type")
            self._emit(payload, name if isinstance(name, str) else None, end)
        elif kind == "exception":
            self._emit(payload or b"{}", f"exception:{headers.get(':exception-type', 'unknown')}", end)
        elif kind == "error":
            message = json.dumps({"message": str(headers.get(":error-message", ""))}).encode()
            self._emit(message, f"error:{headers.get(':error-code', 'unknown')}", end)
        else:
            self._emit(None, None, end)

    def finish(self) -> None:
        """A message cut off half-way is not one: the parser already has what came before."""
        self._buf.clear()
