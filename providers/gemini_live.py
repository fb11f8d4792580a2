"""Gemini Live: `BidiGenerateContent` over a WebSocket, on the Gemini API
(`/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent`, key in
`?key=` or `x-goog-api-key`) and on Vertex AI (`/ws/google.cloud.aiplatform.{version}.
LlmBidiService/BidiGenerateContent`, an OAuth token).

The client's first message is `setup` (the model, `generationConfig.maxOutputTokens`);
then `clientContent`, `realtimeInput` (audio, video, text) and `toolResponse`. A turn
starts with the first of those while no turn is open, and ends when the server has said
`turnComplete` and reported its `usageMetadata` (in either order): the Gemini API's Live
names output `responseTokenCount` (`responseTokensDetails`), Vertex AI's
`candidatesTokenCount` (`candidatesTokensDetails`); both sides are split by modality
(`promptTokensDetails` too: audio as genai-prices' audio units). The client sends either
spelling of a field (google-genai: `client_content`, `realtime_input`); only `setup` is read.
Bound of a turn: output at most `maxOutputTokens`, else the configured default; input at
most every byte the client sent on the socket plus every output so far, priced as audio.

A refused turn that streamed media started (`realtimeInput` audio or video) is answered
once: the media after it is dropped for a few seconds (sockets.Refusals), or until the
client sends something else.

Live has no error event: a turn spendgate refuses is answered with Google's JSON error
shape (`{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", ...}, "code": 429}`) as a
message; google-genai's `session.receive()` raises it as `errors.ClientError` (429).
"""

from __future__ import annotations

import json
from typing import Any

from core.usage import TokenUsage
from core.vocab import EndpointKind
from providers.base import CallRequest, Endpoint
from providers.parsing import UsageParser, get_path, slen
from providers.sockets import Refusals, SocketApi, SocketSession, Turn, load_message
from providers.values import count

__all__ = ["LIVE", "LiveParser", "LiveSession", "live_usage"]


def _modalities(details: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    if isinstance(details, list):
        for item in details:
            modality, n = get_path(item, "modality"), count(get_path(item, "tokenCount"))
            if isinstance(modality, str) and n:
                out[modality.upper()] = out.get(modality.upper(), 0) + n
    return out


def live_usage(meta: Any) -> TokenUsage | None:
    """A Live `usageMetadata`: prompt (cached inside it) and tool-use prompt tokens in,
    response and thinking tokens out, audio and image parts as units. The Gemini API names
    the output `responseTokenCount`, Vertex AI `candidatesTokenCount` (google-genai maps
    both to `response_token_count`)."""
    if not isinstance(meta, dict):
        return None
    prompt, response = count(meta.get("promptTokenCount")), count(meta.get("responseTokenCount"))
    response_details = meta.get("responseTokensDetails")
    if response is None:  # Vertex AI names the output as generateContent does
        response, response_details = count(meta.get("candidatesTokenCount")), meta.get("candidatesTokensDetails")
    if prompt is None and response is None:
        return None
    tool = count(meta.get("toolUsePromptTokenCount")) or 0
    thoughts = count(meta.get("thoughtsTokenCount")) or 0
    inputs, outputs = _modalities(meta.get("promptTokensDetails")), _modalities(response_details)
    units = {"input_audio_tokens": inputs.get("AUDIO", 0), "input_image_tokens": inputs.get("IMAGE", 0),
             "output_audio_tokens": outputs.get("AUDIO", 0)}
    return TokenUsage(
        input_tokens=(prompt or 0) + tool,
        cache_read_tokens=count(meta.get("cachedContentTokenCount")) or 0,
        output_tokens=(response or 0) + thoughts,
        reasoning_tokens=thoughts,
        units={name: n for name, n in units.items() if n},
    )


class LiveParser(UsageParser):
    """One Live turn: the text it generated, its last `usageMetadata`, its `turnComplete`."""

    def __init__(self) -> None:
        super().__init__()
        self.turn_complete = False

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        content = obj.get("serverContent")
        if isinstance(content, dict):
            parts = get_path(content, "modelTurn", "parts")
            if isinstance(parts, list):
                for part in parts:
                    self.output_chars += slen(get_path(part, "text"))
            self.output_chars += slen(get_path(content, "outputTranscription", "text"))
            if content.get("turnComplete") is True:
                self.turn_complete = self.ended = True
        usage = live_usage(obj.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        if self.turn_complete and self._usage is not None:
            self.complete = True


def _model(name: Any) -> str | None:
    """`models/gemini-2.0-flash-live-001` or a Vertex resource name → the model id."""
    if not isinstance(name, str) or not name:
        return None
    return name.rsplit("models/", 1)[-1]


def _media(data: bytes) -> bool:
    """Realtime input other than text (audio, video chunks): what a client streams."""
    head = data[:300]
    return (b'"realtimeInput"' in head or b'"realtime_input"' in head) and b'"text"' not in head


class LiveSession(SocketSession):
    def __init__(self, endpoint: Endpoint, default_max_output_tokens: int) -> None:
        self.endpoint = endpoint
        self.model = endpoint.url_model
        self.max_output = default_max_output_tokens
        self.sent = 0  # client bytes so far: input the next turn may read
        self.output_so_far = 0
        self.turn: Turn | None = None  # the turn in flight (or being admitted)
        self.refusals = Refusals()  # streamed media dropped for a while after its turn was refused

    def client(self, data: bytes) -> Turn | None:
        self.sent += len(data)
        if b'"setup"' in data[:64]:
            obj = load_message(data)
            setup = obj.get("setup") if obj else None
            if isinstance(setup, dict):
                self.model = _model(setup.get("model")) or self.model
                cfg = setup.get("generationConfig") or setup.get("generation_config")
                cap = None
                if isinstance(cfg, dict):
                    cap = count(cfg.get("maxOutputTokens", cfg.get("max_output_tokens")))
                if cap is not None:
                    self.max_output = cap
                return None
        if self.turn is not None:
            return None
        if _media(data):
            if self.refusals.blocked:
                return None  # dropped (`drops`): one refusal answers the stream
        else:
            self.refusals.clear()
        inputs = self.sent + self.output_so_far
        request = CallRequest(
            model=self.model, stream=True, max_output_tokens=self.max_output, input_bytes=self.sent,
            max_usage=TokenUsage(input_tokens=inputs, output_tokens=self.max_output,
                                 units={"input_audio_tokens": inputs, "output_audio_tokens": self.max_output}),
        )
        self.turn = Turn(request, LiveParser())
        return self.turn

    def refused(self, turn: Turn) -> None:
        if self.turn is turn:
            self.turn = None
            self.refusals.refused()

    def drops(self, data: bytes) -> bool:
        return self.turn is None and self.refusals.blocked and _media(data)

    def server(self, data: bytes) -> list[Turn]:
        head = data[:300]
        if b"usageMetadata" not in data and b"turnComplete" not in data and b'"text"' not in head:
            return []  # audio chunks and the like: nothing to meter
        turn = self.turn
        if turn is None:
            if b"setupComplete" in head:
                return []
            # output the client asked for before spendgate knew of a turn (none is open): metered anyway
            turn = self.turn = Turn(CallRequest(self.model, True, self.max_output, self.sent), LiveParser(),
                                    admitted=False)
        turn.parser.feed_event(data)
        if turn.parser.complete:
            self.turn = None
            usage = turn.parser.usage
            self.output_so_far += usage.output_tokens if usage else 0
            turn.ended = True
            return [turn]
        return []

    def open_turns(self) -> list[Turn]:
        return [self.turn] if self.turn is not None and not self.turn.ended else []

    def refusal_event(self, status: int, type_: str, message: str, client_data: bytes) -> bytes:
        error = {"code": status, "message": message, "status": "RESOURCE_EXHAUSTED" if status == 429 else type_,
                 "details": [{"reason": type_}]}
        # the top-level `code` is what google-genai's live client reads from a message it can't
        # parse as a server message: it raises `errors.ClientError` with it (without one, a TypeError)
        return json.dumps({"error": error, "code": status}, separators=(",", ":")).encode()


class LiveApi(SocketApi):
    """`BidiGenerateContent` upgraded: one call per turn."""

    kind = EndpointKind.REALTIME
    meters = ("each turn (to `turnComplete`): input, cached, output (`responseTokenCount`, Vertex AI's "
              "`candidatesTokenCount`) and thinking tokens, audio and image parts at their own prices")

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return LiveParser()

    def new_session(self, endpoint: Endpoint, path: str, default_max_output_tokens: int) -> SocketSession:
        return LiveSession(endpoint, default_max_output_tokens)


LIVE = LiveApi()
