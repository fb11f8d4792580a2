#!/usr/bin/env python3
"""How fast can one client address guess the master key?  `.venv/bin/python scripts/guess_rate.py`

Starts a real mitmdump with spendgate (master key set, no traffic needed) and, from one
address, sends wrong master keys as fast as it can for `--seconds`, with `--concurrency`
requests in flight: once as a bearer token on the admin API (`GET /key/list`, from
127.0.0.1) and once as UI logins (`POST /ui/login`, from 127.0.0.2: failures count per
address). Prints the wrong keys answered per second, by status (429: turned away
unanswered because too many attempts from that address were already queued), then how
long the right key takes from a third address (127.0.0.3).

The load comes from one `curl --parallel` process (a Python client tops out at a few
hundred requests/s on a small machine, well below what the listener answers);
`--client httpx` uses httpx instead. `--admin-url URL` measures a proxy that is already
running (with `--master-key`: used once at the end to show that the right key still works).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import write_config  # noqa: E402
from proxy import DEFAULT_SCRIPT, MitmProxy  # noqa: E402

MASTER = "sk-guess-rate-master-0000"


SOURCES = {"api": "127.0.0.1", "login": "127.0.0.2", "right key": "127.0.0.3"}


def with_curl(admin_url: str, kind: str, seconds: float, concurrency: int) -> tuple[float, Counter]:
    """One `curl -Z` process sending numbered wrong keys; stopped after `seconds`."""
    config = []
    for i in range(30_000):  # more than a run gets through; each an operation of its own (`next`)
        guess = f"sk-wrong-{i}"
        if kind == "api":
            config.append(f'url = "{admin_url}/key/list"\nheader = "Authorization: Bearer {guess}"\n')
        else:
            config.append(f'url = "{admin_url}/ui/login"\nheader = "Origin: {admin_url}"\n'
                          f'header = "Content-Type: application/json"\n'
                          f"data = {json.dumps(json.dumps({'master_key': guess}))}\n")
        config[-1] += 'output = "/dev/null"\nsilent\nwrite-out = "%{http_code}\\n"\n'
    with tempfile.NamedTemporaryFile("w", suffix=".curl", delete=False) as f:
        f.write("next\n".join(config))  # a trailing `next` would make curl give up on every transfer
    counts: Counter = Counter()
    # stdbuf: curl would hold its write-out lines in a buffer that the kill then loses
    proc = subprocess.Popen(["stdbuf", "-oL", "curl", "-Z", "--parallel-max", str(concurrency),
                             "--interface", SOURCES[kind], "-K", f.name],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    t0 = time.monotonic()

    def read() -> None:
        for line in proc.stdout:
            counts[line.strip()] += 1

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(seconds)
    proc.kill()
    elapsed = time.monotonic() - t0
    proc.wait()
    reader.join(5)
    Path(f.name).unlink()
    counts.pop("000", None)  # transfers cut by the kill
    return elapsed, counts


def with_httpx(admin_url: str, kind: str, seconds: float, concurrency: int) -> tuple[float, Counter]:
    counts: Counter = Counter()

    async def run() -> float:
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        transport = httpx.AsyncHTTPTransport(local_address=SOURCES[kind], limits=limits)
        async with httpx.AsyncClient(base_url=admin_url, trust_env=False, timeout=120, transport=transport) as client:

            async def worker(n: int) -> None:
                i = 0
                while time.monotonic() < deadline:
                    i += 1
                    guess = f"sk-wrong-{n}-{i}"
                    if kind == "api":
                        r = await client.get("/key/list", headers={"Authorization": f"Bearer {guess}"})
                    else:
                        r = await client.post("/ui/login", json={"master_key": guess},
                                              headers={"Origin": admin_url})
                    if time.monotonic() <= deadline:
                        counts[str(r.status_code)] += 1

            t0 = time.monotonic()
            await asyncio.gather(*(worker(n) for n in range(concurrency)))
            return min(time.monotonic() - t0, seconds)

    return asyncio.run(run()), counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--client", choices=["curl", "httpx"],
                    default="curl" if shutil.which("curl") and shutil.which("stdbuf") else "httpx")
    ap.add_argument("--admin-url")
    ap.add_argument("--master-key", default=MASTER)
    args = ap.parse_args()

    proxy = None
    admin_url = args.admin_url
    if admin_url is None:
        tmp = Path(tempfile.mkdtemp(prefix="spendgate-guess-"))
        config_path, _ = write_config({"general_settings": {"master_key": MASTER}}, tmp)
        proxy = MitmProxy("http://127.0.0.1:9", script=DEFAULT_SCRIPT, budget_config=config_path,
                          workdir=tmp / "mitm", options={"flow_detail": 0})
        proxy.start()
        admin_url = proxy.admin_url
    measure = with_curl if args.client == "curl" else with_httpx
    try:
        for kind in ("api", "login"):
            elapsed, counts = measure(admin_url, kind, args.seconds, args.concurrency)
            print(f"{kind:>5}: {counts.get('401', 0) / elapsed:8.1f} wrong keys answered/s over {elapsed:.1f} s, "
                  f"{args.concurrency} in flight ({args.client}; answers by status: {dict(sorted(counts.items()))})")
        transport = httpx.HTTPTransport(local_address=SOURCES["right key"])
        with httpx.Client(base_url=admin_url, trust_env=False, timeout=300, transport=transport) as client:
            t0 = time.monotonic()
            r = client.get("/key/list", headers={"Authorization": f"Bearer {args.master_key}"})
            print(f"the right key from another address meanwhile: {r.status_code} in {time.monotonic() - t0:.2f} s")
    finally:
        if proxy is not None:
            proxy.stop()


if __name__ == "__main__":
    main()
