"""The spendgate addons, in the order mitmproxy should call them."""

from __future__ import annotations

from addon.clock import BudgetClock
from addon.egress import Egress
from addon.loader import BudgetConfig
from addon.meter import Meter
from addon.proxyauth import ProxyIdentity
from addon.redact import LogRedaction
from admin.metrics import Metrics
from admin.server import AdminServer
from alerts.addon import AlertDispatcher


def make_addons() -> list[object]:
    config = BudgetConfig()
    # mitmproxy calls `done` in chain order: the Meter first lets in-flight
    # settlements reach the ledger, AlertDispatcher then queues their alerts (it
    # must come after the Meter), BudgetConfig last closes it (scripts find it
    # last). LogRedaction, first, leaves its filter on the log handlers for the
    # rest of the process. Egress judges a request's destination before the Meter
    # reserves budget for it.
    metrics = Metrics(config)
    meter = Meter(config)
    meter.observe_latency = metrics.observe_latency  # the latency spendgate adds, as a histogram
    return [LogRedaction(), ProxyIdentity(config), Egress(config), meter, AlertDispatcher(config),
            BudgetClock(config), AdminServer(config, metrics), metrics, config]
