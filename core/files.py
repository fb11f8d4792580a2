"""Appending to the files that keep calls across a kill (the call journal, the ledger spool)."""

from __future__ import annotations

import os

__all__ = ["write_all", "write_rest"]


def write_all(fd: int, data: bytes) -> None:
    """All of `data` written to `fd`, or OSError. `os.write` may write part of it and return
    (a disk filling up mid-line): a line left torn there would swallow the next whole one for
    a reader. The rest is written again, and the disk's refusal (ENOSPC) is raised."""
    write_rest(fd, data, os.write(fd, data))


def write_rest(fd: int, data: bytes, written: int) -> None:
    """What an `os.write(fd, data)` that wrote `written` bytes left, written (on a hot path:
    `if os.write(fd, data) < len(data): write_rest(...)` costs no call for a whole write)."""
    view = memoryview(data)[written:]
    while view:
        view = view[os.write(fd, view):]
