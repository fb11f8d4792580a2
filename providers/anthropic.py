"""Anthropic: the Messages wire format (also Claude on Vertex AI and on Bedrock's
InvokeModel) and the Anthropic provider.

`input_tokens` excludes `cache_read_input_tokens` and `cache_creation_input_tokens`
(spendgate's `TokenUsage.input_tokens` includes them). A stream reports input and cache
counts in `message_start` and a cumulative `output_tokens` in `message_delta`.
"""

from __future__ import annotations

import json
from typing import Any

from core.usage import TokenUsage
from core.vocab import EndpointKind
from providers.base import (
    FREE,
    Api,
    CallRequest,
    Credential,
    Endpoint,
    KeyPlace,
    Provider,
    Route,
)
from providers.parsing import UsageParser, get_path, slen
from providers.reading import read_json_request
from providers.values import count

__all__ = ["ANTHROPIC", "MESSAGES", "AnthropicMessagesParser", "MessagesApi"]

_ANTHROPIC_KEYS = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
)


class AnthropicMessagesParser(UsageParser):
    """Anthropic Messages: `input_tokens` excludes cache reads and writes.

    A stream reports input and cache counts in `message_start`, and a
    cumulative `output_tokens` (sometimes with updated input/cache counts) in
    `message_delta`: the latest value of each field wins, nothing is summed.
    """

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[str, int] = {}
        self._thinking = 0
        self._units: dict[str, int] = {}
        self._speed: str | None = None

    @property
    def usage(self) -> TokenUsage | None:
        c = self._counts
        if not c:
            return None
        cache_read = c.get("cache_read_input_tokens", 0)
        cache_write = c.get("cache_creation_input_tokens", 0)
        units = {name: value for name, value in self._units.items() if value}  # a copy: it grows
        if units.get("cache_write_1h_tokens", 0) > cache_write:  # a breakdown never exceeds its total
            units["cache_write_1h_tokens"] = cache_write
        return TokenUsage(
            input_tokens=c.get("input_tokens", 0) + cache_read + cache_write,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            output_tokens=c.get("output_tokens", 0),
            reasoning_tokens=self._thinking,
            units=units,
        )

    @property
    def price_context(self) -> dict[str, str] | None:
        """The served tier, and `speed: fast` (fast mode has prices of its own)."""
        context = super().price_context
        if self._speed:
            context = {**(context or {}), "speed": self._speed}
        return context

    def _merge(self, u: Any) -> bool:
        if not isinstance(u, dict):
            return False
        seen = False
        for key in _ANTHROPIC_KEYS:
            v = count(u.get(key))
            if v is not None:
                self._counts[key] = v
                seen = True
        thinking = count(get_path(u, "output_tokens_details", "thinking_tokens"))
        if thinking is not None:
            self._thinking = thinking
        # Beyond tokens: web searches (billed per 1,000) and 1-hour cache writes (2x input,
        # against 1.25x for 5-minute ones): under genai-prices' unit names.
        for unit, value in (
            ("web_searches", get_path(u, "server_tool_use", "web_search_requests")),
            ("cache_write_1h_tokens", get_path(u, "cache_creation", "ephemeral_1h_input_tokens")),
        ):
            v = count(value)
            if v is not None:
                self._units[unit] = v
        self._take_tier(u.get("service_tier"))
        speed = u.get("speed")
        if isinstance(speed, str) and speed and speed != "standard":
            self._speed = speed
        return seen

    def _on_body(self, obj: Any) -> None:
        self._take_model(obj.get("model"))
        content = obj.get("content")
        if isinstance(content, list):
            for block in content:
                self.output_chars += self._block_chars(block)
        if not self._merge(obj.get("usage")):
            self.note_error("no usage in response body")
            return
        self.complete = True

    @staticmethod
    def _block_chars(block: Any) -> int:
        if not isinstance(block, dict):
            return 0
        chars = slen(block.get("text")) + slen(block.get("thinking"))
        if isinstance(block.get("input"), dict) and block["input"]:
            chars += len(json.dumps(block["input"]))
        return chars

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        etype = obj.get("type") or event
        if etype == "content_block_delta":
            delta = obj.get("delta")
            if isinstance(delta, dict):
                self.output_chars += (
                    slen(delta.get("text"))
                    + slen(delta.get("partial_json"))
                    + slen(delta.get("thinking"))
                )
        elif etype == "message_start":
            message = obj.get("message")
            if isinstance(message, dict):
                self._take_model(message.get("model"))
                self._merge(message.get("usage"))
        elif etype == "message_delta":
            if self._merge(obj.get("usage")):
                self.complete = True
        elif etype == "content_block_start":
            self.output_chars += self._block_chars(obj.get("content_block"))
        elif etype == "message_stop":
            self.ended = True


class MessagesApi(Api):
    """`/v1/messages`: output capped by `max_tokens` (required by the API)."""

    kind = EndpointKind.MESSAGES
    meters = "input, cache read, cache write (1-hour writes apart) and output tokens; web searches"

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        return read_json_request(endpoint, body, lambda b: count(b.get("max_tokens")))

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return AnthropicMessagesParser()


MESSAGES = MessagesApi()

#: `x-api-key` for API keys; `Authorization: Bearer` for OAuth tokens (Claude Code's login).
ANTHROPIC_CREDENTIAL = Credential((KeyPlace.X_API_KEY, KeyPlace.BEARER), KeyPlace.X_API_KEY)

ANTHROPIC = Provider(
    "anthropic",
    title="Anthropic",
    price_provider="anthropic",
    hosts=("api.anthropic.com",),
    credential=ANTHROPIC_CREDENTIAL,
    routes=(
        Route("/v1/messages", MESSAGES),
        Route("/v1/messages/count_tokens", FREE, note="token count"),
    ),
)
