"""The answers spendgate gives in place of the provider, in OpenAI's error shape.

Every SDK already knows how to read `{"error": {"message", "type", "param", "code"}}`,
so a refused call surfaces as a readable exception in the client, not a parse error.
"""

from __future__ import annotations

import json
import math
from datetime import datetime

from mitmproxy import http

from ledger import Denial, nanos_to_usd

SCOPE_LABELS = {"global": "Proxy", "team": "Team", "user": "User", "key": "Key"}


def error_response(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> http.Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": str(status)}}
    return http.Response.make(
        status,
        json.dumps(body).encode(),
        {"content-type": "application/json", **(headers or {})},
    )


def _usd(nanos: int | None) -> str:
    """Dollars and cents, as the seed writes them; sub-dollar figures keep four decimals."""
    usd = nanos_to_usd(nanos or 0)
    return f"${usd:,.2f}" if usd >= 1 or usd == 0 else f"${usd:.4f}"


def budget_message(denial: Denial, label: str | None = None) -> str:
    """The seed's wording first, then the figures a person needs to act on it."""
    st = denial.scope
    if st.kind == "global":
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


def budget_exceeded(denial: Denial, now: datetime, label: str | None = None) -> http.Response:
    headers = {"x-should-retry": "false"}
    if denial.scope.reset_at is not None:
        headers["retry-after"] = str(max(math.ceil((denial.scope.reset_at - now).total_seconds()), 1))
    return error_response(429, "budget_exceeded", budget_message(denial, label), headers)
