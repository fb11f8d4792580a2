#!/usr/bin/env python3
"""Instructions per call through mitmdump, with spendgate and without, counted by valgrind.
`make bench-instructions` / `.venv/bin/python scripts/bench_instructions.py`

scripts/bench.py reads the proxy's CPU time under load, and on a shared machine that reading
moves by ±20 % from one minute to the next: a 5 % change in spendgate's cost cannot be seen
in it. This script counts instructions instead. Each side runs under valgrind's callgrind
(`--instr-atstart=no`: nothing counted while it starts and warms up), and for each kind of
call the counters are zeroed, switched on for N calls, dumped and switched off
(`callgrind_control`). The count is the same to a fraction of a percent from run to run,
whatever else the machine is doing; instructions are not cycles (cache misses, branch
mispredictions and syscalls' time in the kernel are not in them), so it is the ratio
beside bench.py's, not instead of it.

  bare     mitmdump with no script
  stream   mitmdump -s tests/e2e_stream_addon.py (bare, but streams SSE as the addon does:
           the baseline for the streamed call, counted for that kind only)
  floor    mitmdump -s scripts/noop_addon.py (`--floor`: what any addon with the Meter's hooks
           costs before it does any work)
  addon    mitmdump -s addon/budget.py with a global budget nothing here can spend, on a
           temporary SQLite ledger; the ledger's writer a thread (`--writer thread`, the
           default here) so that all of spendgate's work is in the counted process. With
           `--writer process` the writer process is counted on its own (valgrind follows
           it) and printed beside the proxy's figure.

Calls: the same as bench.py's (a non-streamed OpenAI chat call, and a streamed one that
spendgate asks usage for), HTTPS through the proxy to api.openai.com mapped to
tests/fake_provider.py, from `--concurrency` client threads each on one kept-alive
connection. Before counting, the addon's ledger must hold a row for every call so far; after
counting it waits again, so a call's settlement is counted with the call. Printed: millions
of instructions per call on each side, the addon/bare ratio and what the addon adds.

Under valgrind a program runs ≈ 50× slower, so what is decided by the clock — the
ledger's settle delay batching settlements, leases refilled on a timer — batches fewer
calls than at full speed: if anything, the addon's count is high. `--optimize` runs every
side under `python -O` (mitmproxy's own type checks of each message's fields go with it).
`--keep` keeps the callgrind files (`callgrind_annotate FILE` tells where the instructions
went, by C function).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from bench import API_KEY, BODY, FLOOR_SCRIPT, STREAM_BODY, URL, FakeUpstream, descendants, in_threads, log, write_budget_config  # noqa: E402
from proxy import DEFAULT_SCRIPT, STREAM_ADDON, MitmProxy  # noqa: E402

KINDS = ("plain", "streamed")
VALGRIND_INSTALL = "valgrind is not installed (Debian: apt-get install valgrind)"
SUMMARY = re.compile(rb"^summary:\s*(\d+)", re.M)


class CallgrindProxy(MitmProxy):
    """mitmdump under callgrind, counting nothing until `count()` switches it on."""

    def __init__(self, *args: Any, side: str, out_dir: Path, optimize: bool = False, **kwargs: Any):
        super().__init__(*args, startup_timeout=180.0, env={"PYTHONHASHSEED": "0"}, **kwargs)
        self.side, self.out_dir, self.optimize = side, out_dir, optimize

    def command(self, port: int) -> list[str]:
        cmd = super().command(port)
        mitmdump, *rest = cmd  # its console script, run by this Python (with -O if asked)
        return ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
                f"--callgrind-out-file={self.out_dir}/{self.side}.%p.out",
                sys.executable, *(["-O"] if self.optimize else []), mitmdump, *rest]

    def processes(self) -> list[int]:
        """The proxy first, then the processes it started (the ledger's writer process)."""
        return [self.proc.pid, *descendants(self.proc.pid)]

    def control(self, pid: int, *args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=120)

    def dumped(self, pid: int, before: set[Path]) -> int:
        """Instructions in the dump `callgrind_control -d` just wrote for `pid`."""
        files = set(self.out_dir.glob(f"{self.side}.{pid}.out.*")) - before
        if len(files) != 1:
            raise RuntimeError(f"expected one new callgrind dump for {self.side} ({pid}), found {sorted(files)}")
        [path] = files
        found = SUMMARY.search(path.read_bytes())
        if found is None:
            raise RuntimeError(f"{path} has no summary line")
        return int(found.group(1))


def call(client, streamed: bool) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if streamed:
        with client.stream("POST", URL, json=STREAM_BODY, headers=headers) as resp:
            body = b"".join(resp.iter_raw())
        ok = resp.status_code == 200 and b"[DONE]" in body
    else:
        resp = client.post(URL, json=BODY, headers=headers)
        ok = resp.status_code == 200 and "usage" in resp.json()
    if not ok:
        raise RuntimeError(f"a call through the proxy failed: {resp.status_code}")


def calls(proxy: MitmProxy, n: int, concurrency: int, streamed: bool) -> None:
    """n calls from `concurrency` threads, each on a kept-alive connection of its own."""
    import httpx

    def worker(count: int) -> None:
        with httpx.Client(proxy=proxy.url, verify=proxy.ssl_context(), trust_env=False, timeout=600) as client:
            for _ in range(count):
                call(client, streamed)

    shares = [n // concurrency + (i < n % concurrency) for i in range(concurrency)]
    in_threads(worker, [(share,) for share in shares if share])


def wait_rows(db: Path | None, expected: int, timeout: float = 300.0) -> None:
    """Until the ledger holds a row for each of `expected` calls (the addon only)."""
    if db is None:
        return
    deadline = time.monotonic() + timeout
    rows = -1
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.OperationalError), contextlib.closing(sqlite3.connect(db, timeout=30)) as c:
            rows = c.execute("SELECT COUNT(*) FROM calls WHERE status = 'ok'").fetchone()[0]
            if rows >= expected:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the ledger holds {rows} rows for {expected} calls")


def count(proxy: CallgrindProxy, db: Path | None, n: int, concurrency: int, streamed: bool,
          served: int) -> list[int]:
    """Instructions of each of the proxy's processes over n calls (their settlements too)."""
    wait_rows(db, served)
    pids = proxy.processes()
    before = set(proxy.out_dir.glob(f"{proxy.side}.*.out.*"))
    for pid in pids:
        proxy.control(pid, "-z")
        proxy.control(pid, "-i", "on")
    calls(proxy, n, concurrency, streamed)
    wait_rows(db, served + n)
    for pid in pids:
        proxy.control(pid, "-d")
        proxy.control(pid, "-i", "off")
    return [proxy.dumped(pid, before) for pid in pids]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=200, help="calls counted per kind and side (default 200)")
    ap.add_argument("--warmup", type=int, default=40, help="calls per side before counting (default 40)")
    ap.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"which calls (default {','.join(KINDS)})")
    ap.add_argument("--writer", choices=("thread", "process"), default="thread",
                    help="the addon's ledger_writer (default thread: all of its work in the proxy)")
    ap.add_argument("--floor", action="store_true", help="count scripts/noop_addon.py's mitmdump too")
    ap.add_argument("--optimize", action="store_true", help="run every side under python -O")
    ap.add_argument("--script", type=Path, default=DEFAULT_SCRIPT, help="the addon script (default addon/budget.py)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (callgrind files, logs, ledger)")
    args = ap.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        ap.error(f"unknown kinds: {', '.join(sorted(unknown))} (choose from {', '.join(KINDS)})")
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        log(VALGRIND_INSTALL)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="spendgate-bench-instructions-"))
    db = tmp / "ledger.db"
    config = write_budget_config(tmp / "budget.yaml", db, args.writer)
    quiet = {"flow_detail": 0}
    sides: dict[str, dict[str, Any]] = {
        "bare": {},
        **({"stream": {"script": STREAM_ADDON, "options": {**quiet, "budget_admin_port": 0}}}
           if "streamed" in kinds else {}),
        **({"floor": {"script": FLOOR_SCRIPT, "options": {**quiet, "budget_config": "", "budget_admin_port": 0}}}
           if args.floor else {}),
        "addon": {"script": args.script.resolve(), "budget_config": config, "options": {**quiet, "budget_admin_port": 0}},
    }
    fake = FakeUpstream()
    proxies: dict[str, CallgrindProxy] = {}
    figures: dict[str, dict[str, list[float]]] = {kind: {} for kind in kinds}
    try:
        log(f"starting mitmdump under callgrind ×{len(sides)} ({', '.join(sides)}); ≈ 10–60 s each…")
        for side, kw in sides.items():
            proxies[side] = CallgrindProxy(fake.url, side=side, out_dir=tmp, optimize=args.optimize,
                                           workdir=tmp / side, **{"options": quiet, **kw}).start()
        for side, proxy in proxies.items():
            ledger = db if side == "addon" else None
            served = 0
            for kind in kinds:
                if side == "stream" and kind != "streamed":
                    continue
                calls(proxy, args.warmup, args.concurrency, kind == "streamed")
                served += args.warmup
                log(f"  {side:5} {kind:8}: counting {args.calls} calls…")
                per = [i / args.calls for i in count(proxy, ledger, args.calls, args.concurrency,
                                                     kind == "streamed", served)]
                served += args.calls
                figures[kind][side] = per
                fake.reset()
    finally:
        for proxy in proxies.values():
            proxy.stop(timeout=60)
        fake.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    report = {"params": {"calls": args.calls, "warmup": args.warmup, "concurrency": args.concurrency,
                         "writer": args.writer, "optimize": args.optimize},
              "instructions_per_call": figures}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"Instructions per call (millions; {args.calls} calls of each kind, {args.concurrency} connection{'s' if args.concurrency != 1 else ''},"
          f" writer {args.writer}{', python -O' if args.optimize else ''})")
    for kind in kinds:
        bare = figures[kind]["bare"][0]
        stream = figures[kind].get("stream", [None])[0]
        print(f"  {kind}")
        for side, per in figures[kind].items():
            proxy, *helpers = per
            line = f"    {side:6} {proxy / 1e6:8.3f} M   {proxy / bare:5.3f}× bare"
            if side != "bare":
                line += f"   +{(proxy - bare) / 1e6:.3f} M"
            if stream is not None and side == "addon":  # (the floor does not stream)
                line += f"   {proxy / stream:5.3f}× stream  +{(proxy - stream) / 1e6:.3f} M"
            if helpers:
                line += f"   (its writer process: {sum(helpers) / 1e6:.3f} M more)"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
