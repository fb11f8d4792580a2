"""OpenAI's Realtime API over a WebSocket (`wss://…/v1/realtime?model=…`, also on Azure),
and the error event OpenAI's WebSocket APIs share.

A turn is a `response.create` (its `response` holds per-response settings) and ends at
`response.done`, whose usage splits input into text, audio, image and cached tokens of
each, and output into text and audio: each modality at its own price. Bound of a turn:
output at most the response's `max_output_tokens`, else the session's
(`max_response_output_tokens`, set by `session.update`), else the configured default
(`general_settings.realtime_max_output_tokens`); input at most everything the client sent
on the socket (text a token per byte, audio `AUDIO_BYTES_PER_TOKEN`) plus every output so
far, all of it priced as audio, the dearest modality. Input-audio transcription is its own
call, priced at the transcription model's rate, from
`conversation.item.input_audio_transcription.completed`.

A response the server starts itself: with server-side turn detection (`turn_detection`
`server_vad` / `semantic_vad` with `create_response`, the API's default), the first
`input_audio_buffer.append` while no such hold exists is a standby turn (sockets.Turn):
admitted ahead with a turn's bound, and the next `response.created` no `response.create`
asked for is matched to it. Refused, it answers once with the error event, and audio appends
are dropped (`drops`, sockets.Refusals) for a few seconds or until the client sends something else.
Without turn detection, a response the server starts is metered but was not reserved.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qs, urlsplit

from core.usage import TokenUsage
from core.vocab import EndpointKind
from providers.base import CallRequest, Endpoint
from providers.openai_audio import TRANSCRIPTIONS, OpenAITranscriptionParser, transcription_usage
from providers.parsing import UsageParser, count_at, get_path, slen
from providers.sockets import Lanes, Refusals, SocketApi, SocketSession, Turn, load_message
from providers.values import count

__all__ = ["REALTIME", "RealtimeParser", "RealtimeSession", "dumps", "openai_error_event", "realtime_usage",
           "response_id"]

#: Input audio: at least this many bytes of a base64 `input_audio_buffer.append` per audio
#: token (G.711 at 8 kB/s is the densest format, 10 tokens a second; bounds allow 20).
AUDIO_BYTES_PER_TOKEN = 8_000 * 4 // 3 // 20
APPEND = b'"input_audio_buffer.append"'


def openai_error_event(status: int, type_: str, message: str, event_id: Any = None) -> dict[str, Any]:
    """OpenAI's error event on a socket: `{"type": "error", "status", "error": {...}}`."""
    error = {"type": type_, "code": type_, "message": message, "param": None}
    if isinstance(event_id, str):
        error["event_id"] = event_id
    return {"type": "error", "status": status, "error": error}


def dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def response_id(obj: dict[str, Any]) -> str | None:
    rid = get_path(obj, "response", "id")
    if not isinstance(rid, str):
        rid = obj.get("response_id")
    return rid if isinstance(rid, str) and rid else None


# --- Realtime API ----------------------------------------------------------------------


def realtime_usage(u: Any) -> TokenUsage | None:
    """A `response.done` usage: totals, and each modality as genai-prices' units (audio and
    image input, cached audio and image, audio output); text is what is left of the totals."""
    if not isinstance(u, dict):
        return None
    inp, out = count(u.get("input_tokens")), count(u.get("output_tokens"))
    if inp is None and out is None:
        return None
    units = {
        "input_audio_tokens": count_at(u, "input_token_details", "audio_tokens"),
        "input_image_tokens": count_at(u, "input_token_details", "image_tokens"),
        "cache_audio_read_tokens": count_at(u, "input_token_details", "cached_tokens_details", "audio_tokens"),
        "cache_image_read_tokens": count_at(u, "input_token_details", "cached_tokens_details", "image_tokens"),
        "output_audio_tokens": count_at(u, "output_token_details", "audio_tokens"),
    }
    return TokenUsage(
        input_tokens=inp or 0,
        cache_read_tokens=count_at(u, "input_token_details", "cached_tokens"),
        output_tokens=out or 0,
        units={name: n for name, n in units.items() if n},
    )


class RealtimeParser(UsageParser):
    """One realtime response: its usage in `response.done` (`response.usage`)."""

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        etype = obj.get("type") if isinstance(obj.get("type"), str) else ""
        if etype.endswith(".delta"):
            if "audio" not in etype:  # audio deltas are base64, not text
                self.output_chars += slen(obj.get("delta"))
            return
        if etype != "response.done":
            return
        self.ended = True
        response = obj.get("response")
        usage = realtime_usage(get_path(response, "usage"))
        if usage is not None:
            self._usage = usage
            self.complete = True
        elif get_path(response, "status") in ("cancelled", "failed"):
            self.complete = False  # nothing reported: charged what was seen


def _max_output(value: Any) -> int | None:
    """`max_output_tokens` / `max_response_output_tokens`: a count, or "inf" (no bound: None)."""
    return count(value)


class RealtimeSession(SocketSession):
    def __init__(self, endpoint: Endpoint, path: str, default_max_output_tokens: int) -> None:
        self.endpoint = endpoint
        query = parse_qs(urlsplit(path).query)
        model = (query.get("model") or query.get("deployment") or [None])[0]
        self.model: str | None = model or endpoint.url_model
        self.default_max_output = default_max_output_tokens
        self.session_max_output: int | None = None
        self.transcription_model: str | None = None
        self.sent_text = 0  # client bytes other than audio, so far: input they can become
        self.sent_audio = 0  # client audio bytes (base64), so far
        self.output_so_far = 0  # output tokens of the socket's responses: input of the next
        self.lanes = Lanes()
        self.waiting: list[Turn] = []  # client response.create turns whose response.created is due
        self.server_vad = True  # the API's default turn detection: server_vad, create_response
        self.standby: Turn | None = None  # held ahead for the response voice detection may start
        self.standby_begun = False  # admitted (else still being admitted)
        self.vad_refusals = Refusals()  # audio dropped for a while after a standby turn was refused

    # -- client side

    def client(self, data: bytes) -> Turn | None:
        head = data[:200]
        if APPEND in head:
            self.sent_audio += len(data)
            return self._standby()
        self.vad_refusals.clear()  # the client does something else: the next audio asks again
        self.sent_text += len(data)
        if b'"session.update"' in head or b'"response.create"' in head:
            obj = load_message(data)
            if obj is None:
                return None
            if obj.get("type") == "session.update":
                self._session(obj.get("session"))
                return None
            if obj.get("type") == "response.create":
                return self._turn(obj, len(data))
        return None

    def _standby(self) -> Turn | None:
        """Audio that may start a response: a standby turn, unless one is held (or being
        admitted), turn detection is off, or one was refused a moment ago."""
        if not self.server_vad or self.standby is not None or self.vad_refusals.blocked:
            return None
        self.standby = Turn(self._bound(None, 0), RealtimeParser(), standby=True)
        return self.standby

    def drops(self, data: bytes) -> bool:
        return APPEND in data[:200] and self.server_vad and self.vad_refusals.blocked

    def refused(self, turn: Turn) -> None:
        if turn is self.standby:
            self.standby, self.standby_begun = None, False
            self.vad_refusals.refused()

    def released(self, turn: Turn) -> None:
        if turn is self.standby:
            self.standby, self.standby_begun = None, False

    def _turn_detection(self, session: dict[str, Any]) -> None:
        """`turn_detection` (beta: on the session; GA: `audio.input`): whether the server
        starts responses by itself. None turns it off, as `create_response: false` does."""
        for holder in (session, get_path(session, "audio", "input")):
            if isinstance(holder, dict) and "turn_detection" in holder:
                td = holder["turn_detection"]
                self.server_vad = isinstance(td, dict) and td.get("create_response") is not False

    def _session(self, session: Any) -> None:
        if not isinstance(session, dict):
            return
        self._turn_detection(session)
        model = session.get("model")
        if isinstance(model, str) and model:
            self.model = model
        for key in ("max_response_output_tokens", "max_output_tokens"):
            if key in session:
                self.session_max_output = _max_output(session.get(key))
        transcription = session.get("input_audio_transcription")
        if not isinstance(transcription, dict):
            transcription = get_path(session, "audio", "input", "transcription")
        if isinstance(transcription, dict) and isinstance(transcription.get("model"), str):
            self.transcription_model = transcription["model"]

    def _bound(self, max_output: int | None, message_bytes: int) -> CallRequest:
        output = max_output if max_output is not None else self.session_max_output
        if output is None:
            output = self.default_max_output
        audio = math.ceil(self.sent_audio / AUDIO_BYTES_PER_TOKEN)
        inputs = self.sent_text + audio + self.output_so_far
        return CallRequest(
            model=self.model, stream=True, max_output_tokens=output, input_bytes=self.sent_text,
            # every input and output token at the dearest modality's price: audio
            max_usage=TokenUsage(input_tokens=inputs, output_tokens=output,
                                 units={"input_audio_tokens": inputs, "output_audio_tokens": output}),
        )

    def _turn(self, obj: dict[str, Any], size: int) -> Turn:
        response = obj.get("response") if isinstance(obj.get("response"), dict) else {}
        max_output = None
        for key in ("max_output_tokens", "max_response_output_tokens"):
            if key in response:
                max_output = _max_output(response.get(key))
        event_id = obj.get("event_id")  # the lane of a realtime turn: its client event id, for errors
        return Turn(self._bound(max_output, size), RealtimeParser(), lane=event_id if isinstance(event_id, str) else "")

    def begin(self, turn: Turn) -> None:
        if turn.standby:
            self.standby_begun = turn is self.standby
        else:
            self.waiting.append(turn)

    # -- server side

    def server(self, data: bytes) -> list[Turn]:
        head = data[:200]
        if b'.delta"' in head and (b"audio" in head or b"transcript" in head):
            return []  # audio and transcript deltas: nothing to meter
        obj = load_message(data)
        if obj is None:
            return []
        etype = obj.get("type")
        if etype == "session.created" or etype == "session.updated":
            self._session(obj.get("session"))
            return []
        if etype == "conversation.item.input_audio_transcription.completed":
            return self._transcription(obj)
        rid = response_id(obj)
        if etype == "response.created" and rid:
            if self.waiting:
                turn = self.waiting.pop(0)
            elif self.standby is not None and self.standby_begun:  # voice detection's, held ahead
                turn, self.standby, self.standby_begun = self.standby, None, False
            else:
                turn = Turn(self._bound(None, 0), RealtimeParser(), admitted=False)
            turn.response_id = rid
            self.lanes.add(turn)
        elif etype == "error":
            # a response.create the provider refused, named by its client event id
            event_id = get_path(obj, "error", "event_id")
            for turn in self.waiting:
                if event_id is not None and turn.lane == event_id:
                    self.waiting.remove(turn)
                    turn.status = count(obj.get("status")) or 400
                    turn.parser.feed_decoded(obj)
                    turn.ended = True
                    return [turn]
            return []
        if not rid:
            return []
        turn = self.lanes.by_id.get(rid)
        if turn is None:
            return []
        turn.parser.feed_decoded(obj)
        if etype == "response.done":
            usage = turn.parser.usage
            if usage is not None:
                self.output_so_far += usage.output_tokens
            self.lanes.end(turn)
            return [turn]
        return []

    def _transcription(self, obj: dict[str, Any]) -> list[Turn]:
        usage = transcription_usage(obj.get("usage"))
        parser = OpenAITranscriptionParser()
        parser.output_chars = slen(obj.get("transcript"))
        if usage is not None:
            parser._usage = usage  # noqa: SLF001  (the event is the whole reply)
            parser.complete = parser.ended = True
        else:
            parser.note_error("no usage in input_audio_transcription.completed")
        request = CallRequest(model=self.transcription_model, stream=False, max_output_tokens=None, input_bytes=0)
        return [Turn(request, parser, admitted=False, api=TRANSCRIPTIONS, ended=True)]

    def open_turns(self) -> list[Turn]:
        return [*self.waiting, *self.lanes.open()]

    def refusal_event(self, status: int, type_: str, message: str, client_data: bytes) -> bytes:
        body = load_message(client_data) or {}
        return dumps(openai_error_event(status, type_, message, body.get("event_id")))


class RealtimeApi(SocketApi):
    """`GET /v1/realtime?model=…` upgraded: one call per response."""

    kind = EndpointKind.REALTIME
    meters = ("each response: text, audio, image and cached input, text and audio output, each at its own "
              "price; input-audio transcriptions at the transcription model's rate")

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return RealtimeParser()

    def new_session(self, endpoint: Endpoint, path: str, default_max_output_tokens: int) -> SocketSession:
        return RealtimeSession(endpoint, path, default_max_output_tokens)


REALTIME = RealtimeApi()
