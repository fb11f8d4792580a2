"""The failure throttle in front of the master key (admin/throttle.py), in-process with short
delays. The real listener, with the real delays, is measured in test_admin_hardening.py."""

from __future__ import annotations

import asyncio
import time

import pytest

from admin.errors import ApiError
from admin.throttle import FailureThrottle

FAST = dict(free=3, first_delay=0.05, max_delay=0.2, max_waiting=4, forget=60)


async def guess(throttle: FailureThrottle, address: str, right: bool = False) -> float:
    """One attempt; how long it took to be answered."""
    t0 = time.monotonic()
    async with throttle.attempt(address) as attempt:
        if right:
            attempt.succeeded()
        else:
            attempt.failed()
    return time.monotonic() - t0


def test_delays_grow_after_the_free_failures_and_are_capped():
    throttle = FailureThrottle(**FAST)
    assert [throttle.delay(n) for n in range(1, 9)] == [0, 0, 0, 0.05, 0.1, 0.2, 0.2, 0.2]

    async def run():
        return [await guess(throttle, "198.51.100.7") for _ in range(6)]

    took = asyncio.run(run())
    assert all(t < 0.04 for t in took[:3]) and 0.04 < took[3] < 0.15 and took[5] >= 0.19, took


def test_concurrent_attempts_from_one_address_are_answered_one_at_a_time():
    throttle = FailureThrottle(**FAST)

    async def run():
        for _ in range(3):
            await guess(throttle, "198.51.100.8")
        t0 = time.monotonic()
        await asyncio.gather(*(guess(throttle, "198.51.100.8") for _ in range(3)))  # 0.05 + 0.1 + 0.2 in turn
        return time.monotonic() - t0

    assert asyncio.run(run()) >= 0.34


def test_the_delay_never_blocks_the_event_loop_or_other_addresses():
    throttle = FailureThrottle(**FAST)

    async def run():
        for _ in range(5):
            await guess(throttle, "198.51.100.9")
        slow = asyncio.create_task(guess(throttle, "198.51.100.9"))  # waits 0.2 s
        ticks = 0
        t0 = time.monotonic()
        while not slow.done():
            await asyncio.sleep(0.01)
            ticks += 1
        other = await guess(throttle, "203.0.113.5")
        return ticks, time.monotonic() - t0, other

    ticks, waited, other = asyncio.run(run())
    assert waited >= 0.19 and ticks >= 10 and other < 0.04


def test_a_success_resets_the_address_and_ends_its_turn_at_once():
    throttle = FailureThrottle(**FAST)

    async def run():
        for _ in range(5):
            await guess(throttle, "198.51.100.10")
        assert throttle.failures("198.51.100.10") == 5
        right = await guess(throttle, "198.51.100.10", right=True)
        return right, throttle.failures("198.51.100.10"), await guess(throttle, "198.51.100.10")

    right, failures, next_wrong = asyncio.run(run())
    assert right < 0.04 and failures == 0 and next_wrong < 0.04


def test_too_many_queued_attempts_are_turned_away_without_a_look_at_the_key():
    throttle = FailureThrottle(**FAST)

    async def run():
        for _ in range(6):
            await guess(throttle, "198.51.100.11")
        results = await asyncio.gather(*(guess(throttle, "198.51.100.11") for _ in range(8)),
                                       return_exceptions=True)
        return [r for r in results if isinstance(r, ApiError)]

    turned_away = asyncio.run(run())
    assert len(turned_away) >= 3
    assert all(e.status == 429 and e.type == "rate_limit_error" and "Retry-After" in e.headers for e in turned_away)


@pytest.mark.parametrize(("a", "b", "same"), [
    ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),  # one /64: one machine
    ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
    ("::ffff:192.0.2.1", "192.0.2.1", True),
    ("192.0.2.1", "192.0.2.2", False),
])
def test_addresses_are_counted_by_machine(a, b, same):
    throttle = FailureThrottle(**FAST)

    async def run():
        await guess(throttle, a)
        return throttle.failures(b)

    assert asyncio.run(run()) == (1 if same else 0)
