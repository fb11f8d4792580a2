#!/usr/bin/env python3
"""How much does spendgate cost on the request path?  `make bench` / `.venv/bin/python scripts/bench.py`

One run, one fake upstream (tests/fake_provider.py, in its own process), three mitmdump
processes started side by side and measured in alternation:

  bare     mitmdump with no script (the baseline for throughput and latency)
  stream   mitmdump -s tests/e2e_stream_addon.py (bare, but streams SSE like the addon
           does: the baseline for time to first streamed chunk)
  addon    mitmdump -s addon/budget.py with a global budget too large to ever block, so
           every call is recognised, estimated, reserved in the ledger, tapped and settled

Phases (bare and addon alternate within every round, order flipped each round):

  load      `hey -c C` for D seconds, HTTPS through the proxy (`-x`) to
            https://api.openai.com/v1/chat/completions (map-remoted to the fake):
            requests/s, and latency under saturation
  latency   `hey -c 1`: one connection, requests back to back, no queueing: the time the
            proxy adds to each request (p50 / p99)
  ttfc      a Python httpx client, streamed chat calls one after another, alternating
            stream/addon per request: time from sending the request to the first SSE event
  ledger    the addon's ledger must hold one row per request it served

Pinning: when `taskset` exists and there are ≥ 2 CPUs, every mitmdump runs on CPU 0 and
this script, hey and the fake run on the others, so the proxy under test has a core to
itself. mitmdump runs with `flow_detail=0` (no per-flow console line) on both sides, so
the baseline is the proxy's own work, not its logging.

Beside requests/s, every hey run reads mitmdump's CPU time (/proc/PID/stat): CPU per
request is the steadiest figure on a shared machine, and bare/addon CPU per request is
the throughput ratio the addon would get on an otherwise idle core. The CPU time other
processes took on the proxy's core meanwhile is reported too (`--wait-quiet` waits for
it to settle before each run), and the proxy's CPU split into user and system time, with
its threads' context switches per request (what a second thread costs: GIL hand-offs).

Figures are printed as addon/bare ratios and added milliseconds, with the per-round values
so the noise is visible. `--quick` for a ~20 s run, `--json` for machine-readable output.
`--floor` adds a fourth mitmdump to the hey phases, running scripts/noop_addon.py (an
addon with the Meter's hooks that does nothing): the share of the addon's cost that any
Python addon pays before it does any work. scripts/bench_calls.py times spendgate's own
code per call, without the proxy around it.
Targets (issue 2): throughput ≥ 0.95× bare, added p50 ≤ 0.5 ms.

`--peer litellm` adds LiteLLM's proxy to the hey phases, in the same rounds: the same calls,
straight to it (it is an API gateway, not an HTTPS proxy: plain HTTP in, the model routed to
the same fake upstream), with `litellm_settings.max_budget` set and no database, pinned to the
proxy's CPU like mitmdump; its CPU per request is its whole process tree's. It needs LiteLLM in
a virtualenv of its own (`python3 -m venv /work/litellm-venv && /work/litellm-venv/bin/pip
install 'litellm[proxy]'`; `--peer-bin` names its `litellm` command).

`--fleet` measures something else with the same load generator: 1, 2 and 4 spendgate
processes on one PostgreSQL ledger against one on SQLite, as ratios (scripts/bench_fleet.py,
`make bench-fleet`; figures in docs/deploy.md §9).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

from proxy import DEFAULT_SCRIPT, STREAM_ADDON, MitmProxy  # noqa: E402

from config.schema import GeneralSettings  # noqa: E402

WRITER_DEFAULT = GeneralSettings.model_fields["ledger_writer"].default  # the config's: what a user runs

T = TypeVar("T")

# A global budget nothing here can exhaust (each call costs $0.00725): every call reserves.
UNSPENDABLE_BUDGET = "litellm_settings:\n  max_budget: 1000000000\n  budget_duration: 30d\n"

FLOOR_SCRIPT = REPO_ROOT / "scripts" / "noop_addon.py"
TARGET_RPS_RATIO = 0.95
TARGET_ADDED_P50_MS = 0.5

URL = "https://api.openai.com/v1/chat/completions"
API_KEY = "sk-bench-0123456789abcdef"
BODY = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hello in one short sentence."},
    ],
    "max_tokens": 64,
}
STREAM_BODY = {**BODY, "stream": True}  # no include_usage: spendgate asks upstream for it

HEY_INSTALL = """\
hey (the HTTP load generator) is not installed. Install it with:
    sudo apt-get install -y hey              # Debian / Ubuntu
    go install github.com/rakyll/hey@latest  # anywhere with Go (then put ~/go/bin on PATH)
(--skip-load runs only the time-to-first-chunk comparison and the ledger check.)"""

PROFILES = {
    #            rounds, load s, conc, latency s, ttfc per side per round, warm-up s
    "default": dict(rounds=4, load_seconds=6.0, concurrency=16, latency_seconds=3.0, ttfc=50, warmup=2.0),
    "quick": dict(rounds=2, load_seconds=2.0, concurrency=16, latency_seconds=1.0, ttfc=15, warmup=1.0),
}


# ------------------------------------------------------------------------------ helpers


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def write_budget_config(path: Path, ledger_db: Path, writer: str) -> Path:
    """The addon's config for a benchmark: `UNSPENDABLE_BUDGET` on a SQLite ledger at
    `ledger_db`, its writer `writer` (thread, process or auto)."""
    path.write_text(UNSPENDABLE_BUDGET
                    + f"general_settings:\n  database_url: sqlite:///{ledger_db}\n  ledger_writer: {writer}\n")
    return path


def in_threads(fn: Callable[..., T], argument_lists: list[tuple]) -> list[T]:
    """`fn(*args)` for each of `argument_lists`, each in a thread of its own, all at once;
    their results in order, or the first exception any of them raised."""
    results: list[Any] = [None] * len(argument_lists)
    errors: list[BaseException] = []

    def one(i: int, args: tuple) -> None:
        try:
            results[i] = fn(*args)
        except BaseException as e:  # noqa: BLE001 (raised below, in the caller's thread)
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i, args)) for i, args in enumerate(argument_lists)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def percentile(sorted_xs: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_xs:
        return float("nan")
    k = max(0, min(len(sorted_xs) - 1, math.ceil(q / 100 * len(sorted_xs)) - 1))
    return sorted_xs[k]


def _user_system_seconds(stat_path: str) -> tuple[float, float]:
    """(utime, stime) in seconds from a /proc `stat` file (a process's or one thread's)."""
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (every thread), in seconds."""
    return sum(_user_system_seconds(f"/proc/{pid}/stat"))


def cpu_split(pid: int) -> tuple[float, float, int, int]:
    """(user s, system s, voluntary, involuntary context switches) of a process, over its
    live threads: where a proxy's CPU goes besides its own instructions (handing the GIL
    between threads, waking a thread, system calls)."""
    user = system = 0.0
    voluntary = involuntary = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            thread_user, thread_system = _user_system_seconds(f"/proc/{pid}/task/{tid}/stat")
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            user += thread_user
            system += thread_system
            voluntary += int(status["voluntary_ctxt_switches"])
            involuntary += int(status["nonvoluntary_ctxt_switches"])
    return user, system, voluntary, involuntary


def cpu_busy_seconds(cpu: int) -> tuple[float, float]:
    """(user+nice+system, steal) seconds a CPU has spent since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                tck = os.sysconf("SC_CLK_TCK")
                return (v[0] + v[1] + v[2]) / tck, (v[7] if len(v) > 7 else 0) / tck
    return 0.0, 0.0


def wait_quiet(cpu: int | None, max_wait: float, threshold: float = 0.10) -> float:
    """On a shared machine: wait (at most max_wait s) until other processes leave the
    proxy's CPU below `threshold` busy over half a second. Returns the seconds waited."""
    if cpu is None or max_wait <= 0:
        return 0.0
    start = time.monotonic()
    while True:
        b0 = cpu_busy_seconds(cpu)[0]
        time.sleep(0.5)
        if (cpu_busy_seconds(cpu)[0] - b0) / 0.5 < threshold or time.monotonic() - start >= max_wait:
            return time.monotonic() - start


class PinnedProxy(MitmProxy):
    """MitmProxy started under `taskset -c CPUS` (every thread inherits the affinity)."""

    def __init__(self, *args: Any, cpus: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cpus = cpus

    def command(self, port: int) -> list[str]:
        cmd = super().command(port)
        return ["taskset", "-c", self.cpus, *cmd] if self.cpus else cmd


class FakeUpstream:
    """tests/fake_provider.py in its own process (its threads don't share our GIL)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "fake_provider.py"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(REPO_ROOT),
            start_new_session=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"fake provider did not start: {line!r}")
        self.url = line.removeprefix("listening on ")
        self.proc.stdout.close()

    def reset(self) -> None:
        """Drop the fake's in-memory request log (it records every request)."""
        import urllib.request

        req = urllib.request.Request(self.url + "/_fake/reset", method="POST", data=b"")
        with contextlib.suppress(OSError), urllib.request.urlopen(req, timeout=10):
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ------------------------------------------------------------------------------ hey


@dataclass
class HeyRun:
    side: str
    round: int
    phase: str
    concurrency: int
    seconds: float
    requests: int = 0
    non_200: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    proxy_cpu_s: float = 0.0
    proxy_cpu_util: float = 0.0  # share of one core the mitmdump process used
    cpu_us_per_request: float = 0.0
    other_load: float | None = None  # share of the proxy's CPU other processes (or steal) took
    helper_us_per_request: float = 0.0  # CPU of the proxy's child processes (the ledger's writer process)
    user_us_per_request: float = 0.0  # the proxy's CPU split: user and system time,
    system_us_per_request: float = 0.0
    switches_per_request: float = 0.0  # and its threads' context switches (voluntary + not)
    waited_s: float = 0.0  # --wait-quiet: how long the run waited for a quiet CPU


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (a peer's workers, the ledger's writer process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{entry}/stat") as f:
                children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, todo = [], list(children.get(pid, ()))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def tree_cpu_seconds(pid: int) -> float:
    """`cpu_seconds` of a process and every live descendant (a peer's workers)."""
    return cpu_seconds(pid) + children_cpu_seconds(pid)


def children_cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in descendants(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
    return total


class LiteLLMPeer:
    """LiteLLM's proxy (`--peer litellm`) in front of the same fake upstream: gpt-4o routed to
    it, a global budget nothing here exhausts, no database, access log off (as mitmdump runs
    with flow_detail=0), pinned like mitmdump. hey calls it directly (`direct_url`)."""

    MASTER_KEY = "sk-peer-bench-3f9c1e7a5b2d4068a1c9e7f3b5d20486"  # LiteLLM refuses to start without one

    def __init__(self, fake_url: str, binary: str, workdir: Path, cpus: str | None) -> None:
        self.binary, self.workdir, self.cpus = binary, workdir, cpus
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.yaml").write_text(
            "model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      model: openai/gpt-4o\n"
            f"      api_base: {fake_url}/v1\n      api_key: {API_KEY}\n"
            + UNSPENDABLE_BUDGET
            + f"general_settings:\n  master_key: {self.MASTER_KEY}\n")
        (workdir / "log.json").write_text(json.dumps({
            "version": 1, "disable_existing_loggers": False,
            "handlers": {"err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
            "loggers": {name: {"level": "WARNING", "handlers": ["err"], "propagate": False}
                        for name in ("uvicorn.access", "uvicorn.error")}}))
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.direct_url = ""
        self.api_key = self.MASTER_KEY

    def start(self) -> LiteLLMPeer:
        import socket
        import urllib.request

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cmd = [self.binary, "--config", str(self.workdir / "config.yaml"), "--host", "127.0.0.1",
               "--port", str(self.port), "--num_workers", "1", "--log_config", str(self.workdir / "log.json")]
        if self.cpus:
            cmd = ["taskset", "-c", self.cpus, *cmd]
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # its bundled prices: no network
        self.log = open(self.workdir / "litellm.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     cwd=str(self.workdir), start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"litellm exited ({self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/liveliness", timeout=2):
                    self.direct_url = f"http://127.0.0.1:{self.port}/v1/chat/completions"
                    return self
            time.sleep(0.5)
        raise RuntimeError(f"litellm did not start within 120 s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.workdir / "litellm.log").read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()


def run_hey(proxy: MitmProxy | LiteLLMPeer, *, side: str, rnd: int, phase: str, concurrency: int,
            seconds: float, proxy_cpu: int | None = None) -> HeyRun:
    direct = getattr(proxy, "direct_url", None)  # a peer gateway: called directly, not via -x
    cmd = [
        "hey", "-z", f"{seconds}s", "-c", str(concurrency), "-m", "POST",
        "-T", "application/json", "-H", f"Authorization: Bearer {getattr(proxy, 'api_key', API_KEY)}",
        "-d", json.dumps(BODY), "-o", "csv", *([direct] if direct else ["-x", proxy.url, URL]),
    ]
    pid = proxy.proc.pid
    cpu_of = tree_cpu_seconds if direct else cpu_seconds
    busy0 = sum(cpu_busy_seconds(proxy_cpu)) if proxy_cpu is not None else 0.0
    helpers0 = 0.0 if direct else children_cpu_seconds(pid)
    split0 = None if direct else cpu_split(pid)
    cpu0, t0 = cpu_of(pid), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    cpu1, t1 = cpu_of(pid), time.monotonic()
    split1 = None if direct else cpu_split(pid)
    helpers1 = 0.0 if direct else children_cpu_seconds(pid)
    busy1 = sum(cpu_busy_seconds(proxy_cpu)) if proxy_cpu is not None else 0.0
    if out.returncode != 0:
        raise RuntimeError(f"hey failed ({out.returncode}): {out.stderr.strip()[:500]}")
    lat, end, non200 = [], 0.0, 0
    for line in out.stdout.splitlines()[1:]:
        # response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
        parts = line.split(",")
        if len(parts) != 8:
            continue
        rt, status, offset = float(parts[0]), int(parts[6]), float(parts[7])
        lat.append(rt * 1000)
        end = max(end, offset + rt)
        if status != 200:
            non200 += 1
    run = HeyRun(side, rnd, phase, concurrency, seconds)
    if not lat:
        raise RuntimeError(f"hey recorded no responses through the {side} proxy:\n{out.stderr[:500]}\n"
                           + proxy.log_tail(20))
    lat.sort()
    run.requests, run.non_200 = len(lat), non200
    run.rps = len(lat) / end if end > 0 else 0.0
    run.p50_ms, run.p99_ms = percentile(lat, 50), percentile(lat, 99)
    run.mean_ms = statistics.fmean(lat)
    run.proxy_cpu_s = cpu1 - cpu0
    run.proxy_cpu_util = run.proxy_cpu_s / (t1 - t0)
    run.cpu_us_per_request = run.proxy_cpu_s / len(lat) * 1e6
    run.helper_us_per_request = (helpers1 - helpers0) / len(lat) * 1e6
    if split0 is not None and split1 is not None:
        user, system, voluntary, involuntary = (b - a for a, b in zip(split0, split1))
        run.user_us_per_request, run.system_us_per_request = user / len(lat) * 1e6, system / len(lat) * 1e6
        run.switches_per_request = (voluntary + involuntary) / len(lat)
    if proxy_cpu is not None:  # time on the proxy's core mitmdump did not get: others, steal
        run.other_load = max(0.0, (busy1 - busy0) - run.proxy_cpu_s) / (t1 - t0)
    return run


# ------------------------------------------------------------------------------ TTFC


def ttfc_once(client, headers: dict[str, str]) -> tuple[float, float, bool]:
    """(ms to the first SSE event, ms to the end of the stream, saw [DONE])."""
    t0 = time.perf_counter()
    first = None
    buf = b""
    with client.stream("POST", URL, json=STREAM_BODY, headers=headers) as resp:
        for chunk in resp.iter_raw():
            if first is None and b"data:" in chunk:
                first = time.perf_counter()
            buf += chunk
        end = time.perf_counter()
        ok = resp.status_code == 200
    if first is None:
        first = end
    return (first - t0) * 1000, (end - t0) * 1000, ok and b"[DONE]" in buf


def run_ttfc(proxies: dict[str, MitmProxy], rounds: int, per_round: int, gap_ms: int,
             pause_ms: float) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {API_KEY}"}
    if gap_ms:
        # the first event, then a pause, then the rest: the first chunk is unambiguous
        headers["x-fake-first-chunk-then-wait-ms"] = str(gap_ms)
    clients = {
        side: httpx.Client(proxy=p.url, verify=p.ssl_context(), trust_env=False, timeout=30)
        for side, p in proxies.items()
    }
    samples: dict[str, list[list[tuple[float, float]]]] = {side: [] for side in proxies}
    served = {side: 0 for side in proxies}
    bad = {side: 0 for side in proxies}
    try:
        for side, c in clients.items():  # warm-up: TLS handshake, certificate, connection
            for _ in range(5):
                _, _, ok = ttfc_once(c, headers)
                served[side] += 1
                bad[side] += not ok
        sides = list(proxies)
        for rnd in range(rounds):
            for side in sides:
                samples[side].append([])
            for i in range(per_round):
                order = sides if (i + rnd) % 2 == 0 else sides[::-1]
                for side in order:
                    first, end, ok = ttfc_once(clients[side], headers)
                    # both proxies share a core: let the addon's settlement finish before the
                    # other side's next request is timed
                    time.sleep(pause_ms / 1000)
                    served[side] += 1
                    bad[side] += not ok
                    samples[side][rnd].append((first, end))
    finally:
        for c in clients.values():
            c.close()
    return {"samples": samples, "served": served, "bad": bad}


# ------------------------------------------------------------------------------ ledger


def ledger_check(db: Path, expected: int, timeout: float = 30.0) -> dict[str, Any]:
    """Wait for the asynchronous settlements and for the proxy's idle budget leases to go
    back (≈ 2–3 s after the load), then compare the ledger with what was served."""
    deadline = time.monotonic() + timeout
    rows = -1
    while True:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
            rows = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
            held = conn.execute("SELECT COALESCE(SUM(reserved_nanos), 0) FROM budgets").fetchone()[0]
        if (rows >= expected and not held) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        by_status = dict(conn.execute("SELECT status, COUNT(*) FROM calls GROUP BY status"))
        streamed = dict(conn.execute("SELECT streamed, COUNT(*) FROM calls GROUP BY streamed"))
        cost = conn.execute("SELECT COALESCE(SUM(cost_nanos), 0) FROM calls").fetchone()[0]
        spend, reserved = conn.execute(
            "SELECT spend_nanos, reserved_nanos FROM budgets WHERE kind = 'global'").fetchone()
        costs = dict(conn.execute("SELECT cost_nanos, COUNT(*) FROM calls GROUP BY cost_nanos"))
    return {
        "path": str(db),
        "rows": rows,
        "served": expected,
        "by_status": by_status,
        "streamed": {"yes" if k else "no": v for k, v in streamed.items()},
        "cost_usd": cost / 1e9,
        "cost_per_call_nanos": costs,
        "global_spend_usd": spend / 1e9,
        "global_reserved_nanos": reserved,
        "ok": rows == expected and by_status.get("ok", 0) == expected and spend == cost and reserved == 0,
    }


# ------------------------------------------------------------------------------ summary


def summarise_hey(runs: list[HeyRun], phase: str, rounds: int) -> dict[str, Any]:
    def of(side: str) -> list[HeyRun]:
        return sorted((r for r in runs if r.phase == phase and r.side == side), key=lambda r: r.round)

    bare, addon, floor, peer = of("bare"), of("addon"), of("floor"), of("peer")
    sides = {"bare": bare, "addon": addon, **({"floor": floor} if floor else {}), **({"peer": peer} if peer else {})}
    out: dict[str, Any] = {}
    for key in ("rps", "p50_ms", "p99_ms", "mean_ms", "cpu_us_per_request", "helper_us_per_request",
                "user_us_per_request", "system_us_per_request", "switches_per_request",
                "proxy_cpu_util", "other_load"):
        out[key] = {side: median([getattr(r, key) for r in rs if getattr(r, key) is not None])
                    for side, rs in sides.items()}
    out["rps_ratio"] = out["rps"]["addon"] / out["rps"]["bare"]
    out["rps_ratio_per_round"] = [a.rps / b.rps for a, b in zip(addon, bare)]
    out["cpu_ratio"] = out["cpu_us_per_request"]["addon"] / out["cpu_us_per_request"]["bare"]
    # what throughput would be on a core of its own: CPU time per request is far less
    # disturbed by other processes than requests/s is
    out["rps_ratio_from_cpu"] = 1 / out["cpu_ratio"]
    out["cpu_ratio_per_round"] = [a.cpu_us_per_request / b.cpu_us_per_request for a, b in zip(addon, bare)]
    for key in ("p50_ms", "p99_ms", "mean_ms"):
        out["added_" + key] = out[key]["addon"] - out[key]["bare"]
        out["added_" + key + "_per_round"] = [getattr(a, key) - getattr(b, key) for a, b in zip(addon, bare)]
    out["added_cpu_us_per_request"] = out["cpu_us_per_request"]["addon"] - out["cpu_us_per_request"]["bare"]
    if floor:  # --floor: a do-nothing addon with the same hooks, measured in the same rounds
        rps, cpu, p50 = out["rps"], out["cpu_us_per_request"], out["p50_ms"]
        out["floor"] = {"rps": rps["floor"], "cpu_us_per_request": cpu["floor"],
                        "rps_ratio": rps["floor"] / rps["bare"], "rps_ratio_from_cpu": cpu["bare"] / cpu["floor"],
                        "added_cpu_us_per_request": cpu["floor"] - cpu["bare"],
                        "added_p50_ms": p50["floor"] - p50["bare"]}
    if peer:  # --peer: LiteLLM's proxy, the same calls in the same rounds
        rps, cpu, p50 = out["rps"], out["cpu_us_per_request"], out["p50_ms"]
        out["peer"] = {"rps": rps["peer"], "cpu_us_per_request": cpu["peer"], "p50_ms": p50["peer"],
                       "rps_ratio_to_bare": rps["peer"] / rps["bare"],
                       "addon_rps_over_peer": rps["addon"] / rps["peer"],
                       "addon_rps_over_peer_per_round": [a.rps / b.rps for a, b in zip(addon, peer)],
                       "peer_cpu_over_addon": cpu["peer"] / cpu["addon"]}
    return out


def summarise_ttfc(t: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"served": t["served"], "bad": t["bad"]}
    per_round: dict[str, list[float]] = {}
    for side, rounds in t["samples"].items():
        first = [f for rnd in rounds for f, _ in rnd]
        end = [e for rnd in rounds for _, e in rnd]
        per_round[side] = [median([f for f, _ in rnd]) for rnd in rounds]
        fs, es = sorted(first), sorted(end)
        out[side] = {"n": len(first), "first_p50_ms": median(first), "first_p99_ms": percentile(fs, 99),
                     "end_p50_ms": median(end), "end_p99_ms": percentile(es, 99)}
    out["added_first_p50_ms"] = out["addon"]["first_p50_ms"] - out["stream"]["first_p50_ms"]
    out["added_first_p99_ms"] = out["addon"]["first_p99_ms"] - out["stream"]["first_p99_ms"]
    out["added_end_p50_ms"] = out["addon"]["end_p50_ms"] - out["stream"]["end_p50_ms"]
    out["added_first_p50_ms_per_round"] = [a - b for a, b in zip(per_round["addon"], per_round["stream"])]
    return out


def machine_info(pinned: bool, proxy_cpus: str | None, load_cpus: list[int] | None) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    hey_version = ""
    with contextlib.suppress(Exception):
        hey_version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "hey"], capture_output=True,
                                     text=True, timeout=5).stdout.strip()
    from importlib.metadata import version

    commit = ""
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
    return {
        "commit": commit,
        "cpu": model, "cpus": os.cpu_count(), "kernel": platform.release(),
        "python": platform.python_version(), "mitmproxy": version("mitmproxy"),
        "hey": hey_version or ("installed" if shutil.which("hey") else "missing"),
        "pinned": pinned, "proxy_cpus": proxy_cpus, "load_cpus": load_cpus,
    }


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def print_report(res: dict[str, Any]) -> None:
    m, p = res["machine"], res["params"]
    print("spendgate benchmark — addon vs bare mitmdump, same run, same fake upstream")
    print(f"machine: {m['cpu']} × {m['cpus']} CPUs, Linux {m['kernel']}, Python {m['python']}, "
          f"mitmproxy {m['mitmproxy']}, hey {m['hey']}")
    print(f"spendgate {m['commit']}, addon script {p['script']}")
    if m["pinned"]:
        print(f"pinning: mitmdump on CPU {m['proxy_cpus']}; hey, fake upstream and this client on "
              f"CPU {','.join(map(str, m['load_cpus']))}")
    else:
        print("pinning: none (no taskset or a single CPU) — expect more noise")
    sides = "/".join(["bare", "addon", *(["floor"] if p.get("floor") else []), *(["peer"] if p.get("peer") else [])])
    print(f"rounds: {p['rounds']} ({sides} alternating, order reversed each round)")
    load = res.get("load")
    if load:
        print()
        print(f"throughput — hey -c {p['concurrency']}, {p['load_seconds']:g} s per run, HTTPS via the proxy")
        print(f"  requests/s      bare {fmt(load['rps']['bare'], '.0f'):>7}   addon {fmt(load['rps']['addon'], '.0f'):>7}"
              f"   ratio {load['rps_ratio']:.3f}  (target ≥ {TARGET_RPS_RATIO})  "
              f"{'MET' if load['rps_ratio'] >= TARGET_RPS_RATIO else 'MISSED'}")
        print("  per-round ratio " + "  ".join(f"{x:.3f}" for x in load["rps_ratio_per_round"]))
        print(f"  proxy CPU/req   bare {load['cpu_us_per_request']['bare']:7.0f}   addon "
              f"{load['cpu_us_per_request']['addon']:7.0f} µs   ratio {load['cpu_ratio']:.3f}"
              f"   (+{load['added_cpu_us_per_request']:.0f} µs per call)")
        user, system, switches = (load[k] for k in ("user_us_per_request", "system_us_per_request",
                                                    "switches_per_request"))
        if user["bare"] is not None:
            print(f"    of which      user   bare {user['bare']:7.0f}   addon {user['addon']:7.0f} µs"
                  f"   system bare {system['bare']:5.0f}   addon {system['addon']:5.0f} µs")
            print(f"  context switches per request (the proxy's threads)   bare {switches['bare']:5.2f}"
                  f"   addon {switches['addon']:5.2f}")
        if load["helper_us_per_request"]["addon"]:
            print(f"  beside it       the ledger's writer process {load['helper_us_per_request']['addon']:5.0f} µs"
                  " of CPU per call, on another core")
        print(f"  proxy core use  bare {load['proxy_cpu_util']['bare']:7.0%}   addon {load['proxy_cpu_util']['addon']:7.0%}"
              "   (≈100% means mitmdump, not the load generator, is the bottleneck)")
        print(f"  throughput ratio from CPU time per request: {load['rps_ratio_from_cpu']:.3f}"
              "  (what requests/s would show on an undisturbed core)")
        print(f"  latency under load  p50 +{load['added_p50_ms']:.2f} ms  p99 +{load['added_p99_ms']:.2f} ms"
              f"  (bare p50 {load['p50_ms']['bare']:.2f} / p99 {load['p99_ms']['bare']:.2f} ms)")
        _print_floor(load)
    others = [r["other_load"] for r in res.get("runs", []) if r.get("other_load") is not None]
    if others and max(others) > 0.05:
        print(f"  WARNING: other processes used up to {max(others):.0%} (median {median(others):.0%}) of the "
              "proxy's CPU during the runs: requests/s and latencies are disturbed; CPU per request "
              "much less so")
    lat = res.get("latency")
    if lat:
        print()
        print(f"latency — hey -c 1 (one connection, back-to-back requests), {p['latency_seconds']:g} s per run")
        print(f"  p50   bare {lat['p50_ms']['bare']:.2f}  addon {lat['p50_ms']['addon']:.2f} ms   added "
              f"{lat['added_p50_ms']:+.2f} ms  (target ≤ {TARGET_ADDED_P50_MS})  "
              f"{'MET' if lat['added_p50_ms'] <= TARGET_ADDED_P50_MS else 'MISSED'}")
        print("        per round " + "  ".join(f"{x:+.2f}" for x in lat["added_p50_ms_per_round"]))
        print(f"  p99   bare {lat['p99_ms']['bare']:.2f}  addon {lat['p99_ms']['addon']:.2f} ms   added "
              f"{lat['added_p99_ms']:+.2f} ms")
        print("        per round " + "  ".join(f"{x:+.2f}" for x in lat["added_p99_ms_per_round"]))
        print(f"  mean  bare {lat['mean_ms']['bare']:.3f}  addon {lat['mean_ms']['addon']:.3f} ms   added "
              f"{lat['added_mean_ms']:+.3f} ms   (hey reports times in 0.1 ms steps)")
        print(f"  requests/s at c=1: bare {lat['rps']['bare']:.0f}, addon {lat['rps']['addon']:.0f} "
              f"(ratio {lat['rps_ratio']:.3f})")
        _print_floor(lat)
    t = res.get("ttfc")
    if t:
        print()
        print(f"time to first streamed chunk — httpx, sequential streamed chat calls "
              f"({t['addon']['n']} per side, alternating; upstream pauses {p['ttfc_gap_ms']} ms after the first event)")
        print(f"  first event p50  bare+stream {t['stream']['first_p50_ms']:.2f}  addon "
              f"{t['addon']['first_p50_ms']:.2f} ms   added {t['added_first_p50_ms']:+.2f} ms")
        print("        per round " + "  ".join(f"{x:+.2f}" for x in t["added_first_p50_ms_per_round"]))
        print(f"  first event p99  bare+stream {t['stream']['first_p99_ms']:.2f}  addon "
              f"{t['addon']['first_p99_ms']:.2f} ms   added {t['added_first_p99_ms']:+.2f} ms")
        print(f"  end of stream p50 bare+stream {t['stream']['end_p50_ms']:.2f}  addon "
              f"{t['addon']['end_p50_ms']:.2f} ms   added {t['added_end_p50_ms']:+.2f} ms")
        if any(t["bad"].values()):
            print(f"  WARNING: streams without a 200 and [DONE]: {t['bad']}")
    lc = res.get("ledger")
    if lc and "error" in lc:
        print(f"\nledger: could not be read: {lc['error']}")
    elif lc:
        print()
        print(f"ledger: {lc['rows']} rows for {lc['served']} requests served through the addon — "
              f"{'OK' if lc['ok'] else 'MISMATCH'}")
        print(f"  by status {lc['by_status']}, streamed {lc['streamed']}")
        print(f"  recorded cost ${lc['cost_usd']:.4f}, global spend ${lc['global_spend_usd']:.4f}, "
              f"still reserved {lc['global_reserved_nanos']} nanos")
    print(f"\ntotal wall time {res['wall_seconds']:.0f} s")


def _print_floor(phase: dict[str, Any]) -> None:
    peer = phase.get("peer")
    if peer:
        print(f"  peer (LiteLLM proxy, called directly, no database)  requests/s {peer['rps']:.0f}"
              f" ({peer['rps_ratio_to_bare']:.3f}× bare mitmdump), CPU/req {peer['cpu_us_per_request']:.0f} µs,"
              f" p50 {peer['p50_ms']:.2f} ms; spendgate {peer['addon_rps_over_peer']:.2f}× its requests/s"
              f" (rounds " + " ".join(f"{x:.2f}" for x in peer["addon_rps_over_peer_per_round"]) + ")"
              f", {peer['peer_cpu_over_addon']:.2f}× less CPU per request")
    f = phase.get("floor")
    if f:
        print(f"  floor (scripts/noop_addon.py: no work, the Meter's hooks)  requests/s {f['rps']:.0f}"
              f" (ratio {f['rps_ratio']:.3f}), CPU/req {f['cpu_us_per_request']:.0f} µs"
              f" (+{f['added_cpu_us_per_request']:.0f} µs, ratio from CPU {f['rps_ratio_from_cpu']:.3f}),"
              f" p50 {f['added_p50_ms']:+.2f} ms")


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--fleet" in argv:  # 1, 2 and 4 processes on one PostgreSQL ledger vs one on SQLite
        from bench_fleet import main as fleet_main  # scripts/bench_fleet.py, reusing this load generator

        return fleet_main([a for a in argv if a != "--fleet"])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a ~20 s run (fewer, shorter rounds)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    ap.add_argument("--rounds", type=int, help="bare/addon rounds per phase")
    ap.add_argument("--load-seconds", type=float, help="seconds per throughput run")
    ap.add_argument("--concurrency", type=int, help="hey -c for the throughput phase")
    ap.add_argument("--latency-seconds", type=float, help="seconds per c=1 latency run")
    ap.add_argument("--ttfc", type=int, help="streamed calls per side per round")
    ap.add_argument("--warmup", type=float, help="seconds of warm-up load per side")
    ap.add_argument("--ttfc-gap-ms", type=int, default=10,
                    help="fake upstream pause after the first stream event (default 10)")
    ap.add_argument("--ttfc-pause-ms", type=float, default=5.0,
                    help="pause after each streamed call (default 5)")
    ap.add_argument("--script", type=Path, default=DEFAULT_SCRIPT,
                    help="addon script to measure against bare mitmdump (default addon/budget.py)")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                    help="on a shared machine, wait up to S seconds before each run for the "
                         "proxy's CPU to be idle (< 10%% busy)")
    ap.add_argument("--no-pin", action="store_true", help="don't pin processes to CPUs")
    ap.add_argument("--skip-load", action="store_true", help="no hey phases (TTFC and ledger only)")
    ap.add_argument("--floor", action="store_true",
                    help="also measure scripts/noop_addon.py (an addon that does nothing, with the "
                         "Meter's hooks) in the hey phases: what any addon costs before it does any work")
    ap.add_argument("--peer", choices=["litellm"],
                    help="also measure LiteLLM's proxy in the hey phases (the same calls, straight to it)")
    ap.add_argument("--peer-bin", default=None,
                    help="its `litellm` command (default: on PATH, else /work/litellm-venv/bin/litellm)")
    ap.add_argument("--writer", choices=["auto", "thread", "process"], default=WRITER_DEFAULT,
                    help=f"the addon's general_settings.ledger_writer (default {WRITER_DEFAULT}, the config's; "
                         "pinned, a writer process runs on the load's CPUs, not the proxy's)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (ledger, mitmdump logs)")
    args = ap.parse_args(argv)

    prof = dict(PROFILES["quick" if args.quick else "default"])
    for k in ("rounds", "load_seconds", "concurrency", "latency_seconds", "ttfc", "warmup"):
        if getattr(args, k) is not None:
            prof[k] = getattr(args, k)
    prof["ttfc_gap_ms"] = args.ttfc_gap_ms
    prof["ttfc_pause_ms"] = args.ttfc_pause_ms
    prof["script"] = str(args.script)
    prof["floor"] = args.floor
    prof["peer"] = args.peer
    peer_bin = None
    if args.peer:
        peer_bin = args.peer_bin or shutil.which("litellm") or "/work/litellm-venv/bin/litellm"
        if not os.access(peer_bin, os.X_OK):
            log(f"--peer litellm: no litellm command at {peer_bin}. Install LiteLLM in a virtualenv of its "
                "own: python3 -m venv /work/litellm-venv && /work/litellm-venv/bin/pip install 'litellm[proxy]'"
                " (or give --peer-bin)")
            return 2

    if not args.skip_load and shutil.which("hey") is None:
        log(HEY_INSTALL)
        return 2

    pinned, proxy_cpus, load_cpus, proxy_cpu = False, None, None, None
    cpus = sorted(os.sched_getaffinity(0))
    if not args.no_pin and len(cpus) >= 2 and shutil.which("taskset"):
        pinned, proxy_cpus, load_cpus = True, str(cpus[0]), cpus[1:]
        proxy_cpu = cpus[0]
        os.sched_setaffinity(0, load_cpus)  # hey and the fake inherit it
    elif not args.no_pin:
        log("note: not pinning (needs taskset and ≥ 2 CPUs); expect noisier figures")

    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="spendgate-bench-"))
    ledger_db = tmp / "ledger.db"
    config = write_budget_config(tmp / "budget.yaml", ledger_db, args.writer)
    res: dict[str, Any] = {"params": prof, "machine": machine_info(pinned, proxy_cpus, load_cpus),
                           "targets": {"rps_ratio": TARGET_RPS_RATIO, "added_p50_ms": TARGET_ADDED_P50_MS}}
    quiet = {"flow_detail": 0}
    fake = FakeUpstream()
    proxies: dict[str, MitmProxy] = {}
    failed = True
    try:
        log(f"fake upstream {fake.url}; starting mitmdump ×3 (bare, bare+stream, addon)…")
        proxies["bare"] = PinnedProxy(fake.url, cpus=proxy_cpus, options=quiet, workdir=tmp / "bare")
        # (budget_admin_port=0: the harness would otherwise wait for an admin API that
        # only spendgate's addon serves)
        proxies["stream"] = PinnedProxy(fake.url, script=STREAM_ADDON, cpus=proxy_cpus,
                                        options={**quiet, "budget_admin_port": 0}, workdir=tmp / "stream")
        proxies["addon"] = PinnedProxy(fake.url, script=args.script.resolve(), budget_config=config,
                                       cpus=proxy_cpus, options=quiet, workdir=tmp / "addon")
        if args.floor:
            proxies["floor"] = PinnedProxy(fake.url, script=FLOOR_SCRIPT, cpus=proxy_cpus, options=quiet,
                                           workdir=tmp / "floor")
        if args.peer:
            proxies["peer"] = LiteLLMPeer(fake.url, peer_bin, tmp / "peer", proxy_cpus)  # type: ignore[assignment]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(proxies)) as pool:  # ~1 s each: start them together
            for fut in [pool.submit(p.start) for p in proxies.values()]:
                fut.result()
        if pinned:  # the ledger's writer process works beside the proxy, not on its core
            for child in descendants(proxies["addon"].proc.pid):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(child, load_cpus)
        served_by_addon = 0
        runs: list[HeyRun] = []
        if not args.skip_load:
            sides = ("bare", "addon", *(("floor",) if args.floor else ()), *(("peer",) if args.peer else ()))
            for side in sides:  # warm-up: certificates, connections, caches
                w = run_hey(proxies[side], side=side, rnd=-1, phase="warmup",
                            concurrency=prof["concurrency"], seconds=prof["warmup"])
                served_by_addon += w.requests if side == "addon" else 0
                fake.reset()
            for phase, conc, secs in (("load", prof["concurrency"], prof["load_seconds"]),
                                      ("latency", 1, prof["latency_seconds"])):
                for rnd in range(prof["rounds"]):
                    order = sides if rnd % 2 == 0 else sides[::-1]
                    for side in order:
                        waited = wait_quiet(proxy_cpu, args.wait_quiet)
                        r = run_hey(proxies[side], side=side, rnd=rnd, phase=phase, concurrency=conc,
                                    seconds=secs, proxy_cpu=proxy_cpu)
                        fake.reset()
                        r.waited_s = waited
                        runs.append(r)
                        if side == "addon":
                            served_by_addon += r.requests
                        log(f"  {phase:7} round {rnd + 1} {side:5}: {r.rps:7.0f} req/s  p50 {r.p50_ms:6.2f} ms"
                            f"  p99 {r.p99_ms:6.2f} ms  proxy CPU {r.cpu_us_per_request:5.0f} µs/req"
                            f" ({r.proxy_cpu_util:.0%} of a core"
                            + (f", others {r.other_load:.0%}" if r.other_load is not None else "") + ")"
                            + (f"  non-200: {r.non_200}" if r.non_200 else ""))
            res["load"] = summarise_hey(runs, "load", prof["rounds"])
            res["latency"] = summarise_hey(runs, "latency", prof["rounds"])
            res["runs"] = [asdict(r) for r in runs]
        log("  time to first streamed chunk…")
        t = run_ttfc({"stream": proxies["stream"], "addon": proxies["addon"]}, prof["rounds"], prof["ttfc"],
                     prof["ttfc_gap_ms"], prof["ttfc_pause_ms"])
        fake.reset()
        served_by_addon += t["served"]["addon"]
        res["ttfc"] = summarise_ttfc(t)
        try:
            res["ledger"] = ledger_check(ledger_db, served_by_addon)
        except sqlite3.Error as e:  # e.g. --script with an addon that keeps no ledger
            res["ledger"] = {"ok": False, "error": f"{ledger_db}: {e}", "served": served_by_addon}
        failed = False
    finally:
        for p in proxies.values():
            p.stop()
        fake.stop()
        if failed or args.keep:
            log(f"kept {tmp} (ledger, mitmdump logs)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    res["wall_seconds"] = time.monotonic() - started
    if args.json:
        json.dump(res, sys.stdout, indent=2, default=str)
        print()
    else:
        print_report(res)
    return 0 if res["ledger"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
