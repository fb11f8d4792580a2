"""Watch a streamed response go by and feed its events to a usage parser.

`StreamTap` is set as mitmproxy's `flow.response.stream`. Chunks arrive still
content-encoded; the tap forwards each one at once and decodes a *copy* to find
complete events, so metering never delays or alters what the client gets —
except, on request, one event: the usage-only chunk spendgate asked OpenAI for
on the client's behalf.

Everything runs per chunk of every stream, so the work is incremental: an
incomplete line or JSON element is the only thing kept between chunks and the
already-scanned part of it is never scanned again.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable

from providers.parsers import UsageParser

__all__ = ["MAX_EVENT_BYTES", "StreamTap", "feed_stream_body"]

#: Largest single SSE line / JSON element we buffer for parsing. Beyond it the
#: parser gives up (memory stays bounded) and bytes keep flowing unchanged.
MAX_EVENT_BYTES = 32 * 1024 * 1024

#: (data, event name, absolute end offset in the decoded stream). data is None
#: for a block without data (comments, stray blank lines), emitted so that byte
#: ranges between events can be accounted for.
Emit = Callable[[bytes | None, str | None, int], None]


class _TooLarge(Exception):
    pass


# --- content decoding ---------------------------------------------------------------


class _Gzip:
    def __init__(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def __call__(self, data: bytes) -> bytes:
        out = self._d.decompress(data)
        while self._d.eof and self._d.unused_data:  # a further gzip member
            rest = self._d.unused_data
            self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += self._d.decompress(rest)
        return out

    def flush(self) -> bytes:
        return self._d.flush()


class _Deflate:
    """HTTP 'deflate' is meant to be zlib-wrapped but some servers send raw deflate:
    the two-byte zlib header decides, with raw deflate as the fallback."""

    def __init__(self) -> None:
        self._d: zlib._Decompress | None = None
        self._head = b""

    def __call__(self, data: bytes) -> bytes:
        if self._d is not None:
            return self._d.decompress(data)
        head = self._head = self._head + data  # decided once two bytes are in
        if len(head) < 2:
            return b""
        cmf, flg = head[0], head[1]
        if cmf & 0x0F == 8 and ((cmf << 8) | flg) % 31 == 0:
            self._d = zlib.decompressobj()
            try:
                return self._d.decompress(head)
            except zlib.error:
                pass
        self._d = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._d.decompress(head)

    def flush(self) -> bytes:
        return self._d.flush() if self._d is not None else b""


class _Brotli:
    def __init__(self) -> None:
        import brotli

        self._d = brotli.Decompressor()

    def __call__(self, data: bytes) -> bytes:
        return self._d.process(data)

    def flush(self) -> bytes:
        return b""


class _Zstd:
    def __init__(self) -> None:
        import zstandard

        self._d = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)

    def __call__(self, data: bytes) -> bytes:
        return self._d.decompress(data)

    def flush(self) -> bytes:
        return b""


_DECODERS = {"gzip": _Gzip, "x-gzip": _Gzip, "deflate": _Deflate, "br": _Brotli, "zstd": _Zstd}


def _decoders(content_encoding: str | None) -> list:
    """Decoders in the order to apply them (the header lists encodings as applied)."""
    names = [n.strip().lower() for n in (content_encoding or "").split(",")]
    names = [n for n in names if n and n != "identity"]
    out = []
    for name in reversed(names):
        factory = _DECODERS.get(name)
        if factory is None:
            raise ValueError(f"unsupported content-encoding {name!r}")
        out.append(factory())
    return out


# --- framing ------------------------------------------------------------------------


class _SSEFramer:
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
        if b"\n" not in data and b"\r" not in data:
            pending += data
            if len(pending) > MAX_EVENT_BYTES:
                raise _TooLarge
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
            if self._data_size > MAX_EVENT_BYTES:
                raise _TooLarge
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


_STRUCT = re.compile(rb'["\[\]{}]')
_STRING_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.S)
_raw_decode = json.JSONDecoder().raw_decode


class _JSONArrayFramer:
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
        if len(buf) > MAX_EVENT_BYTES:
            raise _TooLarge
        self._pos, self._depth, self._start, self._in_string = pos, depth, start, in_string
        self._elem_depth = elem_depth


# --- the tap ------------------------------------------------------------------------

_NOTHING: tuple[bytes, ...] = ()


class StreamTap:
    """A `flow.response.stream` callable that meters a stream as it passes.

    `tap(chunk)` returns what to forward: the chunk itself, unchanged, unless
    `drop_usage_only_events` is on. Then complete events are forwarded as soon
    as they are complete and the usage-only OpenAI chunk is left out; while an
    event is incomplete the tap returns an empty tuple rather than `b""`,
    because mitmproxy turns an empty chunk into the terminating zero-length
    chunk of an HTTP/1.1 chunked body. `tap(b"")` marks the end of the stream.

    Dropping needs the wire bytes to be the event bytes, so it is ignored for a
    content-encoded body. Decoding or framing problems are recorded on the
    parser (`parser.error`); from then on bytes pass through unparsed.
    """

    def __init__(
        self,
        parser: UsageParser,
        *,
        sse: bool,
        content_encoding: str | None,
        drop_usage_only_events: bool = False,
    ) -> None:
        self.parser = parser
        self.finished = False
        self.bytes_in = 0  # bytes received from upstream (as encoded)
        self.bytes_out = 0  # bytes forwarded to the client
        self.decoded_bytes = 0  # bytes after content decoding, as parsed
        self.dropped_events = 0
        self._parsing = True
        try:
            self._decoders = _decoders(content_encoding)
        except (ValueError, ImportError) as exc:
            parser.note_error(str(exc))
            self._decoders = []
            self._parsing = False
        self._drop = bool(drop_usage_only_events and sse and not self._decoders and self._parsing)
        emit = self._emit_drop if self._drop else self._emit
        self._framer = _SSEFramer(emit) if sse else _JSONArrayFramer(emit)
        # drop mode: wire bytes not yet forwarded, starting at absolute offset _held_at
        self._held = bytearray()
        self._held_at = 0
        self._boundary = 0  # end of the last complete event
        self._cuts: list[tuple[int, int]] = []  # dropped ranges not yet applied

    # -- mitmproxy entry point ------------------------------------------------------

    def __call__(self, chunk: bytes) -> bytes | tuple[bytes, ...]:
        if self.finished:
            return chunk
        if not chunk:
            return self._finish()
        self.bytes_in += len(chunk)
        if self._drop:
            return self._forward_drop(chunk)
        if self._parsing:
            self._parse(chunk)
        self.bytes_out += len(chunk)
        return chunk

    # -- parsing --------------------------------------------------------------------

    def _parse(self, chunk: bytes) -> None:
        try:
            data = chunk
            for decode in self._decoders:
                data = decode(data)
                if not data:
                    return
        except Exception as exc:
            self._stop(f"could not decode the response stream: {type(exc).__name__}: {exc}")
            return
        self.decoded_bytes += len(data)
        try:
            self._framer.feed(data)
        except _TooLarge:
            self._stop("stream event larger than MAX_EVENT_BYTES; stopped parsing")
        except Exception as exc:  # never let a framing bug break the proxied stream
            self._stop(f"could not split the response stream: {type(exc).__name__}: {exc}")

    def _stop(self, message: str) -> None:
        self.parser.note_error(message)
        self._parsing = False

    def _emit(self, data: bytes | None, event: str | None, end: int) -> None:
        if data is not None:
            self.parser.feed_event(data, event)

    def _emit_drop(self, data: bytes | None, event: str | None, end: int) -> None:
        if data is not None:
            parser = self.parser
            parser.feed_event(data, event)
            if parser.is_usage_only_event(data):
                self._cuts.append((self._boundary, end))
                self.dropped_events += 1
        self._boundary = end

    # -- drop mode forwarding ---------------------------------------------------------

    def _forward_drop(self, chunk: bytes) -> bytes | tuple[bytes, ...]:
        self._held += chunk
        if self._parsing:
            self._parse(chunk)
        if not self._parsing:  # gave up: release everything, stop holding back
            self._drop = False
            self._cuts.clear()
            out = bytes(self._held)
            self._held.clear()
            self.bytes_out += len(out)
            return out or _NOTHING
        out = self._release(self._boundary)
        return out or _NOTHING

    def _release(self, upto: int) -> bytes:
        """Forward held bytes up to absolute offset `upto`, minus dropped ranges."""
        n = upto - self._held_at
        if n <= 0:
            return b""
        held = self._held
        if not self._cuts:
            out = bytes(held[:n])
        else:
            pieces, at = [], self._held_at
            for start, end in self._cuts:
                pieces.append(held[at - self._held_at : start - self._held_at])
                at = end
            pieces.append(held[at - self._held_at : n])
            out = b"".join(pieces)
            self._cuts.clear()
        del held[:n]
        self._held_at = upto
        self.bytes_out += len(out)
        return out

    # -- end of stream ------------------------------------------------------------------

    def _finish(self) -> bytes:
        self.finished = True
        if self._parsing:
            try:
                tail = b""  # what each decoder still held, run through the next one
                for decode in self._decoders:
                    tail = (decode(tail) if tail else b"") + decode.flush()
                if tail:
                    self.decoded_bytes += len(tail)
                    self._framer.feed(tail)
                self._framer.finish()
            except Exception as exc:
                self.parser.note_error(f"could not finish the response stream: {type(exc).__name__}: {exc}")
                self._cuts.clear()
        if self._drop:
            out = self._release(self._held_at + len(self._held))
            return out
        return b""


def feed_stream_body(parser: UsageParser, body: bytes, *, sse: bool) -> UsageParser:
    """Parse a whole streamed body that was buffered (and decoded) instead of tapped."""
    tap = StreamTap(parser, sse=sse, content_encoding=None)
    tap(body)
    tap(b"")
    return parser
