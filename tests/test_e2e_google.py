"""End to end: google-genai (the Gemini API, and Vertex AI with `vertexai=True`) and the
anthropic SDK's AnthropicVertex → a real mitmdump with the addon → the fake provider.

Every cost below is the bill computed by hand from the fake's usage (tests/fake_provider.py)
and the provider's price page, equal to genai-prices' figure:

    gemini-2.5-flash (ai.google.dev/pricing, cloud.google.com/vertex-ai/generative-ai/pricing):
        $0.30/M input, $0.03/M cached input, $2.50/M output (thinking included).
        Fake usage: 1000 prompt (200 cached), 400 candidates + 100 thoughts
        → 800 × 0.30 + 200 × 0.03 + 500 × 2.50 = 240 + 6 + 1250 µ$ = $0.001496.
    gemini-embedding-001: $0.15/M input.
    claude-sonnet-4-5 on Vertex AI (the same as anthropic.com/pricing): $3/M input, $0.30/M
        cache read, $3.75/M cache write, $15/M output. Fake usage: 700 input + 200 cache read
        + 100 cache write, 500 output → 2100 + 60 + 375 + 7500 µ$ = $0.010035.
"""

from __future__ import annotations

import json

import anthropic
import pytest
from e2e_helpers import module_proxy, start_proxy
from google.genai import errors as genai_errors
from google.oauth2.credentials import Credentials

MASTER = "sk-1234"
REAL_VERTEX_KEY = "AQ.real-vertex-express-key-0000"
CONFIG = {
    "litellm_settings": {"max_budget": 100.0, "budget_duration": "30d"},
    "general_settings": {"master_key": MASTER},
    "providers": {"vertex": {"api_key": REAL_VERTEX_KEY}},
}
FLASH_NANOS = 1_496_000
CLAUDE_NANOS = 10_035_000
CLAUDE = "claude-sonnet-4-5@20250929"
TOKEN = "ya29.a0AfB_test-access-token-0001"


proxy = module_proxy(CONFIG)


def vertex_client(proxy, token=TOKEN, location="us-central1", **kw):
    return proxy.genai_client(vertexai=True, project="fake-project", location=location,
                              credentials=Credentials(token=token), **kw)


def generate_key(proxy) -> str:
    r = proxy.admin_client(MASTER).post("/key/generate", json={})
    assert r.status_code == 200, r.text
    return r.json()["key"]


# --- the Gemini API -------------------------------------------------------------------------


def test_gemini_api_generate_content_is_priced_from_its_usage(proxy, fake):
    since = proxy.ledger.mark()
    client = proxy.genai_client(api_key="AIza-test-gemini-key-0001")
    reply = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert reply.text and reply.usage_metadata.prompt_token_count == 1000
    row = proxy.ledger.row(since)
    assert (row["provider"], row["endpoint"], row["model"], row["status"], row["usage_source"]) == (
        "google", "generate", "gemini-2.5-flash", "ok", "reported")
    assert row["cost_nanos"] == FLASH_NANOS
    assert fake.requests()[0]["path"] == "/v1/models/gemini-2.5-flash:generateContent"


def test_gemini_api_stream_is_priced_from_its_last_chunk(proxy, fake):
    since = proxy.ledger.mark()
    client = proxy.genai_client(api_key="AIza-test-gemini-key-0001")
    text = "".join(chunk.text for chunk in client.models.generate_content_stream(model="gemini-2.5-flash",
                                                                                 contents="hi"))
    assert text == "Hello from the fake provider, deterministic reply."
    row = proxy.ledger.row(since)
    assert (row["streamed"], row["cost_nanos"], row["output_tokens"], row["reasoning_tokens"]) == (
        1, FLASH_NANOS, 500, 100)
    assert fake.requests()[0]["path"].endswith(":streamGenerateContent?alt=sse")


def test_gemini_api_embeddings_without_usage_are_charged_the_requests_text_as_estimated(proxy, fake):
    since = proxy.ledger.mark()
    client = proxy.genai_client(api_key="AIza-test-gemini-key-0001")
    reply = client.models.embed_content(model="gemini-embedding-001", contents=["x" * 4000, "é" * 3000])
    assert len(reply.embeddings) == 2
    assert fake.requests()[0]["path"] == "/v1/models/gemini-embedding-001:batchEmbedContents"
    row = proxy.ledger.row(since)
    # 4,000 + 6,000 bytes of text (é is 2 bytes): at most 10,000 tokens × $0.15/M = $0.0015
    assert (row["endpoint"], row["model"], row["status"], row["usage_source"]) == (
        "embeddings", "gemini-embedding-001", "ok", "estimated")
    assert (row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (10_000, 0, 1_500_000)


def test_gemini_api_embeddings_with_usage_are_charged_as_reported(proxy, fake):
    since = proxy.ledger.mark()
    client = proxy.genai_client(api_key="AIza-test-gemini-key-0001",
                                headers={"x-fake-usage": json.dumps({"promptTokenCount": 2500})})
    client.models.embed_content(model="gemini-embedding-001", contents="x" * 40_000)
    row = proxy.ledger.row(since)
    # 2,500 × $0.15/M = $0.000375
    assert (row["usage_source"], row["input_tokens"], row["cost_nanos"]) == ("reported", 2500, 375_000)


def test_gemini_api_count_tokens_is_free(proxy, fake):
    since = proxy.ledger.mark()
    client = proxy.genai_client(api_key="AIza-test-gemini-key-0001")
    assert client.models.count_tokens(model="gemini-2.5-flash", contents="hi").total_tokens == 42
    assert proxy.ledger.rows(since, 1, timeout=0.5) == []


# --- Gemini on Vertex AI --------------------------------------------------------------------


def test_vertex_generate_content_is_priced_under_google_and_keyed_by_its_token(proxy, fake):
    since = proxy.ledger.mark()
    reply = vertex_client(proxy).models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert reply.text
    [seen] = fake.requests()
    assert seen["path"] == ("/v1beta1/projects/fake-project/locations/us-central1/publishers/google/models/"
                            "gemini-2.5-flash:generateContent")
    assert seen["headers"]["authorization"] == f"Bearer {TOKEN}"  # passed on unchanged
    row = proxy.ledger.row(since)
    assert (row["provider"], row["endpoint"], row["model"], row["status"], row["cost_nanos"]) == (
        "vertex", "generate", "gemini-2.5-flash", "ok", FLASH_NANOS)
    assert row["key_masked"] == "ya29....0001" and TOKEN not in json.dumps(row)


def test_vertex_global_stream_is_priced(proxy, fake):
    since = proxy.ledger.mark()
    chunks = list(vertex_client(proxy, location="global").models.generate_content_stream(
        model="gemini-2.5-flash", contents="hi"))
    assert len(chunks) == 5
    assert fake.requests()[0]["path"].startswith("/v1beta1/projects/fake-project/locations/global/")
    row = proxy.ledger.row(since)
    assert (row["provider"], row["streamed"], row["cost_nanos"]) == ("vertex", 1, FLASH_NANOS)


def test_vertex_express_mode_api_key_is_the_calls_key(proxy, fake):
    since = proxy.ledger.mark()
    proxy.genai_client(vertexai=True, api_key="AQ.express-test-key-0002").models.generate_content(
        model="gemini-2.5-flash", contents="hi")
    [seen] = fake.requests()
    assert seen["path"] == "/v1beta1/publishers/google/models/gemini-2.5-flash:generateContent"
    assert seen["headers"]["x-goog-api-key"] == "AQ.express-test-key-0002"
    row = proxy.ledger.row(since)
    assert (row["provider"], row["key_masked"], row["cost_nanos"]) == ("vertex", "AQ.ex...0002", FLASH_NANOS)


def test_vertex_embeddings_are_charged_their_reported_usage(proxy, fake):
    since = proxy.ledger.mark()
    reply = vertex_client(proxy).models.embed_content(model="gemini-embedding-001", contents="hello")
    assert reply.embeddings[0].values
    assert fake.requests()[0]["path"].endswith("/publishers/google/models/gemini-embedding-001:embedContent")
    row = proxy.ledger.row(since)
    # 1,000 reported tokens × $0.15/M = $0.00015
    assert (row["endpoint"], row["usage_source"], row["cost_nanos"]) == ("embeddings", "reported", 150_000)


def test_vertex_count_tokens_is_free(proxy, fake):
    since = proxy.ledger.mark()
    assert vertex_client(proxy).models.count_tokens(model="gemini-2.5-flash", contents="hi").total_tokens == 42
    assert proxy.ledger.rows(since, 1, timeout=0.5) == []


def test_rotating_tokens_are_one_user_with_proxy_authentication(proxy, fake):
    admin = proxy.admin_client(MASTER)
    user = admin.post("/user/new", json={"user_id": "vertex-dev@example.com"}).json()
    since = proxy.ledger.mark()
    for token in ("ya29.first-hour-token-0001", "ya29.second-hour-token-0002"):
        vertex_client(proxy, token=token, proxy_auth=("vertex-dev@example.com", user["key"])).models.generate_content(
            model="gemini-2.5-flash", contents="hi")
    rows = proxy.ledger.rows(since, 2)
    assert [r["user_id"] for r in rows] == ["vertex-dev@example.com"] * 2
    assert rows[0]["key_hash"] != rows[1]["key_hash"]  # each token its own key scope


def test_a_vertex_virtual_key_is_swapped_for_the_configured_api_key(proxy, fake):
    key = generate_key(proxy)
    since = proxy.ledger.mark()
    vertex_client(proxy, token=key).models.generate_content(model="gemini-2.5-flash", contents="hi")
    [seen] = fake.requests()
    assert seen["headers"]["x-goog-api-key"] == REAL_VERTEX_KEY and "authorization" not in seen["headers"]
    assert key not in json.dumps(seen)
    assert proxy.ledger.row(since)["cost_nanos"] == FLASH_NANOS


# --- Claude on Vertex AI --------------------------------------------------------------------


def test_anthropic_vertex_message_is_priced_from_the_model_in_the_url(proxy, fake):
    since = proxy.ledger.mark()
    client = proxy.anthropic_vertex_client()
    reply = client.messages.create(model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert reply.usage.output_tokens == 500
    [seen] = fake.requests()
    assert seen["path"] == f"/v1/projects/fake-project/locations/us-east5/publishers/anthropic/models/{CLAUDE}:rawPredict"
    assert "model" not in json.loads(seen["body"])
    row = proxy.ledger.row(since)
    assert (row["provider"], row["endpoint"], row["model"], row["status"]) == ("vertex", "messages", CLAUDE, "ok")
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (
        1000, 200, 100, 500)
    assert row["cost_nanos"] == CLAUDE_NANOS


def test_anthropic_vertex_stream_is_priced(proxy, fake):
    since = proxy.ledger.mark()
    client = proxy.anthropic_vertex_client(region="global")
    with client.messages.stream(model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
    assert text == "Hello from the fake provider, deterministic reply."
    assert fake.requests()[0]["path"].endswith(f"/locations/global/publishers/anthropic/models/{CLAUDE}:streamRawPredict")
    row = proxy.ledger.row(since)
    assert (row["streamed"], row["status"], row["cost_nanos"]) == (1, "ok", CLAUDE_NANOS)


def test_anthropic_vertex_count_tokens_is_free(proxy, fake):
    since = proxy.ledger.mark()
    client = proxy.anthropic_vertex_client()
    assert client.messages.count_tokens(model=CLAUDE, messages=[{"role": "user", "content": "hi"}]).input_tokens == 42
    assert proxy.ledger.rows(since, 1, timeout=0.5) == []


def test_a_virtual_key_on_claude_on_vertex_is_refused_clearly(proxy, fake):
    key = generate_key(proxy)
    since = proxy.ledger.mark()
    client = proxy.anthropic_vertex_client(access_token=key)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    error = caught.value.body["error"]
    assert error["type"] == "virtual_key_not_supported"
    assert error["message"].startswith("Claude on Vertex AI accepts only OAuth access tokens")
    assert fake.requests() == []
    row = proxy.ledger.row(since)
    assert (row["status"], row["error"], row["http_status"]) == ("blocked", "virtual_key_not_supported", 400)


# --- bad input ------------------------------------------------------------------------------


def test_a_malformed_vertex_answer_reaches_the_client_unchanged_and_is_estimated(proxy, fake):
    since = proxy.ledger.mark()
    broken = '{"candidates": [{"content": {"parts": [{"text": "Hel'
    with proxy.httpx_client() as http:
        r = http.post("https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/"
                      "google/models/gemini-2.5-flash:generateContent",
                      headers={"authorization": f"Bearer {TOKEN}", "x-fake-body": broken},
                      json={"contents": [{"parts": [{"text": "x" * 400}]}]})
    assert (r.status_code, r.text) == (200, broken)
    row = proxy.ledger.row(since)
    assert (row["status"], row["usage_source"], row["error"]) == ("parse_error", "estimated",
                                                                  "invalid JSON in response body")
    assert row["input_tokens"] > 100 and row["cost_nanos"] > 0


def test_a_malformed_gemini_embed_answer_is_charged_the_requests_text(proxy, fake):
    since = proxy.ledger.mark()
    with proxy.httpx_client() as http:
        r = http.post("https://generativelanguage.googleapis.com/v1/models/gemini-embedding-001:embedContent",
                      headers={"x-goog-api-key": "AIza-test-gemini-key-0001", "x-fake-body": "<html>oops"},
                      json={"content": {"parts": [{"text": "y" * 2000}]}})
    assert r.text == "<html>oops"
    row = proxy.ledger.row(since)
    # 2,000 bytes of text × $0.15/M = $0.0003
    assert (row["status"], row["usage_source"], row["input_tokens"], row["cost_nanos"]) == (
        "parse_error", "estimated", 2000, 300_000)


# --- a spent budget reaches each SDK as a readable error ------------------------------------


@pytest.fixture(scope="module")
def broke(fake_provider_session, tmp_path_factory):
    """A proxy whose global budget ($0.000001) no call fits in."""
    p = start_proxy(fake_provider_session.url, tmp_path_factory.mktemp("google-broke"),
                    {"litellm_settings": {"max_budget": 0.000001, "budget_duration": "30d"}})
    yield p
    p.stop()


@pytest.mark.parametrize("client", ["gemini-api", "vertex"])
def test_a_budget_refusal_reaches_google_genai_as_a_readable_error(broke, fake, client):
    since = broke.ledger.mark()
    genai = (broke.genai_client(api_key="AIza-test-gemini-key-0001") if client == "gemini-api"
             else vertex_client(broke))
    with pytest.raises(genai_errors.ClientError) as caught:
        genai.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert caught.value.code == 429
    assert caught.value.message.startswith("Proxy budget exceeded. Max budget: $0.0000")
    assert fake.requests() == []
    row = broke.ledger.row(since)
    assert (row["provider"], row["status"], row["error"]) == (
        "google" if client == "gemini-api" else "vertex", "blocked", "budget_exceeded")


def test_a_budget_refusal_reaches_anthropic_vertex_as_a_readable_error_it_does_not_retry(broke, fake):
    since = broke.ledger.mark()
    with pytest.raises(anthropic.RateLimitError) as caught:
        broke.anthropic_vertex_client(max_retries=2).messages.create(
            model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["error"]["type"] == "budget_exceeded"
    assert fake.requests() == []
    [row] = broke.ledger.rows(since, 2, timeout=0.5)  # x-should-retry: false, so no second attempt
    assert (row["provider"], row["model"], row["status"]) == ("vertex", CLAUDE, "blocked")
