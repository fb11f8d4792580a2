"""Long-lived objects kept out of the cyclic garbage collector's scans.

A proxy allocates per call, so CPython runs its collector often, and its older
generations walk every tracked object that has survived. Most of those are long-lived and
hold no garbage: mitmproxy, the price tables (tens of thousands of objects), the config,
and the key directory (10,000 keys are ≈ 25,000 objects more). `gc.freeze()` moves what is
alive into a permanent generation the collector skips; measured, that walk was a tenth of
the addon's CPU per call on an empty ledger and a fifth with 10,000 keys
(docs/benchmarks.md, run K).

Objects made after a freeze are scanned again, so the freeze is renewed when long-lived
data is replaced (a config reload, a directory reload), at most once per `min_gap`
seconds. A renewal collects what is not frozen (a few ms), then freezes. What was frozen
and dies later is freed by reference counting like anything else; only garbage in
reference cycles among frozen objects (say, of calls that were in flight at a freeze)
would stay, so every `FULL_EVERY`-th renewal unfreezes first and collects everything
(≈ 80 ms with 10,000 keys on a slow core: rare, and what a full collection costs anyway).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Hashable

MIN_GAP = 5.0  # seconds between two renewals at the least
FULL_EVERY = 10  # renewals between two full collections


class FrozenHeap:
    """When to freeze: `freeze()` at start-up, `notice(version)` on every clock tick."""

    def __init__(self, min_gap: float = MIN_GAP, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_gap = min_gap
        self.clock = clock
        self.freezes = 0
        self._at: float | None = None
        self._version: Hashable = None

    def freeze(self, version: Hashable = None, *, full: bool = True) -> None:
        """Collect, then freeze everything alive now (`version`: what the long-lived data is).
        `full`: unfreeze first, so that garbage among what was frozen is collected too."""
        if full:
            gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.freezes += 1
        self._at = self.clock()
        self._version = version

    def notice(self, version: Hashable) -> bool:
        """The long-lived data is now `version` (e.g. the runtime and its directory revision):
        frozen again if it changed and the last freeze is `min_gap` old. True if it froze."""
        if version == self._version:
            return False
        if self._at is not None and self.clock() - self._at < self.min_gap:
            return False
        self.freeze(version, full=self.freezes % FULL_EVERY == 0)
        return True
