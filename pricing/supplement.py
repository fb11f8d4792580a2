"""Prices genai-prices lacks, as data, each with the page it comes from.

genai-prices is the price list: where it has the model and the unit, its price is the one
used, and nothing here changes it. This layer fills three kinds of gap:

- `FEES`: a price key a provider charges that genai-prices leaves out for some of its
  models (OpenAI's web search calls on gpt-4.1-nano, o3-mini...; Anthropic's web searches
  and 1-hour cache writes on a model that lacks them). Added to a model's price set only
  where the set has no such key.
- `TIERS`: a served tier genai-prices has no variant for on a model (OpenAI's `flex`
  where it lists none: flex is billed at Batch rates, half the standard ones).
- `UNIT_MODELS`: models genai-prices doesn't have at all, billed in units of spendgate's
  own (dall-e's images by size and quality, `images_<size>_<quality>`).

Known disagreement, left as genai-prices has it: OpenAI bills the older `web_search_preview`
tool on non-reasoning models (gpt-4o, gpt-4.1) at $25 per 1,000 calls with the search
content free, where genai-prices (and so spendgate) charges $10 per 1,000.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from core.vocab import PriceSource

__all__ = [
    "FEES",
    "SUPPLEMENT_SOURCE",
    "TIERS",
    "UNIT_MODELS",
    "Fee",
    "TierRule",
    "UnitModel",
    "fees_for",
    "tier_rule",
    "unit_model",
]

#: The `price_source` of a call priced here alone; "genai-prices x + spendgate supplement"
#: when a supplement price was part of a genai-prices price.
SUPPLEMENT_SOURCE = PriceSource.SUPPLEMENT

OPENAI_PRICING = "https://developers.openai.com/api/docs/pricing"
ANTHROPIC_PRICING = "https://docs.anthropic.com/en/docs/about-claude/pricing"


@dataclass(frozen=True, slots=True)
class Fee:
    """A genai-prices price key (`web_searches_kcount`...) for a provider's models, at a
    fixed price per the unit's `per`, or as `factor` times another of the model's prices."""

    provider: str  # genai-prices provider id
    price_key: str
    source: str
    usd: Decimal | None = None
    factor_of: str | None = None  # the price key `factor` multiplies
    factor: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class TierRule:
    """A served tier priced as `factor` times the standard token prices, where genai-prices
    has no variant of the model for it."""

    provider: str
    tier: str
    factor: Decimal
    source: str


@dataclass(frozen=True, slots=True)
class UnitModel:
    """A model genai-prices doesn't have: USD per unit, by unit name."""

    provider: str
    model: str
    prices: Mapping[str, Decimal]
    source: str


FEES: tuple[Fee, ...] = (
    Fee("openai", "web_searches_kcount", usd=Decimal("10"),
        source=f"{OPENAI_PRICING} (built-in tools: web search, $10.00 per 1k calls, all models)"),
    Fee("anthropic", "web_searches_kcount", usd=Decimal("10"),
        source=f"{ANTHROPIC_PRICING} (web search: $10 per 1,000 searches)"),
    Fee("anthropic", "cache_write_1h_mtok", factor_of="input_mtok", factor=Decimal(2),
        source=f"{ANTHROPIC_PRICING} (1-hour cache writes: 2x the base input price)"),
)

TIERS: tuple[TierRule, ...] = (
    TierRule("openai", "flex", Decimal("0.5"),
             source="https://developers.openai.com/api/docs/guides/flex-processing (tokens priced at Batch API "
                    "rates: 50% of standard)"),
)


def _usd(table: dict[str, str]) -> Mapping[str, Decimal]:
    return MappingProxyType({unit: Decimal(price) for unit, price in table.items()})


_DALLE_SOURCE = f"{OPENAI_PRICING} (image generation: DALL·E, per image)"

UNIT_MODELS: tuple[UnitModel, ...] = (
    UnitModel("openai", "dall-e-3", _usd({
        "images_1024x1024_standard": "0.040",
        "images_1024x1024_hd": "0.080",
        "images_1024x1792_standard": "0.080",
        "images_1792x1024_standard": "0.080",
        "images_1024x1792_hd": "0.120",
        "images_1792x1024_hd": "0.120",
    }), _DALLE_SOURCE),
    UnitModel("openai", "dall-e-2", _usd({
        "images_256x256_standard": "0.016",
        "images_512x512_standard": "0.018",
        "images_1024x1024_standard": "0.020",
    }), _DALLE_SOURCE),
)

_UNIT_MODELS = {(m.provider, m.model): m for m in UNIT_MODELS}
_UNIT_MODELS_BY_NAME = {m.model: m for m in UNIT_MODELS}


def fees_for(provider: str) -> tuple[Fee, ...]:
    return tuple(fee for fee in FEES if fee.provider == provider)


def tier_rule(provider: str, tier: str) -> TierRule | None:
    return next((rule for rule in TIERS if rule.provider == provider and rule.tier == tier), None)


def unit_model(provider: str | None, model: str) -> UnitModel | None:
    """The supplement's model of that name: under `provider`, or any provider's without one
    (a custom host serving it) or when the provider has none of that name (Azure's dall-e)."""
    name = model.strip().lower()
    return _UNIT_MODELS.get((provider, name)) or _UNIT_MODELS_BY_NAME.get(name)
