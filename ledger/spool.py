"""Ledger writes that could not reach the database, kept until they can.

When the database is away, a call that was served still has to be recorded: its
settlement (or a refused call's row, or a hold to give back) goes to the spool — a list in
memory and, when the spool has a directory, one JSON line appended and fsync'ed to
`<dir>/<instance id>.jsonl` before the call's settlement task ends. The ledger replays the
spool when the database answers again (ledger/replay.py).

Replaying is safe to repeat: a settlement or a refused call's row carries its call's uid
(UNIQUE in `calls`), and releasing a hold deletes its reservation row first — so an entry
whose first attempt did commit, or a file replayed twice after a crash, charges nothing
twice. Each process holds an exclusive `flock` on its own file while it runs; a file whose
lock is free belongs to a process that is gone, and the next process to look adopts it
(`adopt_orphans`), so nothing spooled is lost with the process that spooled it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from core.files import LineWriter

from .model import CallRecord, Reservation, ScopeRef, iso

log = logging.getLogger("spendgate")


def reservation_to_json(r: Reservation | None) -> list | None:
    return None if r is None else [r.id, r.amount_nanos, [[s.kind, s.id] for s in r.scopes]]


def reservation_from_json(data: list | None) -> Reservation | None:
    if data is None:
        return None
    id_, amount, scopes = data
    return Reservation(id_, amount, tuple(ScopeRef(k, i) for k, i in scopes))


def refs_to_json(refs) -> list:
    return [[r.kind, r.id] for r in refs]


def refs_from_json(data: list) -> tuple[ScopeRef, ...]:
    return tuple(ScopeRef(k, i) for k, i in data)


@dataclasses.dataclass
class Entry:
    op: str  # settle | record | release
    args: dict[str, Any]

    def line(self) -> str:
        return json.dumps({"op": self.op, **self.args}, sort_keys=True)

    @classmethod
    def parse(cls, line: str) -> Entry:
        data = json.loads(line)
        return cls(data.pop("op"), data)

    @property
    def uid(self) -> str | None:
        """The call uid of the row this entry writes (None for a release)."""
        record = self.args.get("record")
        return record.get("uid") if isinstance(record, dict) else None

    @classmethod
    def settle(cls, reservation: Reservation | None, refs, record: CallRecord, now: datetime) -> Entry:
        return cls("settle", {"reservation": reservation_to_json(reservation), "refs": refs_to_json(refs),
                              "record": record.to_json(), "now": iso(now)})

    @classmethod
    def record(cls, record: CallRecord) -> Entry:
        return cls("record", {"record": record.to_json()})

    @classmethod
    def release(cls, reservation: Reservation) -> Entry:
        return cls("release", {"reservation": reservation_to_json(reservation)})


class Spool:
    """This process's pending ledger writes: in memory, and in a file when `directory` is set."""

    def __init__(self, directory: str | os.PathLike | None, instance_id: str):
        self.directory = Path(directory) if directory else None
        self.path = self.directory / f"{instance_id}.jsonl" if self.directory else None
        self.entries: list[Entry] = []
        self._fd: int | None = None
        self._writer = LineWriter()
        self.spooled_total = 0  # writes spooled since start (the database was away or full)
        self.unsaved: set[str] = set()  # call uids whose row is spooled in memory only (the disk refused)
        self.replayed_total = 0  # of those (and adopted ones), written to the database since

    def __len__(self) -> int:
        return len(self.entries)

    def _open(self) -> int:
        if self._fd is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # ours while we live: not an orphan
            self._fd = fd
        return self._fd

    def _append(self, lines: list[str]) -> None:
        if self.path is None or not lines:
            return
        fd = self._open()
        self._writer.write(fd, "".join(line + "\n" for line in lines).encode())
        os.fsync(fd)

    def add(self, entry: Entry) -> None:
        """Keep `entry` (durably, when there is a file) before returning."""
        self.entries.append(entry)
        self.spooled_total += 1
        try:
            self._append([entry.line()])
        except OSError as e:  # a full or read-only disk: still kept in memory
            log.error("spendgate: cannot write the ledger spool %s: %s", self.path, e)
            if entry.uid is not None:  # its call stays open in the journal until it is written
                self.unsaved.add(entry.uid)

    def done(self, entry: Entry) -> None:
        self.entries.remove(entry)
        self.unsaved.discard(entry.uid)
        self.replayed_total += 1
        if not self.entries and self._fd is not None:
            # Everything replayed: the file starts over (entries replayed twice after a
            # crash right here would be recognised anyway, see the module doc).
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)

    def adopt_orphans(self) -> int:
        """Take over the spool files of processes that are gone (their lock is free):
        their entries join ours (written to our file first), then their file goes."""
        if self.directory is None or not self.directory.is_dir():
            return 0
        adopted = 0
        for path in sorted(self.directory.glob("*.jsonl")):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process's spool
                with open(fd, closefd=False) as f:
                    text = f.read()
                entries = []
                for line in text.splitlines():
                    if not line.strip():
                        continue
                    try:
                        entries.append(Entry.parse(line))
                    except (ValueError, KeyError):  # a line torn by a crash mid-write
                        log.error("spendgate: unreadable ledger spool line in %s: %.200s", path, line)
                self._append([e.line() for e in entries])
                self.entries.extend(entries)
                path.unlink(missing_ok=True)
                adopted += len(entries)
            finally:
                os.close(fd)
        return adopted

    def close(self) -> None:
        if self._fd is not None:
            if not self.entries and self.path is not None:
                self.path.unlink(missing_ok=True)  # while still locked: nobody adopts it half-gone
            os.close(self._fd)
            self._fd = None
