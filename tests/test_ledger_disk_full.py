"""A full disk under the SQLite ledger: writes spool meanwhile, and recover once space is freed.

Measured before the fix: on a 5 MB volume the WAL grew to fill it (SQLite's automatic
checkpoint waits for 1000 pages), after which no commit succeeded, so no checkpoint ever ran,
and the ledger stayed unwritable after space was freed until the process restarted. The
ledger now keeps its WAL small and checkpoints before it retries what it spooled
(ledger/sqlite.py `SQLiteStore.checkpoint`, ledger/aio.py `flush_spool`).

The test needs a real small volume: a tmpfs it mounts itself (root, and a kernel that lets it),
skipped where mounting is not permitted.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from admin.metrics import spool_families
from ledger import open_ledger
from ledger.model import CallRecord

VOLUME = "5m"
T0 = datetime(2026, 11, 1, 10, 30, tzinfo=UTC)


@pytest.fixture
def small_volume(tmp_path: Path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={VOLUME}", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def call(i: int) -> CallRecord:
    # metadata makes each row big enough to fill the volume in a few hundred calls
    return CallRecord(started_at=T0, provider="openai", endpoint="chat", path="/v1/chat/completions",
                      model="gpt-4o-mini", cost_nanos=1_000 + i, price_source="test", finished_at=T0,
                      metadata={"pad": "x" * 4000, "i": i})


def take(path: Path, nbytes: int) -> None:
    """Something else on the volume: `nbytes` of it."""
    path.write_bytes(b"\0" * nbytes)


def wal_bytes(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_full_disk_spools_writes_and_the_ledger_recovers_when_space_is_freed(small_volume, tmp_path):
    db = small_volume / "ledger.db"
    ledger = open_ledger("sqlite", str(db), spool_dir=tmp_path / "spool")  # the spool lives elsewhere

    async def scenario():
        written = spooled = 0
        other = small_volume / "other"
        take(other, 2_500_000)  # half the volume is someone else's
        i = 0
        while spooled < 50:  # the ledger fills the rest; once full, a write that fails is spooled
            if await ledger.record(call(i)) is None:
                spooled += 1
            else:
                written += 1
            i += 1
        assert spooled > 0, "the volume never filled"
        assert len(ledger.spool.entries) == spooled
        assert await ledger.flush_spool() == 0  # still full: nothing replays, nothing is lost
        assert len(ledger.spool.entries) == spooled

        other.unlink()  # the operator frees space
        replayed = await ledger.flush_spool()
        assert replayed == spooled and not ledger.spool.entries
        assert await ledger.record(call(i)) is not None  # and new writes succeed again
        counted = {f.name: f.samples[0].value for f in spool_families(ledger.spool)}
        assert counted == {"spendgate_ledger_spool_waiting": 0, "spendgate_ledger_spooled_writes": spooled,
                           "spendgate_ledger_replayed_writes": spooled}
        await ledger.checkpoint()
        assert wal_bytes(db) == 0
        return written + spooled + 1

    try:
        total = asyncio.run(scenario())
    finally:
        ledger.close_sync()
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == total
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
