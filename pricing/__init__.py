"""Pricing: what a call cost (`PriceBook.cost`) and the most it can cost (`estimate_max_cost`)."""

from .estimate import estimate_max_cost, token_bounds
from .prices import (
    CONFIG_SOURCE,
    GENAI_PRICES_SOURCE,
    UNPRICED,
    UNPRICED_SOURCE,
    Cost,
    ModelPrice,
    PriceBook,
    ResolvedPrice,
)

__all__ = (
    "CONFIG_SOURCE",
    "GENAI_PRICES_SOURCE",
    "UNPRICED",
    "UNPRICED_SOURCE",
    "Cost",
    "ModelPrice",
    "PriceBook",
    "ResolvedPrice",
    "estimate_max_cost",
    "token_bounds",
)
