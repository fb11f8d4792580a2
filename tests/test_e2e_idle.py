"""End to end: an upstream that goes quiet is cut after its idle timeout, its call settled
at once and its hold released, the row saying why; a slow but steady stream is not cut."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from e2e_helpers import Ledger

CONFIG = {"litellm_settings": {"max_budget": 100.0}, "providers": {"openai": {"idle_timeout": 1}}}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def proxy(make_proxy):
    return make_proxy(CONFIG)


def test_an_upstream_that_never_answers_is_cut_and_its_hold_released(proxy, fake_provider):
    ledger = Ledger(proxy.ledger_path)
    since = ledger.mark()
    t0 = time.monotonic()
    with pytest.raises((openai.APIStatusError, openai.APIConnectionError)):
        proxy.openai_client().chat.completions.create(model="gpt-4o", messages=HI, max_tokens=10,
                                                      extra_headers={"x-fake-hang-ms": "8000"})
    assert time.monotonic() - t0 < 5  # cut after ~1 s (the sweep runs every second), not 8
    row = ledger.row(since)
    assert "upstream idle for 1 s" in row["error"] and row["status"] == "partial"
    assert ledger.settled()["reserved_nanos"] == 0


def test_a_stream_that_goes_quiet_is_cut_and_charged_what_was_seen(proxy, fake_provider):
    ledger = Ledger(proxy.ledger_path)
    since = ledger.mark()
    client = proxy.httpx_client()
    with pytest.raises(httpx.HTTPError):
        with client.stream("POST", "https://api.openai.com/v1/chat/completions",
                           headers={"authorization": "Bearer sk-test-idle",
                                    "x-fake-first-chunk-then-wait-ms": "8000"},
                           json={"model": "gpt-4o", "messages": HI, "stream": True, "max_tokens": 10}) as r:
            for _ in r.iter_bytes():
                pass
    row = ledger.row(since)
    assert (row["status"], row["streamed"]) == ("partial", 1) and "upstream idle" in row["error"]
    assert row["cost_nanos"] > 0  # the input it was sent, estimated: the provider may bill it
    assert ledger.settled()["reserved_nanos"] == 0


def test_a_slow_but_steady_stream_is_not_cut(proxy, fake_provider):
    ledger = Ledger(proxy.ledger_path)
    since = ledger.mark()
    chunks = list(proxy.openai_client().chat.completions.create(
        model="gpt-4o", messages=HI, stream=True, extra_headers={"x-fake-delay-ms": "600"}))
    assert chunks  # 5 pieces 0.6 s apart: 3 s in all, never 1 s silent
    row = ledger.row(since)
    assert row["status"] == "ok" and row["error"] is None
