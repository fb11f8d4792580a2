"""`/metrics` with 10 000 keys: a scrape stays cheap and the proxy keeps answering meanwhile.

The ledger is seeded directly (bulk SQL: 10 000 keys, 9 000 of them with a budget, 100
teams, 1 000 users, 30 000 settled calls over two models) before the proxy starts. Run
with `-s` to see the timings (docs/metrics.md quotes them).
"""

from __future__ import annotations

import concurrent.futures as cf
import sqlite3
import time
from datetime import UTC, datetime

import httpx
import pytest

from e2e_helpers import start_proxy
from ledger.model import iso
from ledger_seed import seed

KEYS, TEAMS, USERS, CALLS = 10_000, 100, 1_000, 30_000
MASTER = "sk-master-scale"
CONFIG = {
    "litellm_settings": {"success_callback": ["prometheus"], "max_budget": 100_000.0, "budget_duration": "30d"},
    "general_settings": {"master_key": MASTER},
}


@pytest.fixture(scope="module")
def proxy(fake_provider_session, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("scale")
    seed(workdir / "ledger.db", keys=KEYS, teams=TEAMS, users=USERS, calls=CALLS)
    p = start_proxy(fake_provider_session.url, workdir, CONFIG)
    yield p
    p.stop()


def scrape(proxy) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = httpx.get(f"{proxy.admin_url}/metrics", headers={"Authorization": f"Bearer {MASTER}"},
                  trust_env=False, timeout=60)
    assert r.status_code == 200, r.text
    return time.perf_counter() - t0, r


def new_call(proxy) -> None:
    """One more settled call, written as another proxy process on the ledger would."""
    with sqlite3.connect(proxy.ledger_path, timeout=30) as conn:
        conn.execute("INSERT INTO calls (ts, started_at, provider, endpoint, path, model, input_tokens, output_tokens,"
                     " cost_nanos, priced, status, key_hash, key_masked, key_alias)"
                     " VALUES (?, ?, 'openai', 'chat', '/v1/chat/completions', 'gpt-4o', 1000, 500, 7250000, 1, 'ok',"
                     " ?, 'sk-ab...0001', 'key-1')", (iso(datetime.now(UTC)), iso(datetime.now(UTC)), f"{1:064x}"))


def test_a_scrape_with_ten_thousand_keys_is_cheap(proxy):
    first, r = scrape(proxy)  # may wait for the start-up aggregation of the ledger
    changed = []
    for _ in range(5):
        new_call(proxy)
        changed.append(scrape(proxy)[0])
    unchanged = sorted(scrape(proxy)[0] for _ in range(5))
    changed.sort()
    text = r.text
    assert text.count("\nlitellm_key_spend{") == KEYS
    assert text.count("\nlitellm_key_budget{") == KEYS - KEYS // 10  # keys without a budget are absent
    assert "+Inf" not in text.replace('le="+Inf"', "") and "NaN" not in text
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    print(f"\n/metrics with {KEYS} keys, {series} series, {len(text) / 1e6:.1f} MB of text, "
          f"{int(r.headers.get('content-length', 0)) / 1e6:.2f} MB gzipped: first {first * 1000:.0f} ms; "
          f"after new calls median {changed[2] * 1000:.0f} ms (max {changed[-1] * 1000:.0f}); "
          f"unchanged median {unchanged[2] * 1000:.0f} ms")
    # How long a scrape takes is printed above, not asserted: speed is measured in benchmarks,
    # not in timed tests (docs/metrics.md has the figures).
    again = httpx.get(f"{proxy.admin_url}/metrics", headers={"Authorization": f"Bearer {MASTER}"}, trust_env=False)
    spend = sum(float(line.rsplit(" ", 1)[1]) for line in again.text.splitlines() if line.startswith("litellm_spend_total"))
    assert abs(spend - (CALLS + 5) * 7_250_000 / 1e9) < 1e-6  # the calls written meanwhile are counted


def test_proxied_calls_keep_flowing_while_a_scrape_is_formatted(proxy):
    """Formatting runs on a worker thread that hands the GIL back every few dozen series,
    so calls through the proxy are barely slowed while a scrape is being produced."""
    client = proxy.openai_client(api_key="sk-latency-probe-0000000001")

    def call() -> float:
        t0 = time.perf_counter()
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        return time.perf_counter() - t0

    for _ in range(3):
        call()
    baseline = sorted(call() for _ in range(15))
    during: list[float] = []
    with cf.ThreadPoolExecutor(1) as pool:
        for _ in range(2):
            new_call(proxy)  # so the scrape is formatted, not served from the previous one
            pending = pool.submit(scrape, proxy)
            time.sleep(0.05)
            while not pending.done():
                during.append(call())
            pending.result()
    during.sort()
    ms = lambda xs, q: xs[min(len(xs) - 1, int(len(xs) * q))] * 1000  # noqa: E731
    print(f"\nproxied calls: alone median {ms(baseline, .5):.0f} ms; during a scrape median {ms(during, .5):.0f} ms,"
          f" p90 {ms(during, .9):.0f} ms, max {ms(during, 1):.0f} ms ({len(during)} calls)")
    assert len(during) >= 3  # calls completed while scrapes were formatted (their latency is printed)
