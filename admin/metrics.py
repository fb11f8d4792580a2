"""Prometheus metrics: what the ledger says, in the names LiteLLM's dashboards query.

Turned on by `litellm_settings.success_callback: ["prometheus"]`; served at `GET /metrics`
on the admin listener (`admin/metrics_http.py`). See docs/metrics.md for every series.

Where each value comes from, so that it is true right after a restart and cheap to scrape:

- Call counters (spend, calls, blocked calls, tokens, unpriced, unmetered and anomalous
  calls) are running totals
  over the `calls` table kept in memory. Each scrape folds in only the rows added since
  the previous one (`ledger.views_metrics.call_totals`, an index range on the primary
  key); the first read after start aggregates the whole ledger once, in the background
  as soon as the proxy is running. The totals therefore always equal the ledger — after
  a restart, and with other proxy processes writing the same file.
- Budget gauges are read from the `budgets` table at scrape time (one query). A scope
  without a budget is absent from the budget gauges: never `+Inf` or `NaN` (LiteLLM #21048).
- Alert deliveries: the outbox table by channel and status (ledger-wide, durable), and
  the alert delivery's own attempt counters (this process); the added latency is
  measured by the Meter around its own hooks (`observe_latency`).

Values are USD (floats); the ledger's integer nano-dollars are summed first, so a series
is exact to the nano-dollar.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.outbox import counts_by_channel
from ledger.model import NANOS_PER_USD
from ledger.views_metrics import (
    TOKEN_CLASSES,
    BudgetSnapshot,
    CallBatch,
    budget_snapshot,
    call_totals,
)

if TYPE_CHECKING:
    from ledger.spool import Spool
    from metering.runtime import ProcessState
    from metering.runtime import Runtime

log = logging.getLogger("spendgate.metrics")

CALLBACK = "prometheus"
GZIP_LEVEL = 5  # a tenth of the size for a fraction of the formatting time
YIELD_EVERY = 64  # samples formatted between two hand-backs of the GIL (about a millisecond)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def enabled(runtime: Runtime | None) -> bool:
    return runtime is not None and CALLBACK in runtime.config.litellm_settings.success_callback


def usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


class CallTotals:
    """All-time counters over the ledger's `calls` rows, keyed by label values."""

    def __init__(self) -> None:
        self.last_id = 0
        self.spend: dict[tuple[str, ...], int] = defaultdict(int)  # (model, provider, team, user, key) → nanos
        self.calls: dict[tuple[str, ...], int] = defaultdict(int)  # (provider, model, endpoint, status)
        self.blocked: dict[tuple[str, ...], int] = defaultdict(int)  # (reason, provider, model)
        self.tokens: dict[tuple[str, ...], int] = defaultdict(int)  # (provider, model, class)
        self.unpriced: dict[tuple[str, ...], int] = defaultdict(int)  # (provider, model)
        self.unmetered: dict[tuple[str, ...], int] = defaultdict(int)  # (provider, model)
        self.anomalous: dict[tuple[str, ...], int] = defaultdict(int)  # (provider, model)

    def absorb(self, batch: CallBatch) -> None:
        for g in batch.groups:
            if g.status == "blocked":
                self.blocked[(g.error or "unknown", g.provider, g.model)] += g.calls
                continue
            self.spend[(g.model, g.provider, g.team, g.user, g.key)] += g.cost_nanos
            self.calls[(g.provider, g.model, g.endpoint, g.status)] += g.calls
            if g.unpriced:
                self.unpriced[(g.provider, g.model)] += g.unpriced
            if g.status == "unmetered":
                self.unmetered[(g.provider, g.model)] += g.calls
            if g.anomalous:
                self.anomalous[(g.provider, g.model)] += g.anomalous
            for name, count in zip(TOKEN_CLASSES, g.tokens):
                if count:
                    self.tokens[(g.provider, g.model, name)] += count
        self.last_id = max(self.last_id, batch.last_id)


class _YieldingSamples(list):
    """A family's samples that let go of the GIL every few dozen while they are formatted.

    Formatting runs on a worker thread, but CPython switches threads only every 5 ms:
    without this, every socket operation of the event loop (the proxy's flows) would wait
    for the formatter's slice to end, adding tens of milliseconds to calls during a scrape.
    prometheus-client only iterates `metric.samples`, so the pauses slot in here.
    """

    def __iter__(self):
        for i, sample in enumerate(list.__iter__(self)):
            if i and i % YIELD_EVERY == 0:
                time.sleep(0)  # releases the GIL: a waiting event loop runs at once
            yield sample


def _yielding(family: Metric) -> Metric:
    if len(family.samples) > YIELD_EVERY:
        family.samples = _YieldingSamples(family.samples)
    return family


def _counter(name: str, doc: str, labels: list[str], values: Mapping[tuple[str, ...], float]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for i, (key, value) in enumerate(sorted(values.items())):
        if i and i % YIELD_EVERY == 0:
            time.sleep(0)
        family.add_metric(list(key), value)
    return _yielding(family)


class SpendCollector(Collector):
    """Renders the last refreshed state. `collect` only reads what `Metrics.render`
    prepared (and the two never overlap: scrapes hold `Metrics._lock`)."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        m = self.metrics
        totals, snapshot = m.totals, m.snapshot
        yield _counter(
            "litellm_spend", "All-time spend in USD by model, provider, team, user and key "
            "(key: its alias, else its masked fingerprint).",
            ["model", "provider", "team", "user", "key"],
            {k: usd(v) for k, v in totals.spend.items()},
        )
        yield _counter("spendgate_calls", "Metered LLM calls that were forwarded, by outcome.",
                       ["provider", "model", "endpoint", "status"], totals.calls)
        yield _counter("spendgate_blocked_calls", "LLM calls spendgate refused, by reason (the error type "
                       "the client got: budget_exceeded, key_model_access_denied, ...).",
                       ["reason", "provider", "model"], totals.blocked)
        yield _counter("spendgate_tokens", "Tokens of metered calls by class, as the ledger counts them "
                       "(input includes cache reads and writes; output includes reasoning).",
                       ["provider", "model", "class"], totals.tokens)
        yield _counter("spendgate_unpriced_calls", "Calls recorded with unknown cost (no price for the model).",
                       ["provider", "model"], totals.unpriced)
        yield _counter("spendgate_unmetered_calls", "Calls to a provider's endpoint spendgate cannot meter, "
                       "recorded with status unmetered and an unknown cost (general_settings.unmetered_endpoints).",
                       ["provider", "model"], totals.unmetered)
        yield _counter("spendgate_anomalous_calls", "Calls whose response reported more usage than the request "
                       "could produce: clamped, the raw figures kept in the ledger row's anomaly.",
                       ["provider", "model"], totals.anomalous)
        deliveries = m.deliveries
        if deliveries is not None:
            yield _counter("spendgate_alert_deliveries", "Budget alert delivery attempts by channel and outcome "
                           "(sent, failed: will retry, gave_up, dropped), since this process started.",
                           ["channel", "outcome"], deliveries)
        outbox = GaugeMetricFamily("spendgate_alert_outbox", "Budget alert deliveries in the ledger's outbox by "
                                   "channel and status (pending, sending, sent, failed, dropped), all processes.",
                                   labels=["channel", "status"])
        for (channel, status), n in sorted(m.outbox.items()):
            outbox.add_metric([channel, status], n)
        yield outbox
        rt = m.state.runtime
        if rt is not None:
            yield from spool_families(rt.ledger.spool)
        yield from budget_families(snapshot)


def spool_families(spool: Spool) -> Iterable[Metric]:
    """What this process spooled while its database was away or its disk full (ledger/spool.py)."""
    waiting = GaugeMetricFamily("spendgate_ledger_spool_waiting", "Ledger writes spooled by this process "
                                "and not yet written to the database.")
    waiting.add_metric([], len(spool))
    yield waiting
    spooled = CounterMetricFamily("spendgate_ledger_spooled_writes", "Ledger writes this process spooled "
                                  "because its database was unreachable or full, since it started.")
    spooled.add_metric([], spool.spooled_total)
    yield spooled
    replayed = CounterMetricFamily("spendgate_ledger_replayed_writes", "Spooled ledger writes this process "
                                   "has since written to the database.")
    replayed.add_metric([], spool.replayed_total)
    yield replayed


def budget_families(snapshot: BudgetSnapshot) -> Iterable[Metric]:
    """The per-scope gauges. Label sets of a `_spend` and its `_budget` gauge are identical,
    so `litellm_key_spend / litellm_key_budget` matches series one to one."""
    key_spend = GaugeMetricFamily("litellm_key_spend", "Spend this budget period per key, USD.",
                                  labels=["key", "key_hash"])
    key_budget = GaugeMetricFamily("litellm_key_budget", "Max budget per key, USD (keys with a budget only).",
                                   labels=["key", "key_hash"])
    team_spend = GaugeMetricFamily("litellm_team_spend", "Spend this budget period per team, USD.",
                                   labels=["team", "team_alias"])
    team_budget = GaugeMetricFamily("litellm_team_budget", "Max budget per team, USD (teams with a budget only).",
                                    labels=["team", "team_alias"])
    user_spend = GaugeMetricFamily("litellm_user_spend", "Spend this budget period per user, USD.",
                                   labels=["user"])
    user_budget = GaugeMetricFamily("litellm_user_budget", "Max budget per user, USD (users with a budget only).",
                                    labels=["user"])
    remaining = GaugeMetricFamily("litellm_budget_remaining", "Max budget minus spend this period, USD, per "
                                  "budgeted scope (negative when a call overshot it).",
                                  labels=["scope", "id", "name"])
    for i, s in enumerate(snapshot.scopes):
        if i and i % YIELD_EVERY == 0:
            time.sleep(0)
        spend = usd(s.spend_nanos)
        budget = None if s.max_nanos is None else usd(s.max_nanos)
        if s.kind == "key":
            labels = [s.name, s.id]
            key_spend.add_metric(labels, spend)
            if budget is not None:
                key_budget.add_metric(labels, budget)
        elif s.kind == "team":
            labels = [s.id, s.name]
            team_spend.add_metric(labels, spend)
            if budget is not None:
                team_budget.add_metric(labels, budget)
        elif s.kind == "user":
            user_spend.add_metric([s.id], spend)
            if budget is not None:
                user_budget.add_metric([s.id], budget)
        if s.max_nanos is not None:
            remaining.add_metric([s.kind, s.id, s.name], usd(s.max_nanos - s.spend_nanos))
    for family in (key_spend, key_budget, team_spend, team_budget, user_spend, user_budget, remaining):
        yield _yielding(family)


class Metrics:
    """The metrics state of one proxy process: registry, call totals, latency histogram.

    Put in the addon chain (it warms the call totals up in `running`); the Meter reports
    its hooks' time to `observe_latency`.
    """

    def __init__(self, state: ProcessState):
        self.state = state
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram(
            "spendgate_added_latency_seconds",
            "Time metered calls spend inside spendgate's own hooks (phase=request: identity, "
            "estimate and budget reservation before forwarding; phase=response: reading the "
            "reply's usage), seconds.",
            ["phase"], registry=self.registry, buckets=LATENCY_BUCKETS,
        )
        # present at 0 from the start, so rates work at once
        self._phases = {phase: self.latency.labels(phase) for phase in ("request", "response")}
        self.registry.register(SpendCollector(self))
        self.totals = CallTotals()
        self.snapshot = BudgetSnapshot()
        self.deliveries: dict[tuple[str, str], int] | None = None
        self.outbox: dict[tuple[str, str], int] = {}
        self._rendered: tuple[Any, bytes] | None = None  # (state it was rendered from, body)
        self._ledger: object | None = None
        self._lock = asyncio.Lock()
        self._warmup: asyncio.Task | None = None

    def observe_latency(self, phase: str, seconds: float) -> None:
        """Time a metered call spent in spendgate's hooks (called by the Meter, twice per call)."""
        if enabled(self.state.runtime):
            self._phases[phase].observe(seconds)

    # -- addon hooks ----------------------------------------------------------------------

    def running(self) -> None:
        if enabled(self.state.runtime) and self._warmup is None:
            self._warmup = asyncio.get_running_loop().create_task(self._warm())

    async def _warm(self) -> None:
        try:
            async with self._lock:
                await self._refresh_calls(self.state.runtime)
        except Exception:
            log.exception("spendgate: could not read the ledger for the metrics")

    # -- state ------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return enabled(self.state.runtime)

    async def _refresh_calls(self, rt: Runtime) -> None:
        if rt.ledger is not self._ledger:  # first read, or the config moved to another ledger
            self.totals, self._ledger = CallTotals(), rt.ledger
        self.totals.absorb(await rt.ledger.read(call_totals, self.totals.last_id))

    async def render(self, encoder: Callable[[CollectorRegistry], bytes], gzipped: bool = False) -> bytes:
        """Bring the state up to the ledger and render it, gzipped if asked.

        Formatting and compressing run off the event loop (with ten thousand keys the
        text is megabytes); when nothing changed since the last scrape, its bytes are
        served again.
        """
        rt = self.state.runtime
        if rt is None:
            raise RuntimeError("spendgate is not configured yet")
        async with self._lock:
            await self._refresh_calls(rt)
            self.snapshot = await rt.ledger.read(budget_snapshot)
            self.outbox = await rt.ledger.read(counts_by_channel)
            self.deliveries = self.alert_deliveries()  # read here: the alert delivery lives on this loop
            state = (encoder, gzipped, self.totals.last_id, self.snapshot.scopes, sorted(self.outbox.items()),
                     sorted((self.deliveries or {}).items()), self._latency_counts())
            if self._rendered is not None and self._rendered[0] == state:
                return self._rendered[1]

            def work() -> bytes:
                body = encoder(self.registry)
                return gzip.compress(body, compresslevel=GZIP_LEVEL) if gzipped else body

            body = await asyncio.get_running_loop().run_in_executor(None, work)
            self._rendered = (state, body)
            return body

    def _latency_counts(self) -> tuple[float, ...]:
        return tuple(s.value for family in self.latency.collect() for s in family.samples if s.name.endswith("_count"))

    def alert_deliveries(self) -> dict[tuple[str, str], int] | None:
        """(channel, outcome) → count, from the alert raiser among the spend listeners
        (`alerts.addon.AlertRaiser.deliveries_total`); None when alerting isn't loaded."""
        for listener in self.state.listeners:
            counts = getattr(listener, "deliveries_total", None)
            if counts is not None:
                return _delivery_labels(counts)
        return None


def _delivery_labels(counts: Any) -> dict[tuple[str, str], int]:
    return {(str(channel), str(outcome)): int(n) for (channel, outcome), n in dict(counts).items()}
