"""The `budget_config` option: load the YAML config and build the runtime from it.

A bad config stops mitmdump at start-up with every problem named by its key path, and
nothing else printed; a bad config given later (a reload) is refused and the running one
stays (mitmproxy rejects an option change whose `configure` raises OptionsError).

mitmproxy's `stream_large_bodies` is refused the same way: it forwards a large request body
as it arrives, before the `request` hook reads it, so such a call would go upstream with no
budget check and a large reply would reach the hooks empty. Spendgate streams provider
replies itself; with `spendgate run` only provider traffic is decrypted at all.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from mitmproxy import ctx, exceptions

from config.load import ConfigError, load_config, parse_config
from config.schema import mask_password
from metering.runtime import ProcessState, Runtime, Settled

if TYPE_CHECKING:
    from ledger import CallRecord, SpendChange

log = logging.getLogger("spendgate")

STREAMED_BODIES_REFUSED = (
    "stream_large_bodies: spendgate reads each provider request whole before it goes upstream "
    "(its budget is checked on it) and streams provider replies itself; mitmproxy's body streaming "
    "would forward large calls unmetered. Unset stream_large_bodies."
)


class ConfigLoader:
    """Loads the config into the process's `Runtime` (`state.runtime`), again whenever
    `budget_config` changes; the other spendgate addons read it from `state`."""

    def __init__(self, state: ProcessState) -> None:
        self.state = state

    def load(self, loader) -> None:
        loader.add_option(
            "budget_config", str, "",
            "Path to the spendgate YAML config (LiteLLM keys: litellm_settings, general_settings, "
            "plus providers and pricing). Empty: defaults, no budgets, ledger at spendgate.db.",
        )
        loader.add_option(
            "budget_ledger_spool", str, "",
            "Directory keeping the ledger writes (settlements of served calls) made while the "
            "ledger's database is unreachable, until they are recorded. Empty: "
            "<confdir>/spendgate-spool.",
        )

    def configure(self, updated: set[str]) -> None:
        if "stream_large_bodies" in updated and ctx.options.stream_large_bodies:
            self._refuse(STREAMED_BODIES_REFUSED)
        if "budget_config" not in updated and self.state.runtime is not None:
            return
        path = ctx.options.budget_config
        try:
            config = load_config(Path(path)) if path else parse_config({}, source="defaults")
        except ConfigError as e:
            self._refuse(str(e))
        old = self.state.runtime
        spool = ctx.options.budget_ledger_spool or str(Path(ctx.options.confdir).expanduser() / "spendgate-spool")
        try:
            self.state.runtime = Runtime.build(config, previous=old, spool_dir=spool)
        except Exception as e:
            self._refuse(f"spendgate: cannot open the ledger {mask_password(config.general_settings.database_url)}: {e}")
        self.state.runtime.ledger.on_replayed = self._replayed
        if old is not None and old.ledger is not self.state.runtime.ledger:
            old.ledger.close_sync()
            old.journal.close()
        budget = config.litellm_settings
        log.info(
            "spendgate: ledger %s, global budget %s",
            mask_password(config.general_settings.database_url),
            f"${budget.max_budget:,.2f} per {budget.budget_duration or 'lifetime'}"
            if budget.max_budget is not None else "none",
        )

    def _refuse(self, message: str) -> NoReturn:
        """A config that can't be used. At start-up the process exits with the message alone
        (status 2): nothing has started, so there is nothing to shut down and no traceback to
        print. Later (a reload), the option change is refused and the running config stays."""
        if self.state.runtime is None:
            print(message, file=sys.stderr, flush=True)
            raise SystemExit(2)
        raise exceptions.OptionsError(message)

    def _replayed(self, record: CallRecord, changes: list[SpendChange]) -> None:
        """A settlement spooled while the database was away is recorded now: the listeners
        (alerting) hear of it as of any settlement, and a call the journal kept open (its spool
        line could not be written) is done."""
        if self.state.runtime is not None:
            self.state.runtime.journal.done(record.uid)
            self.state.tell(Settled(self.state.runtime, record, changes))

    def running(self) -> None:
        # Everything loaded so far (mitmproxy, the price tables, the config, the directory)
        # lives as long as the process: frozen out of the cyclic GC's scans (core/heap.py).
        self.state.heap.freeze(self.state.long_lived())

    def done(self) -> None:
        if self.state.runtime is not None:
            self.state.runtime.ledger.close_sync()
            self.state.runtime.journal.close()
            self.state.runtime = None
