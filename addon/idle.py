"""Upstream idle timeout: a provider that goes quiet does not hold a call's budget forever.

A metered call whose upstream sends nothing — no response headers, no stream bytes — for
the provider's idle timeout (`providers.<name>.idle_timeout`, else
`general_settings.upstream_idle_timeout`, 600 s by default: the OpenAI and Anthropic SDKs'
own timeout) is cut: its server connection is closed, the client gets mitmproxy's error
reply, and the call is settled at once from what was seen, the row's `error` saying why.

The watch is a sweep once a second over the calls in flight, comparing each stream's byte
count with the last sweep's: nothing is added to the per-chunk path. mitmproxy cannot kill
a flow that is waiting on its server (mitmproxy#4711: `flow.kill()` only acts at the next
hook), so the watch cancels the server connection's task in the proxy server instead;
where that connection is not found, `flow.kill()` is the fallback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mitmproxy import ctx, http

from addon.http import METADATA_KEY

if TYPE_CHECKING:
    from metering.call import MeteredCall
    from metering.runtime import ProcessState

log = logging.getLogger("spendgate")

__all__ = ["UpstreamIdleWatch"]

SWEEP_EVERY = 1.0  # seconds


@dataclass(slots=True)
class _Watched:
    flow: http.HTTPFlow
    call: MeteredCall
    timeout: float
    seen: int = -1  # stream bytes at the last sweep (-1: no response yet)
    since: float = 0.0  # monotonic time of the last sign of life


class UpstreamIdleWatch:
    """Cuts metered calls whose upstream has been silent past the provider's idle timeout.
    Runs after the HTTP meter in the addon chain: it watches the flows the meter forwarded."""

    def __init__(self, state: ProcessState) -> None:
        self.state = state
        self._watched: dict[int, _Watched] = {}
        self._task: asyncio.Task | None = None

    def request(self, flow: http.HTTPFlow) -> None:
        call = flow.metadata.get(METADATA_KEY)
        rt = self.state.runtime
        if call is None or rt is None or call.done or flow.response is not None:
            return
        self._watched[id(flow)] = _Watched(flow, call, rt.idle_timeout(call.endpoint.provider),
                                           since=time.monotonic())

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        watched = self._watched.get(id(flow))
        if watched is not None:
            watched.seen, watched.since = 0, time.monotonic()

    def response(self, flow: http.HTTPFlow) -> None:
        self._watched.pop(id(flow), None)

    def error(self, flow: http.HTTPFlow) -> None:
        self._watched.pop(id(flow), None)

    def running(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sweep_forever())

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            try:
                self.sweep(time.monotonic())
            except Exception:
                log.exception("spendgate: upstream idle sweep failed")

    def sweep(self, now: float) -> None:
        for key, w in list(self._watched.items()):
            if w.call.done or not w.flow.live:
                del self._watched[key]
                continue
            stream = w.flow.response.stream if w.flow.response is not None else None
            seen = getattr(stream, "bytes_in", w.seen)
            if seen != w.seen:
                w.seen, w.since = seen, now
            elif now - w.since >= w.timeout:
                del self._watched[key]
                self._cut(w)

    def _cut(self, w: _Watched) -> None:
        w.call.abort_reason = (f"upstream idle for {w.timeout:g} s: the connection was closed and the call "
                               "settled (providers.<name>.idle_timeout / general_settings.upstream_idle_timeout)")
        log.warning("spendgate: %s %s: upstream silent for %g s; cutting it", w.call.endpoint.provider,
                    w.call.path.split("?", 1)[0], w.timeout)
        if not _close_server_connection(w.flow) and w.flow.killable:
            w.flow.kill()


def _close_server_connection(flow: http.HTTPFlow) -> bool:
    """Cancel the task reading the flow's server connection (mitmproxy's proxy server
    internals, pinned by the mitmproxy<13 requirement); False when it can't be found."""
    server = ctx.master.addons.get("proxyserver") if ctx.master else None
    handler = getattr(server, "connections", {}).get(flow.client_conn.id) if server else None
    io = handler.transports.get(flow.server_conn) if handler is not None else None
    if io is None or io.handler is None:
        return False
    io.handler.cancel("upstream idle")
    return True
