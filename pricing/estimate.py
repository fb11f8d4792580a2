"""The most a call can cost, reserved against budgets before the request is forwarded."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from core.usage import TokenUsage
from providers.base import CallRequest

from .prices import UNPRICED, Cost, PriceBook, ResolvedPrice

__all__ = ("estimate_max_cost", "token_bounds")


def token_bounds(
    resolved: ResolvedPrice, request: CallRequest, endpoint_kind: str, default_max_output_tokens: int
) -> tuple[int, int]:
    """Input: the body's size in bytes (no token is shorter than one byte), capped at the
    context window when known. Output: the request's max tokens, else the override's
    `max_output_tokens`, else `default_max_output_tokens`, capped at the context window;
    0 for embeddings."""
    input_tokens = max(request.input_bytes, 0)
    if endpoint_kind == "embeddings":
        output_tokens = 0
    elif request.max_output_tokens is not None:
        output_tokens = max(request.max_output_tokens, 0)
    elif resolved.max_output_tokens is not None:
        output_tokens = resolved.max_output_tokens
    else:
        output_tokens = max(default_max_output_tokens, 0)
    window = resolved.context_window
    if window is not None:
        input_tokens = min(input_tokens, window)
        output_tokens = min(output_tokens, window)
    return input_tokens, output_tokens


def _within(usage: TokenUsage, window: int | None) -> TokenUsage:
    """`usage` with no more input or output tokens than a context window holds (a realtime
    turn's bound counts everything its socket carried), units within their totals."""
    if window is None or (usage.input_tokens <= window and usage.output_tokens <= window):
        return usage
    inp, out = min(usage.input_tokens, window), min(usage.output_tokens, window)
    units = {name: min(n, out if name.startswith("output_") else inp) if name.endswith("_tokens") else n
             for name, n in usage.units.items()}
    return replace(usage, input_tokens=inp, output_tokens=out, cache_read_tokens=min(usage.cache_read_tokens, inp),
                   cache_write_tokens=min(usage.cache_write_tokens, inp),
                   reasoning_tokens=min(usage.reasoning_tokens, out), units=units)


def estimate_max_cost(
    book: PriceBook,
    price_provider: str | None,
    request: CallRequest,
    endpoint_kind: str,
    at: datetime,
    default_max_output_tokens: int,
    *,
    model: str | None = None,
) -> Cost:
    """The most this call can cost; `Cost(None, "unpriced")` for an unpriced model.

    Tokens are bounded as `token_bounds` says, then priced with the same resolution and
    rates as `PriceBook.cost`, every input token in the dearest input class (plain input,
    or cache write where that costs more, as at Anthropic) and every output token in the
    dearest output class, at the tier the input bound falls in, plus any per-request fee
    (Perplexity's sonar models): what `cost()` would say of that dearest usage.

    `model` overrides `request.model` (for endpoints that name it in the URL: Gemini,
    Azure deployments).

    A request that bounds its own bill (`request.max_usage`: images by size and quality,
    audio by the upload's size, tts-1 by its characters) is priced as that usage. A request
    that asks for a tier with prices of its own (`service_tier: priority`) is priced at it;
    one that asks for none (or `auto`) at the standard prices, which a project whose default
    tier is priority would exceed by the difference (the settlement is exact either way).
    """
    resolved = book.resolve(price_provider, model or request.model)
    if resolved is None:
        return UNPRICED
    context = {"service_tier": request.service_tier} if request.service_tier else None
    if request.max_usage is not None:  # the request bounds its own bill (images, audio)
        return book.price(resolved, _within(request.max_usage, resolved.context_window), at, context)
    input_tokens, output_tokens = token_bounds(resolved, request, endpoint_kind, default_max_output_tokens)
    return book.max_price(resolved, input_tokens, output_tokens, at, context)
