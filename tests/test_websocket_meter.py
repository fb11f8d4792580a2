"""The WebSocket adapter's branches, in-process: mitmproxy's `taddons` and `tflow`
(`twebsocketflow`), a real ledger (SQLite in a temporary directory), no proxy process.

The handshake (identified, refused with the HTTP answer), turns admitted and settled from
their terminal events, lanes, refusals on an open socket answered with the provider's
error event, a socket that closes mid-turn, Realtime's audio and transcription bills and
Gemini Live's turns. Messages spendgate sends on are captured instead of injected.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from mitmproxy import http, websocket
from mitmproxy.test import taddons, tflow
from wsproto.frame_protocol import Opcode

from addon.loader import ConfigLoader
from addon.websocket import SOCKET_KEY, WebSocketMeter
from ledger import Store
from metering.meter import Meter
from metering.runtime import ProcessState

RESPONSES_URL = "https://api.openai.com/v1/responses"
REALTIME_URL = "https://api.openai.com/v1/realtime?model=gpt-realtime"
LIVE_URL = ("https://generativelanguage.googleapis.com/ws/"
            "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=AIza-test-key-000001")
KEY = "Bearer sk-real-key-0000000001"


class Harness:
    def __init__(self, tmp_path: Path, config: dict):
        config.setdefault("general_settings", {})["database_url"] = f"sqlite:///{tmp_path / 'ledger.db'}"
        self.path = tmp_path / "budget.yaml"
        self.path.write_text(json.dumps(config))
        self.state = ProcessState()
        self.loader = ConfigLoader(self.state)
        self.core = Meter(self.state)
        self.sent: list[tuple[bool, bytes]] = []  # (to_client, content) spendgate put on the socket
        self.ws = WebSocketMeter(self.state, self.core, inject=self._inject)

    def _inject(self, flow, to_client, content, is_text):
        self.sent.append((to_client, content))
        flow.websocket.messages.append(websocket.WebSocketMessage(Opcode.TEXT, not to_client, content, injected=True))
        self.ws.websocket_message(flow)

    @property
    def rt(self):
        return self.state.runtime

    async def rows(self) -> list[dict]:
        await self.ws.done()
        await self.core.done()
        return await self.rt.ledger.read(Store.calls)

    async def open(self, url: str, **headers: str) -> http.HTTPFlow:
        flow = tflow.twebsocketflow()
        flow.websocket.messages.clear()
        flow.response = None
        flow.request = http.Request.make("GET", url, b"", {"upgrade": "websocket", "connection": "upgrade", **headers})
        await self.ws.request(flow)
        if flow.response is None:
            flow.response = http.Response.make(101)
        return flow

    async def client(self, flow: http.HTTPFlow, event: dict) -> websocket.WebSocketMessage:
        msg = websocket.WebSocketMessage(Opcode.TEXT, True, json.dumps(event).encode())
        flow.websocket.messages.append(msg)
        self.ws.websocket_message(flow)
        await self.ws.done()  # admitted (and sent on) before the test goes on
        return msg

    def server(self, flow: http.HTTPFlow, event: dict) -> None:
        flow.websocket.messages.append(websocket.WebSocketMessage(Opcode.TEXT, False, json.dumps(event).encode()))
        self.ws.websocket_message(flow)

    def close(self, flow: http.HTTPFlow, by_client: bool = True, code: int = 1000) -> None:
        flow.websocket.closed_by_client, flow.websocket.close_code = by_client, code
        flow.live = False
        self.ws.websocket_end(flow)


def scenario(tmp_path: Path, config: dict, body) -> None:
    async def main():
        h = Harness(tmp_path, config)
        with taddons.context(h.loader, h.ws) as tctx:
            tctx.configure(h.loader, budget_config=str(h.path), budget_ledger_spool=str(tmp_path / "spool"))
            try:
                return await body(h)
            finally:
                await h.core.done()
                h.loader.done()

    asyncio.run(main())


def completed(rid: str, inp: int, out: int, cached: int = 0, **extra) -> dict:
    return {"type": "response.completed", **extra, "response": {
        "id": rid, "model": "gpt-4o", "status": "completed",
        "usage": {"input_tokens": inp, "output_tokens": out, "input_tokens_details": {"cached_tokens": cached}}}}


def test_a_responses_turn_is_one_row_priced_from_its_terminal_event(tmp_path):
    async def body(h):
        flow = await h.open(RESPONSES_URL, authorization=KEY)
        assert flow.response.status_code == 101 and SOCKET_KEY in flow.metadata
        create = await h.client(flow, {"type": "response.create", "model": "gpt-4o", "input": "hi",
                                       "max_output_tokens": 500})
        assert create.dropped and h.sent == [(False, create.content)]  # sent on unchanged, after admission
        sock = flow.metadata[SOCKET_KEY]
        [turn] = sock.session.open_turns()
        assert turn.meta.reservation.amount_nanos > 0
        h.server(flow, {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-4o"}})
        h.server(flow, {"type": "response.output_text.delta", "response_id": "resp_1", "delta": "hello"})
        h.server(flow, completed("resp_1", 1000, 500))
        [row] = await h.rows()
        # gpt-4o: 1000 x $2.50/M + 500 x $10/M
        assert (row["status"], row["cost_nanos"], row["transport"], row["endpoint"]) == (
            "ok", 7_500_000, "websocket", "responses")
        assert sock.session.open_turns() == []

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


def test_two_lanes_in_flight_settle_each_from_its_own_events(tmp_path):
    async def body(h):
        flow = await h.open(RESPONSES_URL, authorization=KEY)
        await h.client(flow, {"type": "response.create", "model": "gpt-4o", "input": "a", "stream_id": "A"})
        await h.client(flow, {"type": "response.create", "model": "gpt-4o", "input": "b", "stream_id": "B"})
        h.server(flow, {"type": "response.created", "stream_id": "B", "response": {"id": "rb"}})
        h.server(flow, {"type": "response.created", "stream_id": "A", "response": {"id": "ra"}})
        h.server(flow, completed("ra", 100, 10, stream_id="A"))
        h.server(flow, completed("rb", 2000, 20, stream_id="B"))
        rows = await h.rows()
        assert sorted(r["input_tokens"] for r in rows) == [100, 2000]
        assert all(r["status"] == "ok" for r in rows)

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


def test_a_refused_turn_is_not_forwarded_and_gets_the_providers_error_event(tmp_path):
    async def body(h):
        flow = await h.open(RESPONSES_URL, authorization=KEY)
        create = await h.client(flow, {"type": "response.create", "model": "gpt-4o", "input": "hi",
                                       "max_output_tokens": 100_000})
        assert create.dropped
        [(to_client, content)] = h.sent
        event = json.loads(content)
        assert to_client and event["type"] == "error" and event["status"] == 429
        assert event["error"]["code"] == event["error"]["type"] == "budget_exceeded"
        assert "budget exceeded" in event["error"]["message"]
        assert flow.metadata[SOCKET_KEY].session.open_turns() == []
        [row] = await h.rows()
        assert (row["status"], row["transport"]) == ("blocked", "websocket")

    scenario(tmp_path, {"litellm_settings": {"max_budget": 0.01}}, body)


def test_a_handshake_over_budget_is_refused_with_the_http_answer(tmp_path):
    async def body(h):
        for method in ("GET", "get"):  # mitmproxy forwards a method as sent: `get` opens a socket too
            flow = tflow.twebsocketflow()
            flow.response = None
            flow.request = http.Request.make(method, RESPONSES_URL, b"", {"upgrade": "websocket", "authorization": KEY})
            await h.ws.request(flow)
            assert flow.response.status_code == 429, method
            assert json.loads(flow.response.content)["error"]["type"] == "budget_exceeded"
            assert SOCKET_KEY not in flow.metadata

    scenario(tmp_path, {"litellm_settings": {"max_budget": 0.0}}, body)


def test_a_handshake_to_a_providers_host_is_metered_whatever_its_host_header_says(tmp_path):
    async def body(h):
        flow = tflow.twebsocketflow()
        flow.response = None
        flow.request = http.Request.make("GET", REALTIME_URL, b"", {"upgrade": "websocket", "authorization": KEY})
        flow.request.headers["host"] = "localhost:8080"
        assert (flow.request.host, flow.request.pretty_host) == ("api.openai.com", "localhost")
        await h.ws.request(flow)
        assert SOCKET_KEY in flow.metadata

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


def test_a_socket_closed_mid_turn_settles_it_partial_at_once(tmp_path):
    async def body(h):
        flow = await h.open(RESPONSES_URL, authorization=KEY)
        await h.client(flow, {"type": "response.create", "model": "gpt-4o", "input": "hi", "max_output_tokens": 50})
        h.server(flow, {"type": "response.created", "response": {"id": "r1"}})
        h.server(flow, {"type": "response.output_text.delta", "response_id": "r1", "delta": "x" * 40})
        [turn] = flow.metadata[SOCKET_KEY].session.open_turns()
        h.close(flow, by_client=True, code=1006)
        assert turn.meta.done  # settled at once: its hold becomes the row's cost
        [row] = await h.rows()
        assert row["status"] == "partial" and row["output_tokens"] == 10
        assert "client closed" in row["error"]

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


def test_a_warm_up_holds_nothing(tmp_path):
    async def body(h):
        flow = await h.open(RESPONSES_URL, authorization=KEY)
        await h.client(flow, {"type": "response.create", "model": "gpt-4o", "input": "hi", "generate": False})
        [turn] = flow.metadata[SOCKET_KEY].session.open_turns()
        assert turn.meta.reservation.amount_nanos == 0
        h.server(flow, {"type": "response.created", "response": {"id": "w1"}})
        h.server(flow, completed("w1", 0, 0))
        [row] = await h.rows()
        assert (row["status"], row["cost_nanos"]) == ("ok", 0)

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


REALTIME_USAGE = {
    "input_tokens": 1000, "output_tokens": 500,
    "input_token_details": {"text_tokens": 300, "audio_tokens": 700, "image_tokens": 0, "cached_tokens": 200,
                            "cached_tokens_details": {"text_tokens": 100, "audio_tokens": 100}},
    "output_token_details": {"text_tokens": 100, "audio_tokens": 400},
}
# gpt-realtime, by hand: uncached text 200 x $4/M + cached text 100 x $0.40/M + uncached audio
# 600 x $32/M + cached audio 100 x $0.40/M + output text 100 x $16/M + output audio 400 x $64/M
REALTIME_BILL = 200 * 4_000 + 100 * 400 + 600 * 32_000 + 100 * 400 + 100 * 16_000 + 400 * 64_000  # nanos


def test_a_realtime_response_is_priced_by_modality_and_bounded_by_the_session(tmp_path):
    async def body(h):
        assert REALTIME_BILL == 47_280_000
        flow = await h.open(REALTIME_URL, authorization=KEY)
        await h.client(flow, {"type": "session.update", "session": {
            "max_response_output_tokens": 200, "input_audio_transcription": {"model": "gpt-4o-transcribe"}}})
        await h.client(flow, {"type": "response.create", "event_id": "e1", "response": {}})
        [turn] = flow.metadata[SOCKET_KEY].session.open_turns()
        assert turn.request.max_output_tokens == 200
        # the hold prices every token as audio: 200 out x $64/M plus the input bound x $32/M
        assert turn.meta.reservation.amount_nanos >= 200 * 64_000
        h.server(flow, {"type": "response.created", "response": {"id": "rt1"}})
        h.server(flow, {"type": "response.output_audio.delta", "response_id": "rt1", "delta": "AAAA"})
        h.server(flow, {"type": "response.done", "response": {"id": "rt1", "status": "completed",
                                                               "usage": REALTIME_USAGE}})
        h.server(flow, {"type": "conversation.item.input_audio_transcription.completed", "item_id": "i1",
                        "transcript": "hello", "usage": {"type": "tokens", "input_tokens": 50, "output_tokens": 5,
                                                         "input_token_details": {"audio_tokens": 50}}})
        rows = {r["endpoint"]: r for r in await h.rows()}
        assert rows["realtime"]["cost_nanos"] == REALTIME_BILL
        assert (rows["realtime"]["model"], rows["realtime"]["transport"]) == ("gpt-realtime", "websocket")
        # gpt-4o-transcribe: 50 audio in x $6/M + 5 out x $10/M
        assert (rows["transcription"]["model"], rows["transcription"]["cost_nanos"]) == (
            "gpt-4o-transcribe", 50 * 6_000 + 5 * 10_000)

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


def test_a_realtime_turn_without_a_bound_reserves_the_configured_default(tmp_path):
    async def body(h):
        flow = await h.open(REALTIME_URL, authorization=KEY)
        await h.client(flow, {"type": "response.create", "response": {"max_output_tokens": "inf"}})
        [turn] = flow.metadata[SOCKET_KEY].session.open_turns()
        assert turn.request.max_output_tokens == 321

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0},
                        "general_settings": {"realtime_max_output_tokens": 321}}, body)


def test_a_gemini_live_turn_settles_at_turn_complete_with_its_usage(tmp_path):
    async def body(h):
        flow = await h.open(LIVE_URL)
        await h.client(flow, {"setup": {"model": "models/gemini-2.5-flash", "generationConfig": {"maxOutputTokens": 64}}})
        await h.client(flow, {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "hi"}]}],
                                                "turnComplete": True}})
        [turn] = flow.metadata[SOCKET_KEY].session.open_turns()
        assert turn.request.model == "gemini-2.5-flash" and turn.request.max_output_tokens == 64
        h.server(flow, {"serverContent": {"modelTurn": {"parts": [{"text": "hello"}]}}})
        h.server(flow, {"serverContent": {"turnComplete": True},
                        "usageMetadata": {"promptTokenCount": 1000, "responseTokenCount": 100,
                                          "totalTokenCount": 1100}})
        [row] = await h.rows()
        assert (row["status"], row["input_tokens"], row["output_tokens"], row["provider"]) == (
            "ok", 1000, 100, "google")
        # gemini-2.5-flash: 1000 x $0.30/M + 100 x $2.50/M
        assert row["cost_nanos"] == 1000 * 300 + 100 * 2500

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


def test_a_live_turn_whose_usage_follows_turn_complete_waits_for_it(tmp_path):
    async def body(h):
        flow = await h.open(LIVE_URL)
        await h.client(flow, {"setup": {"model": "models/gemini-2.5-flash"}})
        await h.client(flow, {"realtimeInput": {"text": "hi"}})
        await h.client(flow, {"realtimeInput": {"text": "more of the same turn"}})
        sock = flow.metadata[SOCKET_KEY]
        [turn] = sock.session.open_turns()
        h.server(flow, {"serverContent": {"turnComplete": True}})
        assert not turn.meta.done  # its usage is still to come
        h.server(flow, {"usageMetadata": {"promptTokenCount": 10, "responseTokenCount": 4,
                                          "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}]}})
        assert turn.meta.done and sock.session.open_turns() == []
        [row] = await h.rows()
        assert (row["status"], row["input_tokens"], row["output_tokens"], row["endpoint"]) == (
            "ok", 10, 4, "realtime")

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


def test_a_continuation_is_bounded_by_the_context_it_carries(tmp_path):
    async def body(h):
        flow = await h.open(RESPONSES_URL, authorization=KEY)
        await h.client(flow, {"type": "response.create", "model": "gpt-4o", "input": "hi", "max_output_tokens": 10})
        h.server(flow, {"type": "response.created", "response": {"id": "r1"}})
        h.server(flow, completed("r1", 3000, 10))
        await h.client(flow, {"type": "response.create", "model": "gpt-4o", "input": "and?",
                              "previous_response_id": "r1", "max_output_tokens": 10})
        await h.client(flow, {"type": "response.create", "model": "gpt-4o", "input": "and?", "stream_id": "x",
                              "previous_response_id": "resp_from_elsewhere", "max_output_tokens": 10})
        known, unknown = flow.metadata[SOCKET_KEY].session.open_turns()
        assert 3010 < known.request.input_bytes < 3200  # its body and what r1 read and wrote
        # a context this socket never saw: the model's whole window (gpt-4o: 128k) is held
        assert unknown.meta.reservation.amount_nanos >= 128_000 * 2_500

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


VERTEX_LIVE_URL = ("https://us-central1-aiplatform.googleapis.com//ws/"
                   "google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent")


def test_a_vertex_live_turn_on_google_genais_double_slash_path_reads_candidates_as_its_output(tmp_path):
    async def body(h):
        flow = await h.open(VERTEX_LIVE_URL, authorization="Bearer ya29.test-token-0001")
        sock = flow.metadata[SOCKET_KEY]
        assert sock.session is not None  # `//ws/…` (google-genai's) is the metered endpoint, not unmetered
        await h.client(flow, {"setup": {"model": "projects/p/locations/l/publishers/google/models/gemini-2.5-flash"}})
        await h.client(flow, {"client_content": {"turns": [{"role": "user", "parts": [{"text": "hi"}]}],
                                                 "turnComplete": True}})
        h.server(flow, {"serverContent": {"turnComplete": True},
                        "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 100,
                                          "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 100}]}})
        [row] = await h.rows()
        assert (row["provider"], row["model"], row["input_tokens"], row["output_tokens"]) == (
            "vertex", "gemini-2.5-flash", 1000, 100)
        assert row["cost_nanos"] == 1000 * 300 + 100 * 2500

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


def test_a_refused_live_turn_gets_googles_error_with_the_code_google_genai_reads(tmp_path):
    async def body(h):
        flow = await h.open(LIVE_URL)
        await h.client(flow, {"setup": {"model": "models/gemini-2.5-flash"}})
        create = await h.client(flow, {"realtimeInput": {"text": "hi"}})
        assert create.dropped
        [(to_client, content)] = h.sent
        event = json.loads(content)
        assert to_client and event["code"] == 429  # google-genai raises ClientError(429) from it
        assert (event["error"]["code"], event["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")
        assert "budget exceeded" in event["error"]["message"]
        assert flow.metadata[SOCKET_KEY].session.open_turns() == []
        [row] = await h.rows()
        assert (row["status"], row["transport"]) == ("blocked", "websocket")

    scenario(tmp_path, {"litellm_settings": {"max_budget": 0.0001}}, body)


# --- Realtime responses started by the server's voice detection ----------------------------

APPEND = {"type": "input_audio_buffer.append", "audio": "AAAA" * 100}
SERVER_VAD = {"type": "session.update", "session": {"turn_detection": {"type": "server_vad"}}}


def test_audio_under_server_vad_holds_a_turn_ahead_that_the_servers_response_settles(tmp_path):
    async def body(h):
        flow = await h.open(REALTIME_URL, authorization=KEY)
        await h.client(flow, SERVER_VAD)
        first = await h.client(flow, APPEND)
        second = await h.client(flow, APPEND)
        sock = flow.metadata[SOCKET_KEY]
        standby = sock.standby
        assert standby is not None and standby.meta.reservation.amount_nanos > 0  # held before the server hears it
        assert first.dropped and (False, first.content) in h.sent  # sent on once admitted
        assert not second.dropped  # one hold at a time: the next appends pass as they are
        assert sock.session.open_turns() == []  # not in flight: nothing started it yet
        h.server(flow, {"type": "input_audio_buffer.speech_stopped", "item_id": "i1"})
        h.server(flow, {"type": "response.created", "response": {"id": "rt1"}})  # no response.create asked
        assert sock.standby is None and sock.session.open_turns() == [standby]
        h.server(flow, {"type": "response.done", "response": {"id": "rt1", "status": "completed",
                                                               "usage": REALTIME_USAGE}})
        [row] = await h.rows()
        assert (row["status"], row["cost_nanos"], row["endpoint"]) == ("ok", REALTIME_BILL, "realtime")
        third = await h.client(flow, APPEND)  # the next audio holds the next turn
        assert third.dropped and sock.standby is not None and sock.standby is not standby

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


def test_audio_refused_under_server_vad_is_dropped_with_one_error_event_and_the_socket_stays_usable(tmp_path):
    async def body(h):
        flow = await h.open(REALTIME_URL, authorization=KEY)
        session = {"type": "session.update", "session": {"max_response_output_tokens": 100_000,
                                                         "turn_detection": {"type": "semantic_vad"}}}
        await h.client(flow, session)
        first = await h.client(flow, APPEND)
        second = await h.client(flow, APPEND)
        assert first.dropped and second.dropped  # neither reaches the server: no response can start
        [(to_client, content)] = h.sent  # one error event, not one per append
        event = json.loads(content)
        assert to_client and (event["type"], event["status"], event["error"]["code"]) == (
            "error", 429, "budget_exceeded")
        assert flow.metadata[SOCKET_KEY].standby is None
        clear = await h.client(flow, {"type": "input_audio_buffer.clear"})
        assert not clear.dropped  # other events pass, and the next audio asks again
        await h.client(flow, APPEND)
        assert [json.loads(c)["type"] for _, c in h.sent] == ["error", "error"]
        rows = await h.rows()
        assert [(r["status"], r["transport"]) for r in rows] == [("blocked", "websocket")] * 2

    scenario(tmp_path, {"litellm_settings": {"max_budget": 0.01}}, body)


def test_a_standby_hold_nothing_used_is_given_back_without_a_row(tmp_path):
    async def body(h):
        flow = await h.open(REALTIME_URL, authorization=KEY)
        await h.client(flow, APPEND)  # turn detection is the API's default: server_vad
        standby = flow.metadata[SOCKET_KEY].standby
        assert standby is not None and not standby.meta.done
        await asyncio.sleep(0.3)  # > realtime_vad_hold_seconds
        assert flow.metadata[SOCKET_KEY].standby is None and standby.meta.done
        assert await h.rows() == []  # nothing went upstream: nothing to record

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0},
                        "general_settings": {"realtime_vad_hold_seconds": 0.05}}, body)


def test_audio_without_turn_detection_holds_nothing(tmp_path):
    async def body(h):
        flow = await h.open(REALTIME_URL, authorization=KEY)
        await h.client(flow, {"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}})
        append = await h.client(flow, APPEND)
        assert not append.dropped and flow.metadata[SOCKET_KEY].standby is None
        await h.client(flow, {"type": "session.update", "session": {
            "turn_detection": {"type": "server_vad", "create_response": False}}})
        append = await h.client(flow, APPEND)
        assert not append.dropped and flow.metadata[SOCKET_KEY].standby is None

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


def test_a_socket_closed_while_standing_by_gives_the_hold_back(tmp_path):
    async def body(h):
        flow = await h.open(REALTIME_URL, authorization=KEY)
        await h.client(flow, APPEND)
        standby = flow.metadata[SOCKET_KEY].standby
        h.close(flow)
        assert standby.meta.done and flow.metadata[SOCKET_KEY].standby is None
        assert await h.rows() == []

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}}, body)


def test_live_audio_refused_is_answered_once_and_the_stream_after_it_dropped(tmp_path):
    async def body(h):
        flow = await h.open(LIVE_URL)
        await h.client(flow, {"setup": {"model": "models/gemini-2.5-flash"}})
        chunk = {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": "AAAA" * 100}}}
        first = await h.client(flow, chunk)
        second = await h.client(flow, chunk)
        assert first.dropped and second.dropped
        assert [json.loads(c)["code"] for _, c in h.sent] == [429]  # one refusal for the stream
        text = await h.client(flow, {"clientContent": {"turns": [{"parts": [{"text": "hi"}]}], "turnComplete": True}})
        assert text.dropped and [json.loads(c)["code"] for _, c in h.sent] == [429, 429]  # asked again
        rows = await h.rows()
        assert [r["status"] for r in rows] == ["blocked", "blocked"]

    scenario(tmp_path, {"litellm_settings": {"max_budget": 0.0001}}, body)


def test_a_request_that_is_no_upgrade_costs_no_coroutine():
    """Every call over HTTP passes this hook: it answers None at once, nothing to await."""
    state = ProcessState()
    ws = WebSocketMeter(state, Meter(state))
    flow = tflow.tflow()
    assert ws.request(flow) is None
