"""One metered call from admission to settlement, kept in `flow.metadata`.

`settlement_usage` decides what a call is charged for when the provider's final
usage never arrived (a stream cut off by the client or upstream, an unreadable body):
what was reported, completed by estimates from what was seen, and flagged as such.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from core.usage import TokenUsage
from core.vocab import CallStatus, PriceSource, Transport, UsageSource
from ledger import CallRecord, Reservation
from ledger.model import call_uid, iso, parse_iso
from metering.bounds import bound_cost, bound_reported_cost, bound_usage, usage_limits
from metering.identity import Identity
from pricing.prices import UNPRICED, PriceBook
from providers.base import UNMETERED, CallRequest, Endpoint
from providers.parsing import UsageParser

NOT_BILLED = PriceSource.NOT_BILLED  # a call the provider does not bill
UNMETERED_SOURCE = PriceSource.UNMETERED  # a call spendgate cannot price
HELD = PriceSource.HELD  # a call charged what was held for it (its pricing failed)
BYTES_PER_TOKEN_GUESS = 4  # only for estimating calls whose usage never arrived


@dataclass
class MeteredCall:
    endpoint: Endpoint
    request: CallRequest
    started_at: datetime
    path: str
    method: str = "POST"
    client: str | None = None  # the client application (core/clients.py), from the request's headers
    uid: str = field(default_factory=call_uid)  # the ledger row's, from the start: the journal names it
    identity: Identity = field(default_factory=Identity)
    reservation: Reservation | None = None
    drop_usage_event: bool = False  # spendgate asked for stream usage on the client's behalf
    reached_upstream: bool = True  # False: the request never left the proxy (no connection)
    streamed: bool = False
    done: bool = False
    abort_reason: str | None = None  # why spendgate cut the call short (an upstream gone quiet)
    transport: Transport = Transport.HTTP  # a turn on a WebSocket is a call of its own
    response_headers: Mapping[str, str] | None = None  # by lower-case name, once they arrived
    parser: UsageParser = field(init=False)
    t0: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.parser = self.endpoint.api.new_parser(self.endpoint)

    @property
    def model(self) -> str | None:
        return self.parser.model or self.request.model

    def base_record(self, http_status: int | None, **fields) -> CallRecord:
        """The ledger row's identity part, shared by settled and refused calls."""
        ident = self.identity
        return CallRecord(
            uid=self.uid,
            started_at=self.started_at,
            finished_at=datetime.now(UTC),
            provider=self.endpoint.provider,
            endpoint=self.endpoint.kind,
            path=self.path.split("?", 1)[0],
            model=self.model,
            streamed=self.streamed or self.request.stream,
            http_status=http_status,
            latency_ms=round((time.perf_counter() - self.t0) * 1000, 3),
            key_hash=ident.key.hash if ident.key else None,
            key_masked=ident.key.masked if ident.key else None,
            key_alias=ident.key_alias,
            user_id=ident.user_id,
            team_id=ident.team_id,
            metadata=ident.metadata,
            client=self.client,
            transport=self.transport,
            **fields,
        )

    def opening(self) -> tuple[dict[str, Any], Hashable, Callable[[], dict[str, Any]]]:
        """What the journal keeps of the call when it is forwarded: enough to record it if
        the process dies before it ends (an `interrupted` row, charged what was held).

        (the call's own fields, the key of what it shares with other calls,
        those shared fields): the ledger row's fields of `base_record` that name who made
        the call and where it went, its scopes, its price provider. `opened_record` puts
        them back together."""
        ident, endpoint, request = self.identity, self.endpoint, self.request
        key = ident.key
        metadata = json.dumps(ident.metadata, sort_keys=True) if ident.metadata else None
        path = self.path.split("?", 1)[0]
        shared_key = (endpoint.provider, endpoint.kind, endpoint.price_provider, path,
                      key.hash if key else None, key.masked if key else None,
                      ident.key_alias, ident.user_id, ident.team_id, metadata, self.client, self.transport)

        def shared() -> dict[str, Any]:
            record = self.base_record(None).to_json()
            return {**{name: record[name] for name in _SHARED_FIELDS},
                    "refs": [[ref.kind, ref.id] for ref in ident.scopes()],
                    "price_provider": endpoint.price_provider}

        own = {"started_at": iso(self.started_at), "model": self.model, "streamed": self.streamed or request.stream,
               "held": self.reservation.amount_nanos if self.reservation else None,
               "input_bytes": request.input_bytes, "max_output_tokens": request.max_output_tokens}
        return own, shared_key, shared

    def ending(self, http_status: int | None, error: str | None) -> Ending:
        """How the call ended: what its settlement is built from besides who made it."""
        usage, usage_source, status = settlement_usage(self, http_status, error)
        error = error or self.parser.error
        # settlement_usage's one answer that is ok without usage: billed after the reply
        billed_later = usage is None and status is CallStatus.OK
        if billed_later:
            reason = self.parser.billed_later
            error = f"{error}; {reason}" if error else reason
        return Ending(http_status, error, status, usage_source, usage, self.model,
                      self.streamed or self.request.stream, round((time.perf_counter() - self.t0) * 1000, 3),
                      datetime.now(UTC), self.parser.service_tier, self.parser.price_context,
                      self.parser.reported_cost_nanos, billed_later,
                      self.reservation.amount_nanos if billed_later and self.reservation else None)

    def record(self, prices: PriceBook, http_status: int | None, error: str | None) -> CallRecord:
        """The ledger row for this call, priced at the time the request was made."""
        return settled_record(prices, self.base_record(http_status), self.ending(http_status, error),
                              self.endpoint.price_provider, self.request.input_bytes, self.request.max_output_tokens)

    def unpriceable_record(self, http_status: int | None, error: str) -> CallRecord:
        """The row of a call whose pricing failed: charged what was held for it (the most it
        could cost), flagged as a parse error, so nothing is lost and nothing stays held."""
        rec = self.base_record(http_status, usage_source=UsageSource.NONE, status=CallStatus.PARSE_ERROR,
                               error=error)
        rec.cost_nanos = self.reservation.amount_nanos if self.reservation else None
        rec.price_source = HELD  # NULL cost when nothing was held (an unpriced model)
        return rec


@dataclass(slots=True)
class Ending:
    """How a call ended. Journaled before the end of its response is released (a kill right
    after can't lose it), and turned into its ledger row by `settled_record`."""

    http_status: int | None
    error: str | None
    status: CallStatus
    usage_source: UsageSource
    usage: TokenUsage | None
    model: str | None
    streamed: bool
    latency_ms: float
    finished_at: datetime
    service_tier: str | None = None  # the tier that served it, as the reply said
    price_context: dict[str, str] | None = None  # what else picks its price (a tier with prices of its own)
    reported_cost_nanos: int | None = None  # what the reply says it was charged (OpenRouter), unbounded
    billed_later: bool = False  # the provider bills it after the reply (a background response)
    held_nanos: int | None = None  # what was held for it: its charge when billed later

    def to_json(self) -> dict[str, Any]:
        usage = self.usage
        out = {
            "http_status": self.http_status, "error": self.error, "status": self.status,
            "usage_source": self.usage_source, "model": self.model, "streamed": self.streamed,
            "latency_ms": self.latency_ms, "finished_at": iso(self.finished_at),
            "usage": None if usage is None else {**usage.tokens(), "units": dict(usage.units)},
            "service_tier": self.service_tier, "price_context": self.price_context,
            "reported_cost_nanos": self.reported_cost_nanos,
        }
        if self.billed_later:
            out["billed_later"], out["held_nanos"] = True, self.held_nanos
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ending:
        usage = data.get("usage")
        return cls(
            data.get("http_status"), data.get("error"), CallStatus(data["status"]),
            UsageSource(data["usage_source"]), None if usage is None else TokenUsage(**usage),
            data.get("model"), bool(data.get("streamed")), data.get("latency_ms") or 0.0,
            parse_iso(data["finished_at"]), data.get("service_tier"), data.get("price_context"),
            data.get("reported_cost_nanos"), bool(data.get("billed_later")), data.get("held_nanos"),
        )


# The fields of a call's journaled opening that it shares with calls of the same identity
# and endpoint: every value they take is decided by `MeteredCall.opening`'s shared key (a
# field `base_record` fills per call goes in the opening's own members instead).
_SHARED_FIELDS = ("provider", "endpoint", "path", "key_hash", "key_masked", "key_alias", "user_id",
                  "team_id", "metadata", "client", "transport")
def opened_record(uid: str, opened: Mapping[str, Any]) -> CallRecord:
    """The ledger row a journaled opening stands for, as `base_record(None)` made it (an
    older journal's opening holds that row whole, under `record`)."""
    if "record" in opened:
        return CallRecord.from_json(opened["record"])
    return CallRecord.from_json({**opened, "uid": uid, "finished_at": opened.get("started_at")})


def settled_record(prices: PriceBook, record: CallRecord, ending: Ending, price_provider: str | None,
                   input_bytes: int, max_output_tokens: int | None) -> CallRecord:
    """`record` (who made the call) completed by how it ended, its usage bounded by what the
    call could have used and priced at the time the request was made. The one way a row is
    priced: for a live call and for a call replayed from the journal alike."""
    record.http_status, record.error, record.status = ending.http_status, ending.error, ending.status
    record.usage_source, record.model, record.streamed = ending.usage_source, ending.model, ending.streamed
    record.latency_ms, record.finished_at = ending.latency_ms, ending.finished_at
    record.service_tier = ending.service_tier
    if ending.status == CallStatus.UNMETERED:
        record.cost_nanos, record.price_source = None, UNMETERED_SOURCE
        return record
    if ending.billed_later:  # no usage will come this way: the most it could cost, as held
        record.cost_nanos, record.price_source = ending.held_nanos, HELD
        if record.cost_nanos is None:
            record.status = CallStatus.UNPRICED
        return record
    if ending.usage is None:
        record.cost_nanos, record.price_source = 0, NOT_BILLED
        return record
    resolved = prices.resolve(price_provider, ending.model)
    window = resolved.context_window if resolved else None
    usage, anomaly = bound_usage(ending.usage, input_bytes, max_output_tokens, window)
    record.usage = usage
    reported, reported_anomaly = None, {}
    if ending.reported_cost_nanos is not None:  # the provider says what it charged (OpenRouter)
        most = None
        if resolved is not None:
            limits = usage_limits(input_bytes, max_output_tokens, window)
            most = prices.max_price(resolved, *limits, record.started_at).nanos
        reported, reported_anomaly = bound_reported_cost(ending.reported_cost_nanos, most)
    if reported is not None:  # believed: no need to price the usage
        record.cost_nanos, record.price_source, cost_anomaly = reported, PriceSource.REPORTED, {}
    else:
        cost = prices.price(resolved, usage, record.started_at, ending.price_context) if resolved is not None else UNPRICED
        nanos, cost_anomaly = bound_cost(cost.nanos)
        record.cost_nanos, record.price_source = nanos, cost.source
    record.anomaly = {**anomaly, **cost_anomaly, **reported_anomaly} or None
    if record.cost_nanos is None and ending.status == CallStatus.OK:
        record.status = CallStatus.UNPRICED
    return record


def interrupted_record(record: CallRecord, held: int | None) -> CallRecord:
    """The row of a call the proxy was killed in the middle of (found open in the journal
    at the next start): charged what was held for it — the most it could have cost — since
    the provider may bill it; NULL when nothing was held (an unpriced or unmetered call)."""
    record.status, record.usage_source = CallStatus.INTERRUPTED, UsageSource.NONE
    record.cost_nanos, record.price_source = held, HELD
    record.error = "the proxy stopped while the call was in flight"
    return record


def _with_units(usage: TokenUsage, units: Mapping[str, int]) -> TokenUsage:
    """`usage` with the request's `units` added (what the reply reports wins)."""
    if not units:
        return usage
    return replace(usage, units={**units, **usage.units})


def _expected(call: MeteredCall) -> TokenUsage:
    """The request's expected usage and units, its output no less than the text seen
    (where it is billed by tokens at all: a whisper-1 call is billed by the second)."""
    expected = call.request.expected_usage or TokenUsage()
    if expected.output_tokens:
        expected = replace(expected, output_tokens=max(expected.output_tokens,
                                                       _guess_tokens(call.parser.output_chars)))
    return _with_units(expected, call.request.units)


def _guess_tokens(size: int) -> int:
    return math.ceil(size / BYTES_PER_TOKEN_GUESS) if size else 0


def settlement_usage(call: MeteredCall, http_status: int | None,
                     error: str | None) -> tuple[TokenUsage | None, UsageSource, CallStatus]:
    """(usage to charge, usage_source, status).

    - an endpoint spendgate cannot meter: no usage, status `unmetered` (cost unknown);
    - complete usage from the provider: charged as reported, with the units the request
      itself fixes (tts-1's characters, dall-e's images) added;
    - a whole reply that reports no usage (audio bytes, a plain-text transcript): the
      request's units, or else its expected usage, recorded as estimated;
    - an upstream error reply without usage: not billed by providers, so not charged;
    - a reply the provider bills later (an OpenAI background response, queued, or its
      stream left before its usage): no usage, status ok, charged what was held for it
      (`Ending.billed_later`);
    - a request that never reached the provider (connection refused...): not charged;
    - a whole answer of an API that may report no usage (Gemini API embeddings): the
      input tokens the request itself was counted at, estimated, status ok;
    - anything else (cut-off stream, unreadable body): what was reported, with input
      guessed from the request size where missing, and output no less than the text
      seen (a stream's early counts are placeholders: Anthropic's `message_start`
      reports 1 output token, the real count comes in the `message_delta` at the end).
    """
    if call.endpoint.api is UNMETERED:
        return None, UsageSource.NONE, CallStatus.UNMETERED
    parser = call.parser
    request = call.request
    if parser.billed_later is not None and not parser.complete and (http_status is None or http_status < 400):
        return None, UsageSource.NONE, CallStatus.OK  # charged what was held (`MeteredCall.ending`)
    if parser.complete:
        # The reply is whole even if a side hung up right after it (SDKs close the stream
        # as soon as they read the last event).
        reported = parser.usage
        if reported is not None and not request.units:  # the usual case: tokens reported
            return reported, UsageSource.REPORTED, CallStatus.OK
    ok = http_status is None or http_status < 400
    if parser.complete:
        if reported is not None or (request.units and ok):
            return _with_units(reported or TokenUsage(), request.units), UsageSource.REPORTED, CallStatus.OK
        if request.expected_usage is not None and ok:
            return _expected(call), UsageSource.ESTIMATED, CallStatus.OK
    if not ok and parser.usage is None:
        return None, UsageSource.NONE, CallStatus.UPSTREAM_ERROR
    if not call.reached_upstream:
        return None, UsageSource.NONE, CallStatus.ERROR
    counted = call.request.input_tokens_estimate
    if counted is not None and parser.ended and parser.error is None and parser.usage is None:
        return TokenUsage(input_tokens=counted), UsageSource.ESTIMATED, CallStatus.OK
    status = CallStatus.PARTIAL if error or call.streamed else CallStatus.PARSE_ERROR
    if parser.usage is None and (request.expected_usage is not None or request.units):
        return _expected(call), UsageSource.ESTIMATED, status  # what the request says it costs
    known = parser.usage or TokenUsage()
    output = max(known.output_tokens, _guess_tokens(parser.output_chars))
    usage = TokenUsage(
        input_tokens=known.input_tokens or (counted if counted is not None
                                            else _guess_tokens(call.request.input_bytes)),
        cache_read_tokens=known.cache_read_tokens,
        cache_write_tokens=known.cache_write_tokens,
        output_tokens=output,
        reasoning_tokens=min(known.reasoning_tokens, output),
        units=_with_units(known, request.units).units,
    )
    return usage, UsageSource.ESTIMATED, status
