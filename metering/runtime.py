"""The process's shared state: what a loaded config turns into, and who listens to spend.

`Runtime` is built once per config load (providers, prices, ledger, the in-memory
directory); swapping it is how a new config takes effect. `ProcessState` holds the current
one and the `SpendListener`s (alerting, metrics). The mitmproxy addons, the admin API and
the alerts all read these two types from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from config.schema import SpendgateConfig
from core.heap import FrozenHeap
from ledger import AsyncLedger, BudgetSpec, ScopeRef, Store, open_ledger, usd_to_nanos
from metering.directory_cache import DirectoryCache
from metering.journal import CallJournal
from pricing.prices import PriceBook
from providers.custom import CustomProvider
from providers.registry import Registry, config_names

if TYPE_CHECKING:
    from collections.abc import Callable

    from ledger import CallRecord, Denial, SpendChange

log = logging.getLogger("spendgate")

__all__ = ["Denied", "ProcessState", "Runtime", "Settled", "SpendListener"]


def custom_providers(config: SpendgateConfig) -> dict[str, CustomProvider]:
    """The `providers:` entries that name a host of their own (built-in names only set options)."""
    builtin = config_names()
    return {
        name: CustomProvider(name, p.host, p.api_style, p.price_provider)
        for name, p in config.providers.items()
        if p.host and name not in builtin
    }


def prepare_credentials(config: SpendgateConfig, registry: Registry) -> None:
    """Let each place a configured real credential will be put in load what it needs now,
    at start-up, rather than on the event loop at the first virtual key's call (botocore's
    SigV4 signer takes a few hundred ms to import)."""
    for provider in registry.providers:
        for name in provider.config_names:
            entry = config.providers.get(name)
            place = entry and provider.credential.placement(entry.secrets())
            if place:
                place.prepare()


def global_budget(config: SpendgateConfig) -> BudgetSpec:
    s = config.litellm_settings
    return BudgetSpec(
        max_nanos=usd_to_nanos(s.max_budget),
        duration=str(s.budget_duration) if s.budget_duration else None,
    )


@dataclass
class Runtime:
    config: SpendgateConfig
    registry: Registry
    prices: PriceBook
    ledger: AsyncLedger
    journal: CallJournal
    database_url: str = ""
    directory: DirectoryCache = field(default_factory=DirectoryCache)
    _idle_timeouts: dict[str, float] = field(default_factory=dict, repr=False)

    def idle_timeout(self, provider: str) -> float:
        """Seconds a provider may stay silent on a call before the call is cut (asked for
        every call, so remembered per provider: a new config is a new Runtime)."""
        timeout = self._idle_timeouts.get(provider)
        if timeout is None:
            timeout = self._idle_timeouts[provider] = self._configured_idle_timeout(provider)
        return timeout

    def _configured_idle_timeout(self, provider: str) -> float:
        for name in self.registry.named(provider).config_names:
            entry = self.config.providers.get(name)
            if entry is not None and entry.idle_timeout is not None:
                return entry.idle_timeout
        return self.config.general_settings.upstream_idle_timeout

    @classmethod
    def build(cls, config: SpendgateConfig, previous: Runtime | None = None,
              spool_dir: str | None = None) -> Runtime:
        """Open the ledger (reusing `previous`'s, and its call journal, when the database is
        unchanged) and apply the config's global budget to it. `spool_dir` keeps what could
        not be recorded while the database was unreachable, and the call journal."""
        engine, target = config.general_settings.database_url_info()
        general = config.general_settings
        reuse = (previous is not None and previous.database_url == general.database_url
                 and previous.config.general_settings.writer_process() == general.writer_process())
        if reuse:
            ledger, journal = previous.ledger, previous.journal
        else:
            ledger = open_ledger(engine, target, spool_dir=spool_dir, writer_process=general.writer_process())
            journal = CallJournal(Path(spool_dir) / "journal" if spool_dir else None, ledger.instance_id)
        ledger.configure_sync(ScopeRef.global_(), global_budget(config), datetime.now(UTC))
        ledger.leases.invalidate()  # a reused ledger's leases were granted under the old budget
        directory = DirectoryCache()
        directory.load(*ledger.read_sync(Store.directory))
        registry = Registry(custom_providers(config))
        prepare_credentials(config, registry)
        return cls(
            directory=directory,
            config=config,
            registry=registry,
            prices=PriceBook(config.pricing),
            ledger=ledger,
            journal=journal,
            database_url=config.general_settings.database_url,
        )


# --- who hears about spend ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settled:
    """A call was charged: its ledger row, and each scope's spend before and after."""

    runtime: Runtime
    record: CallRecord
    changes: list[SpendChange]
    #: The listeners' `in_settlement` work committed with the row (False: the row was written
    #: without it — spooled and replayed, recovered, or written again without its alerts —
    #: so what that work left in memory was rolled back and is to be done again).
    in_settlement_committed: bool = False


@dataclass(frozen=True, slots=True)
class Denied:
    """A call was refused (its `blocked` ledger row); `denial` when a budget refused it."""

    runtime: Runtime
    record: CallRecord
    denial: Denial | None


class SpendListener(Protocol):
    """Told about budget movements after the fact (alerting, metrics). Called on the event
    loop, `denied` even from a flow's hook: queue work, return at once. A listener that
    raises is logged and never turns a reply into an error."""

    def settled(self, event: Settled) -> None: ...

    def denied(self, event: Denied) -> None: ...

    def in_settlement(self, runtime: Runtime, record: CallRecord) -> Callable[[Store, list[SpendChange]], None] | None:
        """Work that must commit with the settlement itself (alerts are enqueued there, so a
        crash can't commit a threshold crossing without its alert), or None."""
        ...


class ProcessState:
    """Owns the current `Runtime` and the spend listeners; every spendgate addon, the
    admin API and the alerts reach the runtime through it."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.listeners: list[SpendListener] = []
        self.heap = FrozenHeap()  # long-lived objects out of the GC's scans (core/heap.py)

    def long_lived(self) -> tuple[int, int]:
        """Which long-lived data the process holds (`heap`): its runtime (a config reload makes
        a new one) and the directory revision loaded (a reload replaces every key's record)."""
        rt = self.runtime
        return (id(rt), rt.directory.revision) if rt is not None else (0, -1)

    def tell(self, event: Settled | Denied) -> None:
        """Every listener hears of `event`; one that fails is logged, the others still hear."""
        for listener in self.listeners:
            try:
                if isinstance(event, Settled):
                    listener.settled(event)
                else:
                    listener.denied(event)
            except Exception:
                log.exception("spendgate: %s listener %s failed", type(event).__name__.lower(),
                              type(listener).__name__)
