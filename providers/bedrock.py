"""AWS Bedrock runtime: Converse and InvokeModel, whole or streamed, on
`bedrock-runtime.<region>.amazonaws.com` (and its FIPS twin `bedrock-runtime-fips.`).

The model is named in the URL only, percent-encoded by the SDKs (`…-v1%3A0`, an ARN's
`/` as `%2F`), as a model id, a cross-region inference profile (`us.`, `eu.`, `apac.`,
`global.`…) or an ARN; `bedrock_model` turns it into what genai-prices' `aws` provider
prices. It wins over the model an Anthropic body reports (`claude-sonnet-4-5-20250929`),
which would lose the `global.` profile's lower price.

- Converse reports `usage.inputTokens` *without* cache reads and writes (added back:
  `TokenUsage.input_tokens` counts every input token); ConverseStream only in its last
  event, `metadata`.
- InvokeModel's bodies are the model's own: Anthropic's Messages shape is read by the
  Anthropic parser; Nova, Llama, Titan and OpenAI-shaped bodies by their counts; anything
  else from the `x-amzn-bedrock-input-token-count` / `-output-token-count` headers.
  InvokeModelWithResponseStream's `chunk` events carry the model's own stream events,
  base64-encoded; the last one adds `amazon-bedrock-invocationMetrics`.
- Streams are binary event streams (providers/framing/aws_eventstream.py).
- Requests are SigV4-signed: the caller is the access key id (`SigV4`); Bedrock API keys
  come as `Authorization: Bearer`. A virtual key (as either) is replaced by re-signing with
  `providers.bedrock.aws_access_key_id`/`aws_secret_access_key`, else by the Bedrock API
  key `providers.bedrock.api_key`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from core.usage import TokenUsage
from core.vocab import EndpointKind, Framing
from providers.anthropic import MESSAGES, AnthropicMessagesParser
from providers.base import (
    FREE,
    Api,
    CallRequest,
    Credential,
    Endpoint,
    KeyPlace,
    Provider,
    Route,
    SigV4,
)
from providers.framing.aws_eventstream import is_failure
from providers.parsing import UsageParser, get_path, slen
from providers.reading import read_json_request
from providers.values import count

__all__ = ["BEDROCK", "BEDROCK_MANTLE", "CONVERSE", "INVOKE", "ConverseParser", "InvokeParser", "bedrock_model"]

#: ARN resource types whose id is a model genai-prices can price.
_MODEL_RESOURCES = ("inference-profile", "foundation-model")


def bedrock_model(model: str) -> str:
    """The model a URL names, as pricing should see it: an inference profile's ARN gives its
    profile id (`us.anthropic.claude-…-v1:0`), a foundation model's ARN its model id; any
    other ARN (an application inference profile, a provisioned or custom model) names no
    model and stays as it is — priced by a `pricing:` entry, or by the model the reply names."""
    if not model.startswith("arn:"):
        return model
    parts = model.split(":", 5)  # arn:partition:service:region:account:type/id (the id may hold ':')
    if len(parts) == 6:
        kind, _, resource = parts[5].partition("/")
        if kind in _MODEL_RESOURCES and resource:
            return resource
    return model


def _names_a_model(model: str | None) -> bool:
    return model is not None and model != "" and not model.startswith("arn:")


def _bedrock_usage(counts: Mapping[str, int]) -> TokenUsage:
    """Usage from Bedrock's own counts, where input excludes cache reads and writes."""
    cache_read, cache_write = counts.get("cache_read", 0), counts.get("cache_write", 0)
    units = {"cache_write_1h_tokens": counts["cache_write_1h"]} if counts.get("cache_write_1h") else {}
    return TokenUsage(
        input_tokens=counts.get("input", 0) + cache_read + cache_write,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=counts.get("output", 0),
        **({"units": units} if units else {}),
    )


def _take(counts: dict[str, int], name: str, value: Any) -> bool:
    v = count(value)
    if v is None:
        return False
    counts[name] = v
    return True


def _read_counts(counts: dict[str, int], obj: Any, names: Mapping[str, tuple[str, ...]]) -> bool:
    """Fill `counts` from `obj`'s fields (`names`: our name → the provider's spellings);
    True when input or output was there."""
    if not isinstance(obj, dict):
        return False
    for ours, theirs in names.items():
        for name in theirs:
            if _take(counts, ours, obj.get(name)):
                break
    return "input" in counts or "output" in counts


# Converse / Nova usage (Nova's InvokeModel spells its cache counts `…TokenCount`).
_CONVERSE_NAMES = {
    "input": ("inputTokens",),
    "output": ("outputTokens",),
    "cache_read": ("cacheReadInputTokens", "cacheReadInputTokenCount"),
    "cache_write": ("cacheWriteInputTokens", "cacheWriteInputTokenCount"),
}
_METRICS_NAMES = {
    "input": ("inputTokenCount",),
    "output": ("outputTokenCount",),
    "cache_read": ("cacheReadInputTokenCount",),
    "cache_write": ("cacheWriteInputTokenCount",),
}
_HEADER_NAMES = {
    "input": "x-amzn-bedrock-input-token-count",
    "output": "x-amzn-bedrock-output-token-count",
    "cache_read": "x-amzn-bedrock-cache-read-input-token-count",
    "cache_write": "x-amzn-bedrock-cache-write-input-token-count",
}


def _converse_counts(usage: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    if not _read_counts(counts, usage, _CONVERSE_NAMES):
        return {}
    details = usage.get("cacheDetails")
    if isinstance(details, list):
        hour = sum(count(d.get("inputTokens")) or 0 for d in details if isinstance(d, dict) and d.get("ttl") == "1h")
        if hour:
            counts["cache_write_1h"] = hour
    return counts


def _content_chars(blocks: Any) -> int:
    """Generated characters in Converse content blocks (text, reasoning, tool input)."""
    if not isinstance(blocks, list):
        return 0
    chars = 0
    for block in blocks:
        if not isinstance(block, dict):
            continue
        chars += slen(block.get("text")) + slen(get_path(block, "reasoningContent", "reasoningText", "text"))
        tool_input = get_path(block, "toolUse", "input")
        if tool_input:
            chars += slen(tool_input) if isinstance(tool_input, str) else len(json.dumps(tool_input))
    return chars


def _stream_failure(parser: UsageParser, obj: Any, event: str) -> None:
    message = obj.get("message") if isinstance(obj, dict) else None
    parser.note_error(f"stream {event}" + (f": {message}" if isinstance(message, str) and message else ""))


class ConverseParser(UsageParser):
    """Converse's `usage`, or ConverseStream's last (`metadata`) event."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__()
        self.model = model
        self._counts: dict[str, int] = {}

    @property
    def usage(self) -> TokenUsage | None:
        return _bedrock_usage(self._counts) if self._counts else None

    def _on_body(self, obj: Any) -> None:
        self.output_chars += _content_chars(get_path(obj, "output", "message", "content"))
        self._counts = _converse_counts(obj.get("usage"))
        if not self._counts:
            self.note_error("no usage in response body")
            return
        self.complete = True

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        if is_failure(event):
            _stream_failure(self, obj, event)  # type: ignore[arg-type]
        elif event == "contentBlockDelta":
            delta = obj.get("delta")
            if isinstance(delta, dict):
                self.output_chars += _content_chars([delta]) + slen(get_path(delta, "reasoningContent", "text"))
        elif event == "messageStop":
            self.ended = True
        elif event == "metadata":
            counts = _converse_counts(obj.get("usage"))
            if counts:
                self._counts = counts
                self.complete = True


class InvokeParser(AnthropicMessagesParser):
    """InvokeModel's reply is the model's own body. Anthropic's Messages shape (body or
    stream events) is read by the Anthropic parser this extends, and wins; then another
    family's own counts (Nova, Llama, Titan, OpenAI-shaped bodies), the stream's
    `amazon-bedrock-invocationMetrics`, and last the `x-amzn-bedrock-*-token-count`
    response headers (they may disagree with an Anthropic body, which is the bill)."""

    def __init__(self, model: str | None = None) -> None:
        super().__init__()
        self.model = model
        self._family: dict[str, int] = {}
        self._metrics: dict[str, int] = {}
        self._headers: dict[str, int] = {}

    @property
    def usage(self) -> TokenUsage | None:
        anthropic = super().usage
        if anthropic is not None:
            return anthropic
        for counts in (self._family, self._metrics, self._headers):
            if counts:
                return _bedrock_usage(counts)
        return None

    def feed_headers(self, headers: Mapping[str, str]) -> None:
        for ours, name in _HEADER_NAMES.items():
            value = headers.get(name)
            if value is not None and value.strip().isdigit():
                self._headers[ours] = int(value)

    def _on_body(self, obj: Any) -> None:
        if _anthropic_shaped(obj):
            super()._on_body(obj)
            return
        self.output_chars += _family_chars(obj)
        self._family = _family_counts(obj)
        if self._family or self._headers:
            self.complete = True
        else:
            self.note_error("no usage in response body or headers")

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        if is_failure(event):
            _stream_failure(self, obj, event)  # type: ignore[arg-type]
            return
        if event != "chunk":
            return
        try:
            raw = base64.b64decode(obj.get("bytes") or b"", validate=True)
        except (binascii.Error, TypeError, ValueError):
            self.note_error("stream chunk: bytes are not base64")
            return
        inner = self._load(raw, "stream chunk")
        if inner is None:
            return
        if isinstance(inner.get("type"), str):  # an Anthropic stream event
            super()._on_event(inner, None)
        else:
            self.output_chars += _family_chars(inner)
        metrics: dict[str, int] = {}
        if _read_counts(metrics, inner.get("amazon-bedrock-invocationMetrics"), _METRICS_NAMES):
            self._metrics = metrics
            self.complete = True
            self.ended = True


def _anthropic_shaped(obj: dict[str, Any]) -> bool:
    return obj.get("type") == "message" or isinstance(get_path(obj, "usage", "input_tokens"), int)


def _family_counts(obj: dict[str, Any]) -> dict[str, int]:
    """Usage from a non-Anthropic InvokeModel body: Nova (`usage.inputTokens`), Llama
    (`prompt_token_count`), Titan (`inputTextTokenCount`, `results[].tokenCount`),
    OpenAI-shaped (`usage.prompt_tokens`). {} when none is there."""
    counts: dict[str, int] = {}
    if _read_counts(counts, obj.get("usage"), _CONVERSE_NAMES):
        return counts
    if _read_counts(counts, obj, {"input": ("prompt_token_count",), "output": ("generation_token_count",)}):
        return counts
    if _take(counts, "input", obj.get("inputTextTokenCount")):
        results = obj.get("results")
        if isinstance(results, list):
            counts["output"] = sum(count(r.get("tokenCount")) or 0 for r in results if isinstance(r, dict))
        return counts
    usage = obj.get("usage")
    if _read_counts(counts, usage, {"input": ("prompt_tokens",), "output": ("completion_tokens",)}):
        _take(counts, "cache_read", get_path(usage, "prompt_tokens_details", "cached_tokens"))
        if counts.get("cache_read"):  # OpenAI counts cached tokens inside prompt_tokens
            counts["input"] = max(counts.get("input", 0) - counts["cache_read"], 0)
        return counts
    return {}


def _family_chars(obj: dict[str, Any]) -> int:
    """Generated characters in a non-Anthropic body or stream chunk."""
    chars = slen(obj.get("generation")) + slen(obj.get("completion")) + slen(obj.get("outputText"))
    chars += _content_chars(get_path(obj, "output", "message", "content"))
    delta = get_path(obj, "contentBlockDelta", "delta")
    if isinstance(delta, dict):
        chars += _content_chars([delta])
    for key, field in (("results", "outputText"), ("outputs", "text")):
        items = obj.get(key)
        if isinstance(items, list):
            chars += sum(slen(i.get(field)) for i in items if isinstance(i, dict))
    choices = obj.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict):
                chars += slen(get_path(choice, "message", "content")) + slen(get_path(choice, "delta", "content"))
                chars += slen(choice.get("text"))
    return chars


# --- request reading ------------------------------------------------------------------

#: Where InvokeModel bodies cap their output, by family: Anthropic, Mistral, Cohere, AI21
#: and OpenAI-shaped `max_tokens`/`max_completion_tokens`; Llama `max_gen_len`; Nova
#: `inferenceConfig.maxTokens` (older `max_new_tokens`); Titan `textGenerationConfig.maxTokenCount`.
_INVOKE_CAPS: tuple[tuple[str, ...], ...] = (
    ("max_tokens",), ("max_completion_tokens",), ("max_gen_len",),
    ("inferenceConfig", "maxTokens"), ("inferenceConfig", "max_new_tokens"),
    ("textGenerationConfig", "maxTokenCount"),
)


def _invoke_cap(body: dict[str, Any]) -> int | None:
    for path in _INVOKE_CAPS:
        cap = count(get_path(body, *path))
        if cap is not None:
            return cap
    return None


class ConverseApi(Api):
    """`/model/{model}/converse[-stream]`: output capped by `inferenceConfig.maxTokens`."""

    kind = EndpointKind.CONVERSE
    meters = "input, cache read, cache write (5-minute and 1-hour) and output tokens"

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        return read_json_request(endpoint, body, lambda b: count(get_path(b, "inferenceConfig", "maxTokens")),
                                 model_in_body=False)

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return ConverseParser(endpoint.url_model)


class InvokeApi(Api):
    """`/model/{model}/invoke[-with-response-stream]`: the model's own body, its output
    cap wherever its family puts it."""

    kind = EndpointKind.INVOKE
    meters = ("the model's own usage (Anthropic, Nova, Llama, Titan, OpenAI shapes), else Bedrock's "
              "invocation metrics or token-count headers")

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        request = read_json_request(endpoint, body, _invoke_cap, model_in_body=False)
        if request.stream != endpoint.url_streaming:  # only the URL says: a body's `stream` is the model's
            request = replace(request, stream=endpoint.url_streaming)
        return request

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        model = endpoint.url_model
        return InvokeParser(model if _names_a_model(model) else None)


CONVERSE = ConverseApi()
INVOKE = InvokeApi()

#: SigV4 (the SDKs' default) or a Bedrock API key (`Authorization: Bearer`,
#: `AWS_BEARER_TOKEN_BEDROCK`). A virtual key is re-signed with the configured AWS keys,
#: else sent as the configured Bedrock API key.
BEDROCK_CREDENTIAL = Credential((KeyPlace.SIGV4, KeyPlace.BEARER), SigV4("bedrock"),  # type: ignore[attr-defined]
                                also=(KeyPlace.BEARER,))  # type: ignore[attr-defined]

_STREAM = Framing.AWS_EVENTSTREAM


#: Anthropic's Messages API as Bedrock serves it: read as at Anthropic, priced as `aws`. The
#: OpenAI-style paths (`/openai/v1/…`, `/v1/chat/completions`, `/v1/responses`) are not
#: metered yet: spendgate asks an OpenAI stream for its usage by rewriting the request, which
#: would break its SigV4 signature; their calls are recorded as unmetered.
_ANTHROPIC_ROUTES = (
    Route("/anthropic/v1/messages", MESSAGES),
    Route("/anthropic/v1/messages/count_tokens", FREE, note="token count"),
)


class BedrockProvider(Provider):
    def url_model(self, model: str) -> str:
        return bedrock_model(model)


BEDROCK = BedrockProvider(
    "bedrock",
    title="AWS Bedrock",
    price_provider="aws",
    host_families=(("bedrock-runtime.", ".amazonaws.com"), ("bedrock-runtime-fips.", ".amazonaws.com"),
                   ("bedrock-runtime.", ".amazonaws.com.cn")),
    credential=BEDROCK_CREDENTIAL,
    routes=(
        Route("/model/{model}/converse", CONVERSE),
        Route("/model/{model}/converse-stream", CONVERSE, stream=True, framing=_STREAM),
        Route("/model/{model}/invoke", INVOKE),
        Route("/model/{model}/invoke-with-response-stream", INVOKE, stream=True, framing=_STREAM),
        Route("/model/{model}/count-tokens", FREE, note="token count"),
        *_ANTHROPIC_ROUTES,
    ),
)

#: Bedrock's OpenAI- and Anthropic-style APIs on their own hosts (the openai SDK's
#: `BedrockOpenAI`, the anthropic SDK's `AnthropicBedrockMantle` use them), signed for the
#: `bedrock-mantle` service. Its calls take the `bedrock` entry's credentials unless a
#: `bedrock-mantle` entry has its own.
BEDROCK_MANTLE = Provider(
    "bedrock-mantle",
    title="AWS Bedrock (OpenAI- and Anthropic-style APIs)",
    price_provider="aws",
    host_families=(("bedrock-mantle.", ".api.aws"),),
    credential=Credential((KeyPlace.SIGV4, KeyPlace.BEARER), SigV4("bedrock-mantle"),  # type: ignore[attr-defined]
                          also=(KeyPlace.BEARER,)),  # type: ignore[attr-defined]
    config_names=("bedrock-mantle", "bedrock"),
    routes=_ANTHROPIC_ROUTES,
)
