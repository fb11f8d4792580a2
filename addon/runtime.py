"""Everything a loaded config turns into, built once per config load.

The addons share one `Runtime`; swapping it is how a new config takes effect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from addon.directory import DirectoryCache
from config.schema import BUILTIN_PROVIDERS, SpendgateConfig
from ledger import AsyncLedger, BudgetSpec, ScopeRef, Store, open_ledger, usd_to_nanos
from pricing.prices import PriceBook
from providers.recognize import CustomHost, Recognizer

log = logging.getLogger("spendgate")

def custom_hosts(config: SpendgateConfig) -> dict[str, CustomHost]:
    return {
        name: CustomHost(name=name, host=p.host, api_style=p.api_style, price_provider=p.price_provider)
        for name, p in config.providers.items()
        if p.host and name not in BUILTIN_PROVIDERS
    }


def global_budget(config: SpendgateConfig) -> BudgetSpec:
    s = config.litellm_settings
    return BudgetSpec(
        max_nanos=usd_to_nanos(s.max_budget),
        duration=str(s.budget_duration) if s.budget_duration else None,
    )


@dataclass
class Runtime:
    config: SpendgateConfig
    recognizer: Recognizer
    prices: PriceBook
    ledger: AsyncLedger
    database_url: str = ""
    directory: DirectoryCache = field(default_factory=DirectoryCache)

    @classmethod
    def build(cls, config: SpendgateConfig, ledger: AsyncLedger | None = None,
              spool_dir: str | None = None) -> Runtime:
        """Open the ledger (reusing `ledger` when the database is unchanged) and apply
        the config's global budget to it. `spool_dir` keeps what could not be recorded
        while the database was unreachable."""
        engine, target = config.general_settings.database_url_info()
        if ledger is None:
            ledger = open_ledger(engine, target, spool_dir=spool_dir)
        ledger.configure_sync(ScopeRef.global_(), global_budget(config), datetime.now(UTC))
        ledger.leases.invalidate()  # a reused ledger's leases were granted under the old budget
        directory = DirectoryCache()
        directory.load(*ledger.read_sync(Store.directory))
        return cls(
            directory=directory,
            config=config,
            recognizer=Recognizer(custom_hosts(config)),
            prices=PriceBook.from_overrides(config.pricing),
            ledger=ledger,
            database_url=config.general_settings.database_url,
        )
