"""End to end: real clients → real mitmdump with the addon → fake provider on loopback.

Every recorded cost below is computed by hand from the fake's default usage and the
bundled genai-prices rates (see tests/fake_provider.py for the usage figures).
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from e2e_helpers import Ledger

CONFIG = {"litellm_settings": {"max_budget": 100.0, "budget_duration": "30d"}}


def rows(proxy, n=1, timeout=10.0):
    """The ledger's call rows once at least n are there (settlement is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(proxy.ledger_path) as conn:
            conn.row_factory = sqlite3.Row
            found = [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY id")]
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def global_budget(proxy):
    with sqlite3.connect(proxy.ledger_path) as conn:
        return conn.execute(
            "SELECT spend_nanos, reserved_nanos, max_nanos FROM budgets WHERE kind = 'global'"
        ).fetchone()


@pytest.fixture
def proxy(make_proxy):
    return make_proxy(CONFIG)


def test_openai_chat_is_priced_from_its_usage(proxy, fake_provider):
    client = proxy.openai_client(api_key="sk-test-1234567890abcdef")
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert reply.usage.prompt_tokens == 1000
    [row] = rows(proxy)
    # gpt-4o: 800 uncached × $2.50/M + 200 cached × $1.25/M + 500 output × $10/M
    assert row["cost_nanos"] == 2_000_000 + 250_000 + 5_000_000
    assert (row["provider"], row["endpoint"], row["model"], row["status"]) == ("openai", "chat", "gpt-4o", "ok")
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
        1000, 200, 500, 100)
    assert row["key_masked"] == "sk-te...cdef" and "1234567890" not in json.dumps(row)
    # spent: the call's cost; held: nothing once the proxy's idle budget lease is given back
    assert Ledger(proxy.ledger_path).settled()["spend_nanos"] == 7_250_000


def test_streamed_chat_without_include_usage_is_priced_and_the_client_sees_no_extra_chunk(proxy, fake_provider):
    client = proxy.openai_client(api_key="sk-test-key")
    chunks = list(client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert chunks and all(c.choices for c in chunks)  # the usage-only chunk was not passed on
    sent = json.loads(fake_provider.requests()[-1]["body"])
    assert sent["stream_options"] == {"include_usage": True}
    [row] = rows(proxy)
    assert (row["streamed"], row["cost_nanos"], row["usage_source"]) == (1, 7_250_000, "reported")


def test_anthropic_stream_is_priced_with_cache_tokens(proxy):
    client = proxy.anthropic_client(api_key="sk-ant-test-key")
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=1024,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
    assert text
    [row] = rows(proxy)
    # claude-sonnet-4-5: 700 × $3/M + 200 cache read × $0.30/M + 100 cache write × $3.75/M + 500 × $15/M
    assert row["cost_nanos"] == 2_100_000 + 60_000 + 375_000 + 7_500_000
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (
        1000, 200, 100, 500)


def test_gemini_stream_without_alt_sse_is_priced_from_the_last_chunk(proxy):
    out = proxy.curl(
        "-sS", "-X", "POST",
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        "-H", "x-goog-api-key: AIza-test-key-123456", "-H", "content-type: application/json",
        "-d", json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}),
    )
    assert out.returncode == 0 and out.stdout.lstrip().startswith("[")
    [row] = rows(proxy)
    assert (row["provider"], row["model"], row["streamed"]) == ("google", "gemini-2.5-flash", 1)
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
        1000, 200, 500, 100)
    assert row["cost_nanos"] > 0


def test_non_llm_traffic_passes_untouched(proxy, fake_provider):
    with proxy.httpx_client() as http:
        r = http.get("https://api.openai.com/v1/models")
    assert r.status_code == 404  # the fake's answer, not ours
    assert rows(proxy, 1, timeout=0.5) == []
