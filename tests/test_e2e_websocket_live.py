"""End to end: Gemini Live (the Gemini API and Vertex AI) with google-genai's own live client
(`client.aio.live.connect()`), and Azure OpenAI Realtime (`/openai/realtime?deployment=…`
and the v1 API's `/openai/v1/realtime?model=…`) with the openai SDK's realtime client,
through a real mitmdump, against the WebSocket fake provider (tests/fakes/websocket.py).

google-genai's live client opens its socket with `websockets`, which takes the proxy from
`HTTPS_PROXY` (its `proxy=True` default) and google-genai's SSL context, built from
`SSL_CERT_FILE`: the two variables the README tells a user to set are all it needs, and
most tests here set nothing else. Without them, `HttpOptions(async_client_args={"proxy": …,
"ssl": …})` works too: google-genai passes every key `websockets.connect` takes on to it.

Bills by hand, from the fake's usage and genai-prices' rates:
    a Live turn, gemini-live-2.5-flash ($0.50/M text in, $3/M audio in, $2/M text out,
      $12/M audio out): 400 text x $0.50/M + 600 audio x $3/M + 100 text out x $2/M
      + 400 audio out x $12/M = 200 + 1800 + 200 + 4800 = 7_000_000 nanos
      (on Vertex AI the same: its `candidatesTokenCount` is the output);
    an Azure realtime response, gpt-realtime (Azure's prices are OpenAI's): as in
      tests/test_e2e_websocket.py, 47_280_000 nanos.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from google.oauth2.credentials import Credentials

from e2e_helpers import module_proxy, virtual_key
from fakes.websocket import LIVE_USAGE

MASTER = "sk-master-websocket-live"
REAL_GEMINI_KEY = "AIza-real-upstream-gemini-0001"
REAL_VERTEX_KEY = "AQ.real-vertex-express-key-0001"
REAL_AZURE_KEY = "azure-real-upstream-key-000001"
LIVE_MODEL = "gemini-live-2.5-flash"
LIVE_NANOS = 400 * 500 + 600 * 3_000 + 100 * 2_000 + 400 * 12_000
REALTIME_NANOS = 47_280_000
AZURE = "https://fake-resource.openai.azure.com"
LIVE_CONFIG = {"response_modalities": ["TEXT"], "max_output_tokens": 500}

proxy = module_proxy({
    "litellm_settings": {"max_budget": 100.0},
    "general_settings": {"master_key": MASTER},
    "providers": {"gemini": {"api_key": REAL_GEMINI_KEY}, "vertex": {"api_key": REAL_VERTEX_KEY},
                  "azure": {"api_key": REAL_AZURE_KEY}},
}, upstream="socket_fake")


@pytest.fixture
def through_proxy(proxy, monkeypatch):
    """The environment a user sets (README): HTTPS_PROXY and the proxy's CA."""
    for name, value in proxy.env({}).items():
        monkeypatch.setenv(name, value)


def live(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def turn(session, text: str = "hi") -> list[types.LiveServerMessage]:
    """One turn: the client's text, then the server's messages up to `turnComplete`."""
    await session.send_client_content(turns=types.Content(role="user", parts=[types.Part(text=text)]),
                                      turn_complete=True)
    return [message async for message in session.receive()]


def vertex_client(**kwargs) -> genai.Client:
    return genai.Client(vertexai=True, **kwargs)


# --- Gemini Live ----------------------------------------------------------------------------


def test_sdk_gemini_live_turns_are_metered_with_the_real_key_upstream(proxy, socket_fake, through_proxy):
    assert LIVE_NANOS == 7_000_000
    assert LIVE_USAGE["promptTokenCount"] == 400 + 600 and LIVE_USAGE["responseTokenCount"] == 100 + 400
    key = virtual_key(proxy, max_budget=10.0)
    since = proxy.ledger.mark()

    async def main():
        client = genai.Client(api_key=key)
        async with client.aio.live.connect(model=LIVE_MODEL, config=LIVE_CONFIG) as session:
            for _ in range(2):
                messages = await turn(session)
                assert "".join(m.text or "" for m in messages) == "Hello"
                assert messages[-1].usage_metadata.response_token_count == 500

    live(main())
    rows = proxy.ledger.rows(since, 2)
    assert [(r["provider"], r["endpoint"], r["model"], r["status"], r["transport"], r["cost_nanos"])
            for r in rows] == [("google", "realtime", LIVE_MODEL, "ok", "websocket", LIVE_NANOS)] * 2
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (1000, 500)
    assert json.loads(rows[0]["units"]) == {"input_audio_tokens": 600, "output_audio_tokens": 400}
    assert all(r["client"].startswith("google-genai/") for r in rows)  # from the handshake's User-Agent
    handshake = socket_fake.handshakes[-1]
    # google-genai joins its base URL's slash and `/ws/…`: spendgate meters `//ws/…` as Google serves it
    assert handshake["path"].startswith("//ws/google.ai.generativelanguage.")
    assert handshake["path"].endswith(".GenerativeService.BidiGenerateContent")
    assert handshake["headers"]["x-goog-api-key"] == REAL_GEMINI_KEY  # the virtual key never left
    assert socket_fake.received[-3]["setup"]["model"] == f"models/{LIVE_MODEL}"
    assert proxy.ledger.settled()["reserved_nanos"] == 0


def test_a_live_turn_over_budget_raises_the_sdks_client_error_and_the_session_serves_the_next(
        proxy, socket_fake, through_proxy):
    # One turn ($0.007) fits $0.01; the next one's hold (500 out + the input so far, as audio) does not.
    key = virtual_key(proxy, max_budget=0.01)
    since = proxy.ledger.mark()

    async def main():
        client = genai.Client(api_key=key)
        async with client.aio.live.connect(model=LIVE_MODEL, config=LIVE_CONFIG) as session:
            await turn(session)
            forwarded = len(socket_fake.received)
            with pytest.raises(genai_errors.ClientError) as caught:
                await turn(session)
            assert len(socket_fake.received) == forwarded  # the refused turn never reached the provider
            r = proxy.admin_client(MASTER).post("/key/update", json={"key": key, "max_budget": 1.0})
            assert r.status_code == 200, r.text
            messages = await turn(session)  # the same session, after the raise
            assert messages[-1].server_content.turn_complete
            return caught.value

    error = live(main())
    assert (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
    assert "budget exceeded" in error.message
    rows = proxy.ledger.rows(since, 3)
    assert [(r["status"], r["transport"]) for r in rows] == [
        ("ok", "websocket"), ("blocked", "websocket"), ("ok", "websocket")]
    assert rows[1]["error"] == "budget_exceeded"
    assert proxy.ledger.settled()["reserved_nanos"] == 0


def test_sdk_gemini_live_with_an_ephemeral_token_is_metered_under_that_token(proxy, socket_fake, through_proxy):
    token = "auth_tokens/ephemeral-live-token-0001"
    since = proxy.ledger.mark()

    async def main():
        client = genai.Client(api_key=token, http_options={"api_version": "v1alpha"})
        async with client.aio.live.connect(model=LIVE_MODEL, config=LIVE_CONFIG) as session:
            await turn(session)

    with pytest.warns(genai_errors.ExperimentalWarning):
        live(main())
    row = proxy.ledger.row(since)
    assert (row["provider"], row["model"], row["status"], row["cost_nanos"]) == (
        "google", LIVE_MODEL, "ok", LIVE_NANOS)
    assert row["key_masked"].startswith("auth_") and token not in json.dumps(row)  # tracked by its fingerprint
    handshake = socket_fake.handshakes[-1]
    assert handshake["path"].endswith(".v1alpha.GenerativeService.BidiGenerateContentConstrained")
    assert handshake["headers"]["authorization"] == f"Token {token}"  # not a virtual key: sent as it came


def test_sdk_vertex_live_with_an_oauth_token_reads_candidates_as_the_output(proxy, socket_fake, through_proxy):
    since = proxy.ledger.mark()

    async def main():
        client = vertex_client(project="fake-project", location="us-central1",
                               credentials=Credentials(token="ya29.a0-live-test-token-0001"))
        async with client.aio.live.connect(model=LIVE_MODEL, config=LIVE_CONFIG) as session:
            messages = await turn(session)
            assert messages[-1].usage_metadata.response_token_count == 500  # the SDK maps it too

    live(main())
    row = proxy.ledger.row(since)
    assert (row["provider"], row["model"], row["status"], row["transport"]) == (
        "vertex", LIVE_MODEL, "ok", "websocket")
    assert (row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (1000, 500, LIVE_NANOS)
    handshake = socket_fake.handshakes[-1]
    assert handshake["path"] == "//ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
    assert handshake["headers"]["authorization"] == "Bearer ya29.a0-live-test-token-0001"
    assert socket_fake.received[-2]["setup"]["model"] == (
        f"projects/fake-project/locations/us-central1/publishers/google/models/{LIVE_MODEL}")


def test_sdk_vertex_live_express_mode_swaps_a_virtual_key_for_the_real_one(proxy, socket_fake, monkeypatch):
    key = virtual_key(proxy, max_budget=10.0)
    since = proxy.ledger.mark()
    for name in ("HTTPS_PROXY", "https_proxy", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    # no environment: the proxy and its CA as arguments, which google-genai passes on to websockets
    options = types.HttpOptions(async_client_args={"proxy": proxy.url, "ssl": proxy.ssl_context()})

    async def main():
        client = vertex_client(api_key=key, http_options=options)
        async with client.aio.live.connect(model=LIVE_MODEL, config=LIVE_CONFIG) as session:
            await turn(session)

    live(main())
    row = proxy.ledger.row(since)
    assert (row["provider"], row["status"], row["cost_nanos"]) == ("vertex", "ok", LIVE_NANOS)
    assert socket_fake.handshakes[-1]["headers"]["x-goog-api-key"] == REAL_VERTEX_KEY


# --- Azure OpenAI Realtime ------------------------------------------------------------------


def options(proxy) -> dict:
    return {"proxy": proxy.url, "ssl": proxy.ssl_context()}


def until(conn, *types_: str) -> list:
    seen = []
    for event in conn:
        seen.append(event)
        if event.type in types_:
            return seen
    raise AssertionError(f"socket closed before {types_}: {seen}")


def realtime_turn(conn) -> None:
    until(conn, "session.created")
    conn.send({"type": "session.update", "session": {"type": "realtime", "max_output_tokens": 800}})
    until(conn, "session.updated")
    conn.send({"type": "response.create"})
    assert until(conn, "response.done", "error")[-1].type == "response.done"


def test_sdk_azure_realtime_deployment_is_billed_by_modality_with_the_real_key_upstream(proxy, socket_fake):
    key = virtual_key(proxy, max_budget=10.0)
    since = proxy.ledger.mark()
    client = proxy.azure_openai_client(api_key=key, azure_endpoint=AZURE, api_version="2025-04-01-preview")
    with client.realtime.connect(model="gpt-realtime", websocket_connection_options=options(proxy)) as conn:
        realtime_turn(conn)
    row = proxy.ledger.row(since)
    assert (row["provider"], row["endpoint"], row["model"], row["status"], row["transport"], row["cost_nanos"]) == (
        "azure", "realtime", "gpt-realtime", "ok", "websocket", REALTIME_NANOS)
    assert json.loads(row["units"]) == {"input_audio_tokens": 700, "cache_audio_read_tokens": 100,
                                        "output_audio_tokens": 400}
    handshake = socket_fake.handshakes[-1]
    assert handshake["path"] == "/openai/realtime?api-version=2025-04-01-preview&deployment=gpt-realtime"
    assert handshake["headers"]["api-key"] == REAL_AZURE_KEY
    assert proxy.ledger.settled()["reserved_nanos"] == 0


def test_sdk_azure_realtime_on_the_v1_api_is_billed_the_same(proxy, socket_fake):
    key = virtual_key(proxy, max_budget=10.0)
    since = proxy.ledger.mark()
    client = proxy.openai_client(api_key=key, base_url=f"{AZURE}/openai/v1")
    with client.realtime.connect(model="gpt-realtime", websocket_connection_options=options(proxy)) as conn:
        realtime_turn(conn)
    row = proxy.ledger.row(since)
    assert (row["provider"], row["model"], row["status"], row["cost_nanos"]) == (
        "azure", "gpt-realtime", "ok", REALTIME_NANOS)
    handshake = socket_fake.handshakes[-1]
    assert handshake["path"] == "/openai/v1/realtime?model=gpt-realtime"
    # the openai client sends the virtual key as a Bearer token: it goes, Azure's api-key comes
    assert handshake["headers"]["api-key"] == REAL_AZURE_KEY and "authorization" not in handshake["headers"]
