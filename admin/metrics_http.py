"""`GET /metrics` on the admin listener: the Prometheus exposition of `admin.metrics`.

Off (404 saying how to turn it on) unless `litellm_settings.success_callback` lists
`prometheus`. With `general_settings.require_auth_for_metrics_endpoint: true` (LiteLLM's
name; `metrics_require_auth` is the same setting) it needs the master key
(`Authorization: Bearer <master_key>`, or a logged-in admin UI session); a wrong key takes
its address's turn in the failure throttle like any other.
The Accept header picks the classic text format or OpenMetrics, as prometheus-client does.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import tornado.web
from prometheus_client.exposition import choose_encoder

from admin.api import bearer_token, is_master_key
from admin.errors import ApiError, send_error
from admin.metrics import CALLBACK, Metrics, enabled
from admin.sessions import is_ui_session
from admin.throttle import THROTTLE

if TYPE_CHECKING:
    from metering.runtime import ProcessState

log = logging.getLogger("spendgate.metrics")


class MetricsHandler(tornado.web.RequestHandler):
    def initialize(self, state: ProcessState, metrics: Metrics) -> None:
        self.state = state
        self.metrics = metrics

    def check_xsrf_cookie(self) -> None:
        return

    def _fail(self, status: int, message: str, type_: str) -> None:
        send_error(self, ApiError(status, message, type_))

    async def get(self) -> None:
        rt = self.state.runtime
        if rt is None:
            return self._fail(503, "spendgate is not configured yet", "service_unavailable")
        if not enabled(rt):
            return self._fail(404, f"Prometheus metrics are off: add '{CALLBACK}' to "
                              "litellm_settings.success_callback", "not_found_error")
        settings = rt.config.general_settings
        if settings.require_auth_for_metrics_endpoint:
            try:
                await self._authenticate(settings.master_key.get_secret_value() if settings.master_key else None)
            except ApiError as e:
                return send_error(self, e)
        encoder, content_type = choose_encoder(self.request.headers.get("Accept", ""))
        gzipped = "gzip" in self.request.headers.get("Accept-Encoding", "")
        try:
            body = await self.metrics.render(encoder, gzipped)
        except Exception:
            log.exception("spendgate: /metrics failed")
            return self._fail(500, "could not read the ledger for the metrics; see the proxy log", "internal_error")
        self.set_header("Content-Type", content_type)
        if gzipped:  # compressed on a worker thread; tornado leaves an encoded body alone
            self.set_header("Content-Encoding", "gzip")
        self.set_header("Vary", "Accept, Accept-Encoding")
        self.set_header("Cache-Control", "no-store")
        self.finish(body)

    async def _authenticate(self, master: str | None) -> None:
        token = bearer_token(self.request)
        if token is None and is_ui_session(self.request, master):
            return
        refused = ApiError(401, "require_auth_for_metrics_endpoint is on: send Authorization: Bearer <master_key>",
                           "authentication_error", headers={"WWW-Authenticate": 'Bearer realm="spendgate metrics"'})
        if token is None:
            raise refused
        async with THROTTLE.attempt(self.request.remote_ip) as attempt:
            if not is_master_key(token, master):
                attempt.failed()
                raise refused
            attempt.succeeded()


def metrics_handlers(state: ProcessState, metrics: Metrics) -> list:
    return [(r"/metrics/?", MetricsHandler, {"state": state, "metrics": metrics})]
