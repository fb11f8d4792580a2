"""What a response may claim: reported usage is bounded by what the request could produce.

A provider (or anything impersonating one on the wire) can report any number: `2**63`
prompt tokens overflowed SQLite and left the call's hold in place; `9e15` for a 100-byte
request was recorded as a $1.35 billion call that blocked every later one. A reported
count above what the call could possibly have used is clamped to that limit, and the
raw figure is kept in the row's `anomaly` (and logged) for the operator to look at.

The limits are generous on purpose — they catch the impossible, not the unusual: input
can't exceed the model's context window (server-side state such as `previous_response_id`
or uploaded files makes input larger than the request body, never larger than the
context), nor can output; with no context window known, `FALLBACK_TOKENS` applies. Every
unit inside a total (cached, reasoning, audio tokens...) is at most that total, and count
units (web searches, images, seconds, characters: `input_audio_seconds` and
`input_characters` are counts, not tokens) at most `FALLBACK_COUNT`. Money is bounded as well:
a cost above `MAX_COST_NANOS` (a million dollars) is clamped and flagged.

A cost the provider states itself (OpenRouter's `usage.cost`) is believed within the same
kind of limit: at most what the most input and output the call could use cost at the
model's list price (`MAX_COST_NANOS` for a model without one); a negative or larger
figure is flagged, and a negative one is not used at all.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.usage import TokenUsage

__all__ = ["FALLBACK_COUNT", "FALLBACK_TOKENS", "MAX_COST_NANOS", "bound_cost", "bound_reported_cost",
           "bound_usage", "usage_limits"]

FALLBACK_TOKENS = 10_000_000  # above any model's context, far below an integer overflow
FALLBACK_COUNT = 100_000  # web searches, images, audio seconds... in one call
MAX_COST_NANOS = 1_000_000 * 1_000_000_000  # $1M: no single call costs this

# Units that are a part of input or output tokens (genai-prices names): bounded by that total.
_INPUT_PARTS = ("cache_read_tokens", "cache_write_tokens")
_OUTPUT_PARTS = ("reasoning_tokens",)


def usage_limits(input_bytes: int, max_output_tokens: int | None, context_window: int | None) -> tuple[int, int]:
    """The most input and output tokens a call of `input_bytes` asking for at most
    `max_output_tokens` could have used."""
    window = context_window or FALLBACK_TOKENS
    return max(input_bytes, window), max(max_output_tokens or 0, window)


def bound_usage(usage: TokenUsage, input_bytes: int, max_output_tokens: int | None,
                context_window: int | None) -> tuple[TokenUsage, dict[str, Any]]:
    """`usage` with every count clamped to what the call could produce (`usage_limits`),
    and the raw figures that were clamped ({} when nothing was)."""
    most_input, most_output = usage_limits(input_bytes, max_output_tokens, context_window)
    limits = {"input_tokens": most_input, "output_tokens": most_output}
    if (not usage.units and 0 <= usage.input_tokens <= limits["input_tokens"]
            and 0 <= usage.output_tokens <= limits["output_tokens"]
            and 0 <= usage.cache_read_tokens <= usage.input_tokens
            and 0 <= usage.cache_write_tokens <= usage.input_tokens
            and 0 <= usage.reasoning_tokens <= usage.output_tokens):
        return usage, {}  # the usual reply: every count within bounds, nothing to clamp
    raw = usage.tokens()
    fixed = dict(raw)
    for name, limit in limits.items():
        fixed[name] = min(max(raw[name], 0), limit)
    for name in _INPUT_PARTS:
        fixed[name] = min(max(raw[name], 0), fixed["input_tokens"])
    for name in _OUTPUT_PARTS:
        fixed[name] = min(max(raw[name], 0), fixed["output_tokens"])
    units = {}
    for name, value in usage.units.items():
        total = FALLBACK_COUNT  # a count (searches, images, seconds, characters), or:
        if name.endswith("_tokens"):  # a part of the input or output tokens
            total = fixed["input_tokens"] if name.startswith(("input_", "cache_")) else (
                fixed["output_tokens"] if name.startswith("output_") else FALLBACK_COUNT)
        units[name] = min(max(value, 0), total)
    anomaly = {name: raw[name] for name in raw if raw[name] != fixed[name]}
    anomaly.update({f"units.{name}": usage.units[name] for name in units if units[name] != usage.units[name]})
    if not anomaly:
        return usage, {}
    return replace(usage, **fixed, units=units), anomaly


def bound_cost(nanos: int | None) -> tuple[int | None, dict[str, Any]]:
    """The cost, clamped to `MAX_COST_NANOS`, and the raw figure if it was."""
    if nanos is not None and nanos > MAX_COST_NANOS:
        return MAX_COST_NANOS, {"cost_nanos": nanos}
    return nanos, {}


def bound_reported_cost(nanos: int, most_nanos: int | None) -> tuple[int | None, dict[str, Any]]:
    """A cost the provider stated (`nanos`), believed up to `most_nanos` (the most the call
    could cost at list price; `MAX_COST_NANOS` when unknown), and the raw figure if it was
    not believed as it is. A negative figure gives None: price the call from its usage."""
    if nanos < 0:
        return None, {"reported_cost_nanos": nanos}
    limit = min(most_nanos, MAX_COST_NANOS) if most_nanos is not None else MAX_COST_NANOS
    if nanos > limit:
        return limit, {"reported_cost_nanos": nanos}
    return nanos, {}
