"""An addon that does nothing, with the hooks spendgate's Meter has: the floor.

`scripts/bench.py --script scripts/noop_addon.py` measures what any Python addon
with these hooks costs mitmdump before it does any work (docs/benchmarks.md, "The
floor"): mitmproxy offers every hook of every flow to every addon, and a call into
Python per hook is not free.
"""


class NoopMeter:
    def load(self, loader) -> None:
        # bench.py's harness sets these on the addon side; declare them so mitmdump accepts them
        loader.add_option("budget_config", str, "", "unused")
        loader.add_option("budget_admin_port", int, 0, "unused")

    def requestheaders(self, flow) -> None:
        pass

    async def request(self, flow) -> None:
        if flow.request.method != "POST":
            return

    def responseheaders(self, flow) -> None:
        pass

    def response(self, flow) -> None:
        pass

    def error(self, flow) -> None:
        pass


addons = [NoopMeter()]
