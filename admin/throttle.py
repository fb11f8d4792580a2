"""Slows down guessing the master key: failures are counted per client address.

Unthrottled, one address had about 1,150 wrong keys/s answered by the admin API, and UI
logins ran in parallel past their fixed delay. Now every attempt — a request that presents
a key, or a login — takes its address's turn (attempts from one address are answered one
at a time), the first few failures are answered at once, and each further failure is
answered only after a delay that doubles up to a cap, awaited on the event loop (nothing
else waits for it). A success with the master key clears the address's record; so does
a quiet `FORGET` seconds. An address with `MAX_WAITING` attempts already queued gets a 429
without its key being looked at, so queueing more does not buy more guesses.

IPv6 addresses count by their /64, the block one machine is usually given.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from admin.errors import ApiError

FREE_FAILURES = 5  # answered at once: a person mistyping the key
FIRST_DELAY = 0.5  # seconds, for the first failure past the free ones, then doubling
MAX_DELAY = 10.0  # seconds
MAX_WAITING = 8  # attempts queued per address before further ones get a 429
FORGET = 15 * 60  # seconds without a failure after which an address starts afresh
MAX_ADDRESSES = 10_000  # records kept; the oldest idle ones go first


@dataclass
class _Record:
    failures: int = 0
    last: float = field(default_factory=time.monotonic)
    waiting: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Attempt:
    """One attempt's outcome, told by the caller: `succeeded()` (the master key: the
    address starts afresh, and its turn ends at once) or `failed()` (answered after the
    address's delay). Neither: the turn ends when the attempt does, nothing counted."""

    def __init__(self, record: _Record):
        self._record = record
        self.outcome: str | None = None
        self._released = False

    def succeeded(self) -> None:
        self.outcome = "succeeded"
        self._record.failures = 0
        self._release()

    def failed(self) -> None:
        self.outcome = "failed"

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._record.lock.release()


class FailureThrottle:
    def __init__(self, free: int = FREE_FAILURES, first_delay: float = FIRST_DELAY, max_delay: float = MAX_DELAY,
                 max_waiting: int = MAX_WAITING, forget: float = FORGET):
        self.free, self.first_delay, self.max_delay = free, first_delay, max_delay
        self.max_waiting, self.forget = max_waiting, forget
        self._records: dict[str, _Record] = {}

    def delay(self, failures: int) -> float:
        """Seconds a failure waits, the `failures`-th in a row from its address."""
        past = failures - self.free
        if past <= 0:
            return 0.0
        return min(self.first_delay * 2 ** min(past - 1, 60), self.max_delay)

    @asynccontextmanager
    async def attempt(self, address: str | None) -> AsyncIterator[Attempt]:
        """The address's turn for one attempt; a failure's delay is served before it ends."""
        record = self._record(_bucket(address))
        if record.waiting >= self.max_waiting:
            retry = max(1, math.ceil(self.delay(record.failures + 1)))
            raise ApiError(429, f"too many master key attempts from your address; retry in {retry} s",
                           "rate_limit_error", headers={"Retry-After": str(retry)})
        record.waiting += 1
        try:
            await record.lock.acquire()
        finally:
            record.waiting -= 1
        attempt = Attempt(record)
        try:
            yield attempt
        finally:
            try:
                if attempt.outcome == "failed":
                    record.failures += 1
                    record.last = time.monotonic()
                    pause = self.delay(record.failures)
                    if pause:
                        await asyncio.sleep(pause)
            finally:
                attempt._release()

    def failures(self, address: str | None) -> int:
        record = self._records.get(_bucket(address))
        return record.failures if record else 0

    def _record(self, key: str) -> _Record:
        record = self._records.get(key)
        now = time.monotonic()
        if record is not None and record.failures and now - record.last > self.forget and not record.lock.locked():
            record.failures = 0
        if record is None:
            if len(self._records) >= MAX_ADDRESSES:
                self._prune(now)
            record = self._records[key] = _Record()
        return record

    def _prune(self, now: float) -> None:
        idle = [(r.last, k) for k, r in self._records.items() if not r.lock.locked() and not r.waiting]
        forgotten = [k for last, k in idle if now - last > self.forget]
        for k in forgotten or [k for _, k in sorted(idle)[: len(idle) // 2 + 1]]:
            del self._records[k]


def _bucket(address: str | None) -> str:
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return address or "?"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


THROTTLE = FailureThrottle()
