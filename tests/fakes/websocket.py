"""A fake provider for WebSocket APIs, on loopback: the Responses API's WebSocket mode
(`/v1/responses`), the Realtime API (`/v1/realtime`, Azure's `/openai/realtime` and
`/openai/v1/realtime`) and Gemini Live (`/ws/…BidiGenerateContent`, the Gemini API's and
Vertex AI's), served by `websockets` in a thread of the test process. The proxy maps the
providers' hosts to it (tests/proxy.py).

Responses: every `response.create` gets `response.created`, a text delta and
`response.completed`, echoing its `stream_id`, with the usage its `metadata` asks for
(`input_tokens`, `output_tokens`; default 1000 and 500). `metadata.hang`: the turn stops
after its first delta (a client leaving mid-turn); `metadata.after`: the turn completes
only once the turn on that lane has (two lanes in flight at once).

Realtime: `session.created` on connect, `session.updated` for `session.update`, and for
each `response.create`: `response.created`, an audio delta and `response.done` with
`REALTIME_USAGE`; `input_audio_buffer.commit` gets a transcription's `completed` event.
With server-side turn detection (the API's default, until a `session.update` turns it off
or sets `create_response: false`), each `input_audio_buffer.append` is heard as a whole
utterance: `speech_started`, `speech_stopped`, then a response as above that no client
`response.create` asked for.

Gemini Live: `setupComplete` after the client's `setup`; each `clientContent` with
`turnComplete` (or `realtimeInput` with text; either spelling, `client_content` too) gets a text part, then `turnComplete` with
`LIVE_USAGE` as its `usageMetadata` — on Vertex AI's path with the output named
`candidatesTokenCount` / `candidatesTokensDetails`, as Vertex reports it (the Gemini API
names it `responseTokenCount`). Its frames are binary, as Google's are.

`handshakes` keeps each upgrade's path and headers; `received` each client message.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from websockets.asyncio.server import serve

__all__ = ["LIVE_USAGE", "REALTIME_USAGE", "TRANSCRIPTION_USAGE", "FakeSocketProvider"]

REALTIME_USAGE = {
    "total_tokens": 1500, "input_tokens": 1000, "output_tokens": 500,
    "input_token_details": {"text_tokens": 300, "audio_tokens": 700, "image_tokens": 0, "cached_tokens": 200,
                            "cached_tokens_details": {"text_tokens": 100, "audio_tokens": 100, "image_tokens": 0}},
    "output_token_details": {"text_tokens": 100, "audio_tokens": 400},
}
LIVE_USAGE = {
    "promptTokenCount": 1000, "responseTokenCount": 500, "totalTokenCount": 1500,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 400}, {"modality": "AUDIO", "tokenCount": 600}],
    "responseTokensDetails": [{"modality": "TEXT", "tokenCount": 100}, {"modality": "AUDIO", "tokenCount": 400}],
}
TRANSCRIPTION_USAGE = {"type": "tokens", "input_tokens": 50, "output_tokens": 5,
                       "input_token_details": {"audio_tokens": 50, "text_tokens": 0}}


class FakeSocketProvider:
    def __init__(self) -> None:
        self.handshakes: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeSocketProvider:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set_result, None)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(self._handle, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    async def _handle(self, ws) -> None:
        path = ws.request.path
        self.handshakes.append({"path": path, "headers": {k.lower(): v for k, v in ws.request.headers.raw_items()}})
        if path.startswith(("/v1/realtime", "/openai/realtime", "/openai/v1/realtime")):
            await self._realtime(ws)
        elif path.lstrip("/").startswith("ws/") and "BidiGenerateContent" in path:
            await self._live(ws, vertex="aiplatform" in path)
        else:
            await self._responses(ws)

    # -- Responses API WebSocket mode

    async def _responses(self, ws) -> None:
        done: dict[str, asyncio.Event] = {}
        tasks = set()
        n = 0
        try:
            async for raw in ws:
                event = json.loads(raw)
                self.received.append(event)
                if event.get("type") != "response.create":
                    continue
                n += 1
                lane = event.get("stream_id") or ""
                done.setdefault(lane, asyncio.Event())
                task = asyncio.create_task(self._turn(ws, event, f"resp_{n}", lane, done))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except Exception:
            pass

    async def _turn(self, ws, event: dict, rid: str, lane: str, done: dict[str, asyncio.Event]) -> None:
        meta = event.get("metadata") or {}
        echo = {"stream_id": lane} if lane else {}
        model = event.get("model", "gpt-4o")
        await ws.send(json.dumps({"type": "response.created", **echo,
                                  "response": {"id": rid, "model": model, "status": "in_progress"}}))
        await ws.send(json.dumps({"type": "response.output_text.delta", **echo, "response_id": rid,
                                  "item_id": "i", "output_index": 0, "content_index": 0, "delta": "Hello"}))
        if meta.get("hang"):
            return
        after = meta.get("after")
        if after is not None:
            await done.setdefault(after, asyncio.Event()).wait()
        usage = {"input_tokens": int(meta.get("input_tokens", 1000)), "output_tokens": int(meta.get("output_tokens", 500)),
                 "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 0}
        await ws.send(json.dumps({"type": "response.completed", **echo, "response": {
            "id": rid, "object": "response", "model": model, "status": "completed", "output": [], "usage": usage}}))
        done.setdefault(lane, asyncio.Event()).set()

    # -- Realtime API

    async def _realtime(self, ws) -> None:
        n = 0
        vad = True
        await ws.send(json.dumps({"type": "session.created", "event_id": "s0",
                                  "session": {"id": "sess_1", "object": "realtime.session", "model": "gpt-realtime"}}))
        try:
            async for raw in ws:
                event = json.loads(raw)
                self.received.append(event)
                kind = event.get("type")
                if kind == "session.update":
                    session = event.get("session") or {}
                    for holder in (session, (session.get("audio") or {}).get("input") or {}):
                        if "turn_detection" in holder:
                            td = holder["turn_detection"]
                            vad = isinstance(td, dict) and td.get("create_response") is not False
                    await ws.send(json.dumps({"type": "session.updated", "event_id": "s1",
                                              "session": event.get("session", {})}))
                elif kind == "input_audio_buffer.commit":
                    await ws.send(json.dumps({
                        "type": "conversation.item.input_audio_transcription.completed", "event_id": "t1",
                        "item_id": "item_1", "content_index": 0, "transcript": "hello there",
                        "usage": TRANSCRIPTION_USAGE}))
                elif kind == "input_audio_buffer.append" and vad:
                    await ws.send(json.dumps({"type": "input_audio_buffer.speech_started", "event_id": "v1",
                                              "audio_start_ms": 0, "item_id": "item_v"}))
                    await ws.send(json.dumps({"type": "input_audio_buffer.speech_stopped", "event_id": "v2",
                                              "audio_end_ms": 500, "item_id": "item_v"}))
                    n += 1
                    await self._response(ws, n)
                elif kind == "response.create":
                    n += 1
                    await self._response(ws, n)
        except Exception:
            pass

    async def _response(self, ws, n: int) -> None:
        rid = f"rt_{n}"
        await ws.send(json.dumps({"type": "response.created", "event_id": f"e{n}a",
                                  "response": {"id": rid, "object": "realtime.response",
                                               "status": "in_progress", "output": []}}))
        await ws.send(json.dumps({"type": "response.output_audio.delta", "event_id": f"e{n}b",
                                  "response_id": rid, "item_id": "i", "output_index": 0,
                                  "content_index": 0, "delta": "AAAA"}))
        await ws.send(json.dumps({"type": "response.done", "event_id": f"e{n}c", "response": {
            "id": rid, "object": "realtime.response", "status": "completed", "output": [],
            "usage": REALTIME_USAGE}}))

    # -- Gemini Live

    async def _live(self, ws, vertex: bool) -> None:
        usage = dict(LIVE_USAGE)
        if vertex:  # Vertex AI names the output as generateContent does
            usage["candidatesTokenCount"] = usage.pop("responseTokenCount")
            usage["candidatesTokensDetails"] = usage.pop("responseTokensDetails")
        try:
            async for raw in ws:
                event = json.loads(raw)
                self.received.append(event)
                if "setup" in event:
                    await ws.send(json.dumps({"setupComplete": {}}).encode())
                    continue
                # proto JSON: either spelling of a field name (google-genai sends `client_content`)
                content = event.get("clientContent") or event.get("client_content") or {}
                realtime = event.get("realtimeInput") or event.get("realtime_input") or {}
                if not (content.get("turnComplete") or content.get("turn_complete") or realtime.get("text")):
                    continue
                await ws.send(json.dumps({"serverContent": {"modelTurn": {"parts": [{"text": "Hello"}]}}}).encode())
                await ws.send(json.dumps({"serverContent": {"generationComplete": True}}).encode())
                await ws.send(json.dumps({"serverContent": {"turnComplete": True},
                                          "usageMetadata": usage}).encode())
        except Exception:
            pass
