"""What spendgate answers in the provider's place, before any transport renders it.

A `Refusal` is a status, an error type and a message a person can act on; the HTTP adapter
renders it as a JSON error response (addon/replies.py), the WebSocket adapter as an
`error` event on the socket. The wording of a budget refusal follows LiteLLM's, then gives
the figures needed to act on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from core.vocab import ScopeKind
from ledger import Denial, nanos_to_usd

__all__ = ["Refusal", "budget_exceeded", "budget_message", "refusal"]

SCOPE_LABELS = {ScopeKind.GLOBAL: "Proxy", ScopeKind.TEAM: "Team", ScopeKind.USER: "User", ScopeKind.KEY: "Key"}


@dataclass(eq=False)
class Refusal(Exception):
    """The call is answered by spendgate with this error instead of being forwarded."""

    status: int
    type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    denial: Denial | None = None  # when a budget refused it

    def __str__(self) -> str:
        return f"{self.status} {self.type}: {self.message}"


def refusal(status: int, type_: str, message: str, **headers: str) -> Refusal:
    return Refusal(status, type_, message, headers)


def _usd(nanos: int | None) -> str:
    """Dollars and cents, as the seed writes them; sub-dollar figures keep four decimals."""
    usd = nanos_to_usd(nanos or 0)
    return f"${usd:,.2f}" if usd >= 1 or usd == 0 else f"${usd:.4f}"


def budget_message(denial: Denial, label: str | None = None) -> str:
    """The seed's wording first, then the figures a person needs to act on it."""
    st = denial.scope
    if st.kind == ScopeKind.GLOBAL:
        text = f"Proxy budget exceeded. Max budget: {_usd(st.max_nanos)}. Spend: {_usd(st.spend_nanos)}"
    else:
        name = label or st.id
        text = (
            f"{SCOPE_LABELS.get(st.kind, st.kind.title())} '{name}' budget exceeded: "
            f"spend {_usd(st.spend_nanos)} / max {_usd(st.max_nanos)}"
        )
    if st.spend_nanos < (st.max_nanos or 0):
        text += (
            f"; this call may cost up to {_usd(denial.amount_nanos)}"
            f" and {_usd(st.reserved_nanos)} is held by calls in flight"
        )
    if st.reset_at is not None:
        text += f", resets {st.reset_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    return text


def budget_exceeded(denial: Denial, now: datetime, label: str | None = None) -> Refusal:
    """429 `budget_exceeded`, with `x-should-retry: false` (the OpenAI and Anthropic SDKs
    honour it) and a `retry-after` that matches the reset."""
    headers = {"x-should-retry": "false"}
    if denial.scope.reset_at is not None:
        headers["retry-after"] = str(max(math.ceil((denial.scope.reset_at - now).total_seconds()), 1))
    return Refusal(429, "budget_exceeded", budget_message(denial, label), headers, denial)
