"""The usage conventions genai-prices already knows: each of its providers carries usage
extractors, one per API flavour (`chat`, `responses`, `embeddings`, ...), saying which
fields of a reply's `usage` count what.

Most OpenAI-compatible providers count as OpenAI does, but not all: xAI's
`completion_tokens` leave out `completion_tokens_details.reasoning_tokens` (billed as output
on top), Perplexity reports `reasoning_tokens`, `citation_tokens` and `num_search_queries`
beside `completion_tokens`. An OpenAI-compatible provider's usage is read with its own
extractor where genai-prices has one (`reader`), rather than by writing those rules again;
OpenAI's reading is the fallback for a usage the extractor can't read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from genai_prices import data_snapshot

from core.usage import TokenUsage
from core.vocab import EndpointKind
from providers.values import count

__all__ = ["UsageReader", "extractor", "reader"]

UsageReader = Callable[[Any], "TokenUsage | None"]

#: The genai-prices flavours that read each OpenAI-style endpoint's usage, in the order
#: tried (Perplexity names its chat extractor `default`, OpenRouter its Responses one).
_FLAVOURS: dict[EndpointKind, tuple[str, ...]] = {
    EndpointKind.CHAT: ("chat", "default"),
    EndpointKind.COMPLETIONS: ("chat", "default"),
    EndpointKind.RESPONSES: ("responses", "default"),
    EndpointKind.EMBEDDINGS: ("embeddings",),
}
#: The usage field an extractor of each endpoint's shape must read (a `default` extractor
#: of another shape, such as OpenRouter's Responses-style one, is not a chat extractor).
_SHAPE = {EndpointKind.CHAT: "prompt_tokens", EndpointKind.COMPLETIONS: "prompt_tokens",
          EndpointKind.RESPONSES: "input_tokens", EndpointKind.EMBEDDINGS: "prompt_tokens"}
#: genai-prices' names of TokenUsage's token classes; every other key is a unit.
_TOKENS = {"input_tokens": "input_tokens", "cache_read_tokens": "cache_read_tokens",
           "cache_write_tokens": "cache_write_tokens", "output_tokens": "output_tokens",
           "output_reasoning_tokens": "reasoning_tokens"}


@functools.cache
def extractor(provider_id: str | None, kind: EndpointKind) -> Any | None:
    """genai-prices' usage extractor for `kind` replies of `provider_id`, or None."""
    provider = next((p for p in data_snapshot.get_snapshot().providers if p.id == provider_id), None)
    if provider is None:
        return None
    for flavour in _FLAVOURS.get(kind, ()):
        for found in provider.extractors or ():
            if found.api_flavor != flavour or found.root != "usage":
                continue
            if any(m.path == _SHAPE[kind] for m in found.mappings):
                return found
    return None


def reader(provider_id: str | None, kind: EndpointKind) -> UsageReader | None:
    """A function reading a reply's `usage` object the way genai-prices does for this
    provider and endpoint (None: read it as OpenAI's). It answers None for a usage the
    extractor can't read (a required field missing, a count that isn't one)."""
    found = extractor(provider_id, kind)
    return None if found is None else functools.partial(_read, found)


def _read(found: Any, usage: Any) -> TokenUsage | None:
    if not isinstance(usage, dict):
        return None
    try:
        _, extracted = found.extract({"usage": usage})
    except (ValueError, TypeError, ArithmeticError):
        return None
    tokens: dict[str, int] = {}
    units: dict[str, int] = {}
    for key, value in vars(extracted).items():
        n = count(value)
        if n is None:
            return None  # a fraction, a negative: not a count we believe
        if key in _TOKENS:
            tokens[_TOKENS[key]] = n
        elif n:
            units[key] = n
    return TokenUsage(**tokens, units=units) if units else TokenUsage(**tokens)
