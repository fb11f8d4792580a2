"""What a recognised LLM request is: provider, wire style and endpoint kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Style = Literal["openai", "anthropic", "gemini"]
Kind = Literal["chat", "responses", "completions", "embeddings", "messages", "generate"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    provider: str  # "openai", "azure", "anthropic", "google", or a custom provider's name
    style: Style  # the wire format of bodies and streams
    kind: Kind
    price_provider: str | None  # genai-prices provider id used for pricing (None: custom, no id)
    url_model: str | None = None  # model named in the URL (Gemini, Azure deployment)
    url_streaming: bool = False  # the URL itself asks for a stream (Gemini streamGenerateContent)
    sse: bool = True  # a streamed response is SSE (False: Gemini's JSON array without alt=sse)


@dataclass(frozen=True, slots=True)
class CallRequest:
    """What the request body says about the call, read before forwarding."""

    model: str | None
    stream: bool
    max_output_tokens: int | None  # max_tokens / max_completion_tokens / maxOutputTokens, if set
    input_bytes: int  # size of the request body: an upper bound on input tokens
    stream_usage_requested: bool = False  # OpenAI stream_options.include_usage already set by the client
    parse_error: str | None = None  # why the body could not be read (the call is still metered)
