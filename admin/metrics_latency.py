"""The addon's own added latency, measured without touching the request path.

mitmproxy runs a flow's hooks addon by addon, in chain order, awaiting each (async
hooks included). `LatencyStart` sits before spendgate's addons and `LatencyEnd` right
after the Meter, so the time between them is what spendgate's hooks took for that flow:
for `request`, identifying the key, estimating the call and reserving its budget
(including any wait for the ledger's writer thread) or refusing it; for `response`,
reading the usage from a buffered reply. Only metered calls are observed — flows
spendgate lets through untouched are not LLM calls.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mitmproxy import http

from addon.call import METADATA_KEY

if TYPE_CHECKING:
    from admin.metrics import Metrics

_REQUEST_MARK = "spendgate.t_request"
_RESPONSE_MARK = "spendgate.t_response"


class LatencyStart:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def request(self, flow: http.HTTPFlow) -> None:
        if self.metrics.enabled:
            flow.metadata[_REQUEST_MARK] = (time.perf_counter(), flow.response is not None)

    def response(self, flow: http.HTTPFlow) -> None:
        if METADATA_KEY in flow.metadata and self.metrics.enabled:
            flow.metadata[_RESPONSE_MARK] = time.perf_counter()


class LatencyEnd:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def request(self, flow: http.HTTPFlow) -> None:
        mark = flow.metadata.pop(_REQUEST_MARK, None)
        if mark is None:
            return
        started, answered_before = mark
        refused = flow.response is not None and not answered_before  # spendgate answered in its place
        if METADATA_KEY in flow.metadata or refused:
            self.metrics.latency.labels("request").observe(time.perf_counter() - started)

    def response(self, flow: http.HTTPFlow) -> None:
        started = flow.metadata.pop(_RESPONSE_MARK, None)
        if started is not None:
            self.metrics.latency.labels("response").observe(time.perf_counter() - started)
