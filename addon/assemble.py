"""The spendgate addons, in the order mitmproxy should call them."""

from __future__ import annotations

from addon.clock import BudgetClock
from addon.loader import BudgetConfig
from addon.meter import Meter
from addon.proxyauth import ProxyIdentity
from admin.metrics import Metrics
from admin.server import AdminServer
from alerts.addon import AlertDispatcher


def make_addons() -> list[object]:
    config = BudgetConfig()
    # mitmproxy calls `done` in chain order: the Meter first lets in-flight
    # settlements reach the ledger, AlertDispatcher then queues their alerts (it
    # must come after the Meter), BudgetConfig last closes it.
    metrics = Metrics(config)  # before/after bracket the hooks whose time is the addon's added latency
    return [metrics.before, ProxyIdentity(config), Meter(config), metrics.after, AlertDispatcher(config),
            BudgetClock(config), AdminServer(config, metrics), metrics, config]
