"""A disk filling up, for the tests of the files that keep calls across a kill."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

REAL_WRITE = os.write


def filling_disk_write() -> Callable[[int, bytes], int]:
    """An `os.write` that takes half of the first write it is given and refuses every later
    one (ENOSPC): a disk filling up in the middle of a line."""
    calls = []

    def write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return REAL_WRITE(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    return write
