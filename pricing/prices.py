"""What a call cost: config overrides first, then genai-prices' bundled snapshot.

Money is kept as integer nano-dollars (1e-9 USD), computed in `Decimal` and rounded
once, half-up. A model nobody knows the price of costs `None`, never 0: a budget that
silently counts unknown calls as free is the bug this module exists to avoid.

Prices never come from the network: genai-prices' `UpdatePrices` is not used, and a
`PriceBook` pins the snapshot in force when it is built (the one bundled in the wheel).
"""

from __future__ import annotations

import logging
import re
import threading
from bisect import bisect_left
from collections.abc import Mapping
from copy import copy
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import genai_prices
from genai_prices import data_snapshot as _gp_snapshot
from genai_prices import types as _gp
from genai_prices.data_units import unit_data as _gp_units
from genai_prices.types import calc_unit_price as _gp_unit_price
from genai_prices.units import _get_registry as _gp_registry

from core.usage import TOKEN_CLASSES, TokenUsage
from core.vocab import STANDARD_TIERS, PriceSource

from . import supplement
from .supplement import SUPPLEMENT_SOURCE, Fee, UnitModel

__all__ = (
    "CONFIG_SOURCE",
    "GENAI_PRICES_SOURCE",
    "SUPPLEMENT_SOURCE",
    "UNPRICED",
    "UNPRICED_SOURCE",
    "Cost",
    "ModelPrice",
    "PriceBook",
    "ResolvedPrice",
)

logger = logging.getLogger(__name__)

GENAI_PRICES_SOURCE = f"genai-prices {genai_prices.__version__}"
CONFIG_SOURCE = PriceSource.CONFIG
UNPRICED_SOURCE = PriceSource.UNPRICED

_NANOS_PER_USD = Decimal(1_000_000_000)
_ONE = Decimal(1)
_ZERO = Decimal(0)

# Bounds on per-model memory: model names come from client request bodies.
_RESOLUTION_CACHE_MAX = 4096
_UNPRICED_SEEN_MAX = 10_000

# `-2024-08-06`, `-20250929` (OpenAI / Anthropic) and `@20250929` (Vertex) date suffixes.
_DATE_SUFFIX = re.compile(r"[-@](?:\d{4}-\d{2}-\d{2}|\d{8})$")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of a call in nano-dollars; `nanos is None` means nobody knows its price."""

    nanos: int | None
    source: str  # GENAI_PRICES_SOURCE, CONFIG_SOURCE or UNPRICED_SOURCE

    @property
    def priced(self) -> bool:
        return self.nanos is not None

    @property
    def usd(self) -> float | None:
        return None if self.nanos is None else self.nanos / 1e9


UNPRICED = Cost(None, UNPRICED_SOURCE)


def _to_nanos(usd: Decimal) -> int:
    return int((usd * _NANOS_PER_USD).quantize(_ONE, rounding=ROUND_HALF_UP))


def _decimal(field: str, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))  # 2.5e-06 -> Decimal('0.0000025'), not its binary expansion
    elif isinstance(value, str):
        result = Decimal(value.strip())
    else:
        raise ValueError(f"{field}: expected a number, got {value!r}")
    if not result.is_finite() or result < 0:
        raise ValueError(f"{field}: expected a finite non-negative number, got {value!r}")
    return result


def _optional_int(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{field}: expected a positive integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """A config `pricing:` entry, LiteLLM field names, USD per token.

    Cache and reasoning prices are optional: a missing cache price bills those tokens
    as plain input, a missing reasoning price bills reasoning as plain output.
    """

    input_cost_per_token: Decimal
    output_cost_per_token: Decimal = _ZERO
    cache_read_input_token_cost: Decimal | None = None
    cache_creation_input_token_cost: Decimal | None = None
    output_cost_per_reasoning_token: Decimal | None = None
    max_output_tokens: int | None = None
    max_input_tokens: int | None = None

    @classmethod
    def from_config(cls, entry: Any) -> ModelPrice:
        """Build from a plain dict or any object with the LiteLLM attribute names
        (such as the config package's pydantic `ModelPricing`)."""
        if isinstance(entry, ModelPrice):
            return entry
        if isinstance(entry, Mapping):
            get = entry.get
        else:
            def get(name: str, default: Any = None) -> Any:
                return getattr(entry, name, default)

        input_cost = get("input_cost_per_token")
        if input_cost is None:
            raise ValueError("input_cost_per_token is required")
        output_cost = get("output_cost_per_token")

        def optional(name: str) -> Decimal | None:
            value = get(name)
            return None if value is None else _decimal(name, value)

        return cls(
            input_cost_per_token=_decimal("input_cost_per_token", input_cost),
            output_cost_per_token=_ZERO if output_cost is None else _decimal("output_cost_per_token", output_cost),
            cache_read_input_token_cost=optional("cache_read_input_token_cost"),
            cache_creation_input_token_cost=optional("cache_creation_input_token_cost"),
            output_cost_per_reasoning_token=optional("output_cost_per_reasoning_token"),
            max_output_tokens=_optional_int("max_output_tokens", get("max_output_tokens")),
            max_input_tokens=_optional_int("max_input_tokens", get("max_input_tokens")),
        )


# --------------------------------------------------------------------------- usage


def _consistent(usage: TokenUsage) -> TokenUsage:
    """Clamp a usage to the TokenUsage conventions before pricing it.

    Negative counts become 0. If the cache counts exceed `input_tokens` (or reasoning
    exceeds `output_tokens`), a parser left them out of the total: the total is raised
    to the sum of its parts rather than pricing fewer tokens than were reported, and
    genai-prices (which rejects such usage) is never handed an inconsistent one.
    """
    if (0 <= usage.reasoning_tokens <= usage.output_tokens and usage.cache_read_tokens >= 0
            and usage.cache_write_tokens >= 0
            and usage.cache_read_tokens + usage.cache_write_tokens <= usage.input_tokens):
        return usage  # the usual usage: already consistent (what the clamps below would leave)
    cache_read = max(usage.cache_read_tokens, 0)
    cache_write = max(usage.cache_write_tokens, 0)
    reasoning = max(usage.reasoning_tokens, 0)
    fixed = dict(
        input_tokens=max(usage.input_tokens, cache_read + cache_write),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=max(usage.output_tokens, reasoning),
        reasoning_tokens=reasoning,
    )
    if fixed == usage.tokens():
        return usage
    return replace(usage, **fixed)


#: genai-prices' name of each TokenUsage token class (the others are the same).
_GENAI_NAMES = {"reasoning_tokens": "output_reasoning_tokens"}
# The genai-prices usage keys a TokenUsage's token classes fill in.
_REPORTED_KEYS = frozenset(_GENAI_NAMES.get(name, name) for name in TOKEN_CLASSES)


def _genai_usage(usage: TokenUsage, unreported: Mapping[str, int]) -> genai_prices.Usage:
    # Same conventions on both sides (totals include their breakdowns), so no arithmetic.
    # `output_reasoning_tokens` is a breakdown of `output_tokens` in genai-prices: it only
    # changes the result for a model with its own reasoning price (`output_reasoning_mtok`,
    # e.g. Perplexity's sonar-deep-research); otherwise it stays billed as output, once.
    # `unreported` zeroes the other keys the model prices (web searches, audio tokens...):
    # what genai-prices would infer for them anyway, without its costly inference; the
    # usage's own `units` (genai-prices names) replace those zeroes.
    tokens = {_GENAI_NAMES.get(name, name): value for name, value in usage.tokens().items()}
    units = {name: value for name, value in usage.units.items() if name in _gp_units}
    return genai_prices.Usage(**tokens, **{**unreported, **units})


def _price_sets(model: _gp.ModelInfo) -> list[_gp.ModelPrice]:
    """Every period's prices of a model."""
    return [model.prices] if isinstance(model.prices, _gp.ModelPrice) else [c.prices for c in model.prices]


def _unreported_priced_keys(model: _gp.ModelInfo, fees: tuple[Fee, ...] = ()) -> dict[str, int]:
    """Usage keys some price of `model` (any period, any variant) or a supplement fee
    charges for that TokenUsage doesn't report, each mapped to 0. (`requests` is counted
    by genai-prices itself.)"""
    price_sets = _price_sets(model) + [variant.prices for variant in model.price_variants or ()]
    fee_keys = {fee.price_key for fee in fees}
    return {
        usage_key: 0
        for usage_key, unit in _gp_units.items()
        if usage_key not in _REPORTED_KEYS
        and usage_key != "requests"
        and (unit.get("price_key", usage_key) in fee_keys
             or any(getattr(prices, unit.get("price_key", usage_key), None) is not None for prices in price_sets))
    }


# --------------------------------------------------------------------------- rates


@dataclass(frozen=True, slots=True)
class _Rates:
    """USD per token of each class TokenUsage reports, plus a fixed fee per request.

    A class without a price of its own costs as its parent (cache as input, reasoning
    as output), which is also how genai-prices bills it: its leaf decomposition leaves
    unpriced cache or reasoning tokens inside input or output.
    """

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal
    request: Decimal = _ZERO

    def usd(self, usage: TokenUsage) -> Decimal:
        """Price of a (consistent) usage: one multiply-add per class.

        Exact in Decimal (28 digits hold any real count times any listed price), so it
        equals genai-prices' price x count / per, whichever order it rounds nothing in.
        """
        return (
            usage.uncached_input_tokens * self.input
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
            + (usage.output_tokens - usage.reasoning_tokens) * self.output
            + usage.reasoning_tokens * self.reasoning
            + self.request
        )

    def max_usd(self, input_tokens: int, output_tokens: int) -> Decimal:
        """`usd` of the dearest usage (see `dearest`), without building it."""
        return (
            input_tokens * max(self.input, self.cache_write, self.cache_read)
            + output_tokens * max(self.output, self.reasoning)
            + self.request
        )

    def dearest(self, input_tokens: int, output_tokens: int) -> TokenUsage:
        """The costliest way `input_tokens` in and `output_tokens` out can be billed."""
        cache_read = cache_write = 0  # on a tie: plain input, then cache write
        if self.input < max(self.cache_write, self.cache_read):
            if self.cache_write >= self.cache_read:
                cache_write = input_tokens
            else:
                cache_read = input_tokens
        return TokenUsage(
            input_tokens=input_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            output_tokens=output_tokens,
            reasoning_tokens=output_tokens if self.reasoning > self.output else 0,
        )


# genai-prices price keys `_Rates` reads: the token classes TokenUsage reports, and requests.
_TOKEN_PER = _gp_units["input_tokens"]["per"]
_REQUEST_KEY, _REQUEST_PER = _gp_units["requests"]["price_key"], _gp_units["requests"]["per"]
_RATE_KEYS = frozenset(
    {"input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok", "output_reasoning_mtok", _REQUEST_KEY}
)
_PRICE_KEY_USAGE = {unit.get("price_key", usage_key): usage_key for usage_key, unit in _gp_units.items()}


@dataclass(frozen=True, slots=True)
class _Plan:
    """One price set's `_Rates` for each input-tier segment, worked out once.

    `starts` are the distinct tier starts of all its prices, ascending: `rates[k]` applies
    when exactly k of them are below the input tokens (genai-prices: a tier applies to
    every token once the input exceeds its start). `linear` says `_Rates.usd` gives
    exactly what genai-prices' `calc_price` would, so settlement can skip it.
    """

    prices: object  # the price set (or override) this plan was made from
    starts: tuple[int, ...]
    rates: tuple[_Rates, ...]
    linear: bool
    #: The set has a per-token price (input or output): a usage with tokens can be priced.
    token_priced: bool = True
    #: Usage keys the set prices, itself or through a broader unit (`input_audio_tokens`
    #: through `input_tokens`): a usage with units outside it can't be priced.
    covered: frozenset[str] = frozenset()
    #: Usage keys priced by the supplement (pricing/supplement.py), not genai-prices.
    supplemented: frozenset[str] = frozenset()
    #: Said after the source when a price came from this plan's tier handling.
    tier_note: str = ""
    #: The set is genai-prices' own, unaltered: its model's `calc_price` prices it.
    native: bool = True
    #: The set `calc_price` is run on when it isn't (fees added, a tier's prices).
    priced: object = None

    def rates_for(self, input_tokens: int) -> _Rates:
        return self.rates[bisect_left(self.starts, input_tokens)] if self.starts else self.rates[0]

    def covers(self, usage: TokenUsage) -> bool:
        if (usage.input_tokens or usage.output_tokens) and not self.token_priced:
            return False
        return all(not n or name in self.covered for name, n in usage.units.items())

    def source(self, base: str, usage: TokenUsage) -> str:
        if self.tier_note:
            return f"{base}{self.tier_note}"
        if self.supplemented and any(usage.units.get(key) for key in self.supplemented):
            return f"{base} + {SUPPLEMENT_SOURCE}"
        return base


def _override_plan(override: ModelPrice) -> _Plan:
    input_rate, output_rate = override.input_cost_per_token, override.output_cost_per_token
    rates = _Rates(
        input=input_rate,
        cache_read=_or(override.cache_read_input_token_cost, input_rate),
        cache_write=_or(override.cache_creation_input_token_cost, input_rate),
        output=output_rate,
        reasoning=_or(override.output_cost_per_reasoning_token, output_rate),
    )
    return _Plan(override, (), (rates,), linear=True)


def _genai_plan(prices: _gp.ModelPrice, unreported: Mapping[str, int], fees: tuple[Fee, ...] = (), *,
                tier_note: str = "", native: bool = True, key: object = None) -> _Plan:
    """The plan of a genai-prices price set, with the supplement's `fees` it lacks added.
    `key` is what the plan is checked against in the cache (the set itself by default)."""
    priced, supplemented = _with_fees(prices, fees)
    tiered = [price for name in _RATE_KEYS if isinstance(price := getattr(priced, name, None), _gp.TieredPrices)]
    starts = sorted({tier.start for price in tiered for tier in price.tiers})
    # An input count in each segment: no more than the first start, then one past each.
    samples = [starts[0] if starts else 0] + [start + 1 for start in starts]
    usage_keys = {usage_key for price_key, usage_key in _PRICE_KEY_USAGE.items()
                  if getattr(priced, price_key, None) is not None}
    ancestors = _gp_registry().ancestor_usage_keys
    return _Plan(
        prices if key is None else key,
        tuple(starts),
        tuple(_genai_rates(priced, input_tokens) for input_tokens in samples),
        linear=_is_linear(priced, unreported),
        token_priced=getattr(priced, "input_mtok", None) is not None or getattr(priced, "output_mtok", None) is not None,
        covered=frozenset(u for u in _gp_units if u in usage_keys or ancestors(u) & usage_keys),
        supplemented=supplemented,
        tier_note=tier_note,
        native=native and priced is prices,
        priced=priced,
    )


def _with_fees(prices: _gp.ModelPrice, fees: tuple[Fee, ...]) -> tuple[_gp.ModelPrice, frozenset[str]]:
    """`prices` with each of `fees` it has no price for added (a copy), and the usage keys
    they price. A fee genai-prices would refuse beside the set's prices is left out."""
    extra: dict[str, Decimal | _gp.TieredPrices] = {}
    for fee in fees:
        if getattr(prices, fee.price_key, None) is not None:
            continue
        if fee.usd is not None:
            extra[fee.price_key] = fee.usd
        elif fee.factor_of and (base := getattr(prices, fee.factor_of, None)) is not None:
            extra[fee.price_key] = _scaled(base, fee.factor)
    if not extra:
        return prices, frozenset()
    priced = copy(prices)
    priced.__dict__.update(extra)
    try:
        priced.calc_price(genai_prices.Usage())
    except (ValueError, ArithmeticError):
        return prices, frozenset()
    return priced, frozenset(_PRICE_KEY_USAGE[key] for key in extra)


def _scaled(price: Decimal | _gp.TieredPrices, factor: Decimal) -> Decimal | _gp.TieredPrices:
    if isinstance(price, _gp.TieredPrices):
        return _gp.TieredPrices(base=price.base * factor,
                                tiers=[_gp.Tier(start=t.start, price=t.price * factor) for t in price.tiers])
    return price * factor


def _scaled_tokens(prices: _gp.ModelPrice, factor: Decimal) -> _gp.ModelPrice:
    """A copy of `prices` with every per-token price times `factor` (a tier's discount)."""
    scaled = copy(prices)
    for key, value in vars(prices).items():
        if value is not None and key.endswith("_mtok"):
            scaled.__dict__[key] = _scaled(value, factor)
    return scaled


def _genai_rates(prices: _gp.ModelPrice, input_tokens: int) -> _Rates:
    def rate(price_key: str, parent: Decimal) -> Decimal:
        price = getattr(prices, price_key, None)
        return parent if price is None else _gp_unit_price(price, 1, input_tokens, _TOKEN_PER)

    input_rate = rate("input_mtok", _ZERO)
    output_rate = rate("output_mtok", _ZERO)
    fee = getattr(prices, _REQUEST_KEY, None)
    return _Rates(
        input=input_rate,
        cache_read=rate("cache_read_mtok", input_rate),
        cache_write=rate("cache_write_mtok", input_rate),
        output=output_rate,
        reasoning=rate("output_reasoning_mtok", output_rate),
        request=_ZERO if fee is None else _gp_unit_price(fee, 1, input_tokens, _REQUEST_PER),
    )


def _is_linear(prices: _gp.ModelPrice, unreported: Mapping[str, int]) -> bool:
    """Whether `calc_price` on this price set is exactly `_Rates.usd`.

    It is when every price it holds is one of `_RATE_KEYS` (per token, tier by total
    input, as `_genai_rates` reads them; the request fee once per call), or a key
    whose usage `unreported` zeroes (web searches, 1h cache writes, audio tokens...: a
    leaf of 0, which costs 0 and takes nothing from its parent's leaf); and genai-prices
    accepts the set (valid values, ancestor and join prices), checked by pricing a zero
    usage with it once. Anything else keeps going through `calc_price`.
    """
    for key, value in vars(prices).items():
        if key.startswith("_") or value is None or key in _RATE_KEYS:
            continue
        if _PRICE_KEY_USAGE.get(key) not in unreported:
            return False
    try:
        prices.calc_price(_genai_usage(TokenUsage(), unreported))
    except (ValueError, ArithmeticError):
        return False
    return True


# --------------------------------------------------------------------------- resolution



PriceContext = Mapping[str, str]


def _context_key(context: PriceContext | None) -> tuple[tuple[str, str], ...] | None:
    """The context's items that can change a price (a standard tier can't), or None."""
    if not context:
        return None
    if len(context) == 1:  # the usual case (a tier, and most often a standard one): no sorting
        for name, value in context.items():
            if not isinstance(value, str) or not value or (value := value.lower()) in STANDARD_TIERS:
                return None
            return ((name, value),)
    items = tuple(sorted((name, value.lower()) for name, value in context.items()
                         if isinstance(value, str) and value and value.lower() not in STANDARD_TIERS))
    return items or None


@dataclass(frozen=True, slots=True)
class ResolvedPrice:
    """Where a (provider, model) pair gets its price from, looked up once and cached.

    Exactly one of `override`, `model` and `unit_model` prices the call; `model` may also
    be set beside an override, only to tell the context window. `fees` are the supplement's
    prices genai-prices may lack for the model (added to a price set only where it does).
    """

    source: str
    override: ModelPrice | None = None
    model: _gp.ModelInfo | None = None
    provider: _gp.Provider | None = None
    unreported: Mapping[str, int] = field(default_factory=dict, repr=False)
    fees: tuple[Fee, ...] = ()
    unit_model: UnitModel | None = None
    # Per price set, by identity: the model holds its sets as long as we hold the model
    # (`plan.prices is prices` is checked anyway). A race only computes a plan twice.
    _plans: dict[int, _Plan] = field(default_factory=dict, init=False, repr=False, compare=False)
    # Per (price set, context) for calls served at a tier with prices of its own.
    _context_plans: dict[tuple[int, tuple[tuple[str, str], ...]], _Plan] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @property
    def context_window(self) -> int | None:
        """Most input tokens the model accepts: the override's `max_input_tokens`, else genai-prices'."""
        if self.override is not None and self.override.max_input_tokens is not None:
            return self.override.max_input_tokens
        return self.model.context_window if self.model is not None else None

    @property
    def max_output_tokens(self) -> int | None:
        return self.override.max_output_tokens if self.override is not None else None

    def price_usd(self, usage: TokenUsage, at: datetime, context: PriceContext | None = None) -> Decimal:
        """Exact USD price of a usage (already made consistent) at time `at`.

        `_Rates.usd` on the rates in force at `at`, at the tier `usage.input_tokens` falls
        in: (input - cache_read - cache_write) x input + cache_read x cache_read
        + cache_write x cache_write + (output - reasoning) x output + reasoning x reasoning
        (+ a per-request fee). For a genai-prices price set that holds anything else, or a
        usage with units, its own `calc_price`: ~100 µs against ~5 for the formula, which
        gives the same nanos wherever it is used (tests/test_pricing.py checks every model
        of the snapshot). A unit model sums its units' prices.
        """
        if self.unit_model is not None:
            prices = self.unit_model.prices
            return sum((prices.get(name, _ZERO) * n for name, n in usage.units.items()), _ZERO)
        plan = self._plan(at, context)
        if plan.linear and (not usage.units or self.override is not None):
            return plan.rates_for(usage.input_tokens).usd(usage)
        return self._calc_price(plan, usage, at)

    def quote(self, usage: TokenUsage, at: datetime, context: PriceContext | None = None) -> tuple[Decimal, str] | None:
        """(`price_usd`, `source_for`) of a consistent usage, or None when `covers` says no:
        the price set is looked up once."""
        if self.unit_model is not None:
            if not self.covers(usage, at):
                return None
            return self.price_usd(usage, at), self.source
        plan = self._plan(at, context)
        if plan.linear and (not usage.units or self.override is not None):
            if not plan.token_priced and (usage.input_tokens or usage.output_tokens):
                return None
            return plan.rates_for(usage.input_tokens).usd(usage), self.source + plan.tier_note  # no units here
        if self.override is None and not plan.covers(usage):
            return None
        return self._calc_price(plan, usage, at), plan.source(self.source, usage)

    def covers(self, usage: TokenUsage, at: datetime, context: PriceContext | None = None) -> bool:
        """Whether every quantity `usage` is billed for has a price here: tokens need a
        per-token price, units a price of their own or of a broader unit. (A config
        override prices tokens only, whatever else the call reports.)"""
        if self.override is not None:
            return True
        if self.unit_model is not None:
            prices = self.unit_model.prices
            return not (usage.input_tokens or usage.output_tokens) and all(
                not n or name in prices for name, n in usage.units.items())
        return self._plan(at, context).covers(usage)

    def source_for(self, usage: TokenUsage, at: datetime, context: PriceContext | None = None) -> str:
        """`source`, and whether the supplement priced part of `usage` or its tier."""
        if self.override is not None or self.unit_model is not None:
            return self.source
        return self._plan(at, context).source(self.source, usage)

    def max_price_usd(self, input_tokens: int, output_tokens: int, at: datetime,
                      context: PriceContext | None = None) -> Decimal:
        """`price_usd` of the dearest usage (see `dearest_usage`): the reservation estimate."""
        return self._max_price(self._plan(at, context), input_tokens, output_tokens, at)

    def max_quote(self, input_tokens: int, output_tokens: int, at: datetime,
                  context: PriceContext | None = None) -> Decimal | None:
        """`max_price_usd`, or None for a model without per-token prices (tts-1's characters,
        dall-e's images): tokens can't be priced there at all."""
        if self.unit_model is not None:
            return None
        plan = self._plan(at, context)
        return self._max_price(plan, input_tokens, output_tokens, at) if plan.token_priced else None

    def _max_price(self, plan: _Plan, input_tokens: int, output_tokens: int, at: datetime) -> Decimal:
        rates = plan.rates_for(input_tokens)
        if plan.linear:
            return rates.max_usd(input_tokens, output_tokens)
        return self._calc_price(plan, rates.dearest(input_tokens, output_tokens), at)

    def dearest_usage(self, input_tokens: int, output_tokens: int, at: datetime) -> TokenUsage:
        """The costliest way `input_tokens` in and `output_tokens` out can be billed.

        Input goes to whichever class is dearest per token (plain input, cache write or
        cache read: Anthropic's cache writes cost 1.25x input), output to plain or
        reasoning. Rates are compared at the tier `input_tokens` falls in.
        """
        return self._plan(at).rates_for(input_tokens).dearest(input_tokens, output_tokens)

    def _calc_price(self, plan: _Plan, usage: TokenUsage, at: datetime) -> Decimal:
        assert self.model is not None and self.provider is not None
        genai_usage = _genai_usage(usage, self.unreported)
        if plan.native:
            return self.model.calc_price(genai_usage, self.provider, genai_request_timestamp=at).total_price
        return plan.priced.calc_price(genai_usage)["total_price"]  # type: ignore[attr-defined]

    def _plan(self, at: datetime, context: PriceContext | None = None) -> _Plan:
        """The plan of the price set in force at `at` (the override's, whatever `at`), at
        the tier `context` names if it prices differently."""
        if self.override is not None:
            prices: object = self.override
        else:
            assert self.model is not None
            prices = self.model.get_prices(at)
        if context is not None and self.override is None:
            key = _context_key(context)
            if key is not None:
                return self._context_plan(prices, at, key)  # type: ignore[arg-type]
        plan = self._plans.get(id(prices))
        if plan is None or plan.prices is not prices:
            if self.override is not None:
                plan = _override_plan(self.override)
            else:
                plan = _genai_plan(prices, self.unreported, self.fees)  # type: ignore[arg-type]
            self._plans[id(prices)] = plan
        return plan

    def _context_plan(self, standard: _gp.ModelPrice, at: datetime, key: tuple[tuple[str, str], ...]) -> _Plan:
        """The plan at a tier (`service_tier: flex`, `speed: fast`): genai-prices' variant of
        the model for it where it has one; else the supplement's rule for the tier (flex at
        half price); else the standard prices, and the source says so."""
        cache_key = (id(standard), key)
        plan = self._context_plans.get(cache_key)
        if plan is not None and plan.prices is standard:
            return plan
        assert self.model is not None and self.provider is not None
        context = dict(key)
        own = any(self.model is m for m in self.provider.models)  # genai-prices: variants only of its own
        prices = self.model.get_prices(at, context) if own else standard
        notes = []
        for name, value in key:
            if own and self._has_variant(at, name, value):
                continue
            rule = supplement.tier_rule(self.provider.id, value) if name == "service_tier" else None
            if rule is not None:
                prices = _scaled_tokens(prices, rule.factor)
                notes.append(f" + {SUPPLEMENT_SOURCE} ({value} tier)")
            else:
                notes.append(f" ({name} {value}: no price of its own, standard prices)")
        plan = _genai_plan(prices, self.unreported, self.fees, tier_note="".join(notes), native=False, key=standard)
        if len(self._context_plans) > 64:  # tiers come from responses: keep the cache small
            self._context_plans.clear()
        self._context_plans[cache_key] = plan
        return plan

    def _has_variant(self, at: datetime, name: str, value: str) -> bool:
        assert self.model is not None
        return any(
            variant.when.get(name) == value and (variant.constraint is None or variant.constraint.active(at))
            for variant in self.model.price_variants or ()
        )


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


def _has_prices(model: _gp.ModelInfo) -> bool:
    """Whether a model has a price of any kind: per token, or only per audio hour, character...
    (which `ResolvedPrice.covers` then checks the usage against)."""
    return any(
        any(value is not None for key, value in vars(prices).items() if not key.startswith("_"))
        for prices in _price_sets(model)
    )


def _without_prefix(model: str) -> str:
    """`openai/gpt-4o` -> `gpt-4o`, `models/gemini-2.5-pro` -> `gemini-2.5-pro`."""
    return model.rsplit("/", 1)[-1]


def _without_date(model: str) -> str:
    """`gpt-4o-2024-08-06` -> `gpt-4o`, `claude-sonnet-4-5-20250929` -> `claude-sonnet-4-5`."""
    return _DATE_SUFFIX.sub("", model)


def _unique(names: list[str]) -> list[str]:
    return [name for i, name in enumerate(names) if name and name not in names[:i]]


class PriceBook:
    """Prices calls: config overrides win, then genai-prices' bundled snapshot.

    Model resolution is cached per (price_provider, model); pricing itself depends on
    the usage and on `at` (the price in force at the time of the request).
    """

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self._overrides: dict[str, ModelPrice] = {
            name.strip().lower(): ModelPrice.from_config(entry) for name, entry in (overrides or {}).items()
        }
        # Pinned: a custom snapshot installed later (by anyone's UpdatePrices) is not picked up.
        # Our own DataSnapshot over the same data, so that genai-prices' lookup caches (which
        # grow with every distinct model name a client sends) are ours to drop.
        self._providers = _gp_snapshot.get_snapshot().providers
        self._snapshot = self._new_snapshot()
        self._resolved: dict[tuple[str | None, str | None], ResolvedPrice | None] = {}
        self._unpriced_seen: set[tuple[str | None, str | None]] = set()
        self._lock = threading.Lock()

    # ---- public API

    def cost(self, price_provider: str | None, model: str | None, usage: TokenUsage, at: datetime,
             context: PriceContext | None = None) -> Cost:
        """What `usage` of `model` cost at time `at`, served at the tier `context` names
        (`{"service_tier": "flex"}`); `Cost(None, "unpriced")` if nobody knows."""
        resolved = self.resolve(price_provider, model)
        if resolved is None:
            return UNPRICED
        return self.price(resolved, usage, at, context)

    def is_priced(self, price_provider: str | None, model: str | None) -> bool:
        return self.resolve(price_provider, model) is not None

    def unpriced_first_seen(self, price_provider: str | None, model: str | None) -> bool:
        """True the first time this (provider, model) is reported unpriced, for warn-once logging.

        Remembers at most 10,000 models (names come from clients); past that, False.
        """
        key = (price_provider, model)
        with self._lock:
            if key in self._unpriced_seen or len(self._unpriced_seen) >= _UNPRICED_SEEN_MAX:
                return False
            self._unpriced_seen.add(key)
            return True

    def resolve(self, price_provider: str | None, model: str | None) -> ResolvedPrice | None:
        """Where this model's price comes from, or None if unpriced. Cached; used by
        `cost()` and by the reservation estimate alike."""
        key = (price_provider, model)
        try:
            return self._resolved[key]
        except KeyError:
            pass
        resolved = self._resolve_uncached(price_provider, model) if model else None
        if len(self._resolved) >= _RESOLUTION_CACHE_MAX:
            self._resolved.clear()
            self._snapshot = self._new_snapshot()
        self._resolved[key] = resolved
        return resolved

    def price(self, resolved: ResolvedPrice, usage: TokenUsage, at: datetime,
              context: PriceContext | None = None) -> Cost:
        """Price `usage` with an already resolved model (see `resolve`): unpriced when part
        of it has no price (tokens of a model priced per character, an image size nobody
        lists), never a cost that leaves it out."""
        try:
            quoted = resolved.quote(_consistent(usage), at, context)
        except (ValueError, ArithmeticError) as exc:  # a genai-prices data problem must not break a flow
            logger.warning("pricing %s failed: %s", resolved.model.id if resolved.model else "?", exc)
            return UNPRICED
        if quoted is None:
            return UNPRICED
        return Cost(_to_nanos(quoted[0]), quoted[1])

    def max_price(self, resolved: ResolvedPrice, input_tokens: int, output_tokens: int, at: datetime,
                  context: PriceContext | None = None) -> Cost:
        """The most `input_tokens` in and `output_tokens` out can cost (see `ResolvedPrice.max_price_usd`);
        unpriced for a model without per-token prices."""
        try:
            usd = resolved.max_quote(input_tokens, output_tokens, at, context)
        except (ValueError, ArithmeticError) as exc:  # a genai-prices data problem must not break a flow
            logger.warning("pricing %s failed: %s", resolved.model.id if resolved.model else "?", exc)
            return UNPRICED
        return UNPRICED if usd is None else Cost(_to_nanos(usd), resolved.source)

    # ---- resolution

    def _new_snapshot(self) -> _gp_snapshot.DataSnapshot:
        return _gp_snapshot.DataSnapshot(providers=self._providers, from_auto_update=False)

    def _resolve_uncached(self, price_provider: str | None, model: str) -> ResolvedPrice | None:
        found = self._find_genai(price_provider, model)
        override = self._find_override(model)
        if override is not None:
            return ResolvedPrice(
                CONFIG_SOURCE,
                override=override,
                model=found[1] if found else None,
                provider=found[0] if found else None,
            )
        if found is None:
            own = supplement.unit_model(price_provider, _without_prefix(model))
            return ResolvedPrice(SUPPLEMENT_SOURCE, unit_model=own) if own is not None else None
        provider, model_info = found
        fees = supplement.fees_for(provider.id)
        return ResolvedPrice(
            GENAI_PRICES_SOURCE, model=model_info, provider=provider, fees=fees,
            unreported=_unreported_priced_keys(model_info, fees),
        )

    def _find_override(self, model: str) -> ModelPrice | None:
        name = model.strip().lower()
        bare = _without_prefix(name)
        for candidate in _unique([name, bare, _without_date(name), _without_date(bare)]):
            if (override := self._overrides.get(candidate)) is not None:
                return override
        return None

    def _find_genai(self, price_provider: str | None, model: str) -> tuple[_gp.Provider, _gp.ModelInfo] | None:
        """genai-prices' own matching: with the endpoint's provider first, then (for a
        provider that lacks the model, e.g. Azure, or a custom host) by model name alone;
        each also with a `provider/` prefix stripped."""
        name = model.strip()
        refs = _unique([name, _without_prefix(name)])
        attempts = [(price_provider, ref) for ref in refs] if price_provider else []
        attempts += [(None, ref) for ref in refs]
        for provider_id, ref in attempts:
            try:
                provider, info = self._snapshot.find_provider_model(ref, None, provider_id, None)
            except LookupError:
                continue
            if _has_prices(info):
                return provider, info
        return None
