"""Value types the ledger speaks in, shared by every backend.

Money is integer nano-dollars (1e-9 USD) everywhere inside spendgate: sums of integers
are exact, so a scope's spend always equals the sum of its ledger rows.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

NANOS_PER_USD = 1_000_000_000

ScopeKind = Literal["global", "team", "user", "key"]
GLOBAL = ("global", "global")


def usd_to_nanos(usd: float | None) -> int | None:
    return None if usd is None else round(usd * NANOS_PER_USD)


def nanos_to_usd(nanos: int | None) -> float | None:
    return None if nanos is None else nanos / NANOS_PER_USD


def iso(dt: datetime | None) -> str | None:
    """UTC timestamps as sortable ISO-8601 text with a trailing Z."""
    if dt is None:
        return None
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="microseconds")[:26] + "Z"  # (isoformat: twice strftime's speed)


def call_uid() -> str:
    """32 hex digits that sort by creation time (like a UUIDv7): each new call's row lands at
    the end of the `calls.uid` index instead of on a random page of it, which keeps the
    pages a settlement writes — and so its commit — small as the ledger grows."""
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


def parse_iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class ScopeRef:
    """One budget scope: ("global", "global"), ("team", id), ("user", id), ("key", hash)."""

    kind: str
    id: str

    @classmethod
    def global_(cls) -> ScopeRef:
        return cls(*GLOBAL)


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """The budget an operator asked for on a scope (config or admin API)."""

    max_nanos: int | None = None
    soft_nanos: int | None = None
    duration: str | None = None  # "30d", "1mo", ... (None: never resets)


@dataclass(frozen=True, slots=True)
class ScopeState:
    kind: str
    id: str
    max_nanos: int | None
    soft_nanos: int | None
    duration: str | None
    spend_nanos: int
    reserved_nanos: int
    period_start: datetime
    reset_at: datetime | None

    @property
    def ref(self) -> ScopeRef:
        return ScopeRef(self.kind, self.id)


@dataclass(frozen=True, slots=True)
class Denial:
    """A reservation refused: the first scope that could not take the call."""

    scope: ScopeState
    amount_nanos: int


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    amount_nanos: int
    scopes: tuple[ScopeRef, ...]

    @property
    def lease(self) -> bool:
        """Carved out of an instance's budget leases (ledger/leases.py), not a row of its own."""
        return self.id.startswith("lease:")


@dataclass(frozen=True, slots=True)
class SpendChange:
    """A scope's spend before and after one settlement: what alerting looks at."""

    scope: ScopeState  # state after the change
    before_nanos: int


@dataclass(slots=True)
class CallRecord:
    """One metered call, as the `calls` table stores it."""

    started_at: datetime
    provider: str
    endpoint: str
    path: str
    model: str | None = None
    streamed: bool = False
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nanos: int | None = None  # None: unpriced, never a silent 0
    price_source: str = "unpriced"
    usage_source: str = "reported"  # reported | estimated | none
    status: str = "ok"  # ok | unpriced | partial | error | blocked | upstream_error
    http_status: int | None = None
    latency_ms: float | None = None
    key_hash: str | None = None
    key_masked: str | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    finished_at: datetime | None = None
    # Names the call for good: a settlement retried (replayed from the spool after the
    # database was away) is recognised by it and never charged twice.
    uid: str = field(default_factory=lambda: call_uid())

    def row(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "started_at": iso(self.started_at),
            "ts": iso(self.finished_at or datetime.now(UTC)),
            "provider": self.provider,
            "endpoint": self.endpoint,
            "path": self.path,
            "model": self.model,
            "streamed": int(self.streamed),
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_nanos": self.cost_nanos,
            "cost_usd": nanos_to_usd(self.cost_nanos),
            "priced": int(self.cost_nanos is not None),
            "price_source": self.price_source,
            "usage_source": self.usage_source,
            "status": self.status,
            "http_status": self.http_status,
            "latency_ms": self.latency_ms,
            "key_hash": self.key_hash,
            "key_masked": self.key_masked,
            "key_alias": self.key_alias,
            "user_id": self.user_id,
            "team_id": self.team_id,
            "metadata": json.dumps(self.metadata, sort_keys=True) if self.metadata else None,
            "error": self.error,
        }
