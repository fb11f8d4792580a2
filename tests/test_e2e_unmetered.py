"""End to end: what spendgate cannot meter is never invisible.

A write to a provider's host that no route names (a batch job, an endpoint spendgate has
no parser for) gets a ledger row with status `unmetered` and an unknown cost, or is refused
with `general_settings.unmetered_endpoints: block` before the provider sees it. Reads and
free endpoints pass with no row.
"""

from __future__ import annotations

import pytest
from e2e_helpers import Ledger

KEY = "sk-test-unmetered-1234567890"
BATCH = {"input_file_id": "file-abc", "endpoint": "/v1/chat/completions", "completion_window": "24h",
         "model": "gpt-4o"}


def post(proxy, path: str, body: dict, key: str = KEY):
    client = proxy.httpx_client()
    return client.post(f"https://api.openai.com{path}", json=body, headers={"authorization": f"Bearer {key}"})


def test_an_unmetered_write_is_forwarded_and_recorded_with_an_unknown_cost(make_proxy, fake_provider):
    proxy = make_proxy({})
    ledger = Ledger(proxy.ledger_path)
    since = ledger.mark()
    reply = post(proxy, "/v1/batches?x=1", BATCH)
    assert reply.status_code == 404  # the fake has no batches: what matters is that it got the call
    assert [r["path"] for r in fake_provider.requests()] == ["/v1/batches?x=1"]
    row = ledger.row(since)
    assert (row["status"], row["provider"], row["endpoint"], row["path"], row["model"]) == (
        "unmetered", "openai", "unmetered", "/v1/batches", "gpt-4o")
    assert (row["cost_nanos"], row["priced"], row["price_source"], row["usage_source"]) == (None, 0, "unmetered", "none")
    assert row["key_masked"] == "sk-te...7890" and row["http_status"] == 404
    assert "unmetered" in proxy.log_text() and "/v1/batches" in proxy.log_text()


def test_reads_and_free_endpoints_leave_no_row(make_proxy, fake_provider):
    proxy = make_proxy({})
    ledger = Ledger(proxy.ledger_path)
    since = ledger.mark()
    client = proxy.httpx_client()
    client.get("https://api.openai.com/v1/models", headers={"authorization": f"Bearer {KEY}"})
    post(proxy, "/v1/moderations", {"input": "hello"})
    client.post("https://api.anthropic.com/v1/messages/count_tokens", headers={"x-api-key": KEY},
                json={"model": "claude-sonnet-4-5", "messages": []})
    assert len(fake_provider.requests()) == 3
    assert ledger.rows(since, n=1, timeout=0.5) == []


@pytest.mark.parametrize("path", ["/v1/batches", "/v1/fine_tuning/jobs"])
def test_block_refuses_an_unmetered_write_before_upstream_sees_it(make_proxy, fake_provider, path):
    proxy = make_proxy({"general_settings": {"unmetered_endpoints": "block"}})
    ledger = Ledger(proxy.ledger_path)
    since = ledger.mark()
    reply = post(proxy, path, BATCH)
    assert reply.status_code == 403
    error = reply.json()["error"]
    assert error["type"] == "endpoint_not_metered" and path in error["message"]
    assert fake_provider.requests() == []
    row = ledger.row(since)
    assert (row["status"], row["error"], row["http_status"]) == ("blocked", "endpoint_not_metered", 403)
    # metered and free calls still pass
    proxy.openai_client(api_key=KEY).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    post(proxy, "/v1/moderations", {"input": "hello"})
    assert [r["path"] for r in fake_provider.requests()] == ["/v1/chat/completions", "/v1/moderations"]
