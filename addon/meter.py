"""The request path, as mitmproxy hooks.

request → recognise provider/endpoint → identify the key → estimate the most the call
can cost → reserve it in every budget scope at once, or answer 429 → forward → tap the
stream without buffering → settle the reservation to the real cost and write the
ledger row (after the response is on its way, written with other calls' settlements:
the end of a stream is never held up by the ledger).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from mitmproxy import http

from addon.call import METADATA_KEY, MeteredCall
from addon.credentials import fingerprint
from addon.identity import PROXY_USER, Identity, Refusal, identify
from addon.replies import budget_exceeded, error_response
from ledger import Denial, LedgerUnavailable
from ledger.background import Background
from pricing.estimate import estimate_max_cost
from providers.request import parse_request, request_stream_usage, wants_stream_usage_injection
from providers.stream import StreamTap

if TYPE_CHECKING:
    from addon.loader import BudgetConfig
    from addon.runtime import Runtime

log = logging.getLogger("spendgate")


class Meter:
    """Meters and enforces every recognised LLM call; every other flow is untouched."""

    def __init__(self, config: BudgetConfig):
        self.config = config
        self._background = Background("ledger write")  # releases and refusal rows
        self._finished: list[tuple[Runtime, MeteredCall, int | None, str | None]] = []  # to settle
        self._last_open_warning = 0.0
        # Told how long the hooks held a metered call up ("request": identity, estimate,
        # reservation or refusal; "response": reading a buffered reply's usage): the metrics.
        self.observe_latency: Callable[[str, float], None] | None = None

    # -- hooks ------------------------------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        rt = self.config.runtime
        if rt is None or flow.request.method != "POST":
            return
        endpoint = rt.recognizer.recognize(flow.request.pretty_host, flow.request.path, flow.request.port)
        if endpoint is None:
            return
        t0 = time.perf_counter()
        await self._meter(rt, flow, endpoint)
        if self.observe_latency is not None:
            self.observe_latency("request", time.perf_counter() - t0)

    async def _meter(self, rt: Runtime, flow: http.HTTPFlow, endpoint) -> None:
        call = MeteredCall(
            endpoint=endpoint,
            request=parse_request(endpoint, flow.request.get_content(strict=False) or b""),
            started_at=datetime.now(UTC),
            path=flow.request.path,
        )
        try:
            await self._admit(rt, flow, call)
        except Exception as e:  # the ledger is unreachable or broken
            if not isinstance(e, LedgerUnavailable):
                log.exception("spendgate: could not admit %s %s", endpoint.provider, flow.request.path)
            if rt.config.general_settings.on_ledger_error == "fail_closed":
                flow.response = error_response(503, "ledger_unavailable", f"Spend ledger unavailable: {e}")
            elif flow.response is None:
                self._admit_unchecked(rt, flow, call)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        call: MeteredCall | None = flow.metadata.get(METADATA_KEY)
        if call is None or flow.response is None:
            return
        headers = flow.response.headers
        sse = "text/event-stream" in headers.get("content-type", "")
        if not (sse or (call.endpoint.url_streaming and flow.response.status_code < 300)):
            return  # an ordinary body: buffered by mitmproxy, read in `response`
        call.streamed = True
        flow.response.stream = StreamTap(
            call.parser,
            sse=sse,
            content_encoding=headers.get("content-encoding"),
            drop_usage_only_events=call.drop_usage_event and "content-length" not in headers,
        )

    def response(self, flow: http.HTTPFlow) -> None:
        call: MeteredCall | None = flow.metadata.get(METADATA_KEY)
        if call is None or call.done:
            return
        if not call.streamed:
            t0 = time.perf_counter()
            try:
                call.parser.feed_body(flow.response.get_content(strict=False) or b"")
            except Exception as e:  # the parser reports problems itself; belt and braces
                log.warning("spendgate: unreadable %s response: %s", call.endpoint.provider, e)
            if self.observe_latency is not None:
                self.observe_latency("response", time.perf_counter() - t0)
        self._finish(call, flow.response.status_code, None)

    def error(self, flow: http.HTTPFlow) -> None:
        call: MeteredCall | None = flow.metadata.get(METADATA_KEY)
        if call is None or call.done:
            return
        status = flow.response.status_code if flow.response else None
        call.reached_upstream = _reached_upstream(flow)
        self._finish(call, status, flow.error.msg if flow.error else "error")

    async def done(self) -> None:
        """Let every settlement under way reach the ledger before shutdown."""
        self._settle_finished()
        await self._background.wait()
        rt = self.config.runtime
        if rt is not None:
            await rt.ledger.drain()

    # -- steps ------------------------------------------------------------------------------

    async def _admit(self, rt: Runtime, flow: http.HTTPFlow, call: MeteredCall) -> None:
        settings = rt.config.general_settings
        model = call.request.model
        try:
            call.identity = await identify(rt, flow, call.endpoint, model, call.started_at)
        except Refusal as refusal:
            self._refuse(rt, flow, call, refusal.response)
            return
        estimate = estimate_max_cost(
            rt.prices, call.endpoint.price_provider, call.request, call.endpoint.kind,
            call.started_at, settings.default_max_output_tokens,
        )
        if estimate.nanos is None:
            self._warn_unpriced(rt, call, model)
            if settings.unpriced_models == "block":
                self._refuse(rt, flow, call, error_response(
                    400, "model_not_priced",
                    f"Model {model!r} has no known price and this proxy blocks unpriced models "
                    "(general_settings.unpriced_models: block). Add it under `pricing:` in the config.",
                ))
                return
        outcome = await rt.ledger.reserve(call.identity.scopes(), estimate.nanos or 0, call.started_at)
        if isinstance(outcome, Denial):
            label = rt.directory.label(outcome.scope.kind, outcome.scope.id)
            self._refuse(rt, flow, call, budget_exceeded(outcome, datetime.now(UTC), label), outcome)
            return
        call.reservation = outcome
        if not flow.live:  # the client left while we waited for the ledger
            self._background.spawn(rt.ledger.release(outcome))
            return
        self._forward(flow, call)

    def _admit_unchecked(self, rt: Runtime, flow: http.HTTPFlow, call: MeteredCall) -> None:
        """fail_open while the ledger is unreachable: forward the call with no budget check,
        but still meter it — its settlement is recorded, or spooled until the ledger is back."""
        if call.identity.key is None:  # the ledger failed while identifying: keep what we know
            call.identity = Identity(key=fingerprint(flow.request), user_id=flow.metadata.get(PROXY_USER))
        now = time.monotonic()
        if now - self._last_open_warning > 10:
            self._last_open_warning = now
            log.warning("spendgate: ledger unavailable; serving calls without budget checks "
                        "(general_settings.on_ledger_error: fail_open)")
        self._forward(flow, call)

    def _forward(self, flow: http.HTTPFlow, call: MeteredCall) -> None:
        """The call goes upstream, metered."""
        if wants_stream_usage_injection(call.endpoint, call.request):
            flow.request.content = request_stream_usage(flow.request.get_content(strict=False) or b"")
            flow.request.headers["accept-encoding"] = "identity"  # so the tap can drop the usage event
            call.drop_usage_event = True
        flow.metadata[METADATA_KEY] = call

    def _refuse(
        self, rt: Runtime, flow: http.HTTPFlow, call: MeteredCall, reply: http.Response, denial: Denial | None = None
    ) -> None:
        """Answer in the provider's place and keep a ledger row of the refusal."""
        flow.response = reply
        call.done = True
        record = call.base_record(
            reply.status_code, cost_nanos=0, price_source="blocked", usage_source="none",
            status="blocked", error=reply.json()["error"]["type"],
        )
        self._background.spawn(rt.ledger.record(record))
        self._notify("denied", rt, record, denial)

    def _finish(self, call: MeteredCall, status: int | None, error: str | None) -> None:
        call.done = True
        rt = self.config.runtime
        if rt is None:
            return
        self._finished.append((rt, call, status, error))
        if len(self._finished) == 1:
            # Priced and queued on the loop's next turn: after the response (or the end of
            # the stream) is on its way, and for every call that ended meanwhile at once.
            asyncio.get_running_loop().call_soon(self._settle_finished)

    def _settle_finished(self) -> None:
        finished, self._finished = self._finished, []
        now = datetime.now(UTC)
        for rt, call, status, error in finished:
            try:
                record = call.record(rt.prices, status, error)
                if record.status == "unpriced":
                    self._warn_unpriced(rt, call, record.model)
                if record.error and record.status in ("parse_error", "partial"):
                    log.info("spendgate: %s call settled as %s: %s", call.endpoint.provider, record.status,
                             record.error)
                rt.ledger.settle_soon(call.reservation, call.identity.scopes(), record, now,
                                      self._in_settlement(rt, record), partial(self._settled, rt, record))
            except Exception:
                log.exception("spendgate: could not settle a %s call", call.endpoint.provider)

    def _settled(self, rt: Runtime, record, result, exc: BaseException | None) -> None:
        if exc is not None:
            log.error("spendgate: ledger write failed: %r", exc)
            return
        self._notify("settled", rt, record, result[1])

    def _in_settlement(self, rt: Runtime, record) -> Callable[..., None] | None:
        """The listeners' work that must commit with the settlement itself (alerts)."""
        hooks = [hook for listener in self.config.listeners
                 if (make := getattr(listener, "in_settlement", None)) and (hook := make(rt, record))]
        if not hooks:
            return None
        return lambda store, changes: [hook(store, changes) for hook in hooks]

    def _notify(self, event: str, *args: Any) -> None:
        """Tell the spend listeners; one that fails is logged, and never turns the proxy's
        reply into an error nor a written settlement into a 'ledger write failed'."""
        for listener in self.config.listeners:
            try:
                getattr(listener, event)(*args)
            except Exception:
                log.exception("spendgate: %s listener %s failed", event, type(listener).__name__)

    def _warn_unpriced(self, rt: Runtime, call: MeteredCall, model: str | None) -> None:
        if rt.prices.unpriced_first_seen(call.endpoint.price_provider, model):
            log.warning("spendgate: no price known for model %r (%s); its calls are recorded as unpriced",
                        model, call.endpoint.provider)


def _reached_upstream(flow: http.HTTPFlow) -> bool:
    """False when the request cannot have left the proxy: no response came back and no
    connection to the provider was ever set up (refused, unresolvable, TLS handshake
    failed). A reused or established connection counts as reached: the provider may bill."""
    if flow.response is not None:
        return True
    conn = flow.server_conn
    if conn.timestamp_tcp_setup is None:
        return False
    return conn.tls_established or not conn.tls
