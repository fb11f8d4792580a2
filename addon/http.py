"""The request path over HTTP, as mitmproxy hooks: an adapter over the metering core.

request → recognise the provider and endpoint from the host the client asked for →
admit (identify, estimate, reserve — metering/meter.py) or answer in the provider's
place → forward → tap the stream without buffering → settle (after the response is on
its way: the end of a stream is never held up by the ledger).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING

from mitmproxy import http
from mitmproxy.net.http.url import parse_authority

from addon.proxyauth import PROXY_USER, lower_header_names
from addon.replies import refusal_response
from addon.websocket import is_websocket_upgrade
from core.clients import client_of_headers
from core.vocab import Framing
from metering.call import MeteredCall
from metering.meter import Meter
from providers.base import FREE, UNMETERED, Endpoint
from providers.openai import request_stream_usage
from providers.stream import StreamTap

if TYPE_CHECKING:
    from metering.runtime import ProcessState, Runtime

__all__ = ["HttpMeter", "METADATA_KEY"]

METADATA_KEY = "spendgate"  # flow.metadata: the flow's MeteredCall


class HttpMeter:
    """Meters and enforces every recognised LLM call over HTTP; every other flow is untouched."""

    def __init__(self, state: ProcessState, meter: Meter):
        self.state = state
        self.meter = meter
        # Told how long the hooks held a metered call up ("request": identity, estimate,
        # reservation or refusal; "response": reading a buffered reply's usage): the metrics.
        self.observe_latency: Callable[[str, float], None] | None = None

    # -- hooks ------------------------------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or is_websocket_upgrade(flow.request):
            return  # an upgrade is addon/websocket.py's
        rt = self.state.runtime
        if rt is None:
            return
        req = flow.request
        headers = header_map(req.headers)
        provider = rt.registry.provider(_pretty_host(req, headers), req.port, req.host)
        if provider is None:
            return
        path, method = req.path, req.method
        endpoint = provider.route(method, path)
        if endpoint is FREE:
            return
        if endpoint is None:  # the provider's, but nothing spendgate can price: on the record
            endpoint = provider.unmetered()
        t0 = time.perf_counter()
        await self._meter(rt, flow, endpoint, headers, path, method)
        if self.observe_latency is not None:
            self.observe_latency("request", time.perf_counter() - t0)

    async def _meter(self, rt: Runtime, flow: http.HTTPFlow, endpoint: Endpoint, headers: Mapping[str, str],
                     path: str, method: str) -> None:
        body = _content(flow.request, headers)
        call = MeteredCall(
            endpoint=endpoint,
            request=endpoint.api.read_request(endpoint, body, headers.get("content-type", "")),
            started_at=datetime.now(UTC),
            path=path,
            method=method,
            client=client_of_headers(headers),
        )
        refused = await self.meter.admit(rt, call, flow.request, flow.metadata.get(PROXY_USER), headers)
        if refused is not None:
            flow.response = refusal_response(refused)
        elif not flow.live:  # the client left while we waited for the ledger
            self.meter.abandon(rt, call)
        else:
            self._forward(rt, flow, call, body, headers)

    def _forward(self, rt: Runtime, flow: http.HTTPFlow, call: MeteredCall, body: bytes,
                 headers: Mapping[str, str]) -> None:
        """The call goes upstream, metered (`body`: its request body, decoded, as read;
        `headers`: the request's, as read)."""
        if call.endpoint.api.wants_stream_usage(call.request):
            _set_content(flow.request, headers, request_stream_usage(body, streams=True))
            flow.request.headers["accept-encoding"] = "identity"  # so the tap can drop the usage event
            call.drop_usage_event = True
        flow.metadata[METADATA_KEY] = call
        self.meter.forwarded(rt, call)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        call: MeteredCall | None = flow.metadata.get(METADATA_KEY)
        if call is None or flow.response is None:
            return
        headers = call.response_headers = header_map(flow.response.headers)
        call.parser.feed_headers(headers)
        content_type = headers.get("content-type", "")
        sse = "text/event-stream" in content_type
        ok = flow.response.status_code < 300
        # An audio reply (framing raw) is passed through as it arrives, unless it is JSON.
        raw = call.endpoint.framing is Framing.RAW and ok and "json" not in content_type
        if not (sse or raw or (call.endpoint.url_streaming and ok)):
            return  # an ordinary body: buffered by mitmproxy, read in `response`
        call.streamed = True
        flow.response.stream = StreamTap(
            call.parser,
            framing=Framing.SSE if sse else _unlabelled_framing(call.endpoint),
            content_encoding=headers.get("content-encoding"),
            drop_usage_only_events=call.drop_usage_event and "content-length" not in headers,
        )

    def response(self, flow: http.HTTPFlow) -> None:
        call: MeteredCall | None = flow.metadata.get(METADATA_KEY)
        if call is None or call.done:
            return
        if not call.streamed and call.endpoint.api is not UNMETERED:
            t0 = time.perf_counter()
            try:
                call.parser.feed_body(_content(flow.response, call.response_headers))
            except Exception as e:  # the parser reports problems itself; belt and braces
                call.parser.note_error(f"unreadable response: {type(e).__name__}: {e}")
            if self.observe_latency is not None:
                self.observe_latency("response", time.perf_counter() - t0)
        self.meter.finish(call, flow.response.status_code, None)

    def error(self, flow: http.HTTPFlow) -> None:
        call: MeteredCall | None = flow.metadata.get(METADATA_KEY)
        if call is None or call.done:
            return
        status = flow.response.status_code if flow.response else None
        call.reached_upstream = _reached_upstream(flow)
        self.meter.finish(call, status, call.abort_reason or (flow.error.msg if flow.error else "error"))

    async def done(self) -> None:
        await self.meter.done()


def header_map(headers: http.Headers) -> dict[str, str]:
    """Every header by its lower-case name, in one pass: a lookup in mitmproxy's multidict
    walks every header, and the hooks read several per call. A repeated header's values are
    joined as mitmproxy joins them."""
    fields = headers.fields
    out = dict(zip(map(_text, lower_header_names(fields)), map(_text, map(_VALUE, fields))))
    if len(out) == len(fields):  # (made in C: no Python runs per header)
        return out
    out = {}  # a header repeated
    for name, value in fields:
        key, text = _text(name.lower()), _text(value)
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


_VALUE = itemgetter(1)
_text = partial(str, encoding="utf-8", errors="surrogateescape")  # bytes as mitmproxy decodes them


def _pretty_host(req: http.Request, headers: Mapping[str, str]) -> str:
    """`Request.pretty_host` (the host the client asked for), its Host header read from `headers`."""
    authority = (req.authority if req.is_http2 or req.is_http3 else None) or headers.get("host")
    return parse_authority(authority, check=False)[0] if authority else req.host


def _content(message: http.Message, headers: Mapping[str, str] | None) -> bytes:
    """`message.get_content(strict=False)` (b"" for none), its content-encoding read from
    `headers` (None: not read yet)."""
    if headers is not None and not headers.get("content-encoding"):
        return message.raw_content or b""
    return message.get_content(strict=False) or b""


def _set_content(message: http.Message, headers: Mapping[str, str], content: bytes) -> None:
    """`message.content = content`, as mitmproxy sets it (encoded as the message says, its
    content-length unless a transfer-encoding rules), without looking up again the headers
    `headers` holds (as read)."""
    if headers.get("content-encoding"):
        message.content = content
        return
    message.raw_content = content
    if "transfer-encoding" not in headers:
        message.headers["content-length"] = str(len(content))


def _unlabelled_framing(endpoint: Endpoint) -> Framing:
    """The framing of a stream whose content type does not say text/event-stream: the
    endpoint's own (Gemini's JSON array), SSE not being it."""
    return Framing.JSON_ARRAY if endpoint.framing is Framing.SSE else endpoint.framing


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
