"""The call journal on its own: what a process that is gone left, and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

from core.usage import TokenUsage
from core.vocab import CallStatus, UsageSource
from ledger import Reservation
from metering import journal as journal_mod
from metering.call import Ending, MeteredCall, opened_record
from metering.credentials import KeyFingerprint, key_hash
from metering.identity import Identity
from metering.journal import CallJournal, orphans
from providers.base import CallRequest
from providers.registry import Registry


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


# -- what the meter journals of a real call ------------------------------------------------

def _call(path: str = "/v1/chat/completions?x=1", key: str = "sk-journal-one", team: str | None = "t1",
          metadata: dict | None = None) -> MeteredCall:
    endpoint = Registry().provider("api.openai.com").route("POST", "/v1/chat/completions")
    request = CallRequest(model='gpt-4o "quoted" é', stream=True, max_output_tokens=64, input_bytes=321)
    call = MeteredCall(endpoint=endpoint, request=request, started_at=datetime(2026, 12, 1, 10, 0, 0, 123456, UTC),
                       path=path, client="openai-python/1.0")
    call.identity = Identity(key=KeyFingerprint(hash=key_hash(key), masked="sk-...one"), key_alias="alias",
                             user_id="u1", team_id=team, metadata=metadata or {})
    call.reservation = Reservation(id="lease:r1", amount_nanos=7_250_000, scopes=call.identity.scopes())
    return call


def _kill_after(tmp_path, body: str) -> None:
    """Run `body` (with `j`, a journal of instance 'dead') in a process killed at its end."""
    code = (f"import sys; sys.path.insert(0, {os.getcwd()!r}); sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
            "from metering import journal as journal_mod\n"
            "from metering.journal import CallJournal\n"
            "from test_journal import _call, Ending\n"
            f"j = CallJournal({str(tmp_path)!r}, 'dead')\n" + body + "\nimport os; os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code], check=False)


def test_a_journaled_opening_gives_back_the_row_the_call_would_have_had(tmp_path):
    _kill_after(tmp_path, "c = _call(); j.opened(c.uid, *c.opening()); print(c.uid)")
    [orphan] = list(orphans(tmp_path, "me"))
    [journaled] = orphan.calls
    record = opened_record(journaled.uid, journaled.opened)
    expected = _call().base_record(None)
    for name in ("provider", "endpoint", "path", "model", "streamed", "key_hash", "key_masked", "key_alias",
                 "user_id", "team_id", "metadata", "client", "transport", "started_at"):
        assert getattr(record, name) == getattr(expected, name), name
    assert record.uid == journaled.uid and record.finished_at == record.started_at
    assert journaled.opened["refs"] == [[r.kind, r.id] for r in expected_scopes()]
    assert (journaled.opened["held"], journaled.opened["input_bytes"], journaled.opened["max_output_tokens"],
            journaled.opened["price_provider"]) == (7_250_000, 321, 64, "openai")
    orphan.forget()


def expected_scopes():
    return _call().identity.scopes()


def test_what_calls_share_is_written_once_per_segment_and_each_segment_stands_alone(tmp_path):
    # 3 lines a segment: calls of one identity, a second identity, and every call of the first
    # segment done (so it is deleted); every call still open reads back whole
    _kill_after(tmp_path, "journal_mod.SEGMENT_LINES = 3\n"
                "calls = [_call(), _call(), _call(key='sk-journal-two', team=None, metadata={'a': [1]}),"
                " _call(), _call(path='/v1/chat/completions'), _call(team='t2')]\n"
                "for c in calls: j.opened(c.uid, *c.opening())\n"
                "for c in calls[:3]: j.done(c.uid)\n")
    segments = sorted(tmp_path.glob("dead.*.journal"))
    assert len(segments) == 1  # the first segment went with its calls
    # the first identity again (its query string is not part of the row's path), and another team
    assert segments[0].read_text().count('"def"') == 2
    [orphan] = list(orphans(tmp_path, "me"))
    records = [opened_record(call.uid, call.opened) for call in orphan.calls]
    assert sorted((r.key_alias, r.team_id, r.path) for r in records) == [
        ("alias", "t1", "/v1/chat/completions")] * 2 + [("alias", "t2", "/v1/chat/completions")]
    orphan.forget()


def test_an_ending_journals_as_its_json():
    usage = TokenUsage(input_tokens=1200, cache_read_tokens=400, output_tokens=500, reasoning_tokens=100,
                       units={"web_searches": 2})
    at = datetime(2026, 12, 1, 10, 0, 1, 5, UTC)
    for ending in (
        Ending(200, None, CallStatus.OK, UsageSource.REPORTED, usage, "gpt-4o", False, 12.345, at),
        Ending(None, 'cut "short"\n\u2603', CallStatus.PARTIAL, UsageSource.ESTIMATED, TokenUsage(), None, True,
               0.0, at, "flex", {"tier": "flex"}),
        Ending(502, None, CallStatus.UPSTREAM_ERROR, UsageSource.NONE, None, "m", False, 3.0, at),
        Ending(200, "billed later", CallStatus.OK, UsageSource.NONE, None, "o3-pro", False, 9.0, at,
               billed_later=True, held_nanos=4_000_000),
    ):
        members = journal_mod._members(ending.to_json())
        assert json.loads("{" + members + "}") == json.loads(json.dumps(ending.to_json()))
        assert Ending.from_json(json.loads("{" + members + "}")) == ending


def test_any_text_and_any_count_journal_and_read_back(tmp_path):
    """Lines are UTF-8 as orjson writes them, split at "\\n" alone: a U+2028 or U+0085 in a
    model name or an error is not a line end — and is written escaped, so a reader splitting
    with `str.splitlines` (the previous version's) reads the same lines. What orjson refuses (a
    lone surrogate, an integer past 64 bits) is written by the standard library instead, and
    reads back the same."""
    odd = {"snowman": "\u2603", "line separator": "a\u2028b\u2029c\x85d", "newline": "x\ny\r\nz",
           "surrogate": "bad \udcff", "huge": 2**70, "ascii": "plain"}
    _kill_after(tmp_path, "".join(f"j.opened({name!r}, {{'v': {value!r}}}); j.ended({name!r}, {{'w': {value!r}}})\n"
                                  for name, value in odd.items()))
    [orphan] = list(orphans(tmp_path, "me"))
    assert {c.uid: (c.opened["v"], c.ended["w"]) for c in orphan.calls} == {n: (v, v) for n, v in odd.items()}
    text = "".join(path.read_text(encoding="utf-8") for path in sorted(tmp_path.glob("dead.*.journal")))
    assert "\u2603" in text  # other text stays as it is, in UTF-8
    assert text.splitlines() == text.rstrip("\n").split("\n")
    orphan.forget()


def test_a_calls_end_line_in_a_later_segment_stays_until_the_call_is_done(tmp_path, monkeypatch):
    """X opens in segment 0 and ends in segment 1; every call opened in segment 1 is done
    before X's row is written. A kill then must replay X as it ended, not as interrupted."""
    monkeypatch.setattr(journal_mod, "SEGMENT_LINES", 4)
    j = CallJournal(tmp_path, "dead")
    j.opened("X", {"held": 100})
    for uid in ("B1", "B2", "B3"):
        j.opened(uid, {"held": 1})
    j.opened("C", {"held": 1})  # segment 1
    j.ended("C", {"http_status": 200})
    j.done("C")
    j.ended("X", {"http_status": 200})  # into segment 1
    j.opened("D", {"held": 1})
    j.ended("D", {"http_status": 200})  # segment 2
    j.done("D")  # nothing opened in segment 1 is open: but X's end is there
    for uid in ("B1", "B2", "B3"):
        j.ended(uid, {})
        j.done(uid)
    _killed(j)  # before X's row is written
    [orphan] = list(orphans(tmp_path, "me"))  # (the calls done with it replay as no-ops: recorded)
    assert {c.uid: c.ended for c in orphan.calls}["X"] == {"http_status": 200}
    orphan.forget()


def test_a_short_write_is_finished_not_left_torn(tmp_path, monkeypatch):
    """A write the disk takes only part of (os.write returning short) is written on from
    where it stopped: no torn line to swallow the next one."""
    j = CallJournal(tmp_path, "dead")
    real, calls = os.write, []

    def short(fd, data):
        calls.append(len(data))
        return real(fd, bytes(data)[: len(data) // 2] if len(calls) == 2 else data)

    import core.files
    monkeypatch.setattr(core.files.os, "write", short)
    for uid in ("P", "Q", "R"):
        j.opened(uid, {"held": 1})
    monkeypatch.undo()
    _killed(j)
    [orphan] = list(orphans(tmp_path, "me"))
    assert sorted(c.uid for c in orphan.calls) == ["P", "Q", "R"]
    orphan.forget()


def test_a_call_left_open_keeps_its_own_segment_only(tmp_path, monkeypatch):
    """A call that never ends (a stream still going, a settlement that failed) keeps the
    segment with its lines; the segments after it go as their own calls are done."""
    monkeypatch.setattr(journal_mod, "SEGMENT_LINES", 4)
    j = CallJournal(tmp_path, "me")
    j.opened("stuck", {"held": 1})
    for n in range(40):
        j.opened(f"c{n}", {"held": 1})
        j.ended(f"c{n}", {"http_status": 200})
        j.done(f"c{n}")
    assert sorted(p.name for p in tmp_path.glob("me.*.journal")) == ["me.0.journal", f"me.{j._segment}.journal"]
    j.close()


def test_a_write_the_disk_refuses_part_way_does_not_swallow_the_next_line(tmp_path, monkeypatch):
    """The disk takes half of Q's line, then refuses the rest (ENOSPC): when there is room
    again, R's line starts on a line of its own, so R reads back (Q was never journaled)."""
    import core.files
    from disk import filling_disk_write

    j = CallJournal(tmp_path, "dead")
    j.opened("P", {"held": 1})
    monkeypatch.setattr(core.files.os, "write", filling_disk_write())
    j.opened("Q", {"held": 1})
    monkeypatch.undo()
    j.opened("R", {"held": 1})
    _killed(j)
    [orphan] = list(orphans(tmp_path, "me"))
    assert sorted(c.uid for c in orphan.calls) == ["P", "R"]
    orphan.forget()


def _killed(journal: CallJournal) -> None:
    """The journal's process killed: its lock let go (the fd closed), nothing else written."""
    os.close(journal._lock_fd)
    journal._lock_fd = None
