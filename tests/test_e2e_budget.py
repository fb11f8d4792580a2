"""End to end: the global budget — the 429 once it is spent, concurrency, resets.

Real clients → real mitmdump with the addon → the fake provider on loopback. Costs are
computed by hand from the fake's usage and the bundled genai-prices rates:

    gpt-4o: $2.50/M input, $1.25/M cached input, $10/M output.
    Fake default chat usage: 1000 prompt (200 cached), 500 completion
        → 800 × 2.50 + 200 × 1.25 + 500 × 10 = $0.00725 = 7_250_000 nanos.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import openai
import pytest
from e2e_helpers import Ledger, start_proxy, wait_for
from proxy import free_port

HI = [{"role": "user", "content": "hi"}]
DEFAULT_CALL_NANOS = 7_250_000


def chat(client, **kwargs):
    kwargs.setdefault("model", "gpt-4o")
    kwargs.setdefault("messages", HI)
    return client.chat.completions.create(**kwargs)


# --- the 429 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spent_proxy(fake_provider_session, tmp_path_factory):
    """A proxy whose $0.00725 / 30d budget is spent by exactly one default gpt-4o call.

    That call reserves at most ~80 body bytes × $2.50/M + max_tokens 500 × $10/M ≈ $0.0052,
    which fits; it then settles at $0.00725 = the budget.
    """
    proxy = start_proxy(
        fake_provider_session.url, tmp_path_factory.mktemp("spent"),
        {"litellm_settings": {"max_budget": 0.00725, "budget_duration": "30d"}},
    )
    fake_provider_session.reset()
    chat(proxy.openai_client(), max_tokens=500)
    assert proxy.ledger.settled()["spend_nanos"] == DEFAULT_CALL_NANOS
    yield proxy
    proxy.stop()


def test_spent_budget_is_answered_by_the_proxy_with_a_429_the_sdk_does_not_retry(spent_proxy, fake_provider):
    ledger: Ledger = spent_proxy.ledger
    since = ledger.mark()
    client = spent_proxy.openai_client(max_retries=3)  # it would retry an ordinary 429
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client, max_tokens=500)
    reply = caught.value.response
    assert reply.status_code == 429
    assert reply.headers["x-should-retry"] == "false"
    retry_after = int(reply.headers["retry-after"])
    reset_at = ledger.budget()["reset_at"]
    assert 0 < retry_after <= 30 * 86400
    body = reply.json()
    assert body["error"]["type"] == "budget_exceeded"
    assert (body["error"]["param"], body["error"]["code"]) == (None, "429")
    assert body["error"]["message"].startswith("Proxy budget exceeded. Max budget: $0.0073")
    assert reset_at[:19] in body["error"]["message"]  # names the reset time
    assert fake_provider.requests() == []  # upstream never saw it
    [row] = ledger.rows(since, 1)
    assert (row["status"], row["http_status"], row["error"], row["cost_nanos"]) == (
        "blocked", 429, "budget_exceeded", 0)
    assert (row["provider"], row["model"]) == ("openai", "gpt-4o")
    time.sleep(0.3)  # a retry would have written a second blocked row by now
    assert len(ledger.rows(since, 2, timeout=0.5)) == 1
    assert ledger.budget()["spend_nanos"] == DEFAULT_CALL_NANOS


def test_every_provider_and_client_gets_the_same_budget_exceeded_reply(spent_proxy, fake_provider):
    import anthropic

    with pytest.raises(anthropic.RateLimitError) as caught:
        spent_proxy.anthropic_client(max_retries=2).messages.create(
            model="claude-sonnet-4-5", max_tokens=100, messages=HI)
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert caught.value.body["error"]["type"] == "budget_exceeded"

    out = spent_proxy.curl(
        "-i", "--suppress-connect-headers", "-X", "POST",
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
        "-H", "x-goog-api-key: AIza-test", "-H", "content-type: application/json",
        "-d", json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}),
    )
    head, _, body = out.stdout.replace("\r\n", "\n").partition("\n\n")
    assert head.startswith("HTTP/1.1 429") or head.startswith("HTTP/2 429"), head
    assert "retry-after:" in head.lower()
    assert json.loads(body)["error"]["message"].startswith("Proxy budget exceeded. Max budget: $0.0073")
    assert fake_provider.requests() == []


def test_unmetered_traffic_still_passes_when_the_budget_is_spent(spent_proxy, fake_provider):
    with spent_proxy.httpx_client() as http:
        r = http.get("https://api.openai.com/v1/models")
    assert r.status_code == 404  # the fake's own answer
    assert len(fake_provider.requests()) == 1


def test_a_budget_that_never_resets_sends_no_retry_after(make_proxy, fake_provider):
    proxy = make_proxy({"litellm_settings": {"max_budget": 0.0}})  # no budget_duration
    with pytest.raises(openai.RateLimitError) as caught:
        chat(proxy.openai_client(), max_tokens=10)
    headers = caught.value.response.headers
    assert headers["x-should-retry"] == "false" and "retry-after" not in headers
    assert caught.value.body["message"].startswith("Proxy budget exceeded. Max budget: $0.00")
    assert fake_provider.requests() == []


# --- concurrency ---------------------------------------------------------------------------

# A call whose reported usage fits inside what the proxy reserved for it, as with a real
# provider: 20 prompt tokens (the body is ~100 bytes, and the reservation counts one token
# per byte) and max_tokens 100 completion tokens.
#   cost        = 20 × $2.50/M + 100 × $10/M = $0.00105  = 1_050_000 nanos
#   reservation ≈ ~100 × $2.50/M + 100 × $10/M ≈ $0.00125
SMALL_USAGE = {"prompt_tokens": 20, "completion_tokens": 100, "total_tokens": 120}
SMALL_CALL_NANOS = 1_050_000
TEN_CALLS = {"litellm_settings": {"max_budget": 0.0105, "budget_duration": "30d"}}  # 10 × $0.00105


def fire(clients, n):
    """n parallel chat calls, spread over `clients`; returns (served, refused by budget)."""
    served, refused, other = [], [], []
    lock = threading.Lock()
    start = threading.Barrier(n)

    def one(i):
        client = clients[i % len(clients)]
        start.wait()
        try:
            chat(client, max_tokens=100, extra_headers={"x-fake-usage": json.dumps(SMALL_USAGE)})
            outcome, what = served, i
        except openai.RateLimitError as e:
            refusal = (e.body or {}).get("type") == "budget_exceeded"
            outcome, what = (refused, i) if refusal else (other, repr(e))
        except Exception as e:  # noqa: BLE001
            outcome, what = other, repr(e)
        with lock:
            outcome.append(what)

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(one, range(n)))
    assert other == [], other
    return len(served), len(refused)


def test_fifty_parallel_calls_never_push_spend_past_the_budget(make_proxy, fake_provider):
    proxy = make_proxy(TEN_CALLS)
    ledger = Ledger(proxy.ledger_path)
    clients = [proxy.openai_client() for _ in range(10)]
    served, refused = fire(clients, 50)
    budget = ledger.settled()
    assert budget["spend_nanos"] <= budget["max_nanos"] == 10_500_000
    assert served + refused == 50
    assert 0 < served <= 10
    assert len(fake_provider.requests()) == served  # every refusal was the proxy's own
    rows = ledger.rows(0, 50)
    assert sum(r["status"] == "ok" for r in rows) == served
    assert sum(r["status"] == "blocked" for r in rows) == refused
    assert budget["spend_nanos"] == served * SMALL_CALL_NANOS == sum(r["cost_nanos"] for r in rows)
    assert ledger.reservations() == []


def test_two_proxies_on_one_ledger_share_the_budget(make_proxy, fake_provider):
    first = make_proxy(TEN_CALLS)
    second = make_proxy(TEN_CALLS)  # same tmp_path: the same ledger file
    assert first.ledger_path == second.ledger_path
    ledger = Ledger(first.ledger_path)
    clients = [p.openai_client() for p in (first, second) for _ in range(5)]
    served, refused = fire(clients, 50)
    budget = ledger.settled()
    assert budget["spend_nanos"] <= budget["max_nanos"] == 10_500_000
    assert 0 < served <= 10 and served + refused == 50
    assert budget["spend_nanos"] == served * SMALL_CALL_NANOS
    assert len(fake_provider.requests()) == served
    rows = ledger.rows(0, 50)
    assert len(rows) == 50 and sum(r["cost_nanos"] for r in rows) == budget["spend_nanos"]  # no drift
    assert ledger.reservations() == []


# --- resets --------------------------------------------------------------------------------


def test_a_spent_budget_unblocks_after_its_reset_which_the_ledger_shows_without_traffic(make_proxy, fake_provider):
    # A 2-second period; one default call ($0.00725) spends it.
    proxy = make_proxy({"litellm_settings": {"max_budget": 0.00725, "budget_duration": "2s"}})
    ledger = Ledger(proxy.ledger_path)
    client = proxy.openai_client()

    # Start right at a period boundary, so that spending and being refused fall in one period
    # (the first call's reservation rolls the period over if the clock has not yet). On a
    # machine so slow that the period ends between the two calls, try the next period.
    for _attempt in range(3):
        boundary = datetime.fromisoformat(ledger.budget()["reset_at"].replace("Z", "+00:00"))
        time.sleep(max((boundary - datetime.now(UTC)).total_seconds(), 0) + 0.05)
        chat(client, max_tokens=500)
        spent = ledger.settled()
        try:
            chat(client, max_tokens=500)
        except openai.RateLimitError as e:
            refusal = e
            break
    else:
        pytest.fail("a spent 2s budget never refused a call")
    assert spent["spend_nanos"] == DEFAULT_CALL_NANOS
    assert int(refusal.response.headers["retry-after"]) in (1, 2)
    assert refusal.body["message"].startswith("Proxy budget exceeded.")

    # No traffic now: the clock rolls the period and writes the reset on its own.
    resets = wait_for(lambda: [e for e in ledger.events("reset") if e["period_start"] >= spent["reset_at"]], 5)
    assert resets, ledger.events()
    assert resets[0]["spend_nanos"] == DEFAULT_CALL_NANOS  # the period that ended, as it was spent
    assert ledger.budget()["spend_nanos"] == 0

    before = len(fake_provider.requests())
    chat(client, max_tokens=500)  # served again
    assert len(fake_provider.requests()) == before + 1
    rows = ledger.rows(0, 3)
    assert [r["status"] for r in rows][-3:] == ["ok", "blocked", "ok"]


# --- failures release their hold ---------------------------------------------------------------


def test_a_call_that_cannot_reach_its_provider_is_not_charged_and_releases_its_hold(make_proxy, fake_provider):
    dead = free_port()  # nothing listens here
    proxy = make_proxy({
        "litellm_settings": {"max_budget": 1.0, "budget_duration": "30d"},
        "providers": {"local": {"host": f"127.0.0.1:{dead}", "api_style": "openai"}},
        "pricing": {"local-model": {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}},
    })
    ledger = Ledger(proxy.ledger_path)
    client = proxy.openai_client(base_url=f"http://127.0.0.1:{dead}/v1")
    with pytest.raises(openai.APIStatusError) as caught:
        chat(client, model="local-model", max_tokens=10)
    assert caught.value.status_code == 502  # mitmproxy's own answer
    [row] = ledger.rows(0, 1)
    assert (row["provider"], row["status"], row["usage_source"], row["cost_nanos"]) == ("local", "error", "none", 0)
    assert "Connect call failed" in row["error"]
    budget = ledger.settled()
    assert (budget["spend_nanos"], budget["reserved_nanos"]) == (0, 0)
    assert ledger.reservations() == []
