"""The call journal on its own: what a process that is gone left, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys

from metering import journal as journal_mod
from metering.journal import CallJournal, orphans


def test_a_live_journal_is_not_an_orphan_and_a_dead_ones_calls_are(tmp_path):
    live = CallJournal(tmp_path, "live")
    live.opened("a", {"x": 1})
    assert list(orphans(tmp_path, "someone-else")) == []  # locked by a live process (this one)
    # a process that opened two calls, ended one, and was killed
    code = (f"import sys; sys.path.insert(0, {os.getcwd()!r})\n"
            "from metering.journal import CallJournal\n"
            f"j = CallJournal({str(tmp_path)!r}, 'dead')\n"
            "j.opened('c1', {'held': 5}); j.opened('c2', {'held': 7}); j.ended('c1', {'status': 'ok'})\n"
            "import os; os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code], check=False)
    [orphan] = list(orphans(tmp_path, "live"))
    assert orphan.instance_id == "dead"
    calls = {c.uid: c for c in orphan.calls}
    assert calls["c1"].ended == {"status": "ok"} and calls["c2"].ended is None
    assert calls["c2"].opened == {"held": 7}
    orphan.forget()
    assert list(orphans(tmp_path, "live")) == [] and not list(tmp_path.glob("dead.*"))
    live.close()


def test_done_calls_leave_nothing_behind_and_old_segments_go(tmp_path, monkeypatch):
    monkeypatch.setattr(journal_mod, "SEGMENT_LINES", 4)
    j = CallJournal(tmp_path, "me")
    for i in range(10):
        j.opened(f"c{i}", {})
        j.ended(f"c{i}", {})
        j.done(f"c{i}")
    j.opened("open-one", {})
    assert len(list(tmp_path.glob("me.*.journal"))) == 1  # only the current segment
    j.close()
    assert list(tmp_path.glob("me.*.journal"))  # a call still open stays for the next start
    j2 = CallJournal(tmp_path, "me2")
    j2.opened("x", {})
    j2.done("x")
    j2.close()
    assert not list(tmp_path.glob("me2.*"))


def test_a_torn_last_line_is_skipped(tmp_path):
    (tmp_path / "dead.lock").write_text("")
    (tmp_path / "dead.0.journal").write_text('{"open":"c1","held":3}\n{"end":"c1","sta')
    [orphan] = list(orphans(tmp_path, "me"))
    [call] = orphan.calls
    assert (call.uid, call.ended) == ("c1", None)
