"""Watch a streamed response go by and feed its events to a usage parser.

`StreamTap` is set as mitmproxy's `flow.response.stream`. Chunks arrive still
content-encoded; the tap forwards each one at once and decodes a *copy* to find complete
events (providers/framing/), so metering never delays or alters what the client gets —
except, on request, one event: the usage-only chunk spendgate asked OpenAI for on the
client's behalf.
"""

from __future__ import annotations

from core.vocab import Framing
from providers.framing import MAX_EVENT_BYTES, EventTooLarge, framer_for
from providers.framing.decoding import decoders_for
from providers.parsing import UsageParser

__all__ = ["MAX_EVENT_BYTES", "StreamTap", "feed_stream_body"]

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
        framing: Framing,
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
            self._decoders = decoders_for(content_encoding)
        except (ValueError, ImportError) as exc:
            parser.note_error(str(exc))
            self._decoders = []
            self._parsing = False
        self._drop = bool(drop_usage_only_events and framing is Framing.SSE and not self._decoders and self._parsing)
        emit = self._emit_drop if self._drop else self._emit
        self._framer = framer_for(framing, emit)
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
        except EventTooLarge:
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
        if self._parsing:
            self._parse(chunk)
        if (self._parsing and not self._held and not self._cuts
                and self._boundary == self._held_at + len(chunk)):
            # whole events, none dropped, nothing held before (the usual chunk): as it came
            self._held_at = self._boundary
            self.bytes_out += len(chunk)
            return chunk
        self._held += chunk
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
                self.parser.end_of_stream()
            except Exception as exc:
                self.parser.note_error(f"could not finish the response stream: {type(exc).__name__}: {exc}")
                self._cuts.clear()
        if self._drop:
            out = self._release(self._held_at + len(self._held))
            return out
        return b""


def feed_stream_body(parser: UsageParser, body: bytes, *, framing: Framing) -> UsageParser:
    """Parse a whole streamed body that was buffered (and decoded) instead of tapped."""
    tap = StreamTap(parser, framing=framing, content_encoding=None)
    tap(body)
    tap(b"")
    return parser
