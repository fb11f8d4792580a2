#!/usr/bin/env python3
"""What spendgate's own code costs per call.  `.venv/bin/python scripts/bench_calls.py`

scripts/bench.py measures the whole proxy: the CPU a call through mitmdump with the
addon takes, against bare mitmdump. This script takes mitmproxy's networking away and
times only spendgate: the addons are built as mitmdump builds them (`make_addons`, a
global budget on a temporary SQLite ledger), and N non-streamed OpenAI chat calls —
test flows with the same request and reply bodies as bench.py — go
through the hooks in mitmproxy's order (requestheaders, request, responseheaders,
response); their settlements are then written to the ledger. Then the same for N
streamed chat calls (bench.py's streamed body; spendgate asks for the usage event and the
reply is tests/fake_provider.py's SSE stream, one event per chunk, through the stream tap
mitmproxy would call). CPU time per call (the flows are made just before their call, as
mitmproxy makes them, and that is not counted):

  request hooks    recognise, parse, identify the key, estimate, reserve (main thread)
  response hooks   read the usage from the reply; for a stream, every chunk through the
                   tap too (main thread)
  loop, other      price and queue the settlements, timers, the event loop (main thread)
  ledger writer    the batched settlement transactions (the ledger's writer thread)

It is the part of bench.py's "added CPU per call" that is spendgate's own work; the
rest is mitmproxy offering each hook to an addon (scripts/noop_addon.py measures that
floor) and its garbage collector going through more live objects. The figures are
steady to a few µs from run to run (no sockets, no other process), so this is the
script to watch while optimising the request path. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from bench import API_KEY, BODY, STREAM_BODY, URL  # noqa: E402  (the same calls as the proxy benchmark)
from fake_provider import OPENAI_USAGE  # noqa: E402
from mitmproxy import http  # noqa: E402
from mitmproxy.test import taddons, tflow  # noqa: E402

from addon.assemble import make_addons  # noqa: E402

# What tests/fake_provider.py answers to BODY, with its default usage.
REPLY = {
    "id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": BODY["model"],
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help?"},
                 "finish_reason": "stop"}],
    "usage": OPENAI_USAGE,
}
REQUEST_HOOKS = ("requestheaders", "request")
RESPONSE_HOOKS = ("responseheaders", "response")
PIECES = ("Hello", "! How", " can I", " help", "?")  # the fake's five content chunks


def _chunk(delta: dict | None, finish: str | None = None, usage: dict | None = None) -> bytes:
    obj = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": BODY["model"],
           "system_fingerprint": "fp_fake",
           "choices": [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None,
                                                  "finish_reason": finish}],
           "usage": usage}
    return f"data: {json.dumps(obj)}\n\n".encode()


# What tests/fake_provider.py streams to STREAM_BODY once spendgate has asked for usage.
STREAM_CHUNKS = (
    _chunk({"role": "assistant", "content": "", "refusal": None}),
    *(_chunk({"content": piece}) for piece in PIECES),
    _chunk({}, "stop"),
    _chunk(None, usage=OPENAI_USAGE),
    b"data: [DONE]\n\n",
)


def make_flow(streamed: bool = False) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request = http.Request.make(
        "POST", URL, json.dumps(STREAM_BODY if streamed else BODY).encode(),
        {"content-type": "application/json", "authorization": f"Bearer {API_KEY}"},
    )
    if streamed:  # headers only: the body comes through the stream tap, chunk by chunk
        flow.metadata["bench.reply"] = http.Response.make(200, b"", {"content-type": "text/event-stream"})
        flow.metadata["bench.chunks"] = STREAM_CHUNKS
    else:
        flow.metadata["bench.reply"] = http.Response.make(200, json.dumps(REPLY).encode(),
                                                          {"content-type": "application/json"})
    return flow


async def call_hook(addons: list[object], name: str, *args) -> None:
    """As mitmproxy's AddonManager.invoke_addon does, without the walk over its own addons."""
    for addon in addons:
        hook = getattr(addon, name, None)
        if hook is not None:
            result = hook(*args)
            if inspect.isawaitable(result):
                await result


async def one_call(addons: list[object], flow: http.HTTPFlow, spent: dict[str, float]) -> None:
    t0 = time.thread_time()
    for name in REQUEST_HOOKS:
        await call_hook(addons, name, flow)
    t1 = time.thread_time()
    flow.response = flow.metadata.pop("bench.reply")
    chunks = flow.metadata.pop("bench.chunks", None)
    t2 = time.thread_time()
    await call_hook(addons, "responseheaders", flow)
    if chunks is not None:  # as mitmproxy streams a body: each chunk through the callable, then b""
        tap = flow.response.stream
        if not callable(tap):
            raise SystemExit("the streamed reply was not tapped")
        for chunk in chunks:
            if tap(chunk) != chunk and chunk is not chunks[-2]:  # only the usage event is held back
                raise SystemExit("the stream tap changed a chunk it should pass on")
        tap(b"")
    await call_hook(addons, "response", flow)
    t3 = time.thread_time()
    spent["request"] += t1 - t0
    spent["response"] += t3 - t2


async def run(calls: int, warmup: int, streamed: bool = False) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="spendgate-bench-calls-"))
    db = tmp / "ledger.db"
    config = tmp / "budget.yaml"
    config.write_text("litellm_settings:\n  max_budget: 1000000000\n  budget_duration: 30d\n"
                      f"general_settings:\n  database_url: sqlite:///{db}\n")
    addons = make_addons()
    with taddons.context(*addons) as tctx:
        tctx.configure(addons[-1], budget_config=str(config), budget_admin_port=0,
                       budget_ledger_spool=str(tmp / "spool"))  # its own journal: no other run's calls replayed here
        await call_hook(addons, "running")
        for _ in range(warmup):  # caches, price lookups, leases (not counted)
            await one_call(addons, make_flow(streamed), {"request": 0.0, "response": 0.0})
        runtime = addons[-1].state.runtime
        await runtime.ledger.drain()
        await asyncio.sleep(0.2)
        gc.collect()
        spent = {"request": 0.0, "response": 0.0, "flows": 0.0}
        main0, all0 = time.thread_time(), time.process_time()
        for i in range(calls):
            t0 = time.thread_time()
            flow = make_flow(streamed)  # made just before its call, as mitmproxy does: not counted
            spent["flows"] += time.thread_time() - t0
            await one_call(addons, flow, spent)
            if i % 16 == 15:
                await asyncio.sleep(0)  # as under load: the loop runs between calls
        await asyncio.sleep(0)
        await runtime.ledger.drain()
        main, total = time.thread_time() - main0 - spent["flows"], time.process_time() - all0 - spent["flows"]
        await call_hook(addons, "done")
    tctx.master._legacy_log_events.uninstall()  # taddons leaves its master's log handler on the root logger
    rows = sqlite3.connect(db).execute("SELECT count(*) FROM calls WHERE status = 'ok' AND streamed = ?",
                                       (int(streamed),)).fetchone()[0]
    if rows != calls + warmup:
        raise SystemExit(f"the ledger holds {rows} ok rows for {calls + warmup} {'streamed' if streamed else 'plain'} calls")
    per = {
        "request hooks": spent["request"],
        "response hooks": spent["response"],
        "loop, other": main - spent["request"] - spent["response"],
        "ledger writer": total - main,
    }
    return {name: seconds / calls * 1e6 for name, seconds in per.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=5000, help="calls to time (default 5000)")
    ap.add_argument("--rounds", type=int, default=3, help="runs; the median of each figure is printed")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    plain, streamed = [], []
    for _ in range(args.rounds):  # alternating, so that both see the same machine
        plain.append(asyncio.run(run(args.calls, warmup=500)))
        streamed.append(asyncio.run(run(args.calls, warmup=500, streamed=True)))
    figures, stream_figures = _medians(plain), _medians(streamed)
    if args.json:
        print(json.dumps({"calls": args.calls, "rounds": args.rounds, "cpu_us_per_call": figures,
                          "streamed_cpu_us_per_call": stream_figures}, indent=2))
        return 0
    print(f"spendgate's own CPU per call ({args.calls} chat calls of each kind, median of {args.rounds} runs)")
    print(f"  {'':15s} {'plain':>9s} {'streamed':>9s}")
    for name, us in figures.items():
        print(f"  {name:15s} {us:6.1f} µs {stream_figures[name]:6.1f} µs")
    return 0


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    figures = {name: sorted(r[name] for r in runs)[len(runs) // 2] for name in runs[0]}
    figures["total"] = sum(figures.values())
    return figures


if __name__ == "__main__":
    sys.exit(main())
