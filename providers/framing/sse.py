"""Server-sent events (text/event-stream), split as the WHATWG spec says."""

from __future__ import annotations

import providers.framing.base as base
from providers.framing.base import Emit, EventTooLarge

__all__ = ["SSEFramer"]


class SSEFramer:
    """Splits a text/event-stream into events (WHATWG rules: \\n, \\r\\n or \\r line ends,
    `data:` lines joined by \\n, `event:` names, `:` comments, blank line dispatches)."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._pending = bytearray()  # an incomplete line (or one ending in a lone \r)
        self._offset = 0  # decoded bytes fed so far
        self._data: list[bytes] = []
        self._data_size = 0
        self._event: str | None = None
        self._first = True

    def feed(self, data: bytes) -> None:
        pending = self._pending
        self._offset += len(data)
        if (data[-2:] == b"\n\n" and not pending and not self._data and self._event is None
                and not self._first and b"\r" not in data):
            self._whole_events(data)
            return
        if b"\n" not in data and b"\r" not in data:
            pending += data
            if len(pending) > base.MAX_EVENT_BYTES:
                raise EventTooLarge
            return
        if pending:
            pending += data
            buf = bytes(pending)
            pending.clear()
        else:
            buf = data
        pos = self._offset - len(buf)  # absolute offset of buf[0]
        lines = buf.splitlines(True)
        last = lines[-1]
        if last[-1] != 0x0A:
            # incomplete, or a \r whose \n may be in the next chunk
            lines.pop()
            pending += last
        self._lines(lines, pos)

    def _whole_events(self, data: bytes) -> None:
        """A chunk of whole events, `\\n`-ended, none begun before it (what providers send,
        one event or a few per chunk): a `data:` line alone in its event is emitted as it
        is, without the walk line by line; any other event goes through `_lines`."""
        pos = self._offset - len(data)
        for block in data[:-2].split(b"\n\n"):
            start, pos = pos, pos + len(block) + 2
            if block[:5] == b"data:" and b"\n" not in block and len(block) <= base.MAX_EVENT_BYTES:
                self._emit(block[6:] if block[5:6] == b" " else block[5:], None, pos)
            else:
                self._lines((block + b"\n\n").splitlines(True), start)

    def _lines(self, lines: list[bytes], pos: int) -> None:
        """Whole lines, in order, the first at absolute offset `pos`."""
        for line in lines:
            pos += len(line)
            self._line(line, pos)

    def _line(self, line: bytes, end: int) -> None:
        if line[-1] == 0x0A:
            line = line[:-2] if line[-2:] == b"\r\n" else line[:-1]
        else:
            line = line[:-1]
        if self._first:
            self._first = False
            if line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
        if not line:
            data = self._data
            if data:
                self._emit(data[0] if len(data) == 1 else b"\n".join(data), self._event, end)
                self._data = []
                self._data_size = 0
            else:
                self._emit(None, None, end)
            self._event = None
            return
        if line[0] == 0x3A:  # ":" comment / keep-alive
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
            self._data_size += len(value)
            if self._data_size > base.MAX_EVENT_BYTES:
                raise EventTooLarge
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")

    def finish(self) -> None:
        """At end of stream: an event missing only its final blank line still counts;
        a half-received last line does not."""
        if self._pending and self._pending[-1] == 0x0D:
            self._line(bytes(self._pending), self._offset)
        self._pending.clear()
        if self._data:
            self._line(b"\n", self._offset)
