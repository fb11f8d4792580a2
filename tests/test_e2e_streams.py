"""End to end: every metered endpoint, streamed and not, through a real mitmdump.

Real SDK clients, httpx and curl → mitmdump with the addon → the fake provider. Costs are
computed by hand from the fake's default usage (tests/fake_provider.py) and the bundled
genai-prices rates:

    OpenAI chat / Responses, gpt-4o ($2.50/M in, $1.25/M cached, $10/M out):
        1000 in (200 cached), 500 out → 800 × 2.50 + 200 × 1.25 + 500 × 10 = $0.00725
    Legacy completions, gpt-3.5-turbo-instruct ($1.50/M in, no cache price, $2/M out):
        1000 × 1.50 + 500 × 2 = $0.0025
    Embeddings, text-embedding-3-small ($0.02/M): 1000 × 0.02 = $0.00002
    Anthropic, claude-sonnet-4-5 ($3/M in, $0.30/M cache read, $3.75/M cache write, $15/M out):
        700 × 3 + 200 × 0.30 + 100 × 3.75 + 500 × 15 = $0.010035
    Gemini, gemini-2.5-flash ($0.30/M in, $0.03/M cached, $2.50/M out, thoughts billed as out):
        800 × 0.30 + 200 × 0.03 + (400 + 100) × 2.50 = $0.001496

One proxy serves the whole module; each test reads only the ledger rows written after it
started (`since`).
"""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import openai
import pytest
from e2e_helpers import start_proxy

GPT4O_NANOS = 7_250_000
INSTRUCT_NANOS = 2_500_000
EMBEDDING_NANOS = 20_000
SONNET_NANOS = 10_035_000
FLASH_NANOS = 1_496_000

HI = [{"role": "user", "content": "hi"}]
OPENAI_CHAT = "https://api.openai.com/v1/chat/completions"
ANTHROPIC_MESSAGES = "https://api.anthropic.com/v1/messages"
GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
GEMINI_BODY = {"contents": [{"parts": [{"text": "hi"}]}]}


@pytest.fixture(scope="module")
def proxy(fake_provider_session, tmp_path_factory):
    p = start_proxy(
        fake_provider_session.url, tmp_path_factory.mktemp("streams"),
        {"litellm_settings": {"max_budget": 100.0, "budget_duration": "30d"}},
    )
    yield p
    p.stop()


@pytest.fixture
def since(proxy, fake_provider):
    """The newest ledger row id before the test (the fake's request log is emptied too)."""
    proxy.ledger.settled()
    return proxy.ledger.mark()


def row_after(proxy, since):
    return proxy.ledger.row(since)


def assert_released(proxy):
    """Every reservation was settled or given back."""
    assert proxy.ledger.settled()["reserved_nanos"] == 0
    assert proxy.ledger.reservations() == []


# --- chunks flow as they come --------------------------------------------------------------

WAIT_MS = 800  # the fake sends the first event, waits this long, then sends the rest


def assert_first_chunk_came_before_the_rest_was_sent(fake_provider, arrivals):
    """`arrivals`: wall-clock times the client got each piece. Ordering, not speed: the
    fake cannot send anything after its first event before its request time + WAIT_MS,
    so a first piece that arrived earlier was forwarded on its own, not buffered."""
    [request] = fake_provider.requests()
    rest_sent_at_the_earliest = request["time"] + WAIT_MS / 1000
    assert len(arrivals) >= 2
    assert arrivals[0] < rest_sent_at_the_earliest <= arrivals[-1], (request["time"], arrivals)

STREAMS = {
    "openai-chat": (OPENAI_CHAT, {"model": "gpt-4o", "messages": HI, "stream": True}, {}),
    "openai-chat-gzip": (OPENAI_CHAT, {"model": "gpt-4o", "messages": HI, "stream": True,
                                       "stream_options": {"include_usage": True}}, {"x-fake-encoding": "gzip"}),
    "anthropic": (ANTHROPIC_MESSAGES, {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": HI,
                                       "stream": True}, {"x-api-key": "sk-ant-test"}),
    "gemini-sse": (GEMINI + ":streamGenerateContent?alt=sse", GEMINI_BODY, {"x-goog-api-key": "AIza-test"}),
    "gemini-array": (GEMINI + ":streamGenerateContent", GEMINI_BODY, {"x-goog-api-key": "AIza-test"}),
}


@pytest.mark.parametrize("name", STREAMS)
def test_stream_chunks_reach_the_client_before_the_stream_ends(proxy, since, fake_provider, name):
    url, body, headers = STREAMS[name]
    headers = {"authorization": "Bearer sk-test", **headers, "x-fake-first-chunk-then-wait-ms": str(WAIT_MS)}
    with proxy.httpx_client() as http, http.stream("POST", url, json=body, headers=headers) as r:
        assert r.status_code == 200
        arrivals = [time.time() for _chunk in r.iter_raw()]
    assert_first_chunk_came_before_the_rest_was_sent(fake_provider, arrivals)
    row = row_after(proxy, since)
    assert (row["status"], row["streamed"], row["usage_source"]) == ("ok", 1, "reported")
    assert row["cost_nanos"] > 0


def test_curl_over_http2_gets_the_first_chunk_before_the_rest(proxy, since, fake_provider):
    # HTTP/2 to the client, with spendgate holding back the usage chunk it asked for.
    cmd = ["curl", "-sSN", "--http2", "--noproxy", "", "--proxy", proxy.url, "--cacert", str(proxy.ca_path),
           "-X", "POST", OPENAI_CHAT, "-H", "authorization: Bearer sk-curl", "-H", "content-type: application/json",
           "-H", f"x-fake-first-chunk-then-wait-ms: {WAIT_MS}",
           "-d", json.dumps({"model": "gpt-4o", "messages": HI, "stream": True})]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, env=proxy.env()) as curl:
        lines = [(time.time(), line) for line in curl.stdout if line.strip()]
    assert curl.returncode == 0
    assert lines[0][1].startswith(b"data: {") and lines[-1][1].strip() == b"data: [DONE]"
    assert not any(b'"choices":[]' in line for _, line in lines)
    assert_first_chunk_came_before_the_rest_was_sent(fake_provider, [t for t, _ in lines])
    assert row_after(proxy, since)["cost_nanos"] == GPT4O_NANOS


def test_sdk_stream_yields_the_first_chunk_before_the_rest(proxy, since, fake_provider):
    client = proxy.openai_client()
    stream = client.chat.completions.create(
        model="gpt-4o", messages=HI, stream=True,
        extra_headers={"x-fake-first-chunk-then-wait-ms": str(WAIT_MS)})
    assert_first_chunk_came_before_the_rest_was_sent(fake_provider, [time.time() for _chunk in stream])
    assert row_after(proxy, since)["cost_nanos"] == GPT4O_NANOS


# --- OpenAI --------------------------------------------------------------------------------


def test_streamed_chat_with_include_usage_keeps_the_clients_usage_chunk(proxy, since, fake_provider):
    chunks = list(proxy.openai_client().chat.completions.create(
        model="gpt-4o", messages=HI, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 1000
    assert json.loads(fake_provider.requests()[0]["body"])["stream_options"] == {"include_usage": True}
    row = row_after(proxy, since)
    assert (row["provider"], row["endpoint"], row["streamed"], row["cost_nanos"]) == (
        "openai", "chat", 1, GPT4O_NANOS)


def test_responses_api(proxy, since):
    client = proxy.openai_client()
    reply = client.responses.create(model="gpt-4o", input="hi")
    assert reply.usage.input_tokens == 1000
    events = list(client.responses.create(model="gpt-4o", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    plain, streamed = proxy.ledger.rows(since, 2)
    for row, was_streamed in ((plain, 0), (streamed, 1)):
        assert (row["provider"], row["endpoint"], row["model"], row["streamed"]) == (
            "openai", "responses", "gpt-4o", was_streamed)
        assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
            1000, 200, 500, 100)
        assert (row["cost_nanos"], row["status"], row["usage_source"]) == (GPT4O_NANOS, "ok", "reported")


def test_legacy_completions(proxy, since):
    client = proxy.openai_client()
    assert client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi").usage.total_tokens == 1500
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi", stream=True))
    assert chunks and all(c.choices for c in chunks)  # no usage chunk the client did not ask for
    rows = proxy.ledger.rows(since, 2)
    assert [(r["endpoint"], r["streamed"], r["cost_nanos"]) for r in rows] == [
        ("completions", 0, INSTRUCT_NANOS), ("completions", 1, INSTRUCT_NANOS)]


def test_embeddings(proxy, since):
    reply = proxy.openai_client().embeddings.create(model="text-embedding-3-small", input="hi")
    assert reply.data
    row = row_after(proxy, since)
    assert (row["endpoint"], row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (
        "embeddings", 1000, 0, EMBEDDING_NANOS)


def test_azure_deployment_urls(proxy, since, fake_provider):
    client = proxy.azure_openai_client()
    client.chat.completions.create(model="gpt-4o", messages=HI)  # the deployment is named gpt-4o
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=HI, stream=True))
    assert chunks and all(c.choices for c in chunks)
    assert fake_provider.requests()[0]["path"].startswith("/openai/deployments/gpt-4o/chat/completions?api-version=")
    rows = proxy.ledger.rows(since, 2)
    assert [(r["provider"], r["endpoint"], r["model"], r["streamed"], r["cost_nanos"]) for r in rows] == [
        ("azure", "chat", "gpt-4o", 0, GPT4O_NANOS), ("azure", "chat", "gpt-4o", 1, GPT4O_NANOS)]
    assert rows[0]["key_masked"] == "azure...-key"


# --- Anthropic and Gemini ------------------------------------------------------------------


def test_anthropic_messages_not_streamed(proxy, since):
    reply = proxy.anthropic_client().messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=HI)
    assert reply.usage.input_tokens == 700
    row = row_after(proxy, since)
    assert (row["provider"], row["endpoint"], row["streamed"], row["cost_nanos"]) == (
        "anthropic", "messages", 0, SONNET_NANOS)
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (
        1000, 200, 100, 500)


@pytest.mark.parametrize("method, streamed", [
    (":generateContent", 0),
    (":streamGenerateContent?alt=sse", 1),
])
def test_gemini(proxy, since, method, streamed):
    out = proxy.curl("-X", "POST", GEMINI + method, "-H", "x-goog-api-key: AIza-test-key",
                     "-H", "content-type: application/json", "-d", json.dumps(GEMINI_BODY))
    assert out.returncode == 0, out.stderr
    assert "usageMetadata" in out.stdout
    row = row_after(proxy, since)
    assert (row["provider"], row["endpoint"], row["model"], row["streamed"]) == (
        "google", "generate", "gemini-2.5-flash", streamed)
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
        1000, 200, 500, 100)
    assert row["cost_nanos"] == FLASH_NANOS


# --- content encodings -----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_encoded_responses_are_priced_the_same(proxy, since, encoding, stream):
    client = proxy.openai_client()
    reply = client.chat.completions.create(
        model="gpt-4o", messages=HI, stream=stream, extra_headers={"x-fake-encoding": encoding})
    text = "".join((c.choices[0].delta.content or "") for c in reply if c.choices) if stream else (
        reply.choices[0].message.content)
    assert text.startswith("Hello from the fake provider")
    row = row_after(proxy, since)
    assert (row["streamed"], row["status"], row["usage_source"], row["cost_nanos"]) == (
        int(stream), "ok", "reported", GPT4O_NANOS)


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_encoded_anthropic_stream_is_priced_the_same(proxy, since, encoding):
    with proxy.anthropic_client().messages.stream(
            model="claude-sonnet-4-5", max_tokens=1024, messages=HI,
            extra_headers={"x-fake-encoding": encoding}) as stream:
        assert "".join(stream.text_stream)
    assert row_after(proxy, since)["cost_nanos"] == SONNET_NANOS


# --- streams cut short -----------------------------------------------------------------------


def test_stream_cut_off_upstream_is_charged_an_estimate_and_releases_its_hold(proxy, since, fake_provider):
    # role chunk + 2 text pieces, then the connection drops: no usage ever arrives.
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        list(proxy.openai_client().chat.completions.create(
            model="gpt-4o", messages=HI, stream=True, extra_headers={"x-fake-cut-after": "3"}))
    row = row_after(proxy, since)
    assert (row["status"], row["usage_source"], row["streamed"]) == ("partial", "estimated", 1)
    # input guessed from the request body (4 bytes a token); output from the two 10-character
    # pieces of text seen: 20 / 4 = 5 tokens
    body = json.loads(fake_provider.requests()[0]["body"])
    assert body["stream_options"] == {"include_usage": True}  # asked for, never received
    assert row["output_tokens"] == 5 and row["input_tokens"] > 0
    assert row["cost_nanos"] == row["input_tokens"] * 2_500 + 5 * 10_000  # $2.50/M in, $10/M out
    assert row["error"]
    assert_released(proxy)


def test_stream_cut_after_its_usage_is_charged_the_reported_usage(proxy, since):
    # role + 5 pieces + finish + usage chunk = 8 events; [DONE] never comes.
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        list(proxy.openai_client().chat.completions.create(
            model="gpt-4o", messages=HI, stream=True, stream_options={"include_usage": True},
            extra_headers={"x-fake-cut-after": "8"}))
    row = row_after(proxy, since)
    # The provider's final usage arrived, so the call is whole (status ok); the cut is noted.
    assert (row["status"], row["usage_source"], row["cost_nanos"]) == ("ok", "reported", GPT4O_NANOS)
    assert "incomplete chunked read" in row["error"]
    assert_released(proxy)


def test_anthropic_stream_cut_off_keeps_the_reported_input(proxy, since):
    # message_start (input and cache counts) + content_block_start + ping + 2 text deltas.
    with pytest.raises((Exception,)):
        with proxy.anthropic_client().messages.stream(
                model="claude-sonnet-4-5", max_tokens=1024, messages=HI,
                extra_headers={"x-fake-cut-after": "5"}) as stream:
            list(stream.text_stream)
    row = row_after(proxy, since)
    assert (row["status"], row["usage_source"]) == ("partial", "estimated")
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == (1000, 200, 100)
    # message_start says output_tokens 1 (a placeholder); two 10-character deltas were seen: 5
    assert row["output_tokens"] == 5
    # 700 × $3/M + 200 × $0.30/M + 100 × $3.75/M + 5 × $15/M
    assert row["cost_nanos"] == 2_100_000 + 60_000 + 375_000 + 75_000
    assert_released(proxy)


def test_non_streamed_body_cut_off_upstream_is_charged_an_estimate(proxy, since):
    with pytest.raises(openai.APIError):
        proxy.openai_client().chat.completions.create(
            model="gpt-4o", messages=HI, extra_headers={"x-fake-cut-after": "40"})
    row = row_after(proxy, since)
    assert (row["status"], row["usage_source"], row["streamed"]) == ("partial", "estimated", 0)
    assert row["cost_nanos"] > 0
    assert_released(proxy)


@pytest.mark.parametrize("method", [":streamGenerateContent?alt=sse", ":streamGenerateContent"])
def test_gemini_stream_cut_off_keeps_the_last_usage_it_reported(proxy, since, method):
    # Two of five chunks arrive, each with usageMetadata; the second says
    # candidatesTokenCount 400 × 2 // 5 = 160 (plus 100 thoughts, 1000 prompt, 200 cached).
    out = proxy.curl("-X", "POST", GEMINI + method, "-H", "x-goog-api-key: AIza-test",
                     "-H", "x-fake-cut-after: 2", "-d", json.dumps(GEMINI_BODY))
    assert out.returncode != 0  # curl saw the body end early
    row = row_after(proxy, since)
    assert (row["status"], row["usage_source"], row["streamed"]) == ("partial", "estimated", 1)
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
        1000, 200, 260, 100)
    # gemini-2.5-flash: 800 × $0.30/M + 200 × $0.03/M + 260 × $2.50/M
    assert row["cost_nanos"] == 240_000 + 6_000 + 650_000
    assert_released(proxy)


def test_upstream_error_is_passed_on_not_charged_and_releases_its_hold(proxy, since, fake_provider):
    client = proxy.openai_client()
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=HI, extra_headers={"x-fake-status": "500"})
    with pytest.raises(openai.RateLimitError) as caught:  # the provider's own 429, not spendgate's
        client.chat.completions.create(model="gpt-4o", messages=HI, stream=True,
                                       extra_headers={"x-fake-status": "429"})
    assert caught.value.response.headers.get("x-should-retry") != "false"
    assert len(fake_provider.requests()) == 2
    rows = proxy.ledger.rows(since, 2)
    assert [(r["status"], r["http_status"], r["cost_nanos"], r["usage_source"]) for r in rows] == [
        ("upstream_error", 500, 0, "none"), ("upstream_error", 429, 0, "none")]
    assert_released(proxy)


def test_a_key_in_the_query_string_never_reaches_the_ledger(proxy, since):
    out = proxy.curl("-X", "POST", GEMINI + ":generateContent?key=AIzaSecret0123456789xyz",
                     "-d", json.dumps(GEMINI_BODY))
    assert out.returncode == 0
    row = row_after(proxy, since)
    assert row["cost_nanos"] == FLASH_NANOS and row["key_masked"] == "AIzaS...9xyz"
    assert "Secret0123456789" not in json.dumps(row)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_client_that_disconnects_mid_stream_is_charged_for_what_was_known(proxy, since, fake_provider, provider):
    if provider == "openai":
        url, body = OPENAI_CHAT, {"model": "gpt-4o", "messages": HI, "stream": True}
        headers = {"authorization": "Bearer sk-test"}
    else:
        url, body = ANTHROPIC_MESSAGES, {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": HI,
                                         "stream": True}
        headers = {"x-api-key": "sk-ant-test"}
    headers["x-fake-first-chunk-then-wait-ms"] = "1500"
    with proxy.httpx_client() as http, http.stream("POST", url, json=body, headers=headers) as r:
        first = next(r.iter_raw())
        assert first.startswith(b"data:") or first.startswith(b"event:")
    # the client has hung up while the fake is still waiting to send the rest
    row = row_after(proxy, since)
    assert (row["status"], row["usage_source"], row["streamed"]) == ("partial", "estimated", 1)
    assert row["cost_nanos"] > 0 and row["input_tokens"] > 0
    if provider == "anthropic":  # message_start was seen: its input counts are kept
        assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == (1000, 200, 100)
    assert_released(proxy)


def test_provider_is_told_by_the_host_the_client_asked_for(proxy, since, fake_provider):
    # Every host is map-remoted to the same fake on 127.0.0.1; the ledger still names the
    # provider each client meant to call.
    proxy.openai_client().embeddings.create(model="text-embedding-3-small", input="hi")
    proxy.azure_openai_client().embeddings.create(model="text-embedding-3-small", input="hi")
    proxy.anthropic_client().messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HI)
    proxy.curl("-X", "POST", GEMINI + ":generateContent", "-d", json.dumps(GEMINI_BODY))
    assert {r["headers"]["host"] for r in fake_provider.requests()} == {f"127.0.0.1:{fake_provider.port}"}
    rows = proxy.ledger.rows(since, 4)
    assert [r["provider"] for r in rows] == ["openai", "azure", "anthropic", "google"]
