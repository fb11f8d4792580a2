"""The benchmark scripts still run. Their figures are for people to read: never asserted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from proxy import MitmProxy

REPO = Path(__file__).resolve().parent.parent


def test_bench_calls_times_every_part_and_the_ledger_holds_every_call():
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_calls.py"), "--calls", "300", "--rounds", "1", "--json",
         "--writer", "thread"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert out.returncode == 0, out.stderr  # it fails when a call is missing from the ledger
    report = json.loads(out.stdout)
    for kind in ("cpu_us_per_call", "streamed_cpu_us_per_call", "websocket_turn_cpu_us_per_call"):
        figures = report[kind]
        assert set(figures) == {"request hooks", "response hooks", "loop, other", "ledger writer",
                                "writer process", "total", "in the proxy"}
        assert figures["request hooks"] > 0 and figures["ledger writer"] > 0
        assert figures["writer process"] == 0  # the writer is a thread of the proxy


def test_bench_calls_times_a_writer_process_beside_the_proxy():
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_calls.py"), "--calls", "300", "--rounds", "1", "--json",
         "--kinds", "plain", "--writer", "process"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert out.returncode == 0, out.stderr  # it fails when a call is missing from the ledger
    figures = json.loads(out.stdout)["cpu_us_per_call"]
    assert figures["writer process"] > 0
    assert figures["in the proxy"] == pytest.approx(figures["total"] - figures["writer process"])


def test_bench_calls_counts_bytecodes_the_same_in_two_runs():
    """`--bytecodes`: counts, not times, so two runs of the same code agree (to the odd turn
    of the event loop), and the hot path's own functions are named."""
    def counted() -> tuple[float, str]:
        out = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "bench_calls.py"), "--calls", "100", "--kinds", "plain",
             "--writer", "process", "--bytecodes", "40"],
            capture_output=True, text=True, timeout=120, cwd=REPO,
        )
        assert out.returncode == 0, out.stderr
        total = out.stdout.splitlines()[1].split()[0]
        return float(total), out.stdout

    (first, report), (second, _) = counted(), counted()
    assert 1000 < first and abs(first - second) / first < 0.03
    assert "settled_record  (metering/call.py)" in report and "bench_calls.py" not in report
    assert "(fields endpoint, request, started_at, …)" in report  # MeteredCall's dataclass __init__


def test_bench_splits_a_process_cpu_and_counts_its_threads_context_switches():
    """bench.py's `cpu_split`, read of this test's own process: its user and system time
    agree with the process's own (os.times), and a thread woken fifty times shows as at
    least fifty context switches."""
    import os
    import threading

    sys.path.insert(0, str(REPO / "scripts"))
    from bench import cpu_split

    ping, pong, stop = threading.Event(), threading.Event(), threading.Event()

    def echo() -> None:
        while ping.wait() and not stop.is_set():
            ping.clear()
            pong.set()

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    times0, (user0, system0, voluntary0, involuntary0) = os.times(), cpu_split(os.getpid())
    total = 0
    for n in range(2_000_000):  # user time: arithmetic, no system call
        total += n
    for _ in range(50):
        ping.set()
        assert pong.wait(5)
        pong.clear()
    times1, (user1, system1, voluntary1, involuntary1) = os.times(), cpu_split(os.getpid())  # echo still alive
    stop.set()
    ping.set()
    thread.join(5)
    assert user1 - user0 >= 0.05
    assert user1 - user0 == pytest.approx(times1.user - times0.user, abs=0.03)
    assert system1 - system0 == pytest.approx(times1.system - times0.system, abs=0.03)
    assert (voluntary1 + involuntary1) - (voluntary0 + involuntary0) >= 50


def test_the_floor_addon_passes_traffic_untouched(fake_provider, tmp_path):
    """scripts/noop_addon.py is what `bench.py --floor` measures: it starts in mitmdump
    with the options bench.py sets, and calls go through as through a bare proxy."""
    with MitmProxy(fake_provider.url, script=REPO / "scripts" / "noop_addon.py", workdir=tmp_path,
                   options={"budget_config": "", "budget_admin_port": 0}) as proxy:
        reply = proxy.openai_client(api_key="sk-floor").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.usage.prompt_tokens == 1000
    [seen] = fake_provider.requests()
    assert seen["headers"]["authorization"] == "Bearer sk-floor"


def test_the_guarantees_addon_records_each_call_in_spendgates_ledger(fake_provider, tmp_path):
    """scripts/guarantees_addon.py is the least work the meter's guarantees take (bench_instructions
    --script): each call held against the budget, journaled, priced from its usage and written
    as a row of spendgate's `calls` table with the spend added to the global budget."""
    import sqlite3
    import time

    sys.path.insert(0, str(REPO / "scripts"))
    from bench import write_budget_config

    db = tmp_path / "ledger.db"
    config = write_budget_config(tmp_path / "budget.yaml", db, "thread")
    with MitmProxy(fake_provider.url, script=REPO / "scripts" / "guarantees_addon.py", workdir=tmp_path,
                   options={"budget_config": str(config), "budget_admin_port": 0}) as proxy:
        client = proxy.openai_client(api_key="sk-guarantees-0123456789")
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o-mini", max_tokens=600,
                                           messages=[{"role": "user", "content": "hi"}])
        deadline = time.monotonic() + 10
        while True:
            with sqlite3.connect(db) as conn:
                rows = conn.execute("SELECT cost_nanos, key_hash, key_masked, input_tokens, status FROM calls").fetchall()
                spent = conn.execute("SELECT spend_nanos FROM budgets WHERE kind = 'global'").fetchone()[0]
            if len(rows) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    # the fake's usage: 1000 prompt and 500 completion tokens, at $0.15 and $0.60 per million
    assert [r[0] for r in rows] == [1000 * 150 + 500 * 600] * 3 and spent == 3 * (1000 * 150 + 500 * 600)
    assert {r[2] for r in rows} == {"sk-gu...6789"} and "sk-guarantees" not in str(rows)
    assert {r[4] for r in rows} == {"ok"}


def test_the_litellm_peer_says_how_to_install_it_where_it_is_missing(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--peer", "litellm", "--peer-bin",
         str(tmp_path / "no-litellm"), "--skip-load"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert out.returncode == 2
    assert "pip install 'litellm[proxy]'" in out.stderr and str(tmp_path / "no-litellm") in out.stderr


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed (make bench-instructions installs it)")
def test_bench_instructions_counts_both_sides_and_the_ledger_holds_every_call():
    """Both mitmdumps under callgrind, a few calls each; it fails when the addon's ledger
    misses a call, and the counts are instructions of real work (millions per call)."""
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_instructions.py"), "--calls", "6", "--warmup", "2",
         "--concurrency", "2", "--json"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)["instructions_per_call"]
    assert set(figures["plain"]) == {"bare", "addon"}
    assert set(figures["streamed"]) == {"bare", "stream", "addon"}
    for kind in figures.values():
        for per in kind.values():
            assert len(per) == 1 and per[0] > 1e5  # the proxy's process only: the writer is a thread
