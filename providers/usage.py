"""The token counts of one call, normalised across providers.

Conventions follow genai-prices so a `TokenUsage` converts to its `Usage` without
arithmetic: `input_tokens` counts *every* input token, cache reads and cache writes
included; `output_tokens` counts every output token, reasoning included. Provider
parsers do the un-nesting (Anthropic reports cache tokens beside `input_tokens`,
OpenAI and Gemini inside it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def uncached_input_tokens(self) -> int:
        return max(self.input_tokens - self.cache_read_tokens - self.cache_write_tokens, 0)

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }
