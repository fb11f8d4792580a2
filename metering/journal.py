"""A local journal of the calls in flight: every call forwarded upstream ends as exactly
one ledger row, across a process kill.

Settlements reach the database in batches (the ledger's settle delay) from the ledger's
own thread: a process killed in that window lost calls whose clients had seen them
complete, and a call cut by the kill never settled at all. So each call is appended here
twice before the database hears of it: `open` when it is forwarded, before its request
leaves the proxy, and `end` when it ends, before the end of its response is released to
the client. An append survives a process kill without an fsync (the kernel has it); only
a machine crash can lose the last lines, as it can lose SQLite's last commits at
`synchronous=NORMAL`. A call is `done` once its settlement is committed (or spooled,
which is durable).

Lines are compact, since two are written on the path of every call: what many calls share
(who made it, which endpoint: `shared`) is written once per segment as a `def` line that
later `open` lines name by number, and a line's members are encoded by orjson and go out in
one write (written again from where a short write stopped). A reader sees each call's
opening as one dict either way.

Files: `<directory>/<instance>.lock`, held (flock) while the process lives, and its
segments `<instance>.<n>.journal`; a segment is deleted once every call with a line in it
(opened there, or ended there when it was opened in an earlier one) is done. At start-up (and every so often), the journals of processes that are gone — their
lock is free — are replayed by the caller (`orphans`): a call that ended is settled as it
ended, one that did not is recorded `interrupted`. The ledger's call uid makes a replay of
a call already recorded a no-op, so replaying twice changes nothing.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from json.encoder import encode_basestring_ascii as json_str
from typing import Any

import orjson

from core.files import LineWriter

log = logging.getLogger("spendgate")

__all__ = ["CallJournal", "JournaledCall", "Orphan", "orphans"]

SEGMENT_LINES = 20_000  # a new segment after this many lines: old ones go once their calls are done
SHARED_MAX = 4_096  # `def` lines remembered per segment (paths and keys come from clients)

Members = str | Mapping[str, Any]  # JSON object members preformatted (`"a":1,"b":null`), or a dict


@dataclass(slots=True)
class JournaledCall:
    """What the journal knows of one call: how it was opened, and how it ended if it did."""

    uid: str
    opened: dict[str, Any]
    ended: dict[str, Any] | None = None


class CallJournal:
    """This process's journal. Not thread-safe: used from the event loop only."""

    def __init__(self, directory: str | os.PathLike | None, instance_id: str) -> None:
        self.directory = Path(directory) if directory else None
        self.instance_id = instance_id
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._segment = 0
        self._lines = 0
        self._where: dict[str, int] = {}  # open call uid -> the segment it was opened in
        self._pending: dict[int, int] = {}  # segment -> calls opened or ended there not done yet
        self._ended_in: dict[str, int] = {}  # open call uid -> the later segment its end line is in
        self._shared: dict[Hashable, int] = {}  # shared part -> its `def` number in this segment
        self.failed = False  # the disk refused a write (logged once; the calls still settle)
        self._writer = LineWriter()

    # -- writing ---------------------------------------------------------------------------

    def opened(self, uid: str, entry: Members, shared_key: Hashable = None,
               shared: Callable[[], Mapping[str, Any]] | None = None) -> None:
        """The call is forwarded. Its opening as read back is `{**shared(), **entry}`;
        `shared()` is called (and written) only the first time `shared_key` is seen in
        this segment."""
        if self.directory is None:
            return
        if self._fd is None or self._lines >= SEGMENT_LINES:
            if not self._rotate_safely():
                return
        head = ""
        if shared is not None:
            number = self._shared.get(shared_key)
            if number is None:
                if len(self._shared) >= SHARED_MAX:
                    self._shared.clear()
                number = self._shared[shared_key] = len(self._shared)
                head = f'{{"def":{number},{_members(shared())}}}\n'
            head += f'{{"open":{json_str(uid)},"shared":{number}'
        else:
            head = f'{{"open":{json_str(uid)}'
        members = _members(entry)
        if self._append(f"{head},{members}}}\n" if members else head + "}\n"):
            self._where[uid] = self._segment
            self._pending[self._segment] = self._pending.get(self._segment, 0) + 1
        elif head.startswith('{"def"'):
            self._shared.pop(shared_key, None)

    def ended(self, uid: str, entry: Members) -> None:
        opened_in = self._where.get(uid)
        if opened_in is None:
            return
        members = _members(entry)
        if (self._append(f'{{"end":{json_str(uid)},{members}}}\n' if members else f'{{"end":{json_str(uid)}}}\n')
                and self._segment != opened_in):  # the end line is in a later segment: it keeps that one too
            self._ended_in[uid] = self._segment
            self._pending[self._segment] = self._pending.get(self._segment, 0) + 1

    def done(self, uid: str) -> None:
        segment = self._where.pop(uid, None)
        if segment is None:
            return
        self._release(segment)
        if self._ended_in and (later := self._ended_in.pop(uid, None)) is not None:
            self._release(later)

    def _release(self, segment: int) -> None:
        """One call fewer with a line in `segment` to be read back; the segment goes with the
        last (unless it is the current one: then at the next rotation)."""
        left = self._pending[segment] - 1
        if left:
            self._pending[segment] = left
        else:
            del self._pending[segment]
            if segment != self._segment:
                self._segment_path(segment).unlink(missing_ok=True)

    def close(self) -> None:
        """A clean stop: whatever is still open stays for the next start to replay."""
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        if self.directory is not None and not self._where:
            for segment in {*self._pending, self._segment}:
                self._segment_path(segment).unlink(missing_ok=True)
            self._lock_path().unlink(missing_ok=True)
        self._fd = self._lock_fd = None

    def _append(self, line: str) -> bool:
        """One write of whole lines (UTF-8; JSON escapes any newline inside): a kill leaves all of
        it or a torn last line the reader skips."""
        if self.directory is None or (self._fd is None or self._lines >= SEGMENT_LINES) and not self._rotate_safely():
            return False
        try:
            self._writer.write(self._fd, line.encode())
        except OSError as e:
            self._failed(e)
            return False
        self._lines += 1
        return True

    def _rotate_safely(self) -> bool:
        try:
            self._rotate()
        except OSError as e:
            self._failed(e)
            return False
        return True

    def _failed(self, e: OSError) -> None:
        if not self.failed:
            self.failed = True
            log.error("spendgate: cannot write the call journal in %s: %s", self.directory, e)

    def _rotate(self) -> None:
        if self._lock_fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self._lock_path(), os.O_WRONLY | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # ours while we live: not an orphan
        if self._fd is not None:
            os.close(self._fd)
            if self._segment not in self._pending:
                self._segment_path(self._segment).unlink(missing_ok=True)
            self._segment += 1
        self._fd = os.open(self._segment_path(self._segment), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lines = 0
        self._shared.clear()  # a segment's `def` lines serve its own `open` lines only

    def _lock_path(self) -> Path:
        return self.directory / f"{self.instance_id}.lock"

    def _segment_path(self, segment: int) -> Path:
        return self.directory / f"{self.instance_id}.{segment}.journal"


@dataclass
class Orphan:
    """The journal of a process that is gone: its calls not known to be done, and `forget()`
    to delete the files once they are recorded."""

    instance_id: str
    calls: list[JournaledCall]
    files: list[Path] = field(default_factory=list)
    _lock_fd: int | None = None

    def forget(self) -> None:
        """Its calls are recorded: the files go."""
        for path in self.files:
            path.unlink(missing_ok=True)
        self.forget_lock()

    def forget_lock(self) -> None:
        """Leave the files for a later attempt (the ledger could not be reached)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def orphans(directory: str | os.PathLike | None, own_instance: str) -> Iterator[Orphan]:
    """The journals of processes that are gone (their lock is free), one at a time; each is
    held locked until `forget()` (or until the caller's process exits, if it never does)."""
    if not directory or not Path(directory).is_dir():
        return
    for lock in sorted(Path(directory).glob("*.lock")):
        instance = lock.stem
        if instance == own_instance:
            continue
        try:
            fd = os.open(lock, os.O_WRONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live process's journal
        files = sorted(Path(directory).glob(f"{instance}.*.journal"),
                       key=lambda p: int(p.name.split(".")[-2]) if p.name.split(".")[-2].isdigit() else 0)
        yield Orphan(instance, _read(files), [*files, lock], fd)


def _members(entry: Members) -> str:
    """JSON object members: preformatted text as it is, a dict encoded (without its braces):
    by orjson (in C; two per call), or where it refuses (a lone surrogate, an integer past
    64 bits) by the standard library. orjson leaves non-ASCII text as it is: lines are UTF-8,
    read split at "\n" alone — and the three characters `str.splitlines` also ends a line at
    that orjson writes raw (U+0085, U+2028, U+2029) are escaped, so a journal this version
    leaves stays whole to a version that reads lines so (a rollback, a mixed fleet)."""
    if isinstance(entry, str):
        return entry
    try:
        text = orjson.dumps(entry).decode()[1:-1]
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(entry, separators=(",", ":"))[1:-1]
    return text if text.isascii() else text.translate(_LINE_ENDS_ESCAPED)


_LINE_ENDS_ESCAPED = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _read(files: list[Path]) -> list[JournaledCall]:
    calls: dict[str, JournaledCall] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        shared: dict[int, dict[str, Any]] = {}  # this segment's `def` lines
        for line in text.split("\n"):
            try:
                entry = json.loads(line)
            except ValueError:  # a line torn by the kill, mid-write: nothing to act on
                continue
            if not isinstance(entry, dict):
                continue
            if isinstance(uid := entry.pop("open", None), str):
                if "shared" in entry:
                    entry = {**shared.get(entry.pop("shared"), {}), **entry}
                calls[uid] = JournaledCall(uid, entry)
            elif isinstance(number := entry.pop("def", None), int):
                shared[number] = entry
            elif isinstance(uid := entry.pop("end", None), str) and uid in calls:
                calls[uid].ended = entry
    return list(calls.values())
