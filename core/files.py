"""Appending to the files that keep calls across a kill (the call journal, the ledger spool)."""

from __future__ import annotations

import os

__all__ = ["write_all"]


def write_all(fd: int, data: bytes) -> None:
    """All of `data` written to `fd`, or OSError. `os.write` may write part of it and return
    (a disk filling up mid-line): a line left torn there would swallow the next whole one for
    a reader. The rest is written again, and the disk's refusal (ENOSPC) is raised."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
