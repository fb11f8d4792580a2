"""The admin listener: LiteLLM's admin API, the admin UI (`/ui`) and `/metrics` on its own port.

It runs on mitmproxy's event loop, as mitmproxy's maintainers advise for an addon's
own HTTP API: started in `running`, closed in `done`. Handlers only await the ledger's
threads, so admin traffic never holds up proxied flows.

At start it warns loudly when the example config's master key is used where other
machines can reach the proxy or the listener.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import tornado.httpserver
from mitmproxy import ctx

from admin import endpoints  # noqa: F401  (registers the routes)
from admin.api import application
from admin.guard import HARD_HEADER_LIMIT, MAX_BODY, AdminNames
from admin.ui_http import ui_handlers

if TYPE_CHECKING:
    from metering.runtime import ProcessState
    from admin.metrics import Metrics

log = logging.getLogger("spendgate.admin")



class AdminServer:
    def __init__(self, state: ProcessState, metrics: Metrics | None = None):
        self.state = state
        self.metrics = metrics
        self.server: tornado.httpserver.HTTPServer | None = None

    def load(self, loader) -> None:
        loader.add_option("budget_admin_host", str, "127.0.0.1", "Address of spendgate's admin API and UI.")
        loader.add_option("budget_admin_port", int, 4000, "Port of spendgate's admin API and UI (0: disabled).")
        loader.add_option(
            "budget_admin_hostnames", Sequence[str], [],
            "Host names the admin listener answers to besides localhost, IP addresses and budget_admin_host "
            "(requests with any other Host header are refused: DNS rebinding), e.g. spendgate.internal.",
        )

    def running(self) -> None:
        if self.server is not None or ctx.options.budget_admin_port == 0:
            return
        host, port = ctx.options.budget_admin_host, ctx.options.budget_admin_port
        extra = ui_handlers(self.state)
        if self.metrics is not None:
            from admin.metrics_http import metrics_handlers

            extra += metrics_handlers(self.state, self.metrics)
        names = AdminNames(host, ctx.options.budget_admin_hostnames)
        server = tornado.httpserver.HTTPServer(application(self.state, names, extra), xheaders=False,
                                               max_header_size=HARD_HEADER_LIMIT, max_body_size=MAX_BODY)
        try:
            server.listen(port, host)
        except OSError as e:
            log.error("spendgate: admin API could not listen on %s:%s: %s", host, port, e)
            return
        self.server = server
        log.info("spendgate: admin API listening at http://%s:%s", host, port)

    async def done(self) -> None:
        if self.server is not None:
            self.server.stop()
            await self.server.close_all_connections()
            self.server = None
