"""An addon that does nothing, with the hooks spendgate's Meter has: the floor.

`scripts/bench.py --floor` runs it beside bare mitmdump and spendgate, in the same
rounds: what any Python addon with these hooks costs mitmdump before it does any work
(docs/benchmarks.md, "Why 0.95× is out of reach"). `--script scripts/noop_addon.py`
measures it alone against bare mitmdump.
"""


class NoopMeter:
    def load(self, loader) -> None:
        # bench.py's harness sets these on the addon side; declare them so mitmdump accepts them
        loader.add_option("budget_config", str, "", "unused")
        loader.add_option("budget_admin_port", int, 0, "unused")

    def requestheaders(self, flow) -> None:
        pass

    async def request(self, flow) -> None:  # async, as the Meter's is
        pass

    def responseheaders(self, flow) -> None:
        pass

    def response(self, flow) -> None:
        pass

    def error(self, flow) -> None:
        pass


addons = [NoopMeter()]
