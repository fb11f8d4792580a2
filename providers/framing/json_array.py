"""A streamed JSON array (Gemini's streamGenerateContent without `alt=sse`)."""

from __future__ import annotations

import json
import re

import providers.framing.base as base
from providers.framing.base import Emit, EventTooLarge

__all__ = ["JSONArrayFramer"]

_STRUCT = re.compile(rb'["\[\]{}]')
_STRING_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.S)
_raw_decode = json.JSONDecoder().raw_decode


class JSONArrayFramer:
    """Finds complete top-level elements of a streamed JSON array (Gemini without
    alt=sse: `[{...}\\n,\\r\\n{...}]`) in arbitrary byte splits. An element that
    arrived whole is measured by the C JSON scanner; one still arriving is
    scanned incrementally (strings skipped whole by one regex match), so the
    work stays linear. A bare object instead of an array (an error reply) is
    emitted as one element."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._buf = bytearray()
        self._base = 0  # absolute offset of _buf[0]
        self._pos = 0  # scan position in _buf
        self._start = -1  # start of the element being read, in _buf
        self._depth = 0
        self._elem_depth = -1  # depth at which elements open: 1 in an array, 0 bare
        self._in_string = False
        self._tried = 0  # element bytes present at the last fast-path attempt

    def feed(self, data: bytes) -> None:
        self._buf += data
        self._scan(data)

    def finish(self) -> None:
        self._scan(None)  # settle an element left unscanned after a failed fast path
        self._buf.clear()

    def _scan(self, new: bytes | None) -> None:
        buf = self._buf
        n = len(buf)
        pos, depth, start, in_string = self._pos, self._depth, self._start, self._in_string
        elem_depth = self._elem_depth
        fast = new is not None
        text: str | None = None
        if fast and start >= 0 and n - start >= 2 * self._tried and b"}" in new:
            # An element still arriving: retry the fast path whenever it has doubled
            # since the last try, so retries cost at most one extra pass overall.
            text = buf.decode("latin-1")
            self._tried = n - start
            try:
                end = _raw_decode(text, start)[1]
            except (ValueError, RecursionError):
                pass
            else:
                self._emit(bytes(buf[start:end]), None, self._base + end)
                start, pos, depth, in_string = -1, end, elem_depth, False
        while pos < n:
            if in_string:
                pos = _STRING_BODY.match(buf, pos).end()
                if pos >= n or buf[pos] != 0x22:  # ran out (maybe mid-escape)
                    break
                in_string = False
                pos += 1
                continue
            m = _STRUCT.search(buf, pos)
            if m is None:
                pos = n
                break
            c = buf[m.start()]
            pos = m.end()
            if c == 0x22:  # "
                in_string = True
            elif c == 0x7B or c == 0x5B:  # { [
                if elem_depth < 0:
                    elem_depth = 1 if c == 0x5B else 0
                depth += 1
                if depth == elem_depth + 1 and c == 0x7B:
                    start = m.start()
                    if not fast:
                        continue
                    # Fast path: the whole element is usually here already; let the C
                    # JSON scanner find its end. Latin-1 keeps str indices = byte offsets,
                    # and UTF-8 bytes >= 0x80 only ever occur inside strings.
                    if text is None:
                        text = buf.decode("latin-1")
                    try:
                        end = _raw_decode(text, start)[1]
                    except (ValueError, RecursionError):
                        # Incomplete (or malformed). Defer: the next chunk retries the
                        # fast path or, failing that, scans on from just after the brace.
                        self._tried = n - start
                        break
                    self._emit(bytes(buf[start:end]), None, self._base + end)
                    start, pos, depth = -1, end, elem_depth
            else:  # } ]
                depth -= 1
                if depth == elem_depth and start >= 0:
                    self._emit(bytes(buf[start:pos]), None, self._base + pos)
                    start = -1
        # Keep only the element in progress (or nothing) for the next chunk.
        cut = start if start >= 0 else pos
        if cut:
            del buf[:cut]
            self._base += cut
            pos -= cut
            if start >= 0:
                start = 0
        if len(buf) > base.MAX_EVENT_BYTES:
            raise EventTooLarge
        self._pos, self._depth, self._start, self._in_string = pos, depth, start, in_string
        self._elem_depth = elem_depth
