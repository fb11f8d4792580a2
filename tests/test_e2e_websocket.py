"""End to end: WebSocket transports through a real mitmdump, with the openai SDK's own
WebSocket clients (`client.responses.connect()`, `client.realtime.connect()`) and a raw
`websockets` client, against the WebSocket fake provider (tests/fakes/websocket.py).

Bills by hand, from the fake's usage and genai-prices' rates:
    a Responses turn, gpt-4o ($2.50/M in, $10/M out), 1000 in + 500 out = 7_500_000 nanos;
    a realtime response, gpt-realtime: uncached text 200 x $4/M + cached text 100 x $0.40/M
      + uncached audio 600 x $32/M + cached audio 100 x $0.40/M + text out 100 x $16/M
      + audio out 400 x $64/M = 47_280_000 nanos;
    its transcription, gpt-4o-transcribe: 50 audio in x $6/M + 5 out x $10/M = 350_000 nanos.
"""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from e2e_helpers import module_proxy, virtual_key

MASTER = "sk-master-websocket"
REAL_KEY = "sk-real-upstream-key-000001"
TURN_NANOS = 7_500_000
REALTIME_NANOS = 47_280_000
TRANSCRIPTION_NANOS = 350_000

proxy = module_proxy({
    "litellm_settings": {"max_budget": 100.0},
    "general_settings": {"master_key": MASTER},
    "providers": {"openai": {"api_key": REAL_KEY}},
}, upstream="socket_fake")


def options(proxy) -> dict:
    return {"proxy": proxy.url, "ssl": proxy.ssl_context()}


def raw_socket(proxy, key: str, path: str = "/v1/responses"):
    return connect(f"wss://api.openai.com{path}", additional_headers={"Authorization": f"Bearer {key}"},
                   open_timeout=20, **options(proxy))


def until(conn, *types: str) -> list:
    """Events from `conn` (SDK connection) up to and including the first of `types`."""
    seen = []
    for event in conn:
        seen.append(event)
        if event.type in types:
            return seen
    raise AssertionError(f"socket closed before {types}: {seen}")


def test_sdk_responses_turns_are_metered_with_the_real_key_upstream(proxy, socket_fake):
    key = virtual_key(proxy, max_budget=10.0)
    since = proxy.ledger.mark()
    client = proxy.openai_client(api_key=key)
    with client.responses.connect(websocket_connection_options=options(proxy)) as conn:
        for _ in range(2):
            conn.send({"type": "response.create", "model": "gpt-4o", "input": "hi", "max_output_tokens": 500})
            assert until(conn, "response.completed", "error")[-1].type == "response.completed"
    rows = proxy.ledger.rows(since, 2)
    assert [(r["status"], r["cost_nanos"], r["transport"], r["endpoint"]) for r in rows] == [
        ("ok", TURN_NANOS, "websocket", "responses")] * 2
    assert rows[0]["key_alias"] is None and rows[0]["key_masked"].startswith("sk-")
    assert all(r["client"].startswith("openai-python/") for r in rows)  # from the handshake's User-Agent
    assert socket_fake.handshakes[-1]["headers"]["authorization"] == f"Bearer {REAL_KEY}"  # swapped in the handshake
    assert proxy.ledger.settled()["reserved_nanos"] == 0  # nothing held between turns


def test_two_lanes_in_flight_on_one_socket_are_two_rows(proxy):
    since = proxy.ledger.mark()
    with raw_socket(proxy, "sk-own-key-lanes-0000001") as ws:
        # lane A completes only after lane B: both are in flight at once
        ws.send(json.dumps({"type": "response.create", "model": "gpt-4o", "input": "a", "stream_id": "A",
                            "max_output_tokens": 500, "metadata": {"after": "B", "input_tokens": "100"}}))
        ws.send(json.dumps({"type": "response.create", "model": "gpt-4o", "input": "b", "stream_id": "B",
                            "max_output_tokens": 500, "metadata": {"input_tokens": "2000"}}))
        done = []
        while len(done) < 2:
            event = json.loads(ws.recv(timeout=20))
            if event["type"] == "response.completed":
                done.append(event["stream_id"])
    assert done == ["B", "A"]
    rows = proxy.ledger.rows(since, 2)
    assert sorted((r["input_tokens"], r["cost_nanos"]) for r in rows) == [
        (100, 100 * 2_500 + 500 * 10_000), (2000, 2000 * 2_500 + 500 * 10_000)]


def test_a_turn_over_budget_gets_an_error_event_and_the_socket_serves_the_next_after_a_raise(proxy, socket_fake):
    key = virtual_key(proxy, max_budget=0.01)  # one turn ($0.0075) fits; a second's hold does not
    since = proxy.ledger.mark()
    client = proxy.openai_client(api_key=key)
    create = {"type": "response.create", "model": "gpt-4o", "input": "hi", "max_output_tokens": 500}
    with client.responses.connect(websocket_connection_options=options(proxy)) as conn:
        conn.send(create)
        assert until(conn, "response.completed", "error")[-1].type == "response.completed"
        forwarded = len(socket_fake.received)
        conn.send(create)
        error = until(conn, "response.completed", "error")[-1]
        assert error.type == "error"
        body = error.model_dump()
        assert body["status"] == 429 and body["error"]["code"] == "budget_exceeded"
        assert "budget exceeded" in body["error"]["message"]
        assert len(socket_fake.received) == forwarded  # the refused turn never reached the provider
        r = proxy.admin_client(MASTER).post("/key/update", json={"key": key, "max_budget": 1.0})
        assert r.status_code == 200, r.text
        conn.send(create)
        assert until(conn, "response.completed", "error")[-1].type == "response.completed"
    rows = proxy.ledger.rows(since, 3)
    assert [(r["status"], r["transport"]) for r in rows] == [
        ("ok", "websocket"), ("blocked", "websocket"), ("ok", "websocket")]
    assert rows[1]["error"] == "budget_exceeded"


def test_a_handshake_over_budget_is_refused_with_429_and_never_reaches_the_provider(proxy, socket_fake):
    key = virtual_key(proxy, max_budget=0.0, budget_duration="1d")
    before = len(socket_fake.handshakes)
    with pytest.raises(InvalidStatus) as caught:
        raw_socket(proxy, key)
    response = caught.value.response
    assert response.status_code == 429
    assert json.loads(response.body)["error"]["type"] == "budget_exceeded"
    assert response.headers["retry-after"]
    assert len(socket_fake.handshakes) == before


def test_a_blocked_key_is_refused_at_the_handshake_with_the_http_401(proxy, socket_fake):
    key = virtual_key(proxy, max_budget=1.0)
    r = proxy.admin_client(MASTER).post("/key/update", json={"key": key, "blocked": True})
    assert r.status_code == 200, r.text
    with pytest.raises(InvalidStatus) as caught:
        raw_socket(proxy, key)
    assert caught.value.response.status_code == 401


def test_a_client_leaving_mid_turn_leaves_a_partial_row_and_nothing_held(proxy):
    since = proxy.ledger.mark()
    with raw_socket(proxy, "sk-own-key-leaves-000001") as ws:
        ws.send(json.dumps({"type": "response.create", "model": "gpt-4o", "input": "hi", "max_output_tokens": 500,
                            "metadata": {"hang": "1"}}))
        while json.loads(ws.recv(timeout=20))["type"] != "response.output_text.delta":
            pass
    row = proxy.ledger.row(since)
    assert (row["status"], row["transport"]) == ("partial", "websocket")
    assert "client closed" in row["error"]
    assert row["cost_nanos"] > 0
    assert proxy.ledger.settled()["reserved_nanos"] == 0


def test_sdk_realtime_audio_and_transcription_are_billed_at_their_own_prices(proxy):
    since = proxy.ledger.mark()
    client = proxy.openai_client(api_key="sk-own-key-realtime-00001")
    with client.realtime.connect(model="gpt-realtime", websocket_connection_options=options(proxy)) as conn:
        until(conn, "session.created")
        conn.send({"type": "session.update", "session": {
            "type": "realtime", "max_output_tokens": 800,
            "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}, "turn_detection": None}}}})
        until(conn, "session.updated")
        conn.send({"type": "input_audio_buffer.commit"})
        until(conn, "conversation.item.input_audio_transcription.completed")
        conn.send({"type": "response.create"})
        until(conn, "response.done")
    rows = {r["endpoint"]: r for r in proxy.ledger.rows(since, 2)}
    realtime, transcription = rows["realtime"], rows["transcription"]
    assert (realtime["model"], realtime["cost_nanos"], realtime["transport"]) == (
        "gpt-realtime", REALTIME_NANOS, "websocket")
    assert json.loads(realtime["units"]) == {"input_audio_tokens": 700, "cache_audio_read_tokens": 100,
                                             "output_audio_tokens": 400}
    assert (transcription["model"], transcription["cost_nanos"]) == ("gpt-4o-transcribe", TRANSCRIPTION_NANOS)
    assert proxy.ledger.settled()["reserved_nanos"] == 0


def test_sdk_realtime_responses_started_by_server_vad_are_reserved_ahead_and_refused_once_spent(proxy, socket_fake):
    # A turn's bound: 800 out + the input so far, all as audio (over $0.05); one response
    # ($0.04728) fits $0.10, the next one's hold does not.
    key = virtual_key(proxy, max_budget=0.1)
    since = proxy.ledger.mark()
    client = proxy.openai_client(api_key=key)
    append = {"type": "input_audio_buffer.append", "audio": "AAAA" * 200}
    appends = lambda: sum(e.get("type") == "input_audio_buffer.append" for e in socket_fake.received)  # noqa: E731
    with client.realtime.connect(model="gpt-realtime", websocket_connection_options=options(proxy)) as conn:
        until(conn, "session.created")
        conn.send({"type": "session.update", "session": {
            "type": "realtime", "max_output_tokens": 800,
            "audio": {"input": {"turn_detection": {"type": "server_vad", "create_response": True}}}}})
        until(conn, "session.updated")
        conn.send(append)  # the server hears an utterance and answers it by itself
        assert until(conn, "response.done", "error")[-1].type == "response.done"
        heard = appends()
        conn.send(append)
        conn.send(append)
        error = until(conn, "response.done", "error")[-1]
        body = error.model_dump()
        assert (body["type"], body["status"], body["error"]["code"]) == ("error", 429, "budget_exceeded")
        r = proxy.admin_client(MASTER).post("/key/update", json={"key": key, "max_budget": 1.0})
        assert r.status_code == 200, r.text
        conn.send({"type": "input_audio_buffer.clear"})  # any other event: the next audio asks again
        conn.send(append)
        assert until(conn, "response.done", "error")[-1].type == "response.done"  # one error event only
        assert appends() == heard + 1  # the refused audio never reached the provider
    rows = proxy.ledger.rows(since, 3)
    assert [(r["status"], r["endpoint"], r["cost_nanos"] if r["status"] == "ok" else None) for r in rows] == [
        ("ok", "realtime", REALTIME_NANOS), ("blocked", "realtime", None), ("ok", "realtime", REALTIME_NANOS)]
    assert proxy.ledger.settled()["reserved_nanos"] == 0
