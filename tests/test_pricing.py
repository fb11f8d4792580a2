"""Pricing reference: every figure below is worked out by hand from the rates in the
genai-prices snapshot bundled with the installed wheel (0.2.3) or from the override.

Rates are quoted in USD per million tokens ("/M") as genai-prices stores them. Costs are
integer nano-dollars: $1 = 1_000_000_000 nanos, so $0.00725 = 7_250_000 nanos.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import genai_prices
import pytest
from genai_prices import data_snapshot

from core.usage import TokenUsage
from pricing import (
    CONFIG_SOURCE,
    GENAI_PRICES_SOURCE,
    UNPRICED,
    Cost,
    ModelPrice,
    PriceBook,
    estimate_max_cost,
    token_bounds,
)
from providers.base import CallRequest

AT = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Pricing never fetches anything: any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("pricing tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def book() -> PriceBook:
    return PriceBook()


def usd(amount: str) -> int:
    """'0.00725' USD -> 7_250_000 nanos (exact, for writing expectations in dollars)."""
    return int(Decimal(amount) * 1_000_000_000)


# --------------------------------------------------------------------------- Cost


def test_cost_value_object():
    cost = Cost(7_250_000, GENAI_PRICES_SOURCE)
    assert cost.priced and cost.usd == 0.00725
    assert GENAI_PRICES_SOURCE == f"genai-prices {genai_prices.__version__}"
    assert UNPRICED == Cost(None, "unpriced")
    assert not UNPRICED.priced and UNPRICED.usd is None


def test_prices_come_from_the_bundled_snapshot(book):
    # No UpdatePrices: the snapshot in use is the one shipped in the wheel.
    assert data_snapshot.get_snapshot().from_auto_update is False
    assert book.cost("openai", "gpt-4o", TokenUsage(input_tokens=1), AT).priced


# --------------------------------------------------------------------------- genai-prices


def test_openai_cache_and_reasoning(book):
    # gpt-4o: input $2.50/M, cached input $1.25/M, output $10/M.
    # 1000 input of which 200 cached; 500 output of which 100 reasoning.
    #   800 x $2.50/M = $0.002
    #   200 x $1.25/M = $0.00025
    #   500 x $10/M   = $0.005     (reasoning is inside the 500, billed once as output)
    #   total         = $0.00725
    usage = TokenUsage(input_tokens=1000, cache_read_tokens=200, output_tokens=500, reasoning_tokens=100)
    assert book.cost("openai", "gpt-4o", usage, AT) == Cost(usd("0.00725"), GENAI_PRICES_SOURCE)


def test_reasoning_is_never_added_on_top_of_output(book):
    # o4-mini: input $1.10/M, output $4.40/M, no reasoning price of its own.
    # 1000 in, 3000 out of which 2500 reasoning: 1000 x 1.10/M + 3000 x 4.40/M
    #   = $0.0011 + $0.0132 = $0.0143 (not 5500 output tokens' worth).
    with_reasoning = TokenUsage(input_tokens=1000, output_tokens=3000, reasoning_tokens=2500)
    without = TokenUsage(input_tokens=1000, output_tokens=3000)
    assert book.cost("openai", "o4-mini", with_reasoning, AT).nanos == usd("0.0143")
    assert book.cost("openai", "o4-mini", without, AT).nanos == usd("0.0143")


def test_reasoning_with_its_own_price(book):
    # Perplexity sonar-deep-research is the one kind of model with a reasoning rate:
    # input $2/M, output $8/M, reasoning $3/M. 10_000 output of which 8_000 reasoning:
    #   1000 x $2/M = $0.002;  2000 x $8/M = $0.016;  8000 x $3/M = $0.024
    #   total $0.042
    usage = TokenUsage(input_tokens=1000, output_tokens=10_000, reasoning_tokens=8_000)
    assert book.cost("perplexity", "sonar-deep-research", usage, AT).nanos == usd("0.042")


def test_anthropic_cache_read_and_write(book):
    # claude-sonnet-4-5: input $3/M, cache write $3.75/M, cache read $0.30/M, output $15/M.
    # input_tokens counts everything (TokenUsage convention): 10_000 of which 6_000 read
    # from cache and 3_000 written to it, so 1_000 plain.
    #   1000 x $3/M    = $0.003
    #   6000 x $0.30/M = $0.0018
    #   3000 x $3.75/M = $0.01125
    #    800 x $15/M   = $0.012
    #   total          = $0.02805
    usage = TokenUsage(input_tokens=10_000, cache_read_tokens=6_000, cache_write_tokens=3_000, output_tokens=800)
    assert book.cost("anthropic", "claude-sonnet-4-5", usage, AT).nanos == usd("0.02805")
    # The dated model id resolves to the same model.
    assert book.cost("anthropic", "claude-sonnet-4-5-20250929", usage, AT).nanos == usd("0.02805")


def test_gemini_25_pro_long_context_tier(book):
    # gemini-2.5-pro: up to 200k prompt tokens input $1.25/M, output $10/M;
    # above 200k *all* tokens cost input $2.50/M, cached $0.25/M, output $15/M.
    # Exactly 200_000: 200_000 x $1.25/M + 1000 x $10/M = $0.25 + $0.01 = $0.26
    at_threshold = TokenUsage(input_tokens=200_000, output_tokens=1000)
    assert book.cost("google", "gemini-2.5-pro", at_threshold, AT).nanos == usd("0.26")
    # 200_001: 200_001 x $2.50/M + 1000 x $15/M = $0.5000025 + $0.015 = $0.5150025
    above = TokenUsage(input_tokens=200_001, output_tokens=1000)
    assert book.cost("google", "gemini-2.5-pro", above, AT).nanos == usd("0.5150025")
    # Cached tokens count towards the threshold (they are inside promptTokenCount):
    # 250_000 of which 50_000 cached; 2_000 output of which 1_500 thoughts.
    #   200_000 x $2.50/M = $0.5;  50_000 x $0.25/M = $0.0125;  2_000 x $15/M = $0.03
    #   total $0.5425
    cached = TokenUsage(input_tokens=250_000, cache_read_tokens=50_000, output_tokens=2_000, reasoning_tokens=1_500)
    assert book.cost("google", "gemini-2.5-pro", cached, AT).nanos == usd("0.5425")


def test_price_in_force_at_the_time_of_the_request(book):
    # o3 was $10/M in, $40/M out until OpenAI cut it to $2/M, $8/M on 2025-06-10 (UTC).
    # 1000 in, 2000 out (1500 of them reasoning):
    #   before: 1000 x $10/M + 2000 x $40/M = $0.01 + $0.08  = $0.09
    #   after:  1000 x $2/M  + 2000 x $8/M  = $0.002 + $0.016 = $0.018
    usage = TokenUsage(input_tokens=1000, output_tokens=2000, reasoning_tokens=1500)
    before = datetime(2025, 6, 9, 23, 59, 59, tzinfo=UTC)
    after = datetime(2025, 6, 10, 0, 0, tzinfo=UTC)
    assert book.cost("openai", "o3", usage, before).nanos == usd("0.09")
    assert book.cost("openai", "o3", usage, after).nanos == usd("0.018")
    # 20:00 on the 9th in UTC-5 is 01:00 UTC on the 10th: the new price.
    evening_in_new_york = datetime(2025, 6, 9, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert book.cost("openai", "o3", usage, evening_in_new_york).nanos == usd("0.018")


def test_long_context_tier_dropped_over_time(book):
    # claude-sonnet-4-6 had a >200k tier ($6/M in, $22.50/M out) until 2026-03-13, then flat $3/M, $15/M.
    # 300_000 in, 1000 out:
    #   2026-03-12: 300_000 x $6/M + 1000 x $22.50/M = $1.8 + $0.0225 = $1.8225
    #   2026-03-13: 300_000 x $3/M + 1000 x $15/M    = $0.9 + $0.015  = $0.915
    usage = TokenUsage(input_tokens=300_000, output_tokens=1000)
    assert book.cost("anthropic", "claude-sonnet-4-6", usage, datetime(2026, 3, 12, tzinfo=UTC)).nanos == usd("1.8225")
    assert book.cost("anthropic", "claude-sonnet-4-6", usage, datetime(2026, 3, 13, tzinfo=UTC)).nanos == usd("0.915")


@pytest.mark.parametrize(
    ("price_provider", "model"),
    [
        ("openai", "gpt-4o"),
        ("azure", "gpt-4o"),  # Azure resolves OpenAI models through its fallback
        (None, "gpt-4o"),  # custom host: genai-prices finds the provider from the name
        ("my-vllm", "gpt-4o"),  # unknown provider id: same
        ("openai", "openai/gpt-4o"),  # LiteLLM-style prefix
        ("openai", "gpt-4o-2024-08-06"),
    ],
)
def test_provider_fallbacks_and_name_forms(book, price_provider, model):
    # gpt-4o input $2.50/M: 1000 tokens = $0.0025
    cost = book.cost(price_provider, model, TokenUsage(input_tokens=1000), AT)
    assert cost == Cost(usd("0.0025"), GENAI_PRICES_SOURCE)


def test_gemini_models_prefix(book):
    # Gemini names models "models/gemini-2.5-pro": 1000 x $1.25/M = $0.00125
    assert book.cost("google", "models/gemini-2.5-pro", TokenUsage(input_tokens=1000), AT).nanos == usd("0.00125")


def test_inconsistent_usage_is_never_priced_lower_than_its_parts(book):
    # A parser that left cache reads out of input_tokens (Anthropic's own convention):
    # input_tokens is raised to 200 + 0 = the 200 cache-read tokens it reported.
    # gpt-4o: 200 x $1.25/M = $0.00025. Reasoning above output likewise becomes output.
    usage = TokenUsage(input_tokens=50, cache_read_tokens=200, output_tokens=0, reasoning_tokens=100)
    # 200 x $1.25/M + 100 x $10/M = $0.00025 + $0.001 = $0.00125
    assert book.cost("openai", "gpt-4o", usage, AT).nanos == usd("0.00125")


# --------------------------------------------------------------------------- unpriced


def test_unknown_model_is_unpriced_not_free(book):
    usage = TokenUsage(input_tokens=1000, output_tokens=1000)
    cost = book.cost("openai", "no-such-model", usage, AT)
    assert cost == Cost(None, "unpriced") and cost.nanos is None and cost.usd is None
    assert book.cost("azure", "my-gpt4o-deployment", usage, AT) == UNPRICED
    assert book.cost(None, "llama-local", usage, AT) == UNPRICED
    assert book.cost("openai", None, usage, AT) == UNPRICED
    # whisper-1 is priced per audio minute, not per token: it can't be priced from tokens.
    assert book.cost("openai", "whisper-1", usage, AT) == UNPRICED
    assert not book.is_priced("openai", "no-such-model")
    assert book.is_priced("openai", "gpt-4o")


def test_zero_usage_of_a_known_model_is_a_priced_zero(book):
    assert book.cost("openai", "gpt-4o", TokenUsage(), AT) == Cost(0, GENAI_PRICES_SOURCE)


def test_unpriced_first_seen_once_per_model(book):
    assert book.unpriced_first_seen("openai", "no-such-model") is True
    assert book.unpriced_first_seen("openai", "no-such-model") is False
    assert book.unpriced_first_seen("openai", "other-model") is True
    assert book.unpriced_first_seen("azure", "no-such-model") is True


# --------------------------------------------------------------------------- overrides


ACME = {
    "input_cost_per_token": 1e-06,  # $1/M
    "output_cost_per_token": 4e-06,  # $4/M
    "cache_read_input_token_cost": 1e-07,  # $0.10/M
    "cache_creation_input_token_cost": 1.25e-06,  # $1.25/M
    "output_cost_per_reasoning_token": 5e-06,  # $5/M
}


ACME_USAGE = TokenUsage(
    input_tokens=10_000, cache_read_tokens=4_000, cache_write_tokens=1_000, output_tokens=2_000, reasoning_tokens=500
)


def test_override_formula_with_cache_and_reasoning():
    book = PriceBook({"acme-llm": ACME})
    # 10_000 in (4_000 cache read, 1_000 cache write); 2_000 out (500 reasoning):
    #   (10_000 - 4_000 - 1_000) x $1/M    = $0.005
    #    4_000 x $0.10/M                    = $0.0004
    #    1_000 x $1.25/M                    = $0.00125
    #   (2_000 - 500) x $4/M               = $0.006
    #      500 x $5/M                       = $0.0025
    #   total                               = $0.01515
    usage = ACME_USAGE
    assert book.cost(None, "acme-llm", usage, AT) == Cost(usd("0.01515"), CONFIG_SOURCE)


def test_override_defaults_cache_to_input_and_reasoning_to_output():
    book = PriceBook({"acme-llm": {"input_cost_per_token": "0.000001", "output_cost_per_token": "0.000004"}})
    # Same usage, no cache or reasoning rates: 10_000 x $1/M + 2_000 x $4/M = $0.01 + $0.008 = $0.018
    usage = ACME_USAGE
    assert book.cost(None, "acme-llm", usage, AT).nanos == usd("0.018")


def test_override_wins_over_genai_prices_with_date_and_prefix_stripped():
    class ModelPricing:  # what the config package's pydantic model looks like to us
        input_cost_per_token = 5e-06  # $5/M
        output_cost_per_token = 1.5e-05  # $15/M
        cache_read_input_token_cost = None
        cache_creation_input_token_cost = None
        output_cost_per_reasoning_token = None
        max_output_tokens = None
        max_input_tokens = None

    book = PriceBook({"gpt-4o": ModelPricing()})
    # 1000 x $5/M + 1000 x $15/M = $0.02 (genai-prices would say $0.0125)
    usage = TokenUsage(input_tokens=1000, output_tokens=1000)
    for model in ("gpt-4o", "GPT-4o", "gpt-4o-2024-08-06", "openai/gpt-4o-2024-08-06"):
        assert book.cost("openai", model, usage, AT) == Cost(usd("0.02"), CONFIG_SOURCE), model
    # Other models still come from genai-prices: gpt-4o-mini $0.15/M + $0.60/M -> $0.00075
    assert book.cost("openai", "gpt-4o-mini", usage, AT) == Cost(usd("0.00075"), GENAI_PRICES_SOURCE)


def test_exact_override_beats_date_stripped_override():
    book = PriceBook({"gpt-4o": {"input_cost_per_token": 1e-06}, "gpt-4o-2024-05-13": {"input_cost_per_token": 2e-06}})
    usage = TokenUsage(input_tokens=1_000_000)
    assert book.cost("openai", "gpt-4o-2024-05-13", usage, AT).nanos == usd("2")
    assert book.cost("openai", "gpt-4o-2024-08-06", usage, AT).nanos == usd("1")


def test_rounding_is_half_up_once():
    # $1.5e-9 per token: 1 token = 1.5 nanos -> 2; 3 tokens = 4.5 -> 5 (banker's would give 2 and 4).
    book = PriceBook({"tiny": {"input_cost_per_token": "0.0000000015"}})
    assert book.cost(None, "tiny", TokenUsage(input_tokens=1), AT).nanos == 2
    assert book.cost(None, "tiny", TokenUsage(input_tokens=3), AT).nanos == 5


def test_override_validation():
    with pytest.raises(ValueError, match="input_cost_per_token"):
        ModelPrice.from_config({"output_cost_per_token": 1e-06})
    with pytest.raises(ValueError, match="non-negative"):
        ModelPrice.from_config({"input_cost_per_token": -1})
    with pytest.raises(ValueError, match="max_output_tokens"):
        ModelPrice.from_config({"input_cost_per_token": 1e-06, "max_output_tokens": 0})
    price = ModelPrice.from_config({"input_cost_per_token": 2.5e-06})
    assert price.input_cost_per_token == Decimal("0.0000025")  # not 2.49999...e-06
    assert price.output_cost_per_token == 0


# --------------------------------------------------------------------------- estimate


def request(model: str | None, input_bytes: int, max_output_tokens: int | None = None) -> CallRequest:
    return CallRequest(model=model, stream=False, max_output_tokens=max_output_tokens, input_bytes=input_bytes)


def test_estimate_uses_max_tokens(book):
    # gpt-4o: 4_000 body bytes -> at most 4_000 input tokens; max_tokens 1_000.
    #   4_000 x $2.50/M + 1_000 x $10/M = $0.01 + $0.01 = $0.02
    cost = estimate_max_cost(book, "openai", request("gpt-4o", 4_000, 1_000), "chat", AT, 4096)
    assert cost == Cost(usd("0.02"), GENAI_PRICES_SOURCE)


def test_estimate_uses_default_max_output_tokens(book):
    #   4_000 x $2.50/M + 4_096 x $10/M = $0.01 + $0.04096 = $0.05096
    cost = estimate_max_cost(book, "openai", request("gpt-4o", 4_000), "chat", AT, 4096)
    assert cost.nanos == usd("0.05096")


def test_estimate_caps_at_context_window(book):
    # gpt-4o's context window is 128_000 tokens: a 1 MB body and max_tokens 200_000 are capped.
    #   128_000 x $2.50/M + 128_000 x $10/M = $0.32 + $1.28 = $1.60
    req = request("gpt-4o", 1_000_000, 200_000)
    assert token_bounds(book.resolve("openai", "gpt-4o"), req, "chat", 4096) == (128_000, 128_000)
    assert estimate_max_cost(book, "openai", req, "chat", AT, 4096).nanos == usd("1.6")


def test_estimate_embeddings_have_no_output(book):
    # text-embedding-3-small: $0.02/M, context window 8_192: 10_000 bytes cap at 8_192 tokens.
    #   8_192 x $0.02/M = $0.00016384; no output tokens even with a default of 4096.
    cost = estimate_max_cost(book, "openai", request("text-embedding-3-small", 10_000), "embeddings", AT, 4096)
    assert cost.nanos == usd("0.00016384")


def test_estimate_prices_input_as_cache_write_when_dearer(book):
    # claude-sonnet-4-5: a cache write ($3.75/M) costs more than plain input ($3/M).
    #   8_000 x $3.75/M + 1_000 x $15/M = $0.03 + $0.015 = $0.045
    cost = estimate_max_cost(book, "anthropic", request("claude-sonnet-4-5", 8_000, 1_000), "messages", AT, 4096)
    assert cost.nanos == usd("0.045")


def test_estimate_reaches_the_long_context_tier(book):
    # gemini-2.5-pro (no context window in the snapshot): 800_000 bytes -> 800_000 tokens > 200k,
    # so the upper tier: 800_000 x $2.50/M + 8_192 x $15/M = $2.00 + $0.12288 = $2.12288
    # The model is named in Gemini's URL, not the body: passed as `model=`.
    req = request(None, 800_000)
    cost = estimate_max_cost(book, "google", req, "generate", AT, 8192, model="gemini-2.5-pro")
    assert cost.nanos == usd("2.12288")


def test_estimate_with_override_limits():
    book = PriceBook({"acme-llm": {**ACME, "max_output_tokens": 2_000, "max_input_tokens": 50_000}})
    # Input capped at 50_000, priced at the dearest input rate (cache write $1.25/M);
    # output: no max_tokens in the request -> the override's 2_000, at the dearest
    # output rate (reasoning $5/M).
    #   50_000 x $1.25/M + 2_000 x $5/M = $0.0625 + $0.01 = $0.0725
    cost = estimate_max_cost(book, None, request("acme-llm", 80_000), "chat", AT, 4096)
    assert cost == Cost(usd("0.0725"), CONFIG_SOURCE)


def test_estimate_override_uses_genai_context_window_when_it_has_none():
    book = PriceBook({"gpt-4o": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}})
    # gpt-4o's 128_000-token window still caps the override's estimate:
    #   128_000 x $1/M + 1_000 x $1/M = $0.129
    cost = estimate_max_cost(book, "openai", request("gpt-4o", 500_000, 1_000), "chat", AT, 4096)
    assert cost.nanos == usd("0.129")


def test_estimate_unpriced(book):
    assert estimate_max_cost(book, "openai", request("no-such-model", 100, 10), "chat", AT, 4096) == UNPRICED
    assert estimate_max_cost(book, "openai", request(None, 100, 10), "chat", AT, 4096) == UNPRICED


@pytest.mark.parametrize(
    ("price_provider", "model", "kind", "input_bytes", "max_tokens", "usage"),
    [
        # A realistic chat call: ~4 bytes per token of JSON body, half the output budget used.
        ("openai", "gpt-4o", "chat", 5_000, 1_000, TokenUsage(1_200, 400, 0, 500, 0)),
        ("openai", "o3", "chat", 5_000, 4_000, TokenUsage(1_200, 0, 0, 4_000, 3_500)),
        ("anthropic", "claude-sonnet-4-5", "messages", 40_000, 2_000, TokenUsage(10_000, 0, 10_000, 2_000, 0)),
        ("google", "gemini-2.5-pro", "generate", 1_000_000, 8_000, TokenUsage(250_000, 50_000, 0, 8_000, 6_000)),
        ("perplexity", "sonar-deep-research", "chat", 2_000, 20_000, TokenUsage(500, 0, 0, 20_000, 15_000)),
    ],
)
def test_estimate_is_at_least_the_actual_cost(book, price_provider, model, kind, input_bytes, max_tokens, usage):
    req = request(model, input_bytes, max_tokens)
    estimate = estimate_max_cost(book, price_provider, req, kind, AT, 4096)
    actual = book.cost(price_provider, model, usage, AT)
    assert estimate.priced and actual.priced
    assert estimate.nanos >= actual.nanos
    # e.g. gpt-4o: estimate 5_000 x $2.50/M + 1_000 x $10/M = $0.0225;
    # actual 800 x $2.50/M + 400 x $1.25/M + 500 x $10/M = $0.002 + $0.0005 + $0.005 = $0.0075
    if model == "gpt-4o":
        assert (estimate.nanos, actual.nanos) == (usd("0.0225"), usd("0.0075"))


# --------------------------------------------------------------------------- fidelity


def _nanos(amount: Decimal) -> int:
    from pricing.prices import _to_nanos

    return _to_nanos(amount)


def _plain_calc_price(model, provider, usage: TokenUsage, at: datetime) -> Decimal:
    """genai-prices on its own: no zeroed keys, no fast path."""
    plain = genai_prices.Usage(
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_tokens=usage.output_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
    )
    return model.calc_price(plain, provider, genai_request_timestamp=at).total_price


# Settlement usages: plain, cached, cache write, reasoning, and one past 200k tokens
# (plus, for tiered prices, each tier start and one token past it: see below).
FIDELITY_USAGES = (
    TokenUsage(),
    TokenUsage(input_tokens=1_000, output_tokens=500),
    TokenUsage(input_tokens=5_000, cache_read_tokens=3_000, output_tokens=800),
    TokenUsage(input_tokens=12_000, cache_read_tokens=2_000, cache_write_tokens=8_000, output_tokens=700),
    TokenUsage(input_tokens=2_000, output_tokens=6_000, reasoning_tokens=5_000),
    TokenUsage(input_tokens=300_000, cache_read_tokens=70_000, cache_write_tokens=20_000, output_tokens=9_000,
               reasoning_tokens=4_000),
)
# Estimate bounds (input, output).
FIDELITY_BOUNDS = ((0, 0), (4_000, 1_000), (300_000, 8_192))
# Dates that reach the snapshot's price periods: before most price changes, AT, a later
# one, and the same day at two times (DeepSeek's off-peak hours).
FIDELITY_DATES = (
    datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
    AT,
    datetime(2026, 6, 1, 3, 0, tzinfo=UTC),
    datetime(2026, 6, 1, 17, 0, tzinfo=UTC),
)


def test_same_result_as_plain_genai_prices_for_every_model_in_the_snapshot():
    """Every model of the snapshot, every price set in force at any of FIDELITY_DATES:

    - `price_usd` (the linear fast path where the price set allows it, else `calc_price`
      with the keys TokenUsage doesn't report zeroed) gives the nanos plain genai-prices
      gives, for each usage, at each tier boundary;
    - the estimate (`max_price_usd`) gives the nanos plain genai-prices gives for the
      dearest usage, as the estimate did when it called `calc_price`;
    - and either refuses (ValueError) wherever genai-prices does.
    """
    from pricing.prices import ResolvedPrice, _unreported_priced_keys

    price_sets = linear_sets = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            resolved = ResolvedPrice(
                GENAI_PRICES_SOURCE, model=model, provider=provider, unreported=_unreported_priced_keys(model)
            )
            seen: set[int] = set()
            for at in FIDELITY_DATES:
                prices = model.get_prices(at)
                if id(prices) in seen:  # same price set, same results
                    continue
                seen.add(id(prices))
                price_sets += 1
                linear_sets += resolved._plan(at).linear
                starts = sorted(
                    {tier.start for value in vars(prices).values() if isinstance(value, genai_prices.types.TieredPrices)
                     for tier in value.tiers}
                )
                usages = list(FIDELITY_USAGES)
                bounds = list(FIDELITY_BOUNDS)
                for start in starts:
                    usages += [TokenUsage(input_tokens=n, cache_read_tokens=n // 4, cache_write_tokens=n // 8,
                                          output_tokens=3_000, reasoning_tokens=1_000) for n in (start, start + 1)]
                    bounds += [(start, 4_096), (start + 1, 4_096)]
                checks = [(usage, lambda usage=usage: resolved.price_usd(usage, at)) for usage in usages]
                checks += [
                    (resolved.dearest_usage(i, o, at), lambda i=i, o=o: resolved.max_price_usd(i, o, at))
                    for i, o in bounds
                ]
                for usage, ours in checks:
                    try:
                        expected = _plain_calc_price(model, provider, usage, at)
                    except ValueError:  # then ours must refuse it too
                        with pytest.raises(ValueError):
                            ours()
                        continue
                    assert _nanos(ours()) == _nanos(expected), (provider.id, model.id, at, usage)
    assert price_sets > 1500
    # The fast path is the rule, not the exception...
    assert linear_sets > 0.95 * price_sets, (linear_sets, price_sets)
    # ...and in particular covers the models people call most.
    book = PriceBook()
    for price_provider, model in [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5"), ("google", "gemini-2.5-pro")]:
        assert book.resolve(price_provider, model)._plan(AT).linear, model


def test_per_request_fee_in_cost_and_estimate(book):
    # Perplexity sonar: input $1/M, output $1/M, and $12 per thousand requests ($0.012 each).
    #   cost:     1_000 x $1/M + 500 x $1/M + $0.012 = $0.0135
    #   estimate: 4_000 x $1/M + 1_000 x $1/M + $0.012 = $0.017
    usage = TokenUsage(input_tokens=1_000, output_tokens=500)
    assert book.cost("perplexity", "sonar", usage, AT).nanos == usd("0.0135")
    cost = estimate_max_cost(book, "perplexity", request("sonar", 4_000, 1_000), "chat", AT, 4096)
    assert cost.nanos == usd("0.017")


def test_price_sets_off_the_fast_path_still_go_through_genai_prices():
    """A price set with a key whose usage nobody zeroes (here: gpt-4o's web searches, with
    `unreported` left empty) is not linear: settlement and estimate fall back to
    `calc_price`, with the same results."""
    from pricing.prices import ResolvedPrice

    provider, model = data_snapshot.get_snapshot().find_provider_model("gpt-4o", None, "openai", None)
    resolved = ResolvedPrice(GENAI_PRICES_SOURCE, model=model, provider=provider)
    assert not resolved._plan(AT).linear
    # 800 x $2.50/M + 200 x $1.25/M + 500 x $10/M = $0.002 + $0.00025 + $0.005 = $0.00725
    usage = TokenUsage(input_tokens=1000, cache_read_tokens=200, output_tokens=500, reasoning_tokens=100)
    assert resolved.price_usd(usage, AT) == Decimal("0.00725")
    # 4_000 x $2.50/M + 1_000 x $10/M = $0.02
    assert resolved.max_price_usd(4_000, 1_000, AT) == Decimal("0.02")


def test_per_model_memory_is_bounded(monkeypatch, book):
    """Model names come from clients: a flood of made-up names must not grow memory."""
    import pricing.prices

    monkeypatch.setattr(pricing.prices, "_RESOLUTION_CACHE_MAX", 3)
    for i in range(10):
        assert book.cost("openai", f"made-up-{i}", TokenUsage(input_tokens=1), AT) == UNPRICED
    assert len(book._resolved) <= 3
    # genai-prices' own lookup caches are dropped with ours.
    assert len(book._snapshot._provider_cache) + len(book._snapshot._provider_misses) <= 3
    assert book.cost("openai", "gpt-4o", TokenUsage(input_tokens=1000), AT).nanos == usd("0.0025")
