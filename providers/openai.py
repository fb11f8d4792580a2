"""OpenAI: its wire format (chat, legacy completions, Responses, embeddings), which
Azure and every OpenAI-compatible provider speak too, and the OpenAI provider itself.

Usage conventions (kept as genai-prices has them): `prompt_tokens` includes
`prompt_tokens_details.cached_tokens`, `completion_tokens` includes
`completion_tokens_details.reasoning_tokens`. A chat stream reports usage only when the
request asked (`stream_options.include_usage`); spendgate asks on the client's behalf
(`request_stream_usage`) and drops the extra chunk before the client sees it.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from typing import Any

from core import jsontext
from core.usage import TokenUsage
from core.vocab import EndpointKind, Framing
from providers.base import FREE, Api, CallRequest, Endpoint, Provider, Route
from providers.genai_usage import UsageReader, reader
from providers.openai_audio import SPEECH, TRANSCRIPTIONS, TRANSLATIONS
from providers.openai_realtime import REALTIME, dumps, openai_error_event, response_id
from providers.openai_images import IMAGES_EDIT, IMAGES_GENERATE, IMAGES_VARIATION
from providers.parsing import (
    JSON_ERRORS,
    UsageParser,
    count_at,
    get_path,
    is_done,
    slen,
)
from providers.reading import choices, load_object, read_json_request
from providers.sockets import Lanes, SocketApi, SocketSession, Turn, load_message
from providers.values import count, usd_nanos

__all__ = [
    "CHAT",
    "COMPLETIONS",
    "Dialect",
    "EMBEDDINGS",
    "OPENAI",
    "RESPONSES",
    "RESPONSES_SOCKET",
    "ResponsesSession",
    "OpenAIChatParser",
    "OpenAIEmbeddingsParser",
    "OpenAIResponsesParser",
    "openai_apis",
    "openai_media_routes",
    "openai_routes",
    "request_stream_usage",
    "web_search_calls",
]

# --- usage parsers --------------------------------------------------------------------

def _openai_usage(u: Any) -> TokenUsage | None:
    """Chat/completions usage: prompt_tokens already includes cached tokens,
    completion_tokens already includes reasoning tokens."""
    if not isinstance(u, dict):
        return None
    prompt = count(u.get("prompt_tokens"))
    completion = count(u.get("completion_tokens"))
    if prompt is None and completion is None:
        total = count(u.get("total_tokens"))
        if total is None:
            return None
        prompt = total  # embeddings-like shape: no split reported
    prompt_details, completion_details = u.get("prompt_tokens_details"), u.get("completion_tokens_details")
    return TokenUsage(
        input_tokens=prompt or 0,
        cache_read_tokens=count_at(prompt_details, "cached_tokens"),
        # some OpenAI-compatible gateways report cache writes here, inside prompt_tokens
        cache_write_tokens=count_at(prompt_details, "cache_write_tokens"),
        output_tokens=completion or 0,
        reasoning_tokens=count_at(completion_details, "reasoning_tokens"),
    )


@dataclass(frozen=True, slots=True)
class Dialect:
    """How an OpenAI-compatible provider's replies differ from OpenAI's.

    `usage_of`: the genai-prices provider whose usage extractors read the replies' usage
    (providers/genai_usage.py: xAI's reasoning tokens outside `completion_tokens`,
    Perplexity's citation tokens and searches); None reads it as OpenAI's.
    `reports_cost`: the reply states what the call was charged (OpenRouter's `usage.cost`),
    and that figure is the call's cost.
    """

    usage_of: str | None = None
    reports_cost: bool = False


OPENAI_DIALECT = Dialect()


class _OpenAIStyleParser(UsageParser):
    """What OpenAI's parsers share: a usage read in the provider's dialect, and the cost a
    reply may state."""

    def __init__(self, read_usage: UsageReader | None = None, reports_cost: bool = False) -> None:
        super().__init__()
        self._read_usage = read_usage
        self._reports_cost = reports_cost

    def _usage_of(self, raw: Any, openai_reading) -> TokenUsage | None:
        """`raw` read as the provider's dialect says, else as OpenAI's; the cost it states
        taken too where the provider reports one."""
        if self._reports_cost:
            self._take_cost(raw)
        if self._read_usage is not None:
            usage = self._read_usage(raw)
            if usage is not None:
                return usage
        return openai_reading(raw)

    def _take_cost(self, raw: Any) -> None:
        """OpenRouter's `usage.cost` (USD credits charged); on a bring-your-own-key call the
        upstream provider bills that key `cost_details.upstream_inference_cost` besides,
        which is spend too."""
        if not isinstance(raw, dict) or raw.get("cost") is None:
            return
        nanos = usd_nanos(raw["cost"])
        if nanos is None:
            self.note_error("unreadable usage.cost: priced from the usage instead")
            return
        if raw.get("is_byok") is True:
            nanos += usd_nanos(get_path(raw, "cost_details", "upstream_inference_cost")) or 0
        self.reported_cost_nanos = nanos


# A delta with only these (nearly every chunk of a chat stream) is measured by its content alone.
_TEXT_ONLY_DELTA = frozenset({"role", "content"})


def _chat_delta_chars(delta: Any) -> int:
    if not isinstance(delta, dict):
        return 0
    if delta.keys() <= _TEXT_ONLY_DELTA:
        return slen(delta.get("content"))
    chars = (
        slen(delta.get("content"))
        + slen(delta.get("refusal"))
        + slen(delta.get("reasoning_content"))  # DeepSeek, vLLM
        + slen(delta.get("reasoning"))  # OpenRouter, Ollama
    )
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            fn = get_path(call, "function")
            chars += slen(get_path(fn, "name")) + slen(get_path(fn, "arguments"))
    fn = delta.get("function_call")
    if isinstance(fn, dict):
        chars += slen(fn.get("name")) + slen(fn.get("arguments"))
    return chars


class OpenAIChatParser(_OpenAIStyleParser):
    """OpenAI chat/completions and legacy completions (also Azure, vLLM, Ollama, and the
    OpenAI-compatible providers in their dialects).

    A stream reports usage only when `stream_options.include_usage` was set, in
    a last chunk with `choices: []`, followed by `data: [DONE]`.
    """

    def __init__(self, legacy_completions: bool = False, read_usage: UsageReader | None = None,
                 reports_cost: bool = False) -> None:
        super().__init__(read_usage, reports_cost)
        self._legacy = legacy_completions
        self._usage: TokenUsage | None = None

    def _on_body(self, obj: Any) -> None:
        self._take_model(obj.get("model"))
        self._take_tier(obj.get("service_tier"))
        choices = obj.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if self._legacy:
                    self.output_chars += slen(get_path(choice, "text"))
                else:
                    self.output_chars += _chat_delta_chars(get_path(choice, "message"))
        usage = self._usage_of(obj.get("usage"), _openai_usage)
        if usage is None:
            self.note_error("no usage in response body")
            return
        self._usage = usage
        self.complete = True

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        if self.model is None:  # (asked of every chunk: the first that names it decides)
            self._take_model(obj.get("model"))
        if (tier := obj.get("service_tier")) is not None:
            self._take_tier(tier)
        choices = obj.get("choices")
        finished = False
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                if self._legacy:
                    self.output_chars += slen(choice.get("text"))
                else:
                    self.output_chars += _chat_delta_chars(choice.get("delta"))
                if choice.get("finish_reason"):
                    finished = True
        raw = obj.get("usage")
        if raw is None and "x_groq" in obj:  # Groq: a stream's last chunk carries it there unless usage was asked for
            raw = get_path(obj, "x_groq", "usage")
        if raw is None:
            return
        usage = self._usage_of(raw, _openai_usage)
        if usage is None:
            self.note_error("unexpected usage shape in stream event")
            return
        self._usage = usage
        no_choices = not choices
        self.last_event_usage_only = no_choices
        if no_choices or finished:
            self.complete = True

    def _on_done(self) -> None:
        # Whatever usage came before [DONE] was the last the provider will send.
        if self._usage is not None:
            self.complete = True

    def is_usage_only_event(self, data: bytes | str) -> bool:
        """The trailing chunk with usage and no choices, which spendgate asks for
        on the client's behalf and may hide from clients that index choices[0]."""
        if data is self.last_event:
            return self.last_event_usage_only
        if is_done(data):
            return False
        try:
            obj = jsontext.loads(data)
        except JSON_ERRORS:
            return False
        return (
            isinstance(obj, dict)
            and not obj.get("choices")
            and isinstance(obj.get("usage"), dict)
        )


def _embeddings_usage(u: Any) -> TokenUsage | None:
    tokens = count(get_path(u, "prompt_tokens"))
    if tokens is None:
        tokens = count(get_path(u, "total_tokens"))
    return None if tokens is None else TokenUsage(input_tokens=tokens)


class OpenAIEmbeddingsParser(_OpenAIStyleParser):
    """Embeddings: `usage.prompt_tokens`, no output."""

    def __init__(self, read_usage: UsageReader | None = None, reports_cost: bool = False) -> None:
        super().__init__(read_usage, reports_cost)

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        self._take_model(obj.get("model"))
        usage = self._usage_of(obj.get("usage"), _embeddings_usage)
        if usage is None:
            self.note_error("no usage in response body")
            return
        self._usage = usage
        self.complete = True


_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _responses_usage(u: Any) -> TokenUsage | None:
    if not isinstance(u, dict):
        return None
    inp = count(u.get("input_tokens"))
    out = count(u.get("output_tokens"))
    if inp is None and out is None:
        return None
    return TokenUsage(
        input_tokens=inp or 0,
        cache_read_tokens=count_at(u, "input_tokens_details", "cached_tokens"),
        cache_write_tokens=count_at(u, "input_tokens_details", "cache_write_tokens"),
        output_tokens=out or 0,
        reasoning_tokens=count_at(u, "output_tokens_details", "reasoning_tokens"),
    )


def _responses_output_chars(output: Any) -> int:
    chars = 0
    if not isinstance(output, list):
        return 0
    for item in output:
        if not isinstance(item, dict):
            continue
        chars += slen(item.get("arguments")) + slen(item.get("input"))
        for key in ("content", "summary"):
            parts = item.get(key)
            if isinstance(parts, list):
                for part in parts:
                    chars += slen(get_path(part, "text")) + slen(get_path(part, "refusal"))
    return chars


def web_search_calls(output: Any) -> int | None:
    """How many `web_search_call` items a Responses output holds (None: no output list).

    Each is a billed tool call (OpenAI's pricing page: web search per 1,000 calls), whatever
    its action (`search`, `open_page`, `find_in_page`: the page does not tell them apart)."""
    if not isinstance(output, list):
        return None
    return sum(1 for item in output if isinstance(item, dict) and item.get("type") == "web_search_call")


#: A Responses reply of a call still running (`background: true`): its usage comes when it
#: completes, from `GET /v1/responses/{id}`, which spendgate does not follow. A streamed
#: background response the client leaves early runs on as well (and is billed whole).
_RESPONSES_PENDING = ("queued", "in_progress")
BACKGROUND_BILLED_LATER = ("a background response: its usage is reported only when it completes "
                           "(GET /v1/responses/{id}); charged the most it could cost")


class OpenAIResponsesParser(_OpenAIStyleParser):
    """OpenAI Responses API: usage at `usage` in a body, or at `response.usage`
    in the terminal stream event (completed, incomplete or failed). Web search calls in
    the output are billed per call: `units["web_searches"]`."""

    def __init__(self, read_usage: UsageReader | None = None, reports_cost: bool = False) -> None:
        super().__init__(read_usage, reports_cost)
        self._searches = 0  # web_search_call items seen (the final output's count wins)

    @property
    def usage(self) -> TokenUsage | None:
        usage = self._usage
        if not self._searches:
            return usage
        return replace(usage or TokenUsage(), units={**(usage.units if usage else {}), "web_searches": self._searches})

    def _take_output(self, output: Any) -> None:
        self.output_chars += _responses_output_chars(output)
        searches = web_search_calls(output)
        if searches is not None:
            self._searches = searches

    def _on_body(self, obj: Any) -> None:
        self._take_model(obj.get("model"))
        self._take_tier(obj.get("service_tier"))
        self._take_output(obj.get("output"))
        usage = self._usage_of(obj.get("usage"), _responses_usage)
        if usage is None and obj.get("status") in _RESPONSES_PENDING:
            self.billed_later = BACKGROUND_BILLED_LATER
            self.ended = True
            return
        if usage is None:
            self.note_error("no usage in response body")
            return
        self._usage = usage
        self.complete = True

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        etype = obj.get("type")
        if not isinstance(etype, str):
            etype = event or ""
        if etype.endswith(".delta"):
            if "audio" not in etype:  # audio deltas are base64, not text
                self.output_chars += slen(obj.get("delta"))
            return
        if etype == "response.output_item.done":
            if get_path(obj, "item", "type") == "web_search_call":
                self._searches += 1
            return
        response = obj.get("response")
        if not isinstance(response, dict):
            return
        model = response.get("model")
        if isinstance(model, str) and model:
            self.model = model
        if response.get("background") is True:  # it runs on (and is billed whole) if the client leaves
            self.billed_later = BACKGROUND_BILLED_LATER
        self._take_tier(response.get("service_tier"))
        if etype in _RESPONSES_TERMINAL:
            searches = web_search_calls(response.get("output"))
            if searches:
                self._searches = searches
        usage = self._usage_of(response.get("usage"), _responses_usage)
        if usage is not None:
            self._usage = usage
        if etype in _RESPONSES_TERMINAL:
            self.ended = True
            if usage is not None:
                self.complete = True


# --- the operations -------------------------------------------------------------------


def _wants_usage(body: dict[str, Any]) -> bool:
    opts = body.get("stream_options")
    return isinstance(opts, dict) and opts.get("include_usage") is True


class _OpenAIStyleApi(Api):
    """An OpenAI operation as one provider speaks it (`dialect`): OpenAI's own, or an
    OpenAI-compatible provider's."""

    def __init__(self, dialect: Dialect = OPENAI_DIALECT) -> None:
        self.dialect = dialect
        self._read_usage = reader(dialect.usage_of, self.kind)
        if dialect.reports_cost:
            self.meters = f"{type(self).meters}; the charged cost the reply states (`usage.cost`)"

    def _parser_options(self) -> dict[str, Any]:
        return {"read_usage": self._read_usage, "reports_cost": self.dialect.reports_cost}


class ChatApi(_OpenAIStyleApi):
    """`/chat/completions`: output capped by `max_completion_tokens` (or the older
    `max_tokens`) for each of `n` choices."""

    kind = EndpointKind.CHAT
    meters = "input, cached, output and reasoning tokens; the served `service_tier`"

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        return read_json_request(endpoint, body, self._max_output, stream_usage_requested=_wants_usage)

    def wants_stream_usage(self, request: CallRequest) -> bool:
        return request.stream and not request.stream_usage_requested and request.parse_error is None

    @staticmethod
    def _max_output(body: dict[str, Any]) -> int | None:
        cap = count(body.get("max_completion_tokens"))
        if cap is None:
            cap = count(body.get("max_tokens"))
        return None if cap is None else cap * choices(body.get("n"))

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return OpenAIChatParser(**self._parser_options())


class CompletionsApi(ChatApi):
    """Legacy `/completions`: `best_of` candidates are generated (and billed) server-side."""

    kind = EndpointKind.COMPLETIONS
    meters = "input and output tokens"

    @staticmethod
    def _max_output(body: dict[str, Any]) -> int | None:
        cap = count(body.get("max_tokens"))
        n_ = max(choices(body.get("n")), choices(body.get("best_of")))
        return None if cap is None else cap * n_

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return OpenAIChatParser(legacy_completions=True, **self._parser_options())


class ResponsesApi(_OpenAIStyleApi):
    """`/responses`: output capped by `max_output_tokens`; usage in the body or in the
    terminal stream event."""

    kind = EndpointKind.RESPONSES
    meters = "input, cached, output and reasoning tokens; `web_search_call` items as web searches"

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        return read_json_request(endpoint, body, lambda b: count(b.get("max_output_tokens")))

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return OpenAIResponsesParser(**self._parser_options())


class EmbeddingsApi(_OpenAIStyleApi):
    """`/embeddings`: input tokens only."""

    kind = EndpointKind.EMBEDDINGS
    meters = "input tokens"

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        return read_json_request(endpoint, body, lambda b: 0)

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return OpenAIEmbeddingsParser(**self._parser_options())


CHAT, COMPLETIONS, RESPONSES, EMBEDDINGS = ChatApi(), CompletionsApi(), ResponsesApi(), EmbeddingsApi()


# --- Responses API WebSocket mode ---------------------------------------------------
# `GET /v1/responses` upgraded (Codex CLI's default transport; xAI offers it too): the
# client sends `response.create` with the body of a create call (no `stream`);
# `generate: false` warms the socket up (metered, holds nothing); `stream_id` names a lane
# (a lane's turns run in order, lanes in parallel, every event echoes its lane). Server
# events are the SSE stream's events without framing: each turn's usage is read by
# `OpenAIResponsesParser`. Input bound: the turn's body plus the context of its
# `previous_response_id` (what that response reported, if it ran on this socket).


#: The context of a `previous_response_id` this socket never saw: assumed as large as any
#: model's (the reservation caps it at the model's context window).
UNKNOWN_CONTEXT_TOKENS = 1_000_000


class ResponsesSession(SocketSession):
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.lanes = Lanes()
        self.context: dict[str, int] = {}  # response id -> its input + output tokens (what a continuation re-reads)

    def client(self, data: bytes) -> Turn | None:
        if b'"response.create"' not in data:
            return None
        body = load_message(data)
        if body is None or body.get("type") != "response.create":
            return None
        previous = body.get("previous_response_id")
        context = 0
        if isinstance(previous, str) and previous:
            context = self.context.get(previous, UNKNOWN_CONTEXT_TOKENS)
        model = body.get("model")
        lane = body.get("stream_id")
        request = CallRequest(
            model=model if isinstance(model, str) and model else None,
            stream=True,
            max_output_tokens=count(body.get("max_output_tokens")),
            input_bytes=len(data) + context,
            service_tier=body.get("service_tier") if isinstance(body.get("service_tier"), str) else None,
        )
        warmup = body.get("generate") is False
        return Turn(request, OpenAIResponsesParser(), lane=lane if isinstance(lane, str) else "", hold=not warmup)

    def begin(self, turn: Turn) -> None:
        self.lanes.add(turn)

    def server(self, data: bytes) -> list[Turn]:
        head = data[:160]
        if b'.delta"' in head and b'"response.output_text.delta"' not in head:
            return self._delta(data)  # audio, reasoning and argument deltas: text only counts
        obj = load_message(data)
        if obj is None:
            return []
        etype = obj.get("type")
        lane = obj.get("stream_id") if isinstance(obj.get("stream_id"), str) else ""
        turn = self.lanes.find(lane, response_id(obj))
        if turn is None:
            return []
        turn.parser.feed_decoded(obj)
        if etype == "error":  # the provider refused the turn: no usage, not billed
            status = count(obj.get("status"))
            turn.status = status or 400
            self.lanes.end(turn)
            return [turn]
        if etype in _RESPONSES_TERMINAL:
            usage = turn.parser.usage
            if turn.response_id and usage is not None:
                self.context[turn.response_id] = usage.input_tokens + usage.output_tokens
            self.lanes.end(turn)
            return [turn]
        return []

    def _delta(self, data: bytes) -> list[Turn]:
        obj = load_message(data)
        if obj is not None:
            lane = obj.get("stream_id") if isinstance(obj.get("stream_id"), str) else ""
            turn = self.lanes.find(lane, response_id(obj))
            if turn is not None:
                turn.parser.feed_decoded(obj)
        return []

    def open_turns(self) -> list[Turn]:
        return self.lanes.open()

    def refusal_event(self, status: int, type_: str, message: str, client_data: bytes) -> bytes:
        event = openai_error_event(status, type_, message)
        body = load_message(client_data) or {}
        if isinstance(body.get("stream_id"), str):
            event["stream_id"] = body["stream_id"]
        return dumps(event)


class ResponsesSocketApi(SocketApi):
    """`GET /v1/responses` upgraded: one call per `response.create` turn."""

    kind = EndpointKind.RESPONSES
    meters = ("each `response.create` turn: input, cached, output and reasoning tokens, as over HTTP; "
              "`generate: false` warm-ups hold nothing")

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return OpenAIResponsesParser()

    def new_session(self, endpoint: Endpoint, path: str, default_max_output_tokens: int) -> SocketSession:
        return ResponsesSession(endpoint)


RESPONSES_SOCKET = ResponsesSocketApi()



def request_stream_usage(body: bytes, streams: bool = False) -> bytes:
    """The body with `stream_options.include_usage = true` merged in.

    Returned unchanged if it is not a JSON object with `"stream": true` (OpenAI
    rejects `stream_options` on non-streamed calls) or already asks for usage.
    When the client sent no `stream_options`, the member is spliced in after the
    opening brace so the rest of the body (possibly megabytes of images) keeps
    its exact bytes; otherwise the body is re-serialised. `streams`: the caller has
    read the body already, a JSON object with `"stream": true` — it is not decoded
    again unless `stream_options` appears in it.
    """
    if streams and b"stream_options" not in body and (spliced := _splice_stream_usage(body)) is not None:
        return spliced
    obj, error = load_object(body)
    if obj is None or obj.get("stream") is not True:
        return body
    opts = obj.get("stream_options")
    if isinstance(opts, dict) and opts.get("include_usage") is True:
        return body
    if "stream_options" not in obj and (spliced := _splice_stream_usage(body)) is not None:
        return spliced
    with contextlib.suppress(ValueError, RecursionError):
        obj = json.loads(body)  # again, exactly: forwarded re-serialised, an integer past 64 bits stays one
        opts = obj.get("stream_options")
    merged = dict(opts) if isinstance(opts, dict) else {}
    merged["include_usage"] = True
    obj["stream_options"] = merged
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape (half an emoji, `"\ud83d"`): kept escaped, as sent
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def _splice_stream_usage(body: bytes) -> bytes | None:
    """`stream_options` spliced in after the opening brace of a JSON object that has at
    least "stream" (so a comma always follows); None if the body does not open one."""
    start = body.find(b"{")
    if start >= 0 and body[:start].strip() in (b"", b"\xef\xbb\xbf"):  # UTF-8, maybe with BOM
        return body[: start + 1] + b'"stream_options":{"include_usage":true},' + body[start + 1 :]
    return None


# --- the provider ---------------------------------------------------------------------


def openai_apis(dialect: Dialect) -> tuple[ChatApi, ResponsesApi, CompletionsApi, EmbeddingsApi]:
    """The OpenAI operations as a provider of `dialect` speaks them (OpenAI's own: the singletons)."""
    if dialect == OPENAI_DIALECT:
        return CHAT, RESPONSES, COMPLETIONS, EMBEDDINGS
    return ChatApi(dialect), ResponsesApi(dialect), CompletionsApi(dialect), EmbeddingsApi(dialect)


def openai_routes(base: str, *, responses: bool = True, completions: bool = True,
                  embeddings: bool = True, responses_socket: bool = False,
                  apis: tuple[Api, Api, Api, Api] | None = None) -> tuple[Route, ...]:
    """The OpenAI-style endpoints under `base` (`/v1`, `/openai/v1`, `/inference/v1`...):
    what an OpenAI-compatible provider is, as far as recognition goes. `responses_socket`:
    it serves the Responses API's WebSocket mode too. `apis`: the operations in a provider's
    dialect (`openai_apis`), OpenAI's by default."""
    chat, responses_api, completions_api, embeddings_api = apis or openai_apis(OPENAI_DIALECT)
    routes = [Route(f"{base}/chat/completions", chat)]
    if responses:
        routes.append(Route(f"{base}/responses", responses_api))
    if responses_socket:
        routes.append(Route(f"{base}/responses", RESPONSES_SOCKET, method="GET"))
    if completions:
        routes.append(Route(f"{base}/completions", completions_api))
    if embeddings:
        routes.append(Route(f"{base}/embeddings", embeddings_api))
    return tuple(routes)


def openai_media_routes(base: str) -> tuple[Route, ...]:
    """OpenAI's images and audio endpoints under `base` (providers/openai_images.py,
    openai_audio.py): speech replies are audio bytes, passed through as they arrive."""
    return (
        Route(f"{base}/images/generations", IMAGES_GENERATE),
        Route(f"{base}/images/edits", IMAGES_EDIT),
        Route(f"{base}/images/variations", IMAGES_VARIATION),
        Route(f"{base}/audio/transcriptions", TRANSCRIPTIONS),
        Route(f"{base}/audio/translations", TRANSLATIONS),
        Route(f"{base}/audio/speech", SPEECH, framing=Framing.RAW, note="audio passed through as it arrives"),
    )


OPENAI = Provider(
    "openai",
    title="OpenAI",
    price_provider="openai",
    hosts=("api.openai.com",),
    host_suffixes=(".api.openai.com",),  # data residency: eu., us., jp.api.openai.com...
    routes=openai_routes("/v1", responses_socket=True) + openai_media_routes("/v1") + (
        Route("/v1/realtime", REALTIME, method="GET", note="the model in `?model=`"),
        Route("/v1/moderations", FREE, note="free"),
        Route("/v1/responses/input_tokens", FREE, note="token count"),
        Route("/v1/responses/{id}/cancel", FREE),
        Route("/v1/chat/completions/{id}", FREE, note="updates a stored completion's metadata"),
        Route("/v1/files", FREE, note="file upload"),
    ),
)
