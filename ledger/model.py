"""Value types the ledger speaks in, shared by every backend.

Money is integer nano-dollars (1e-9 USD) everywhere inside spendgate: sums of integers
are exact, so a scope's spend always equals the sum of its ledger rows.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from core.usage import TOKEN_CLASSES, TokenUsage
from core.vocab import CallStatus, Transport, UsageSource

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
    # isoformat(timespec="microseconds")[:26] + "Z", formatted in one %-expression: a few are
    # written per call, and this is ≈ 0.55× isoformat's time (its timespec and UTC offset cost)
    return _ISO_FORMAT % (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond)


_ISO_FORMAT = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


# The low half of a call uid: a counter from a random start, one per process. Unique within
# the process by construction, across processes by the random start (and the clock): no
# syscall per call, where `secrets` asks the kernel each time.
_UID_TAIL = itertools.count(int.from_bytes(os.urandom(8), "big"))


def call_uid() -> str:
    """32 hex digits that sort by creation time (like a UUIDv7): each new call's row lands at
    the end of the `calls.uid` index instead of on a random page of it, which keeps the
    pages a settlement writes — and so its commit — small as the ledger grows."""
    return f"{time.time_ns():016x}{next(_UID_TAIL) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def parse_iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text)  # (Python 3.11 reads the trailing Z itself)


class ScopeRef(NamedTuple):
    """One budget scope: ("global", "global"), ("team", id), ("user", id), ("key", hash).

    A named tuple, not a frozen dataclass: scopes are dict keys on every call's path (the
    leases, the settlement batch), and a tuple hashes and compares in C where a dataclass
    runs a Python `__hash__`/`__eq__` for each lookup (ten per call)."""

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


# A scope's state, a reservation and a spend change are made for every call that settles
# (and the writer process sends them back): named tuples, which are made and compared in C,
# where a frozen dataclass sets each field through object.__setattr__ in Python.


class ScopeState(NamedTuple):
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


class Reservation(NamedTuple):
    id: str
    amount_nanos: int
    scopes: tuple[ScopeRef, ...]

    @property
    def lease(self) -> bool:
        """Carved out of an instance's budget leases (ledger/leases.py), not a row of its own."""
        return self.id.startswith("lease:")


class SpendChange(NamedTuple):
    """A scope's spend before and after one settlement: what alerting looks at."""

    scope: ScopeState  # state after the change
    before_nanos: int


@dataclass(slots=True)
class CallRecord:
    """One metered call, as the `calls` table stores it: `row()` is its columns."""

    started_at: datetime
    provider: str
    endpoint: str
    path: str
    model: str | None = None
    streamed: bool = False
    usage: TokenUsage = field(default_factory=TokenUsage)  # the token columns, and `units`
    cost_nanos: int | None = None  # None: unpriced, never a silent 0
    price_source: str = "unpriced"
    usage_source: UsageSource = UsageSource.REPORTED
    status: CallStatus = CallStatus.OK
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
    transport: Transport = Transport.HTTP
    client: str | None = None  # the client application, from its User-Agent (`claude-code/2.1`)
    service_tier: str | None = None  # the tier that served the call, as the provider reports it
    anomaly: dict[str, Any] | None = None  # reported figures spendgate did not believe, as reported
    # Names the call for good: a settlement retried (replayed from the spool after the
    # database was away) is recognised by it and never charged twice.
    uid: str = field(default_factory=lambda: call_uid())

    def row(self) -> dict[str, Any]:
        """The `calls` row: each field in its column (`finished_at` is `ts`, the usage its
        token columns and `units`), plus the derived `cost_usd` and `priced`."""
        out: dict[str, Any] = {}
        for name in _RECORD_FIELDS:
            value = getattr(self, name)
            if name == "usage":
                out.update(value.tokens())
                out["units"] = _json_or_null(dict(value.units))
            elif name in _TIMES:
                out[_COLUMN.get(name, name)] = iso(value or (datetime.now(UTC) if name == "finished_at" else None))
            elif isinstance(value, bool):
                out[name] = int(value)
            elif isinstance(value, dict) or value is None and name in _JSON:
                out[name] = _json_or_null(value)
            else:
                out[name] = value
        out["cost_usd"] = nanos_to_usd(self.cost_nanos)
        out["priced"] = int(self.cost_nanos is not None)
        return out

    def row_values(self) -> tuple[Any, ...]:
        """`row()`'s values in `ROW_COLUMNS` order, made directly: the ledger writer makes one
        per settlement (tests/test_ledger.py holds the two to each other)."""
        usage, cost = self.usage, self.cost_nanos
        return (
            iso(self.started_at), self.provider, self.endpoint, self.path, self.model, int(self.streamed),
            usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens,
            usage.reasoning_tokens, _json_or_null(dict(usage.units)) if usage.units else None,
            cost, self.price_source, self.usage_source, self.status, self.http_status, self.latency_ms,
            self.key_hash, self.key_masked, self.key_alias, self.user_id, self.team_id,
            _json_or_null(self.metadata), self.error, iso(self.finished_at or datetime.now(UTC)), self.transport,
            self.client, self.service_tier, _json_or_null(self.anomaly), self.uid,
            None if cost is None else cost / NANOS_PER_USD, int(cost is not None),
        )

    def to_json(self) -> dict[str, Any]:
        """The record as JSON values (the spool and the journal keep it so)."""
        out = {}
        for name in _RECORD_FIELDS:
            value = getattr(self, name)
            if name == "usage":
                value = {**value.tokens(), "units": dict(value.units)}
            elif name in _TIMES:
                value = iso(value)
            out[name] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallRecord:
        values = {k: v for k, v in data.items() if k in _RECORD_FIELDS}
        for name in _TIMES:
            if name in values:
                values[name] = parse_iso(values[name])
        usage = values.get("usage")
        if isinstance(usage, dict):
            values["usage"] = TokenUsage(**{k: v for k, v in usage.items() if k in _USAGE_FIELDS})
        elif usage is None:  # a spool line written before records held a TokenUsage
            values["usage"] = TokenUsage(**{k: data[k] for k in TOKEN_CLASSES if k in data})
        return cls(**values)


_RECORD_FIELDS = tuple(f.name for f in fields(CallRecord))
_USAGE_FIELDS = frozenset(f.name for f in fields(TokenUsage))
_TIMES = frozenset({"started_at", "finished_at"})
_JSON = frozenset({"metadata", "anomaly"})
_COLUMN = {"finished_at": "ts"}  # when the call was settled: the period it is charged to
#: The `calls` columns `CallRecord.row_values` fills, in its order.
ROW_COLUMNS = (
    "started_at", "provider", "endpoint", "path", "model", "streamed", *TOKEN_CLASSES, "units",
    "cost_nanos", "price_source", "usage_source", "status", "http_status", "latency_ms",
    "key_hash", "key_masked", "key_alias", "user_id", "team_id", "metadata", "error", "ts", "transport",
    "client", "service_tier", "anomaly", "uid", "cost_usd", "priced",
)


def _json_or_null(value: dict[str, Any] | None) -> str | None:
    return json.dumps(value, sort_keys=True) if value else None
