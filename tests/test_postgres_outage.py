"""The PostgreSQL server stopped and restarted under running proxies.

Two proxies on one ledger: one with the default `on_ledger_error: fail_closed`, one with
`fail_open`. While the database is down the first refuses new calls with a 503 JSON
`ledger_unavailable`, the second serves them; a stream admitted before the outage finishes
during it. When the database is back both reconnect by themselves, and every call that was
served is in the ledger — once — with the budgets' spend equal to the rows.
"""

from __future__ import annotations

import re
import threading

import httpx
import pytest

from e2e_helpers import Ledger, start_proxy, wait_for

URL = "https://api.openai.com/v1/chat/completions"
CALL_NANOS = 7_250_000  # gpt-4o at the fake's default usage
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 500}


def post(client: httpx.Client, **headers) -> httpx.Response:
    return client.post(URL, json=BODY, headers={"Authorization": "Bearer sk-outage-test", **headers})


@pytest.fixture
def two_proxies(fake_provider_session, pg_server, tmp_path):
    dsn = pg_server.create_database("outage")
    config = {"litellm_settings": {"max_budget": 100.0, "budget_duration": "30d"},
              "general_settings": {"database_url": dsn}}
    closed = start_proxy(fake_provider_session.url, tmp_path / "closed", config)
    open_config = {**config, "general_settings": {**config["general_settings"], "on_ledger_error": "fail_open"}}
    opened = start_proxy(fake_provider_session.url, tmp_path / "open", open_config)
    yield closed, opened, Ledger(dsn)
    closed.stop()
    opened.stop()


def test_a_database_outage_refuses_or_serves_as_configured_and_loses_nothing(two_proxies, pg_server):
    closed, opened, ledger = two_proxies
    c, o = closed.httpx_client(timeout=30), opened.httpx_client(timeout=30)
    assert post(c).status_code == 200 and post(o).status_code == 200  # the key is known to both now
    assert wait_for(lambda: len(ledger.query("SELECT id FROM calls")) == 2)

    # a stream admitted before the outage, still running when the database goes away
    streamed: dict = {}

    def long_stream():
        with c.stream("POST", URL, json={**BODY, "stream": True},
                      headers={"Authorization": "Bearer sk-outage-test", "x-fake-delay-ms": "400"}) as r:
            streamed["status"], streamed["body"] = r.status_code, r.read().decode()

    t = threading.Thread(target=long_stream)
    t.start()
    assert wait_for(lambda: ledger.query("SELECT COUNT(*) AS n FROM reservations")[0]["n"] == 1, 5)
    pg_server.stop()
    try:
        t.join(30)
        assert streamed["status"] == 200 and "[DONE]" in streamed["body"]

        refused = post(c)
        assert refused.status_code == 503
        assert refused.json()["error"]["type"] == "ledger_unavailable"
        assert "postgres" not in refused.text.lower()  # no connection details to clients

        served = [post(o) for _ in range(3)]
        assert [r.status_code for r in served] == [200, 200, 200]
        assert "spooled until the ledger is back" in closed.log_text()  # the stream's settlement
        assert [len(f.read_text().splitlines()) for f in (closed.confdir / "spendgate-spool").glob("*.jsonl")] == [1]
    finally:
        pg_server.start()

    # both reconnect by themselves and record what they kept: 2 + 1 stream + 3 fail-open calls
    assert wait_for(lambda: len(ledger.query("SELECT id FROM calls")) == 6, 30), ledger.query("SELECT * FROM calls")
    assert wait_for(lambda: post(c).status_code == 200, 15)
    assert wait_for(lambda: len(ledger.query("SELECT id FROM calls")) == 7, 10)
    rows = ledger.query("SELECT status, cost_nanos, streamed FROM calls")
    assert all(r["status"] == "ok" and r["cost_nanos"] == CALL_NANOS for r in rows)
    assert sum(r["streamed"] for r in rows) == 1
    g = ledger.settled()
    assert g["spend_nanos"] == 7 * CALL_NANOS and g["reserved_nanos"] == 0
    assert ledger.reservations() == []
    for proxy in (closed, opened):  # nothing left in the spools
        spool = proxy.confdir / "spendgate-spool"
        assert wait_for(lambda spool=spool: all(not f.read_text() for f in spool.glob("*.jsonl")), 10)
    assert recorded_from_spool(closed) == 1 and recorded_from_spool(opened) == 3


def recorded_from_spool(proxy) -> int:
    return sum(int(n) for n in re.findall(r"recorded (\d+) spooled ledger writes", proxy.log_text()))
