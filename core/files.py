"""Appending lines to the files that keep calls across a kill (the call journal, the ledger spool)."""

from __future__ import annotations

import os

__all__ = ["LineWriter"]


class LineWriter:
    """Writes whole lines to a file descriptor, or raises OSError.

    `os.write` may take part of a line and return (a disk filling up): the rest is written
    again, and the disk's refusal (ENOSPC) raised. A write that failed part-way leaves half a
    line that would swallow the next whole one for a reader, so the next write after a
    failure starts with a line end of its own."""

    __slots__ = ("torn",)

    def __init__(self) -> None:
        self.torn = False  # the last write failed, maybe part-way through its line

    def write(self, fd: int, data: bytes) -> None:
        if self.torn:
            data = b"\n" + data
        try:
            written = os.write(fd, data)
            if written < len(data):  # a short write: the rest, or the disk's refusal
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(fd, view):]
        except OSError:
            self.torn = True
            raise
        self.torn = False
