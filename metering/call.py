"""One metered call from admission to settlement, kept in `flow.metadata`.

`settlement_usage` decides what a call is charged for when the provider's final
usage never arrived (a stream cut off by the client or upstream, an unreadable body):
what was reported, completed by estimates from what was seen, and flagged as such.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.usage import TokenUsage
from core.vocab import CallStatus, UsageSource
from ledger import CallRecord, Reservation
from metering.bounds import bound_cost, bound_usage
from metering.identity import Identity
from pricing.prices import UNPRICED, PriceBook
from providers.base import UNMETERED, CallRequest, Endpoint
from providers.parsing import UsageParser

NOT_BILLED = "not billed"  # the price_source of a call the provider does not bill
UNMETERED_SOURCE = "unmetered"  # the price_source of a call spendgate cannot price
HELD = "held"  # the price_source of a call charged what was held for it (its pricing failed)
BYTES_PER_TOKEN_GUESS = 4  # only for estimating calls whose usage never arrived


@dataclass
class MeteredCall:
    endpoint: Endpoint
    request: CallRequest
    started_at: datetime
    path: str
    method: str = "POST"
    identity: Identity = field(default_factory=Identity)
    reservation: Reservation | None = None
    drop_usage_event: bool = False  # spendgate asked for stream usage on the client's behalf
    reached_upstream: bool = True  # False: the request never left the proxy (no connection)
    streamed: bool = False
    done: bool = False
    abort_reason: str | None = None  # why spendgate cut the call short (an upstream gone quiet)
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
            **fields,
        )

    def record(self, prices: PriceBook, http_status: int | None, error: str | None) -> CallRecord:
        """The ledger row for this call, priced at the time the request was made."""
        usage, usage_source, status = settlement_usage(self, http_status, error)
        rec = self.base_record(http_status, usage_source=usage_source, status=status,
                               error=error or self.parser.error)
        if status == CallStatus.UNMETERED:
            rec.cost_nanos, rec.price_source = None, UNMETERED_SOURCE
            return rec
        if usage is None:
            rec.cost_nanos, rec.price_source = 0, NOT_BILLED
            return rec
        resolved = prices.resolve(self.endpoint.price_provider, self.model)
        usage, anomaly = bound_usage(usage, self.request, resolved.context_window if resolved else None)
        rec.usage = usage
        cost = prices.price(resolved, usage, self.started_at) if resolved is not None else UNPRICED
        nanos, cost_anomaly = bound_cost(cost.nanos)
        rec.cost_nanos, rec.price_source = nanos, cost.source
        rec.anomaly = {**anomaly, **cost_anomaly} or None
        if cost.nanos is None and status == CallStatus.OK:
            rec.status = CallStatus.UNPRICED
        return rec

    def unpriceable_record(self, http_status: int | None, error: str) -> CallRecord:
        """The row of a call whose pricing failed: charged what was held for it (the most it
        could cost), flagged as a parse error, so nothing is lost and nothing stays held."""
        rec = self.base_record(http_status, usage_source=UsageSource.NONE, status=CallStatus.PARSE_ERROR,
                               error=error)
        rec.cost_nanos = self.reservation.amount_nanos if self.reservation else None
        rec.price_source = HELD  # NULL cost when nothing was held (an unpriced model)
        return rec



def _guess_tokens(size: int) -> int:
    return math.ceil(size / BYTES_PER_TOKEN_GUESS) if size else 0


def settlement_usage(call: MeteredCall, http_status: int | None,
                     error: str | None) -> tuple[TokenUsage | None, UsageSource, CallStatus]:
    """(usage to charge, usage_source, status).

    - an endpoint spendgate cannot meter: no usage, status `unmetered` (cost unknown);
    - complete usage from the provider: charged as reported;
    - an upstream error reply without usage: not billed by providers, so not charged;
    - a request that never reached the provider (connection refused...): not charged;
    - anything else (cut-off stream, unreadable body): what was reported, with input
      guessed from the request size where missing, and output no less than the text
      seen (a stream's early counts are placeholders: Anthropic's `message_start`
      reports 1 output token, the real count comes in the `message_delta` at the end).
    """
    if call.endpoint.api is UNMETERED:
        return None, UsageSource.NONE, CallStatus.UNMETERED
    parser = call.parser
    if parser.complete and parser.usage is not None:
        # The provider's final usage arrived: the call is whole even if a side hung up
        # right after it (SDKs close the stream as soon as they read the last event).
        return parser.usage, UsageSource.REPORTED, CallStatus.OK
    if http_status is not None and http_status >= 400 and parser.usage is None:
        return None, UsageSource.NONE, CallStatus.UPSTREAM_ERROR
    if not call.reached_upstream:
        return None, UsageSource.NONE, CallStatus.ERROR
    known = parser.usage or TokenUsage()
    output = max(known.output_tokens, _guess_tokens(parser.output_chars))
    usage = TokenUsage(
        input_tokens=known.input_tokens or _guess_tokens(call.request.input_bytes),
        cache_read_tokens=known.cache_read_tokens,
        cache_write_tokens=known.cache_write_tokens,
        output_tokens=output,
        reasoning_tokens=min(known.reasoning_tokens, output),
        units=known.units,
    )
    status = CallStatus.PARTIAL if error or call.streamed else CallStatus.PARSE_ERROR
    return usage, UsageSource.ESTIMATED, status
