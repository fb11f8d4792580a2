"""What one call used, normalised across providers.

Conventions follow genai-prices so a `TokenUsage` converts to its `Usage` without
arithmetic: `input_tokens` counts *every* input token, cache reads and cache writes
included; `output_tokens` counts every output token, reasoning included. Provider
parsers do the un-nesting (Anthropic reports cache tokens beside `input_tokens`,
OpenAI and Gemini inside it).

The five token classes are the ledger's token columns. Anything else a call is billed
for is in `units`, under genai-prices' unit names where it has one (`web_searches`,
`cache_write_1h_tokens`, `input_audio_tokens`, `audio_seconds`, `input_characters`, ...),
each a part of the totals as genai-prices has it (audio input tokens are input tokens,
1-hour cache writes are cache writes). Units genai-prices has no name for are
spendgate's own (`pricing/supplement.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from operator import attrgetter
from types import MappingProxyType

__all__ = ["TOKEN_CLASSES", "TokenUsage"]

_NO_UNITS: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    units: Mapping[str, int] = field(default=_NO_UNITS)

    @property
    def uncached_input_tokens(self) -> int:
        return max(self.input_tokens - self.cache_read_tokens - self.cache_write_tokens, 0)

    def tokens(self) -> dict[str, int]:
        """The five token classes, by name (the ledger's token columns)."""
        return dict(zip(TOKEN_CLASSES, _token_counts(self)))


#: The token classes every call reports, in the ledger's column order.
TOKEN_CLASSES: tuple[str, ...] = tuple(f.name for f in fields(TokenUsage) if f.name != "units")
_token_counts = attrgetter(*TOKEN_CLASSES)
