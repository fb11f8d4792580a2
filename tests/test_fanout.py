"""addon/fanout.py: spendgate's concerns given to mitmproxy as one addon, each hook bound once.
The concerns must see every event as they would as addons of their own: in order, awaited,
and the sync events still sync."""

from __future__ import annotations

import asyncio
import inspect

from mitmproxy import hooks
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.test import taddons, tflow

from addon.assemble import make_addons
from addon.fanout import HookFanout


class Recorder:
    def __init__(self, name: str, seen: list[str]):
        self.name, self.seen = name, seen

    def load(self, loader) -> None:
        self.seen.append(f"{self.name}.load")

    def running(self) -> None:
        self.seen.append(f"{self.name}.running")


class SyncFirst(Recorder):
    def request(self, flow):
        """A sync hook that returns a coroutine when it has work (as Egress and ProxyIdentity do)."""
        self.seen.append(f"{self.name}.request")

        async def later() -> None:
            await asyncio.sleep(0)
            self.seen.append(f"{self.name}.request awaited")
        return later()


class AsyncSecond(Recorder):
    async def request(self, flow) -> None:
        self.seen.append(f"{self.name}.request")

    def response(self, flow) -> None:
        self.seen.append(f"{self.name}.response")


def test_a_hook_one_concern_has_is_that_concerns_own_method():
    seen: list[str] = []
    second = AsyncSecond("b", seen)
    fanout = HookFanout([SyncFirst("a", seen), second])
    assert fanout.response == second.response  # nothing between mitmproxy and it
    assert not hasattr(fanout, "websocket_message")  # nobody has it: mitmproxy finds nothing
    assert not hasattr(fanout, "addons")  # mitmproxy would walk the concerns again


def test_every_event_reaches_every_concern_in_order_and_what_they_return_is_awaited():
    seen: list[str] = []
    fanout = HookFanout([SyncFirst("a", seen), AsyncSecond("b", seen)])

    async def main() -> None:
        with taddons.context(fanout) as tctx:
            assert seen == ["a.load", "b.load"]  # loaded as an addon, each concern's load in turn
            await tctx.master.addons.handle_lifecycle(HttpRequestHook(tflow.tflow()))
            assert seen[2:] == ["a.request", "a.request awaited", "b.request"]
            await tctx.cycle(fanout, tflow.tflow(resp=True))
            assert seen[-1] == "b.response"
    asyncio.run(main())


def test_events_mitmproxy_calls_from_sync_code_stay_sync():
    seen: list[str] = []
    fanout = HookFanout([SyncFirst("a", seen), AsyncSecond("b", seen)])
    assert not inspect.iscoroutinefunction(fanout.load) and not inspect.iscoroutinefunction(fanout.running)
    with taddons.context(fanout) as tctx:
        tctx.master.addons.invoke_addon_sync(fanout, hooks.RunningHook())  # as a script loaded late is
    assert seen[-2:] == ["a.running", "b.running"]
    assert inspect.iscoroutinefunction(fanout.request)  # awaited by mitmproxy: it may await


def test_spendgates_concerns_load_as_one_addon():
    concerns = make_addons()
    fanout = HookFanout(concerns)
    with taddons.context(fanout) as tctx:
        assert "budget_config" in tctx.options and "budget_admin_port" in tctx.options
    for name in ("request", "response", "responseheaders", "error", "done", "running", "configure"):
        assert callable(getattr(fanout, name))
