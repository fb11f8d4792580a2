"""The one object mitmproxy is given: each of its hooks handed to the concerns that have it,
in order, bound once at start.

mitmproxy offers every event to every addon object a script lists: for each event of each
flow, and for the `update` event after it, it walks the script's addons, looks the hook up
on each, and calls each one found with the event's arguments read anew. With spendgate's
eleven concern objects that offering cost ≈ 0.4 M instructions a call (do-nothing objects
with spendgate's hooks, measured), where one object with the same hooks costs 0.16 M; giving
mitmproxy one object took ≈ 0.16 M off spendgate's chat call (docs/benchmarks.md, run M).
So addon/budget.py lists one `HookFanout` over the concerns
`make_addons()` builds: a hook only one concern has is that concern's own bound method; one
several have is a function that calls theirs in the concerns' order, awaiting what is
awaitable, as mitmproxy's `invoke_addon` would — an exception stops the event's later
concerns either way (mitmproxy's `safecall` wraps the whole script).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import mitmproxy.addonmanager  # noqa: F401  (each module registers its hooks by name)
import mitmproxy.log  # noqa: F401
import mitmproxy.proxy.layers  # noqa: F401
import mitmproxy.proxy.server_hooks  # noqa: F401
from mitmproxy import hooks

__all__ = ["HookFanout"]


class HookFanout:
    """Spendgate's concerns (`concerns`, in chain order) as one addon. Not named `addons`:
    mitmproxy would walk them again."""

    def __init__(self, concerns: Sequence[object]):
        self.concerns = tuple(concerns)
        for name in hooks.all_hooks:
            handlers = [h for c in self.concerns if callable(h := getattr(c, name, None))]
            if len(handlers) == 1:
                setattr(self, name, handlers[0])
            elif handlers:
                setattr(self, name, _fan_out(name, handlers))

    def __repr__(self) -> str:
        return f"HookFanout({', '.join(type(c).__name__ for c in self.concerns)})"


# Events mitmproxy also calls from sync code (a script's load, its configure and running
# when it is loaded into a running proxy, `update`): their fan-out stays a plain function
# where every handler is one. Every other event is awaited, so its fan-out awaits what a
# handler returns, as mitmproxy does (a sync hook may return a coroutine when it has work).
_CALLED_SYNC = frozenset({"load", "configure", "running", "update"})


def _fan_out(name: str, handlers: list[Callable[..., Any]]) -> Callable[..., Any]:
    """One hook calling `handlers` in order."""
    if name in _CALLED_SYNC and not any(inspect.iscoroutinefunction(h) for h in handlers):
        def fan_out(*args: Any) -> None:
            for handler in handlers:
                handler(*args)
    else:
        async def fan_out(*args: Any) -> None:
            for handler in handlers:
                result = handler(*args)
                if result is not None and inspect.isawaitable(result):
                    await result
    fan_out.__name__ = fan_out.__qualname__ = name
    return fan_out
