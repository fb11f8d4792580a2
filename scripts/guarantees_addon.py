"""The least an addon must do for the meter's guarantees, written as plainly as Python
allows: what issue 14's "≤ 1.07× bare" leaves for everything else.

`scripts/bench_instructions.py --script scripts/guarantees_addon.py` counts it as it counts
spendgate (docs/benchmarks.md, run N). It meters bench.py's non-streamed chat call only, one
model, one key, one global budget, and keeps spendgate's guarantees for it:

  zero overspend    the most the call can cost (its max_tokens at the model's output price,
                    its body's bytes at the input price) is held before it leaves, and a call
                    that would pass the budget is refused;
  one durable row   a journal line (one os.write) before the request is forwarded and one
                    before the response is released; the row, with spendgate's columns, into
                    spendgate's `calls` table (its indexes too) with the budget's spend, in
                    transactions of every call settled meanwhile (a writer thread, 25 ms);
  exact cost        the reply's usage read from its JSON, bounded by the context window,
                    priced by the token;
  no raw secret     the key kept as a SHA-256 hash and a masked form.

Everything spendgate does besides — providers and endpoints recognised from a registry,
streams, virtual keys, teams and users, leases, pricing from genai-prices, alerts, metrics,
the journal's replay, fail-open, the spool — is left out. Not for use: a measuring stick.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import queue
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from mitmproxy import http

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # (mitmdump -s puts only scripts/ there)

from ledger.dialect import Dialect  # noqa: E402
from ledger.migrations import migrate  # noqa: E402
from ledger.model import ROW_COLUMNS  # noqa: E402
from ledger.sqlite import connect  # noqa: E402

INPUT_NANOS, OUTPUT_NANOS = 150, 600  # per token (gpt-4o-mini's $0.15 and $0.60 per million)
BUDGET_NANOS = 10**18
CONTEXT_WINDOW = 128_000
SETTLE_DELAY = 0.025
_INSERT = f"INSERT INTO calls ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' * len(ROW_COLUMNS))})"
_SPEND = "UPDATE budgets SET spend_nanos = spend_nanos + ?, updated_at = ? WHERE kind = 'global' AND id = 'global'"


class GuaranteesOnly:
    def __init__(self) -> None:
        self.spent = self.held = 0
        self.rows: queue.SimpleQueue = queue.SimpleQueue()
        self.uids = itertools.count()
        self.journal = -1

    def load(self, loader) -> None:
        loader.add_option("budget_config", str, "", "spendgate's config: only its SQLite ledger is read")
        loader.add_option("budget_admin_port", int, 0, "unused")

    def running(self) -> None:
        from mitmproxy import ctx

        text = Path(ctx.options.budget_config).read_text()
        db = text.split("sqlite:///", 1)[1].split()[0]
        conn = connect(db)
        conn.execute("BEGIN IMMEDIATE")
        migrate(conn, Dialect())
        conn.execute("INSERT OR IGNORE INTO budgets (kind, id, max_nanos, period_start) VALUES"
                     " ('global', 'global', ?, ?)", (BUDGET_NANOS, datetime.now(UTC).isoformat()))
        conn.execute("COMMIT")
        self.journal = os.open(Path(tempfile.mkdtemp()) / "calls.journal", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        threading.Thread(target=self._write, args=(conn,), daemon=True).start()

    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if req.path != "/v1/chat/completions":
            return
        raw = req.raw_content or b""
        body = orjson.loads(raw)
        held = len(raw) * INPUT_NANOS + body.get("max_tokens", 4096) * OUTPUT_NANOS
        if self.spent + self.held + held > BUDGET_NANOS:
            flow.response = http.Response.make(429, b'{"error":{"type":"budget_exceeded"}}')
            return
        self.held += held
        key = req.headers.get("authorization", "")[7:]
        uid = f"{time.time_ns():016x}{next(self.uids):016x}"
        os.write(self.journal, b'{"open":"%s","held":%d}\n' % (uid.encode(), held))
        flow.metadata["guarantees"] = (uid, held, hashlib.sha256(key.encode()).hexdigest(),
                                       f"{key[:5]}...{key[-4:]}", body.get("model"), time.time(), time.perf_counter())

    def response(self, flow: http.HTTPFlow) -> None:
        call = flow.metadata.get("guarantees")
        if call is None:
            return
        uid, held, key_hash, key_masked, model, started, t0 = call
        usage = orjson.loads(flow.response.raw_content or b"{}").get("usage") or {}
        # bounded by what the call could use (spendgate: the model's context window)
        prompt = min(max(usage.get("prompt_tokens", 0), 0), CONTEXT_WINDOW)
        completion = min(max(usage.get("completion_tokens", 0), 0), CONTEXT_WINDOW)
        cost = prompt * INPUT_NANOS + completion * OUTPUT_NANOS
        os.write(self.journal, b'{"end":"%s","cost":%d}\n' % (uid.encode(), cost))
        self.held -= held
        self.spent += cost
        now = time.time()
        self.rows.put((
            _iso(started), "openai", "chat", "/v1/chat/completions", model, 0, prompt, 0, 0, completion, 0, None,
            cost, "genai-prices", "reported", "ok", flow.response.status_code, (time.perf_counter() - t0) * 1e3,
            key_hash, key_masked, None, None, None, None, None, _iso(now), "http", None, None, None, uid,
            cost / 1e9, 1,
        ))

    def _write(self, conn) -> None:
        while True:
            rows = [self.rows.get()]
            time.sleep(SETTLE_DELAY)
            while not self.rows.empty():
                rows.append(self.rows.get())
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT, rows)
            conn.execute(_SPEND, (sum(r[12] for r in rows), rows[-1][25]))
            conn.execute("COMMIT")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


addons = [GuaranteesOnly()]
