"""WebSocket transports, as mitmproxy hooks: an adapter over the metering core, as
addon/http.py is for HTTP. Each turn on a socket is one metered call.

handshake (the upgrade GET, `request` hook): the provider's registry names the WebSocket
  endpoint; the key is identified (a virtual key swapped for the real one) and the budget
  checked, holding nothing: a refusal is the same HTTP answer as a POST would get (429,
  401, 403), instead of the upgrade; upstream is never contacted.
client message (`websocket_message`): the provider's session reader (providers/sockets.py)
  says whether it starts a turn. Such a message is taken off the wire (`drop`) and
  admitted off the hook — identify with the handshake's credentials and the turn's model,
  estimate, reserve in every scope — then sent on unchanged (`inject.websocket`), or, if
  refused, answered with the provider's own `error` event (`budget_exceeded`, the HTTP
  429's message) while the socket stays open. Client messages after it wait behind it,
  so their order holds; server frames never wait for the ledger.
server message: fed to the turn it belongs to; a turn's terminal event settles it (one
  ledger row, `transport: websocket`).
standby turn (a turn the server may start by itself: Realtime voice detection): admitted
  like a client turn, but it goes upstream only when the server starts it (then it is
  forwarded, and ends as one row); a hold nothing started within
  `general_settings.realtime_vad_hold_seconds` is given back. Refused, the message that asked
  is dropped and answered with the error event; the session then drops what it must (`drops`).
end (`websocket_end`): every turn still open settles from what was seen (`partial`), at
  once; a turn still being admitted, or standing by, gives its hold back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from mitmproxy import ctx, http

from addon.proxyauth import PROXY_USER
from addon.replies import refusal_response
from core.background import Background
from core.clients import client_of_headers
from core.vocab import Transport
from metering.call import MeteredCall
from metering.identity import Identity
from metering.meter import Meter
from providers.base import CallRequest, Endpoint
from providers.sockets import SocketSession, Turn

if TYPE_CHECKING:
    from metering.runtime import ProcessState, Runtime

__all__ = ["SOCKET_KEY", "WebSocketMeter", "is_websocket_upgrade"]

T = TypeVar("T")
log = logging.getLogger("spendgate")

SOCKET_KEY = "spendgate.socket"  # flow.metadata: the flow's Socket

#: inject(flow, to_client, content, is_text): puts a message on the socket.
Inject = Callable[[http.HTTPFlow, bool, bytes, bool], None]


def is_websocket_upgrade(request: http.Request) -> bool:
    # (the method's bytes, not decoded: asked of every request, twice; upper-cased as mitmproxy's
    # `method` is: it forwards `get` as sent, and a 101 to it opens a socket all the same)
    return request.data.method.upper() == b"GET" and request.headers.get("upgrade", "").lower() == "websocket"


def _mitmproxy_inject(flow: http.HTTPFlow, to_client: bool, content: bytes, is_text: bool) -> None:
    ctx.master.commands.call("inject.websocket", flow, to_client, content, is_text)


def _read(sock: Socket, what: str, reader: Callable[..., T], *args: Any, default: T | None = None) -> T | None:
    """What the socket's protocol reader answers; a bug in it is logged, never raised into the
    socket (its frames still pass), and `default` is the answer."""
    try:
        return reader(*args)
    except Exception:
        log.exception("spendgate: could not %s on a %s socket", what, sock.endpoint.provider)
        return default


@dataclass(eq=False)
class Socket:
    """One metered socket: its endpoint, its protocol reader, and who opened it."""

    endpoint: Endpoint
    session: SocketSession | None
    handshake: http.Request  # as the client sent it: each turn is identified from a copy
    identity: Identity
    proxy_user: str | None
    path: str
    client: str | None  # the client application (core/clients.py), from the handshake
    queue: deque[tuple[bytes, bool, Turn | None]] = field(default_factory=deque)  # held for admission
    draining: bool = False
    reinjected: int = 0  # client messages spendgate sent on itself, whose hook is still to come
    unmetered: MeteredCall | None = None  # a socket spendgate can't meter: one row for all of it
    standby: Turn | None = None  # admitted ahead, not yet started by the server
    standby_timer: asyncio.TimerHandle | None = None  # gives the standby's hold back


class WebSocketMeter:
    """Meters every turn on a recognised provider WebSocket; other sockets are untouched."""

    def __init__(self, state: ProcessState, meter: Meter, inject: Inject | None = None):
        self.state = state
        self.meter = meter
        self.inject = inject or _mitmproxy_inject
        self._admissions = Background("websocket admission")

    # -- the handshake ----------------------------------------------------------------------

    def request(self, flow: http.HTTPFlow) -> Coroutine[Any, Any, None] | None:
        """The handshake's admission, as a coroutine, for an upgrade; None for every other
        request (no coroutine to make and await for each call over HTTP)."""
        if flow.response or flow.error or not flow.live or not is_websocket_upgrade(flow.request):
            return None
        return self._handshake(flow)

    async def _handshake(self, flow: http.HTTPFlow) -> None:
        rt = self.state.runtime
        if rt is None:
            return
        req = flow.request
        provider = rt.registry.provider(req.pretty_host, req.port, req.host)
        if provider is None:
            return
        proxy_user = flow.metadata.get(PROXY_USER)
        now = datetime.now(UTC)
        client = client_of_headers(req.headers)
        endpoint = provider.socket_route(req.path)
        if endpoint is None:  # the provider's, but no socket spendgate can meter: on the record
            endpoint = provider.unmetered()
            call = MeteredCall(endpoint, CallRequest(None, True, None, 0), now, req.path, "GET",
                               client=client, transport=Transport.WEBSOCKET)
            refused = await self.meter.admit(rt, call, req, proxy_user)
            if refused is not None:
                flow.response = refusal_response(refused)
                return
            flow.metadata[SOCKET_KEY] = Socket(endpoint, None, req, call.identity, proxy_user, req.path, client,
                                               unmetered=call)
            self.meter.forwarded(rt, call)
            return
        handshake = req.copy()  # before a virtual key is swapped for the real one
        session = endpoint.api.new_session(endpoint, req.path, rt.config.general_settings.realtime_max_output_tokens)
        call = MeteredCall(endpoint, CallRequest(session.model, True, 0, 0), now, req.path, "GET",
                           client=client, transport=Transport.WEBSOCKET)
        refused = await self.meter.admit(rt, call, req, proxy_user, hold=False, model_later=session.model is None)
        if refused is not None:
            flow.response = refusal_response(refused)
            return
        self.meter.abandon(rt, call)  # it held nothing: each turn holds its own
        flow.metadata[SOCKET_KEY] = Socket(endpoint, session, handshake, call.identity, proxy_user, req.path, client)

    def response(self, flow: http.HTTPFlow) -> None:
        """The upgrade was answered without a socket (the provider refused it)."""
        sock: Socket | None = flow.metadata.get(SOCKET_KEY)
        if sock is not None and flow.response is not None and flow.response.status_code != 101:
            if sock.unmetered is not None and not sock.unmetered.done:
                self.meter.finish(sock.unmetered, flow.response.status_code, None)

    def error(self, flow: http.HTTPFlow) -> None:
        sock: Socket | None = flow.metadata.get(SOCKET_KEY)
        if sock is not None and flow.websocket is None and sock.unmetered is not None and not sock.unmetered.done:
            self.meter.finish(sock.unmetered, None, flow.error.msg if flow.error else "error")

    # -- messages -----------------------------------------------------------------------------

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        sock: Socket | None = flow.metadata.get(SOCKET_KEY)
        if sock is None or sock.session is None or flow.websocket is None:
            return
        msg = flow.websocket.messages[-1]
        if msg.injected:  # spendgate's own (a client message sent on, a refusal), or another addon's
            if msg.from_client and sock.reinjected:
                sock.reinjected -= 1
            return
        data = msg.content
        if msg.from_client:
            turn = _read(sock, "read a client message", sock.session.client, data)
            if turn is None and _read(sock, "read a client message", sock.session.drops, data, default=False):
                msg.drop()
                return
            if turn is None and not sock.queue:
                return  # not a turn, and nothing waits before it: it goes as it is
            msg.drop()
            sock.queue.append((data, msg.is_text, turn))
            if not sock.draining:
                sock.draining = True
                self._admissions.spawn(self._drain(flow, sock))
            return
        ended = _read(sock, "read a server message", sock.session.server, data)
        if ended is None:
            return
        rt = self.state.runtime
        standby = sock.standby
        if standby is not None and standby.response_id is not None and rt is not None:  # the server started it
            self._stand_down(sock)
            self.meter.forwarded(rt, standby.meta)
        for turn in ended:
            self._settle(rt, sock, turn, turn.status, None)

    async def _drain(self, flow: http.HTTPFlow, sock: Socket) -> None:
        """Admit the held turns in order and send the held messages on (or refuse them)."""
        try:
            while sock.queue:
                data, is_text, turn = sock.queue[0]
                rt = self.state.runtime
                if turn is not None and rt is not None:
                    call = self._call(sock, turn)
                    # a copy where a virtual key is swapped in it (a provider's own key is only read:
                    # copying the handshake costs ≈ 25 µs a turn)
                    handshake = sock.handshake.copy() if sock.identity.virtual else sock.handshake
                    refused = await self.meter.admit(rt, call, handshake, sock.proxy_user, hold=turn.hold)
                    if refused is not None:
                        sock.session.refused(turn)
                        sock.queue.popleft()
                        if flow.live:
                            self.inject(flow, True, sock.session.refusal_event(
                                refused.status, refused.type, refused.message, data), True)
                        continue
                    if not flow.live:  # the client left while the ledger answered
                        self.meter.abandon(rt, call)
                        sock.session.refused(turn)
                        break
                    turn.meta = call
                    if turn.standby:  # upstream only once the server starts it
                        self._stand_by(rt, sock, turn)
                    else:
                        self.meter.forwarded(rt, call)
                    sock.session.begin(turn)
                elif turn is None and _read(sock, "read a client message", sock.session.drops, data, default=False):
                    sock.queue.popleft()
                    continue
                if not flow.live:
                    break
                sock.queue.popleft()
                sock.reinjected += 1
                self.inject(flow, False, data, is_text)
        finally:
            for _, _, turn in sock.queue:
                if turn is not None:
                    sock.session.refused(turn)
            if not flow.live:
                sock.queue.clear()
            sock.draining = False

    def _stand_by(self, rt: Runtime, sock: Socket, turn: Turn) -> None:
        """Hold `turn` for a response the server may start; give it back if none does in time."""
        seconds = rt.config.general_settings.realtime_vad_hold_seconds
        sock.standby = turn
        sock.standby_timer = asyncio.get_running_loop().call_later(seconds, self._release, sock, turn)

    def _stand_down(self, sock: Socket) -> None:
        if sock.standby_timer is not None:
            sock.standby_timer.cancel()
        sock.standby = sock.standby_timer = None

    def _release(self, sock: Socket, turn: Turn) -> None:
        """A standby turn nothing started: its hold goes back, no row (nothing went upstream)."""
        if sock.standby is not turn:
            return
        self._stand_down(sock)
        _read(sock, "release a standby turn", sock.session.released, turn)
        rt = self.state.runtime
        if rt is not None and not turn.meta.done:
            self.meter.abandon(rt, turn.meta)

    def _call(self, sock: Socket, turn: Turn) -> MeteredCall:
        endpoint = sock.endpoint if turn.api is None else replace(sock.endpoint, api=turn.api)
        call = MeteredCall(endpoint, turn.request, datetime.now(UTC), sock.path, "GET", client=sock.client,
                           transport=Transport.WEBSOCKET)
        call.parser = turn.parser
        call.streamed = True
        return call

    def _settle(self, rt: Runtime | None, sock: Socket, turn: Turn, status: int | None, error: str | None) -> None:
        call: MeteredCall | None = turn.meta
        if call is None:
            if turn.admitted or rt is None:
                return  # still being admitted: its admission sees the socket's end
            # The server started it by itself: nothing could be held for it, it is only recorded.
            call = turn.meta = self._call(sock, turn)
            call.identity = sock.identity
            call.streamed = turn.api is None
            self.meter.forwarded(rt, call)
        if not call.done:
            self.meter.finish(call, status, error)

    # -- the end ------------------------------------------------------------------------------

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        sock: Socket | None = flow.metadata.get(SOCKET_KEY)
        if sock is None:
            return
        if sock.unmetered is not None:
            if not sock.unmetered.done:
                self.meter.finish(sock.unmetered, 101, None)
            return
        ws = flow.websocket
        if ws is not None and ws.closed_by_client:
            reason = "the client closed the socket in the middle of the turn"
        else:
            code = ws.close_code if ws is not None else None
            reason = f"the provider closed the socket in the middle of the turn (close code {code})"
        if sock.standby is not None:
            self._release(sock, sock.standby)
        rt = self.state.runtime
        for turn in _read(sock, "list the open turns", sock.session.open_turns, default=()):
            self._settle(rt, sock, turn, None, reason)

    async def done(self) -> None:
        await self._admissions.wait()
