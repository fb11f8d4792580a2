"""Google Gemini: the generateContent and embedContent wire formats (also Gemini on Vertex
AI) and the Gemini API provider (`generativelanguage.googleapis.com`).

The model is named in the URL only (`/v1beta/models/{model}:generateContent`).
`promptTokenCount` includes `cachedContentTokenCount`; output is `candidatesTokenCount` +
`thoughtsTokenCount`. `streamGenerateContent` streams SSE with `?alt=sse`, else one JSON
array whose elements arrive one by one.

Embeddings (`:embedContent`, `:batchEmbedContents`, which google-genai uses even for one
text) report `usageMetadata.promptTokenCount` on Vertex AI; the Gemini API's answers may
carry no usage at all. Such a call is charged the input its request was counted at: one
token per byte of its text (no token is shorter), an upper bound, flagged estimated.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from core.usage import TokenUsage
from core.vocab import EndpointKind, Framing
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
from providers.gemini_live import LIVE
from providers.parsing import UsageParser, get_path, slen
from providers.reading import choices, read_json_request
from providers.values import count

__all__ = [
    "EMBED",
    "GEMINI",
    "GENERATE",
    "EmbedApi",
    "GeminiEmbedParser",
    "GeminiParser",
    "GenerateApi",
    "embed_routes",
    "generate_routes",
    "with_versions",
]

_GEMINI_KEYS = (
    "promptTokenCount",
    "cachedContentTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "toolUsePromptTokenCount",
    "totalTokenCount",
)


class GeminiParser(UsageParser):
    """Gemini generateContent: `usageMetadata` on the body or on every chunk.

    promptTokenCount includes cachedContentTokenCount; output is
    candidatesTokenCount + thoughtsTokenCount; tool-use prompt tokens are input.
    A chunk with a candidate `finishReason` (or a blocked prompt) is the last.
    """

    def __init__(self) -> None:
        super().__init__()
        self._meta: dict[str, int] = {}

    @property
    def usage(self) -> TokenUsage | None:
        m = self._meta
        if not m:
            return None
        prompt = m.get("promptTokenCount", 0) + m.get("toolUsePromptTokenCount", 0)
        thoughts = m.get("thoughtsTokenCount", 0)
        candidates = m.get("candidatesTokenCount")
        if candidates is None and "totalTokenCount" in m:
            # Older chunks omit the candidates count; the total is the sum of all parts.
            output = max(m["totalTokenCount"] - prompt, thoughts)
        else:
            output = (candidates or 0) + thoughts
        return TokenUsage(
            input_tokens=prompt,
            cache_read_tokens=m.get("cachedContentTokenCount", 0),
            output_tokens=output,
            reasoning_tokens=thoughts,
        )

    def feed_body(self, body: bytes | str) -> None:
        # A buffered streamGenerateContent without alt=sse is a JSON array of chunks.
        obj = self._load(body, "response body", allow_list=True)
        if isinstance(obj, list):
            for item in obj:
                if isinstance(item, dict):
                    self._guarded(self._on_event, item, "response body", None)
            if self._meta:
                self.complete = True
            else:
                self.note_error("no usage in response body")
        elif obj is not None:
            self._guarded(self._on_body, obj, "response body")

    def _on_body(self, obj: Any) -> None:
        self._on_event(obj, None)
        if self._meta:
            self.complete = True
        else:
            self.note_error("no usage in response body")

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        model = obj.get("modelVersion")
        if isinstance(model, str) and model:
            self.model = model
        finished = isinstance(get_path(obj, "promptFeedback", "blockReason"), str)
        candidates = obj.get("candidates")
        if isinstance(candidates, list):
            for cand in candidates:
                if not isinstance(cand, dict):
                    continue
                if cand.get("finishReason"):
                    finished = True
                parts = get_path(cand, "content", "parts")
                if isinstance(parts, list):
                    for part in parts:
                        if not isinstance(part, dict):
                            continue
                        self.output_chars += slen(part.get("text"))
                        call = part.get("functionCall")
                        if isinstance(call, dict):
                            self.output_chars += len(json.dumps(call))
        meta = obj.get("usageMetadata")
        if isinstance(meta, dict):
            for key in _GEMINI_KEYS:
                v = count(meta.get(key))
                if v is not None:
                    self._meta[key] = v
        if finished:
            self.ended = True
            if self._meta:
                self.complete = True


class GenerateApi(Api):
    """`:generateContent` / `:streamGenerateContent`: output capped by
    `generationConfig.maxOutputTokens` for each of `candidateCount` candidates."""

    kind = EndpointKind.GENERATE
    meters = "input, cached, output and thinking tokens"

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        return read_json_request(endpoint, body, self._max_output, model_in_body=False)

    @staticmethod
    def _max_output(body: dict[str, Any]) -> int | None:
        # Google's JSON mapping accepts both camelCase and proto snake_case names.
        cfg = body.get("generationConfig")
        if not isinstance(cfg, dict):
            cfg = body.get("generation_config")
        if not isinstance(cfg, dict):
            return None
        cap = count(cfg.get("maxOutputTokens", cfg.get("max_output_tokens")))
        n = choices(cfg.get("candidateCount", cfg.get("candidate_count")))
        return None if cap is None else cap * n

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return GeminiParser()


GENERATE = GenerateApi()


class GeminiEmbedParser(UsageParser):
    """embedContent / batchEmbedContents: `usageMetadata.promptTokenCount` where the answer
    has it. An answer with embeddings and no usage ended normally without a report (`ended`
    and no error): the call is charged its request's own count (`input_tokens_estimate`)."""

    def _on_body(self, obj: Any) -> None:
        tokens = count(get_path(obj, "usageMetadata", "promptTokenCount"))
        if tokens is not None:
            self._usage = TokenUsage(input_tokens=tokens)
            self.complete = True
        elif isinstance(obj.get("embedding"), dict) or isinstance(obj.get("embeddings"), list):
            self.ended = True
        else:
            self.note_error("no usage in response body")


def _text_bytes(value: Any) -> int:
    """UTF-8 bytes of every string inside `value` (texts, inline data, names): an upper
    bound on its tokens. Iterative: a deeply nested body must not exhaust the stack."""
    total, todo = 0, [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            total += len(item.encode("utf-8", "surrogatepass"))
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return total


def _embedded_bytes(body: dict[str, Any]) -> int:
    """What an embed request asks to embed: the parts of its `content` and its `title`, or
    those of each of its `requests` (batchEmbedContents)."""
    requests = body.get("requests")
    items = requests if isinstance(requests, list) else [body]
    return sum(_text_bytes([get_path(item, "content", "parts"), item.get("title")])
               for item in items if isinstance(item, dict))


class EmbedApi(Api):
    """`:embedContent` / `:batchEmbedContents`: input tokens only, counted from the request
    too, for answers that report none."""

    kind = EndpointKind.EMBEDDINGS
    meters = "input tokens (without a usage report: one per byte of the request's text, estimated)"

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        return read_json_request(endpoint, body, lambda b: 0, model_in_body=False, input_tokens=_embedded_bytes)

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return GeminiEmbedParser()


EMBED = EmbedApi()


def generate_routes(prefix: str, *, price_provider: str | None = None) -> tuple[Route, ...]:
    """generateContent, streamGenerateContent and the free countTokens under `prefix`
    (a `{model}` path: `/{version}/models/{model}` on the Gemini API, a publisher's model
    path on Vertex AI)."""
    return (
        Route(f"{prefix}:generateContent", GENERATE, price_provider=price_provider),
        Route(f"{prefix}:streamGenerateContent", GENERATE, stream=True, framing=Framing.JSON_ARRAY,
              sse_query=True, price_provider=price_provider, note="SSE with `?alt=sse`, else a JSON array"),
        Route(f"{prefix}:countTokens", FREE, note="token count"),
    )


def embed_routes(prefix: str, *, batch: bool = True) -> tuple[Route, ...]:
    """embedContent (and batchEmbedContents, which Vertex AI does not serve) under `prefix`."""
    routes = (Route(f"{prefix}:embedContent", EMBED),)
    if batch:
        routes += (Route(f"{prefix}:batchEmbedContents", EMBED),)
    return routes


def with_versions(routes: tuple[Route, ...], versions: tuple[str, ...], model_prefix: str = "") -> tuple[Route, ...]:
    """`routes` with their `{version}` segment limited to `versions`."""
    return tuple(replace(r, choices={"version": versions}, model_prefix=model_prefix) for r in routes)


_VERSIONS = ("v1", "v1beta", "v1alpha")

#: `x-goog-api-key` (the SDKs), `?key=` (curl examples), an OAuth bearer token, or a Live
#: ephemeral token (`Authorization: Token auth_tokens/…`).
GEMINI_CREDENTIAL = Credential((KeyPlace.GOOG_API_KEY, KeyPlace.QUERY_KEY, KeyPlace.BEARER, KeyPlace.TOKEN),
                               KeyPlace.GOOG_API_KEY)

_MODELS = "/{version}/models/{model}"


#: Gemini Live (providers/gemini_live.py), a WebSocket upgrade.
LIVE_ROUTE = Route("/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent", LIVE,
                   method="GET", note="Gemini Live; the model in the `setup` message")
#: The same with an ephemeral token (google-genai, for an `auth_tokens/…` key; v1alpha).
LIVE_CONSTRAINED_ROUTE = Route(
    "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContentConstrained", LIVE,
    method="GET", note="Gemini Live with an ephemeral token (`Authorization: Token auth_tokens/…`)")

GEMINI = Provider(
    "google",
    title="Google Gemini API",
    price_provider="google",
    hosts=("generativelanguage.googleapis.com",),
    credential=GEMINI_CREDENTIAL,
    config_names=("google", "gemini"),
    routes=with_versions(generate_routes(_MODELS) + embed_routes(_MODELS), _VERSIONS)
    + with_versions(generate_routes("/{version}/tunedModels/{model}"), _VERSIONS, model_prefix="tunedModels/")
    + with_versions((LIVE_ROUTE, LIVE_CONSTRAINED_ROUTE), _VERSIONS),
)
