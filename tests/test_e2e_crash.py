"""End to end: a SIGKILL under load loses no call.

Thirty clients call through mitmdump, half of them streaming, each call with a key of its
own; mitmdump is SIGKILLed in the middle; a new mitmdump starts on the same ledger and
spool directory. Every call the client saw complete has its real row, every request the
provider received has exactly one row (the ones cut by the kill `interrupted`, charged what
was held for them), and nothing is left held.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import signal
import threading

import httpx
from e2e_helpers import start_proxy, wait_for

CONFIG = {"litellm_settings": {"max_budget": 1000.0, "budget_duration": "30d"}}
CLIENTS = 30


def key_of(client: int, n: int) -> str:
    return f"sk-crash-{client:02d}-{n:04d}-padding"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def one_call(proxy, key: str, streamed: bool) -> bool:
    """True when the client saw the whole call (a 200 with its end: the stream's [DONE])."""
    headers = {"authorization": f"Bearer {key}", "x-fake-delay-ms": "60", "x-fake-hang-ms": "50"}
    body = {"model": "gpt-4o", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}],
            "stream": streamed}
    client = proxy.httpx_client(timeout=10)
    try:
        with client.stream("POST", "https://api.openai.com/v1/chat/completions", headers=headers, json=body) as r:
            data = b"".join(r.iter_bytes())
            return r.status_code == 200 and (b"[DONE]" in data if streamed else b'"usage"' in data)
    except httpx.HTTPError:
        return False
    finally:
        client.close()


def test_a_sigkill_under_plain_and_streamed_load_loses_no_call(fake_provider_session, tmp_path):
    fake = fake_provider_session
    fake.reset()
    spool = tmp_path / "spool"
    first = start_proxy(fake.url, tmp_path / "first", CONFIG, budget_ledger_spool=str(spool))
    completed: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client_loop(c: int) -> None:
        n = 0
        while not stop.is_set():
            key = key_of(c, n)
            if one_call(first, key, streamed=c % 2 == 0):
                with lock:
                    completed.add(key)
            n += 1

    with cf.ThreadPoolExecutor(CLIENTS) as pool:
        for c in range(CLIENTS):
            pool.submit(client_loop, c)
        # mid-load: wait for a couple of rounds of calls, then kill with calls in flight and
        # settlements still in their batch window
        assert wait_for(lambda: len(fake.requests()) >= 3 * CLIENTS and len(completed) >= CLIENTS, timeout=60)
        first.proc.send_signal(signal.SIGKILL)  # mid-load: calls in flight, settlements in their batch window
        first.proc.wait(timeout=10)
        stop.set()
    first.stop()

    upstream = {r["headers"]["authorization"].removeprefix("Bearer ") for r in fake.requests()}
    assert len(upstream) > len(completed) >= CLIENTS  # some were cut by the kill

    second = start_proxy(fake.url, tmp_path / "second", {
        **CONFIG, "general_settings": {"database_url": first.database_url}}, budget_ledger_spool=str(spool))
    try:
        def all_recorded():
            rows = second.ledger.query("SELECT key_hash, status, cost_nanos FROM calls")
            return rows if len(rows) >= len(upstream) else None

        rows = wait_for(all_recorded, timeout=30) or second.ledger.query("SELECT key_hash, status, cost_nanos FROM calls")
        by_key: dict[str, list[dict]] = {}
        for row in rows:
            by_key.setdefault(row["key_hash"], []).append(row)
        assert {k: len(v) for k, v in by_key.items() if len(v) != 1} == {}  # no call recorded twice
        sent = {sha(k) for k in upstream}
        assert sent <= set(by_key)  # every call the provider got
        # and no other, but for calls journaled as forwarded that the kill stopped before they
        # were sent: charged as interrupted too, as nobody can tell they never reached the provider
        assert {by_key[k][0]["status"] for k in set(by_key) - sent} <= {"interrupted"}
        assert [k for k in completed if by_key[sha(k)][0]["status"] != "ok"] == []  # their real rows
        cut = [r for r in rows if r["status"] != "ok"]
        assert {r["status"] for r in cut} <= {"interrupted", "partial"}
        assert all(r["cost_nanos"] > 0 for r in cut)  # charged, conservatively: the provider may bill them
        spent = sum(r["cost_nanos"] for r in rows)
        settled = wait_for(lambda: (b := second.ledger.budget())["reserved_nanos"] == 0 and b, timeout=30)
        assert settled and settled["spend_nanos"] == spent  # spend is the rows, and nothing left held
    finally:
        second.stop()
