"""mitmdump entry point: `mitmdump -s addon/budget.py --set budget_config=config.yaml`.

A thin shim: mitmproxy loads this file under a synthetic module name, so the logic
lives in the installed packages and is only assembled here.
"""

from addon.assemble import make_addons
from addon.fanout import HookFanout

addons = [HookFanout(make_addons())]  # one object for mitmproxy to offer each event to (addon/fanout.py)
