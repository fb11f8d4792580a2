"""Cohere: its v2 API (`/v2/chat`, `/v2/embed`, `/v2/rerank`) on `api.cohere.com` and
`api.cohere.ai` (the hosts genai-prices' `api_pattern` names).

Calls are billed on `billed_units`, what Cohere charges, never on `tokens`, which include
tokens Cohere adds itself and does not bill. Chat reports them at `usage.billed_units`,
in a stream only in the last event (`message-end`, at `delta.usage`); embed and rerank at
`meta.billed_units`: `input_tokens`, and `search_units` for rerank (genai-prices' unit
`rerank_searches`). Counts are JSON numbers the SDK types as floats (`50.0`). No answer
names its model: the request's prices the call.

A chat stream is SSE with `event:` names (the SDK reads the JSON `type`, which is what
counts here too), ending with `data: [DONE]`. `/v1/embed` and `/v1/rerank` answer with the
same `meta.billed_units`; `/v1/chat` streams JSON lines rather than SSE and is left
unmetered (recorded, not priced); `/v1/tokenize` and `/v1/detokenize` are free.
"""

from __future__ import annotations

from typing import Any

from core.usage import TokenUsage
from core.vocab import EndpointKind
from providers.base import FREE, Api, CallRequest, Endpoint, Provider, Route
from providers.genai_hosts import hosts_of
from providers.parsing import UsageParser, get_path, slen
from providers.reading import read_json_request
from providers.values import billed_count, count

__all__ = ["CHAT", "COHERE", "EMBED", "RERANK", "CohereChatParser", "CohereEmbedParser", "CohereRerankParser"]


def _message_chars(message: Any) -> int:
    """Generated text in a chat message, whole (`content` a list) or a stream delta's part
    (`content` one object): text, thinking, the tool plan and tool calls."""
    if not isinstance(message, dict):
        return 0
    chars = slen(message.get("tool_plan"))
    content = message.get("content")
    for part in content if isinstance(content, list) else (content,):
        chars += slen(get_path(part, "text")) + slen(get_path(part, "thinking"))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else (calls,):
        fn = get_path(call, "function")
        chars += slen(get_path(fn, "name")) + slen(get_path(fn, "arguments"))
    return chars


class CohereChatParser(UsageParser):
    """`/v2/chat`: `usage.billed_units` in a body, `delta.usage.billed_units` in a stream's
    `message-end`."""

    _TEXT_EVENTS = frozenset({"content-start", "content-delta", "tool-plan-delta", "tool-call-start",
                              "tool-call-delta"})

    def _take_usage(self, usage: Any) -> bool:
        billed = get_path(usage, "billed_units")
        inp, out = billed_count(get_path(billed, "input_tokens")), billed_count(get_path(billed, "output_tokens"))
        if inp is None and out is None:
            return False
        self._usage = TokenUsage(input_tokens=inp or 0, output_tokens=out or 0)
        return True

    def _on_body(self, obj: Any) -> None:
        self.output_chars += _message_chars(obj.get("message"))
        if not self._take_usage(obj.get("usage")):
            self.note_error("no usage in response body")
            return
        self.complete = True

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        etype = obj.get("type") or event
        delta = obj.get("delta")
        if etype in self._TEXT_EVENTS:
            self.output_chars += _message_chars(get_path(delta, "message"))
        elif etype == "message-end":
            self.ended = True
            if self._take_usage(get_path(delta, "usage")):
                self.complete = True
            else:
                self.note_error("no usage in message-end event")


class _MetaParser(UsageParser):
    """Embed and rerank: `meta.billed_units`, read by `_billed`."""

    def _on_body(self, obj: Any) -> None:
        billed = get_path(obj, "meta", "billed_units")
        usage = self._billed(billed) if isinstance(billed, dict) else None
        if usage is None:
            self.note_error("no usage in response body")
            return
        self._usage = usage
        self.complete = True

    def _billed(self, billed: dict[str, Any]) -> TokenUsage | None:
        raise NotImplementedError


class CohereEmbedParser(_MetaParser):
    """`/v2/embed`: billed `input_tokens` (or, without it, text plus image tokens)."""

    def _billed(self, billed: dict[str, Any]) -> TokenUsage | None:
        tokens = billed_count(billed.get("input_tokens"))
        if tokens is None:
            parts = [billed_count(billed.get(k)) for k in ("text_tokens", "image_tokens")]
            if parts == [None, None]:
                return None
            tokens = sum(p or 0 for p in parts)
        return TokenUsage(input_tokens=tokens)


class CohereRerankParser(_MetaParser):
    """`/v2/rerank`: billed `search_units` (a query over up to 100 documents), as
    genai-prices' `rerank_searches`."""

    def _billed(self, billed: dict[str, Any]) -> TokenUsage | None:
        searches = billed_count(billed.get("search_units"))
        return None if searches is None else TokenUsage(units={"rerank_searches": searches})


class CohereChatApi(Api):
    """`/v2/chat`: output capped by `max_tokens`; `"stream": true` streams SSE."""

    kind = EndpointKind.CHAT
    meters = "billed input and output tokens (`billed_units`)"

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        return read_json_request(endpoint, body, lambda b: count(b.get("max_tokens")))

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return CohereChatParser()


class CohereEmbedApi(Api):
    """`/v2/embed`: input tokens only."""

    kind = EndpointKind.EMBEDDINGS
    meters = "billed input tokens (`meta.billed_units`)"

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        return read_json_request(endpoint, body, lambda b: 0)

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return CohereEmbedParser()


class CohereRerankApi(CohereEmbedApi):
    """`/v2/rerank`: search units, no tokens (its request reads as embed's: no output)."""

    kind = EndpointKind.RERANK
    meters = "billed search units (`rerank_searches`; genai-prices has no rerank price: unpriced)"

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return CohereRerankParser()


CHAT, EMBED, RERANK = CohereChatApi(), CohereEmbedApi(), CohereRerankApi()

COHERE = Provider(
    "cohere",
    title="Cohere",
    price_provider="cohere",
    hosts=hosts_of("cohere"),
    notes=(
        "Responses name no model: the request's `model` prices the call.",
        "Rerank is recorded with its search units; genai-prices has no rerank price, so its cost is "
        "unknown (NULL, status `unpriced`) and reserves nothing (`general_settings.unpriced_models: "
        "block` refuses it).",
        "`/v1/chat` (legacy; it streams JSON lines) is not metered: recorded as `unmetered`.",
        "The cohere SDK retries a 429 twice, waiting `retry-after` (at most 60 s) each time, whatever "
        "`x-should-retry` says: a budget refusal reaches it after about two minutes unless the client "
        "is built with `max_retries=0`.",
    ),
    routes=(
        Route("/v2/chat", CHAT),
        Route("/v2/embed", EMBED),
        Route("/v2/rerank", RERANK),
        Route("/v1/embed", EMBED),
        Route("/v1/rerank", RERANK),
        Route("/v1/tokenize", FREE, note="token count"),
        Route("/v1/detokenize", FREE, note="free"),
    ),
)
