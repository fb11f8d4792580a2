"""ConfigLoader in-process: a bad config given while running is refused and the running
one stays (at start-up it ends the process with the message alone: test_e2e_config.py)."""

from __future__ import annotations

import asyncio

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addon.loader import ConfigLoader
from metering.runtime import ProcessState


def test_a_bad_config_on_reload_is_refused_and_the_running_one_stays(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(f"litellm_settings: {{max_budget: 5}}\ngeneral_settings: {{database_url: '{tmp_path}/l.db'}}\n")
    bad.write_text("litellm_settings: {budget_duration: 30x}\n")

    async def main():
        state = ProcessState()
        loader = ConfigLoader(state)
        with taddons.context(loader) as tctx:
            tctx.configure(loader, budget_config=str(good))
            running = state.runtime
            with pytest.raises(exceptions.OptionsError, match="budget_duration: '30x' is not a duration"):
                tctx.configure(loader, budget_config=str(bad))
            # mitmproxy rolls the option back (and configures again): the same config, the same ledger
            assert tctx.options.budget_config == str(good)
            assert state.runtime.config == running.config and state.runtime.ledger is running.ledger
            loader.done()

    asyncio.run(main())


def test_stream_large_bodies_set_while_running_is_refused(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"general_settings: {{database_url: '{tmp_path}/l.db'}}\n")

    async def main():
        state = ProcessState()
        loader = ConfigLoader(state)
        with taddons.context(loader) as tctx:
            tctx.options.add_option("stream_large_bodies", str | None, None, "mitmproxy's (its proxyserver addon)")
            tctx.configure(loader, budget_config=str(config))
            with pytest.raises(exceptions.OptionsError, match="would forward large calls unmetered"):
                tctx.configure(loader, stream_large_bodies="1m")
            assert not tctx.options.stream_large_bodies  # rolled back by mitmproxy
            loader.done()

    asyncio.run(main())
