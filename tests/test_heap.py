"""core/heap.py: long-lived objects frozen out of the GC's scans, the freeze renewed when
the long-lived data changes, not more often than its gap allows."""

from __future__ import annotations

import gc

from core.heap import FULL_EVERY, FrozenHeap


class Record:
    def __init__(self, n: int) -> None:
        self.n = n


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_freeze_moves_what_is_alive_out_of_the_collectors_reach_and_a_change_renews_it():
    clock = Clock()
    heap = FrozenHeap(min_gap=5.0, clock=clock)
    try:
        heap.freeze(("runtime", 1))
        frozen = gc.get_freeze_count()
        assert frozen > 0
        directory = [Record(i) for i in range(5_000)]  # a directory reload's new records
        assert not heap.notice(("runtime", 1))  # nothing changed
        assert not heap.notice(("runtime", 2))  # changed, but the last freeze is too recent
        clock.now += 5.0
        assert heap.notice(("runtime", 2))
        assert gc.get_freeze_count() >= frozen + len(directory)
        assert not heap.notice(("runtime", 2))
        assert heap.freezes == 2
    finally:
        gc.unfreeze()


def test_every_few_renewals_unfreeze_first_so_frozen_garbage_is_collected():
    clock = Clock()
    heap = FrozenHeap(min_gap=0.0, clock=clock)
    try:
        heap.freeze(0)
        cycle = []
        cycle.append(cycle)  # garbage in a reference cycle, once frozen
        gc.freeze()
        del cycle
        for version in range(1, FULL_EVERY):
            heap.notice(version)
        before = gc.get_freeze_count()
        heap.notice(FULL_EVERY)  # the full one: everything dead since is collected first
        assert heap.freezes == FULL_EVERY + 1
        assert gc.get_freeze_count() < before + 1_000
    finally:
        gc.unfreeze()
