#!/usr/bin/env python3
"""What spendgate's own code costs per call.  `.venv/bin/python scripts/bench_calls.py`

scripts/bench.py measures the whole proxy: the CPU a call through mitmdump with the
addon takes, against bare mitmdump. This script takes mitmproxy's networking away and
times only spendgate: the addons are built as mitmdump builds them (`make_addons` under one
`HookFanout`, a global budget on a temporary SQLite ledger), and N non-streamed OpenAI chat
calls — test flows with the same request and reply bodies as bench.py — go
through the hooks in mitmproxy's order (requestheaders, request, responseheaders,
response); their settlements are then written to the ledger. Then the same for N
streamed chat calls (bench.py's streamed body; spendgate asks for the usage event and the
reply is tests/fake_provider.py's SSE stream, one event per chunk, through the stream tap
mitmproxy would call). Then N turns on one Responses API WebSocket (`response.create`,
then the server's `response.created`, five text deltas and `response.completed`), through
`websocket_message` as mitmproxy calls it. CPU time per call (the flows and messages are
made just before their call, as mitmproxy makes them, and that is not counted):

  request hooks    recognise, parse, identify the key, estimate, reserve (main thread);
                   for a turn, the client message and its admission
  response hooks   read the usage from the reply; for a stream, every chunk through the
                   tap too; for a turn, the server's messages (main thread)
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
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from bench import API_KEY, BODY, STREAM_BODY, URL, WRITER_DEFAULT, cpu_seconds, write_budget_config  # noqa: E402  (the same calls as the proxy benchmark)
from fake_provider import OPENAI_USAGE  # noqa: E402
from ledger_seed import seed  # noqa: E402
from mitmproxy import http, websocket  # noqa: E402
from mitmproxy.test import taddons, tflow  # noqa: E402
from wsproto.frame_protocol import Opcode  # noqa: E402

from addon.assemble import make_addons  # noqa: E402
from addon.fanout import HookFanout  # noqa: E402
from addon.websocket import WebSocketMeter  # noqa: E402

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


SOCKET_URL = URL.replace("/chat/completions", "/responses")  # the Responses API's WebSocket mode
TURN = json.dumps({"type": "response.create", "model": BODY["model"], "input": BODY["messages"][-1]["content"],
                   "max_output_tokens": BODY["max_tokens"]}).encode()


def turn_messages(n: int) -> list[websocket.WebSocketMessage]:
    """Turn n's client message, then what the server answers to it (the fake's usage)."""
    rid = f"resp_bench{n}"
    events = [{"type": "response.created", "response": {"id": rid, "model": BODY["model"], "status": "in_progress"}},
              *({"type": "response.output_text.delta", "response_id": rid, "item_id": "msg_1", "output_index": 0,
                 "content_index": 0, "delta": piece} for piece in PIECES),
              {"type": "response.completed", "response": {
                  "id": rid, "model": BODY["model"], "status": "completed",
                  "usage": {"input_tokens": OPENAI_USAGE["prompt_tokens"],
                            "output_tokens": OPENAI_USAGE["completion_tokens"],
                            "input_tokens_details": {"cached_tokens": 0}}}}]
    return [websocket.WebSocketMessage(Opcode.TEXT, True, TURN),
            *(websocket.WebSocketMessage(Opcode.TEXT, False, json.dumps(e).encode()) for e in events)]


async def open_socket(addons: list[object], ws: WebSocketMeter) -> tuple[http.HTTPFlow, WebSocketMeter]:
    """One upgraded Responses socket, its handshake through the request hooks; what the
    meter sends on (the admitted client messages) is appended as mitmproxy's injection
    would, and seen by the hook as injected."""

    def inject(flow: http.HTTPFlow, to_client: bool, content: bytes, is_text: bool) -> None:
        flow.websocket.messages.append(websocket.WebSocketMessage(Opcode.TEXT, not to_client, content, injected=True))
        ws.websocket_message(flow)

    ws.inject = inject
    flow = tflow.twebsocketflow()
    flow.websocket.messages.clear()
    flow.response = None
    flow.request = http.Request.make("GET", SOCKET_URL, b"", {
        "upgrade": "websocket", "connection": "upgrade", "authorization": f"Bearer {API_KEY}"})
    for name in REQUEST_HOOKS:
        await call_hook(addons, name, flow)
    if flow.response is not None:
        raise SystemExit(f"the socket was refused: {flow.response.status_code}")
    flow.response = http.Response.make(101)
    return flow, ws


async def one_turn(addons: list[object], flow: http.HTTPFlow, ws: WebSocketMeter,
                   messages: list[websocket.WebSocketMessage], spent: dict[str, float]) -> None:
    t0 = time.thread_time()
    flow.websocket.messages.append(messages[0])
    await call_hook(addons, "websocket_message", flow)
    await ws.done()  # admitted (a task of its own, as in mitmproxy) and sent on
    t1 = time.thread_time()
    for msg in messages[1:]:
        flow.websocket.messages.append(msg)
        await call_hook(addons, "websocket_message", flow)
    t2 = time.thread_time()
    if len(flow.websocket.messages) > 1000:  # (mitmproxy keeps them all; not the point here)
        del flow.websocket.messages[:-10]
    spent["request"] += t1 - t0
    spent["response"] += t2 - t1


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


class BytecodeCount:
    """Bytecodes run and Python-level calls made on the event loop's thread while `on`, by
    function (sys.monitoring): counts that repeat exactly from run to run, for an A/B of the
    hot path's Python in seconds (`--bytecodes`). What they do not see: the C a bytecode
    calls (SQLite, orjson, hashing), which the instruction counts of bench_instructions.py do."""

    TOOL = 5  # a sys.monitoring tool id of its own (0-5; debuggers and profilers take the low ones)

    def __init__(self) -> None:
        self.bytecodes: Counter = Counter()
        self.calls: Counter = Counter()
        self._thread = threading.get_ident()
        mon = sys.monitoring
        mon.use_tool_id(self.TOOL, "bench_calls")
        mon.register_callback(self.TOOL, mon.events.INSTRUCTION, self._instruction)
        mon.register_callback(self.TOOL, mon.events.PY_START, self._start)

    def _instruction(self, code, offset: int) -> None:
        if threading.get_ident() == self._thread:
            self.bytecodes[code] += 1

    def _start(self, code, offset: int) -> None:
        if threading.get_ident() == self._thread:
            self.calls[code] += 1

    def on(self) -> None:
        sys.monitoring.set_events(self.TOOL, sys.monitoring.events.INSTRUCTION | sys.monitoring.events.PY_START)

    def off(self) -> None:
        sys.monitoring.set_events(self.TOOL, 0)

    def close(self) -> None:
        self.off()
        sys.monitoring.free_tool_id(self.TOOL)

    def report(self, calls: int, top: int) -> list[str]:
        """Per call: the totals, then the `top` functions by bytecodes (this harness left out)."""
        def ours(code) -> bool:
            return code.co_filename != __file__

        bytecodes = {c: n for c, n in self.bytecodes.items() if ours(c)}
        made = {c: n for c, n in self.calls.items() if ours(c)}
        lines = [f"  {sum(bytecodes.values()) / calls:8.0f} bytecodes, {sum(made.values()) / calls:6.1f} Python calls per call"]
        for code, n in sorted(bytecodes.items(), key=lambda item: -item[1])[:top]:
            where = code.co_filename.replace(str(REPO_ROOT) + "/", "").rsplit("site-packages/", 1)[-1]
            if where == "<string>":  # made by exec (a dataclass's __init__): named by its first fields
                where = "fields " + ", ".join(code.co_varnames[1:4]) + ", …"
            lines.append(f"  {n / calls:8.1f} {made.get(code, 0) / calls:6.2f}×  {code.co_qualname}  ({where})")
        return lines


KINDS = ("plain", "streamed", "websocket")
COLUMNS = {"plain": "plain", "streamed": "streamed", "websocket": "ws turn"}
JSON_NAMES = {"plain": "cpu_us_per_call", "streamed": "streamed_cpu_us_per_call",
              "websocket": "websocket_turn_cpu_us_per_call"}


# `--populated`: a ledger that has seen a team's year (issue 14's "flat with size")
POPULATED = {"keys": 10_000, "teams": 1_000, "users": 1_000, "calls": 1_000_000}


def populated_template() -> Path:
    """A SQLite ledger seeded once per invocation (tests/ledger_seed.py); each run gets a copy."""
    path = Path(tempfile.mkdtemp(prefix="spendgate-bench-populated-")) / "ledger.db"
    seed(path, **POPULATED)
    return path


async def time_spend_keys(state, rounds: int = 5) -> float:
    """Milliseconds `/spend/keys` takes over every key (best of `rounds`), as its handler
    builds the answer and the JSON it sends: without the HTTP around it."""
    from admin.api import AdminContext, Caller, encode_json
    from admin.endpoints.spend import spend_keys

    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        items = await spend_keys(AdminContext(state, Caller(is_master=True), {"include_unbudgeted": "true"}))
        encode_json(items)
        best = min(best, time.perf_counter() - t0)
    if len(items) < POPULATED["keys"]:
        raise SystemExit(f"/spend/keys listed {len(items)} keys of {POPULATED['keys']}")
    return best * 1e3


async def run(calls: int, warmup: int, kind: str = "plain", template: Path | None = None,
              timings: dict[str, float] | None = None, writer: str = WRITER_DEFAULT,
              count: BytecodeCount | None = None) -> dict[str, float]:
    """Figures per call of `kind`; on a copy of `template` (a populated ledger) when given,
    and then `timings["spend_keys_ms"]` is filled too. With `count`, each call's hooks and
    the loop's next turn (its settlement) are counted there instead (the times are then not
    worth reading)."""
    streamed = kind == "streamed"
    tmp = Path(tempfile.mkdtemp(prefix="spendgate-bench-calls-"))
    db = tmp / "ledger.db"
    if template is not None:
        shutil.copyfile(template, db)
    config = write_budget_config(tmp / "budget.yaml", db, writer)
    concerns = make_addons()
    addons = [HookFanout(concerns)]  # as addon/budget.py gives them to mitmproxy
    with taddons.context(*addons) as tctx:
        tctx.configure(addons[0], budget_config=str(config), budget_admin_port=0,
                       budget_ledger_spool=str(tmp / "spool"))  # its own journal: no other run's calls replayed here
        await call_hook(addons, "running")
        if kind == "websocket":
            sock, ws = await open_socket(addons, next(c for c in concerns if isinstance(c, WebSocketMeter)))
        for n in range(warmup):  # caches, price lookups, leases (not counted)
            if kind == "websocket":
                await one_turn(addons, sock, ws, turn_messages(-n - 1), {"request": 0.0, "response": 0.0})
            else:
                await one_call(addons, make_flow(streamed), {"request": 0.0, "response": 0.0})
        runtime = concerns[-1].state.runtime
        await runtime.ledger.drain()
        await asyncio.sleep(0.2)
        gc.collect()
        spent = {"request": 0.0, "response": 0.0, "flows": 0.0}
        child = getattr(runtime.ledger._runner, "pid", None)  # the writer's process, if it has one
        child_cpu = (lambda: cpu_seconds(child)) if child is not None else (lambda: 0.0)
        main0, all0, child0 = time.thread_time(), time.process_time(), child_cpu()
        for i in range(calls):
            t0 = time.thread_time()
            if kind == "websocket":  # made just before the turn, as mitmproxy does: not counted
                messages = turn_messages(i)
                spent["flows"] += time.thread_time() - t0
                count and count.on()
                await one_turn(addons, sock, ws, messages, spent)
            else:
                flow = make_flow(streamed)  # made just before its call, as mitmproxy does: not counted
                spent["flows"] += time.thread_time() - t0
                count and count.on()
                await one_call(addons, flow, spent)
            if count is not None:
                await asyncio.sleep(0)  # the turn of the loop that prices and queues its settlement
                count.off()
            if i % 16 == 15:
                await asyncio.sleep(0)  # as under load: the loop runs between calls
        await asyncio.sleep(0)
        await runtime.ledger.drain()
        main, total = time.thread_time() - main0 - spent["flows"], time.process_time() - all0 - spent["flows"]
        in_child = child_cpu() - child0
        if timings is not None:
            timings["spend_keys_ms"] = await time_spend_keys(concerns[-1].state)
        await call_hook(addons, "done")
    tctx.master._legacy_log_events.uninstall()  # taddons leaves its master's log handler on the root logger
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT count(*) FROM calls WHERE status = 'ok' AND streamed = ? AND transport = ?",
        (int(kind != "plain"), "websocket" if kind == "websocket" else "http")).fetchone()[0]
    conn.close()
    shutil.rmtree(tmp, ignore_errors=True)  # (a populated run's copy is half a gigabyte)
    if rows != calls + warmup:
        raise SystemExit(f"the ledger holds {rows} ok rows for {calls + warmup} {kind} calls")
    per = {
        "request hooks": spent["request"],
        "response hooks": spent["response"],
        "loop, other": main - spent["request"] - spent["response"],
        "ledger writer": total - main,
        "writer process": in_child,
    }
    return {name: seconds / calls * 1e6 for name, seconds in per.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=5000, help="calls to time (default 5000)")
    ap.add_argument("--rounds", type=int, default=3, help="runs; the median of each figure is printed")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--populated", action="store_true",
                    help="on a ledger already holding 10,000 keys, 1,000 teams, 1,000 users and 1 M call rows; "
                         "also times /spend/keys over the 10,000 keys")
    ap.add_argument("--template", type=Path, metavar="LEDGER",
                    help="with --populated: copy this already seeded ledger instead of seeding one (a previous "
                         "run's, kept with --keep-template)")
    ap.add_argument("--keep-template", action="store_true", help="with --populated: keep the seeded ledger "
                    "and print its path")
    ap.add_argument("--writer", choices=("auto", "thread", "process"), default=WRITER_DEFAULT,
                    help="general_settings.ledger_writer: where the ledger's writes run (default "
                         f"{WRITER_DEFAULT}, the config's)")
    ap.add_argument("--kinds", default=",".join(KINDS),
                    help=f"which calls to time, comma-separated (default {','.join(KINDS)})")
    ap.add_argument("--bytecodes", type=int, metavar="TOP",
                    help="count instead of timing: bytecodes and Python calls per call on the event loop's "
                         "thread (sys.monitoring), and the TOP functions by bytecodes (one run; use "
                         "--writer process to leave the ledger's writes out of the proxy's process)")
    args = ap.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        ap.error(f"unknown kind(s): {', '.join(sorted(unknown))}")
    if args.bytecodes is not None:
        for kind in kinds:
            count = BytecodeCount()
            try:
                asyncio.run(run(args.calls, warmup=300, kind=kind, writer=args.writer, count=count))
            finally:
                count.close()
            print(f"{COLUMNS[kind]} ({args.calls} calls, counted on the event loop's thread):")
            print("\n".join(count.report(args.calls, args.bytecodes)))
        return 0
    template = (args.template or populated_template()) if args.populated else None
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    spend_keys_ms: list[float] = []
    for _ in range(args.rounds):  # alternating, so that every kind sees the same machine
        for kind in kinds:
            timings: dict[str, float] | None = {} if template is not None and kind == "plain" else None
            runs[kind].append(asyncio.run(run(args.calls, warmup=500, kind=kind, template=template, timings=timings,
                                              writer=args.writer)))
            if timings:
                spend_keys_ms.append(timings["spend_keys_ms"])
    figures = {kind: _medians(r) for kind, r in runs.items()}
    if template is not None and args.template is None:
        if args.keep_template:
            print(f"the seeded ledger is kept in {template}", file=sys.stderr)
        else:
            shutil.rmtree(template.parent, ignore_errors=True)
    if args.json:
        out = {"calls": args.calls, "rounds": args.rounds, "populated": POPULATED if args.populated else None,
               **{JSON_NAMES[kind]: figures[kind] for kind in kinds}}
        if spend_keys_ms:
            out["spend_keys_ms"] = sorted(spend_keys_ms)[len(spend_keys_ms) // 2]
        print(json.dumps(out, indent=2))
        return 0
    where = (" on a ledger holding {keys:,} keys, {teams:,} teams, {users:,} users and {calls:,} rows"
             .format(**POPULATED) if args.populated else "")
    print(f"spendgate's own CPU per call ({args.calls} of each kind, median of {args.rounds} runs{where}):"
          " a chat call, a streamed chat call, a turn on a Responses WebSocket")
    print(f"  {'':15s}" + "".join(f" {COLUMNS[kind]:>9s}" for kind in kinds))
    for name in figures[kinds[0]]:
        print(f"  {name:15s}" + "".join(f" {figures[kind][name]:6.1f} µs" for kind in kinds))
    if spend_keys_ms:
        print(f"  /spend/keys over {POPULATED['keys']:,} keys: {sorted(spend_keys_ms)[len(spend_keys_ms) // 2]:.0f} ms"
              " (its handler and JSON, median of the runs' best)")
    return 0


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    figures = {name: sorted(r[name] for r in runs)[len(runs) // 2] for name in runs[0]}
    figures["total"] = sum(figures.values())
    figures["in the proxy"] = figures["total"] - figures["writer process"]  # on mitmdump's core and GIL
    return figures


if __name__ == "__main__":
    sys.exit(main())
