"""End to end: the cohere SDK's ClientV2 (chat, chat_stream, embed, rerank) → a real
mitmdump with the addon → the fake provider.

Every cost below is the bill computed by hand from the fake's billed units
(tests/fake_provider.py) and cohere.com/pricing, equal to genai-prices' figure:

    command-a-03-2025: $2.50/M input, $10/M output. Billed 1000 input, 500 output (the
        `tokens` Cohere also reports, 1807 / 512, are not billed)
        → 1000 × 2.50 + 500 × 10 = 2500 + 5000 µ$ = $0.0075.
    embed-v4.0: $0.12/M input. Billed 1000 input → $0.00012.
    rerank-v3.5: genai-prices has no rerank price → recorded with its search unit, cost unknown.
"""

from __future__ import annotations

import json

import cohere
import cohere.errors  # (a submodule cohere loads lazily: named here so the test runs alone too)
import pytest

from e2e_helpers import module_proxy, start_proxy

MASTER = "sk-1234"
REAL_COHERE = "co-real-upstream-key-0000"
CONFIG = {
    "litellm_settings": {"max_budget": 100.0, "budget_duration": "30d"},
    "general_settings": {"master_key": MASTER},
    "providers": {"cohere": {"api_key": REAL_COHERE}},
}
CHAT_NANOS = 7_500_000
HI = [{"role": "user", "content": "hi"}]


proxy = module_proxy(CONFIG)


def test_chat_is_billed_on_billed_units_and_priced_by_the_requests_model(proxy, fake):
    since = proxy.ledger.mark()
    reply = proxy.cohere_client(api_key="co-test-key-0001").chat(model="command-a-03-2025", messages=HI, max_tokens=50)
    assert reply.message.content[0].text and reply.usage.tokens.input_tokens == 1807
    [seen] = fake.requests()
    assert seen["path"] == "/v2/chat" and seen["headers"]["authorization"] == "Bearer co-test-key-0001"
    row = proxy.ledger.row(since)
    assert (row["provider"], row["endpoint"], row["model"], row["status"], row["usage_source"]) == (
        "cohere", "chat", "command-a-03-2025", "ok", "reported")
    assert (row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (1000, 500, CHAT_NANOS)
    assert row["key_masked"] == "co-te...0001"


def test_chat_stream_is_billed_from_its_message_end(proxy, fake):
    since = proxy.ledger.mark()
    events = list(proxy.cohere_client().chat_stream(model="command-a-03-2025", messages=HI, max_tokens=50))
    assert [e.type for e in events][0] == "message-start" and events[-1].type == "message-end"
    text = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")
    assert text == "Hello from the fake provider, deterministic reply."
    assert json.loads(fake.requests()[0]["body"])["stream"] is True
    row = proxy.ledger.row(since)
    assert (row["streamed"], row["status"], row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (
        1, "ok", 1000, 500, CHAT_NANOS)


def test_embed_is_billed_on_its_meta_billed_units(proxy, fake):
    since = proxy.ledger.mark()
    reply = proxy.cohere_client().embed(model="embed-v4.0", texts=["hello", "world"], input_type="search_document",
                                        embedding_types=["float"])
    assert len(reply.embeddings.float_) == 2
    row = proxy.ledger.row(since)
    assert (row["endpoint"], row["model"], row["input_tokens"], row["cost_nanos"]) == (
        "embeddings", "embed-v4.0", 1000, 120_000)


def test_rerank_is_recorded_with_its_search_units_and_an_unknown_cost(proxy, fake):
    since = proxy.ledger.mark()
    reply = proxy.cohere_client().rerank(model="rerank-v3.5", query="q", documents=["a", "b", "c"], top_n=2)
    assert [r.index for r in reply.results] == [0, 1]
    row = proxy.ledger.row(since)
    assert (row["endpoint"], row["model"], row["status"], row["cost_nanos"]) == (
        "rerank", "rerank-v3.5", "unpriced", None)
    assert json.loads(row["units"]) == {"rerank_searches": 1}


def test_a_virtual_key_is_swapped_for_the_configured_cohere_key(proxy, fake):
    key = proxy.admin_client(MASTER).post("/key/generate", json={}).json()["key"]
    since = proxy.ledger.mark()
    proxy.cohere_client(api_key=key).chat(model="command-a-03-2025", messages=HI, max_tokens=50)
    [seen] = fake.requests()
    assert seen["headers"]["authorization"] == f"Bearer {REAL_COHERE}" and key not in json.dumps(seen)
    assert proxy.ledger.row(since)["cost_nanos"] == CHAT_NANOS


def test_legacy_v1_chat_is_recorded_as_unmetered(proxy, fake):
    since = proxy.ledger.mark()
    with proxy.httpx_client() as http:
        r = http.post("https://api.cohere.com/v1/chat", headers={"authorization": "Bearer co-test-key-0001"},
                      json={"model": "command-r", "message": "hi"})
    assert r.status_code == 404  # the fake's answer: upstream saw it
    row = proxy.ledger.row(since)
    assert (row["status"], row["model"], row["cost_nanos"]) == ("unmetered", "command-r", None)


# --- bad input ------------------------------------------------------------------------------


def test_a_malformed_chat_answer_reaches_the_client_unchanged_and_is_estimated(proxy, fake):
    since = proxy.ledger.mark()
    with proxy.httpx_client() as http:
        r = http.post("https://api.cohere.com/v2/chat",
                      headers={"authorization": "Bearer co-test-key-0001", "x-fake-body": '{"id": "x", "mess'},
                      json={"model": "command-a-03-2025", "messages": HI, "max_tokens": 50, "stream": False})
    assert r.text == '{"id": "x", "mess'
    row = proxy.ledger.row(since)
    assert (row["status"], row["usage_source"], row["error"]) == ("parse_error", "estimated",
                                                                  "invalid JSON in response body")
    assert row["input_tokens"] > 0 and row["cost_nanos"] > 0


def test_a_stream_whose_usage_is_garbage_passes_unchanged_and_is_estimated(proxy, fake):
    since = proxy.ledger.mark()
    with proxy.httpx_client() as http:
        r = http.post("https://api.cohere.com/v2/chat",
                      headers={"authorization": "Bearer co-test-key-0001", "x-fake-usage": '"garbage"'},
                      json={"model": "command-a-03-2025", "messages": HI, "max_tokens": 50, "stream": True})
    assert r.text.endswith('event: message-end\ndata: {"type":"message-end","delta":{"finish_reason":"COMPLETE",'
                           '"usage":"garbage"}}\n\ndata: [DONE]\n\n')
    row = proxy.ledger.row(since)
    assert (row["status"], row["usage_source"], row["streamed"], row["error"]) == (
        "partial", "estimated", 1, "no usage in message-end event")
    # the text seen (50 characters → 13 tokens) is the output charged
    assert row["output_tokens"] == 13 and row["cost_nanos"] > 0


# --- a spent budget -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broke(fake_provider_session, tmp_path_factory):
    p = start_proxy(fake_provider_session.url, tmp_path_factory.mktemp("cohere-broke"),
                    {"litellm_settings": {"max_budget": 0.000001, "budget_duration": "30d"}})
    yield p
    p.stop()


def test_a_budget_refusal_reaches_the_cohere_sdk_as_a_readable_error(broke, fake):
    with pytest.raises(cohere.errors.TooManyRequestsError) as caught:
        broke.cohere_client().chat(model="command-a-03-2025", messages=HI, max_tokens=50)
    assert caught.value.status_code == 429
    assert caught.value.body["error"]["type"] == "budget_exceeded"
    assert caught.value.body["error"]["message"].startswith("Proxy budget exceeded")
    assert fake.requests() == []
