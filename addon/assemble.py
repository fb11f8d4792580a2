"""The spendgate addons, in the order mitmproxy should call them."""

from __future__ import annotations

from addon.clock import BudgetClock
from addon.egress import Egress
from addon.http import HttpMeter
from addon.idle import UpstreamIdleWatch
from addon.loader import ConfigLoader
from addon.proxyauth import ProxyIdentity
from addon.redact import LogRedaction
from addon.websocket import WebSocketMeter
from admin.metrics import Metrics
from admin.server import AdminServer
from alerts.addon import AlertRaiser
from metering.meter import Meter
from metering.runtime import ProcessState


def make_addons() -> list[object]:
    state = ProcessState()
    # mitmproxy calls `done` in chain order: the HTTP meter first lets in-flight
    # settlements reach the ledger, AlertRaiser then queues their alerts (it
    # must come after the meter), ConfigLoader last closes the ledger (scripts find it
    # last). LogRedaction, first, leaves its filter on the log handlers for the rest of
    # the process. Egress judges a request's destination before the meter reserves
    # budget for it.
    metrics = Metrics(state)
    meter = Meter(state)
    http_meter = HttpMeter(state, meter)
    http_meter.observe_latency = metrics.observe_latency  # the latency spendgate adds, as a histogram
    # The WebSocket meter shares the metering core; it comes before the HTTP meter, whose
    # `done` drains the core's settlements (a socket's last turns among them).
    return [LogRedaction(), ProxyIdentity(state), Egress(state), WebSocketMeter(state, meter), http_meter,
            UpstreamIdleWatch(state),
            AlertRaiser(state), BudgetClock(state), AdminServer(state, metrics), metrics, ConfigLoader(state)]
