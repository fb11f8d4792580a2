"""A fake LLM provider for end-to-end tests: OpenAI, Azure OpenAI, Anthropic and Gemini shapes.

Plain HTTP/1.1 on loopback (stdlib ``ThreadingHTTPServer``, one thread per connection,
keep-alive, chunked streaming). It never talks to the internet.

Library use::

    fake = start_fake_provider()          # background thread, port 0 = free port
    fake.url, fake.port, fake.requests(), fake.reset(), fake.stop()

Script use (``make demo``)::

    python tests/fake_provider.py --port 9999    # prints "listening on http://127.0.0.1:9999"

Endpoints (POST, JSON body; the response's model echoes the request's model, from the body
or, for Gemini and Azure without a body model, from the URL)::

    /v1/chat/completions            OpenAI chat, "stream": true -> SSE chat.completion.chunk
    /v1/responses                   OpenAI Responses, stream -> response.created ... response.completed
    /v1/completions                 OpenAI legacy completions (stream too)
    /v1/embeddings                  OpenAI embeddings (float or base64)
    /openai/deployments/{dep}/{chat/completions|completions|embeddings|responses}?api-version=...
                                    Azure OpenAI, same shapes
    /v1/messages                    Anthropic messages (stream -> message_start ... message_stop)
    /v1beta/models/{m}:generateContent         Gemini (also /v1/models/...)
    /v1beta/models/{m}:streamGenerateContent   ?alt=sse -> SSE "data: {...}\\r\\n\\r\\n";
                                               without  -> a JSON array streamed in pieces
    anything else                   404 JSON (OpenAI error shape)

Default usage (deterministic, so tests can hand-compute prices):

    OpenAI chat / legacy completions:
        prompt_tokens 1000 (prompt_tokens_details.cached_tokens 200),
        completion_tokens 500 (completion_tokens_details.reasoning_tokens 100), total 1500
    OpenAI Responses:
        input_tokens 1000 (input_tokens_details.cached_tokens 200),
        output_tokens 500 (output_tokens_details.reasoning_tokens 100), total 1500
    OpenAI embeddings:  prompt_tokens 1000, total_tokens 1000
    Anthropic: input_tokens 700 (excludes cache), cache_read_input_tokens 200,
        cache_creation_input_tokens 100 (cache_creation.ephemeral_5m_input_tokens 100),
        output_tokens 500.  Stream: message_start.usage carries the input/cache counts and
        output_tokens 1; the single message_delta carries the cumulative output_tokens 500.
    Gemini: promptTokenCount 1000 (includes cachedContentTokenCount 200),
        candidatesTokenCount 400, thoughtsTokenCount 100, totalTokenCount 1500.
        Streams carry usageMetadata on every chunk; candidatesTokenCount grows and the
        last chunk carries exactly the final numbers.

Per-request controls (request headers):

    x-fake-usage: JSON   replaces the usage object verbatim, in the provider's own shape
                         (OpenAI chat "usage", Responses "usage", Anthropic "usage",
                         Gemini "usageMetadata"); fields you omit are absent.
    x-fake-delay-ms: N   pause N ms between stream events
    x-fake-first-chunk-then-wait-ms: N
                         send the first stream event, wait N ms, then send the rest
    x-fake-encoding: gzip|br|zstd
                         Content-Encoding of the body; streams are compressed incrementally
                         and flushed after every event
    x-fake-cut-after: N  send N stream events then drop the connection (no terminating
                         chunk, FIN). On a non-streamed reply: send N bytes of the body, drop.
    x-fake-cut-mode: rst make the drop a TCP reset instead of a FIN
    x-fake-status: 500   error reply with this status, in the provider's error shape
    x-fake-chunks: N     number of text pieces in the reply (default 5)

Control API (not recorded):

    GET  /_fake/requests  -> JSON list of {method, path, query, headers, body, time}
                             (path includes the query string, headers have lower-case names,
                             body is text)
    POST /_fake/reset     -> clears it
    GET  /_fake/health    -> {"ok": true}
"""

from __future__ import annotations

import argparse
import base64
import copy
import http.server
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
import uuid
import zlib
from typing import Any, Iterable

try:  # optional encoders
    import brotli  # type: ignore
except ImportError:  # pragma: no cover
    brotli = None
try:
    import zstandard  # type: ignore
except ImportError:  # pragma: no cover
    zstandard = None

# ---------------------------------------------------------------------------- defaults

DEFAULT_TEXT = "Hello from the fake provider, deterministic reply."
DEFAULT_CHUNKS = 5

OPENAI_USAGE: dict[str, Any] = {
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 100,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
OPENAI_RESPONSES_USAGE: dict[str, Any] = {
    "input_tokens": 1000,
    "input_tokens_details": {"cached_tokens": 200},
    "output_tokens": 500,
    "output_tokens_details": {"reasoning_tokens": 100},
    "total_tokens": 1500,
}
OPENAI_EMBEDDINGS_USAGE: dict[str, Any] = {"prompt_tokens": 1000, "total_tokens": 1000}
ANTHROPIC_USAGE: dict[str, Any] = {
    "input_tokens": 700,
    "cache_creation_input_tokens": 100,
    "cache_read_input_tokens": 200,
    "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 500,
    "service_tier": "standard",
}
GEMINI_USAGE: dict[str, Any] = {
    "promptTokenCount": 1000,
    "cachedContentTokenCount": 200,
    "candidatesTokenCount": 400,
    "thoughtsTokenCount": 100,
    "totalTokenCount": 1500,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1000}],
    "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 200}],
}

CONTROL_HEADERS = (
    "x-fake-usage",
    "x-fake-delay-ms",
    "x-fake-first-chunk-then-wait-ms",
    "x-fake-encoding",
    "x-fake-cut-after",
    "x-fake-cut-mode",
    "x-fake-status",
    "x-fake-chunks",
)


class _CutConnection(Exception):
    """Raised to abandon a response mid-body and drop the connection."""


def _split_text(text: str, n: int) -> list[str]:
    """Split text into n non-empty pieces (fewer if the text is short)."""
    n = max(1, min(n, len(text)))
    size, rem = divmod(len(text), n)
    out, pos = [], 0
    for i in range(n):
        step = size + (1 if i < rem else 0)
        out.append(text[pos : pos + step])
        pos += step
    return out


def _j(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class _Encoder:
    """Incremental content encoder that can flush after every piece."""

    def __init__(self, name: str | None):
        self.name = (name or "").strip().lower() or None
        if self.name in (None, "identity"):
            self.name = None
            self._c = None
        elif self.name == "gzip":
            self._c = zlib.compressobj(6, zlib.DEFLATED, 31)
        elif self.name == "deflate":
            self._c = zlib.compressobj(6, zlib.DEFLATED, 15)
        elif self.name == "br":
            if brotli is None:
                raise ValueError("brotli not installed")
            self._c = brotli.Compressor()
        elif self.name == "zstd":
            if zstandard is None:
                raise ValueError("zstandard not installed")
            self._c = zstandard.ZstdCompressor().compressobj()
        else:
            raise ValueError(f"unknown encoding {name!r}")

    def chunk(self, data: bytes) -> bytes:
        """Compress data and flush so the peer can decode it right away."""
        if self._c is None:
            return data
        if self.name in ("gzip", "deflate"):
            return self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)
        if self.name == "br":
            return self._c.process(data) + self._c.flush()
        return self._c.compress(data) + self._c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        if self._c is None:
            return b""
        if self.name in ("gzip", "deflate"):
            return self._c.flush(zlib.Z_FINISH)
        if self.name == "br":
            return self._c.finish()
        return self._c.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)

    def whole(self, data: bytes) -> bytes:
        return self.chunk(data) + self.finish() if self._c is not None else data


# ---------------------------------------------------------------------------- the server


class FakeProviderServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512
    block_on_close = False

    def __init__(self, addr: tuple[str, int], *, quiet: bool = True):
        super().__init__(addr, _Handler)
        self.quiet = quiet
        self.lock = threading.Lock()
        self.recorded: list[dict[str, Any]] = []
        self.counter = 0

    def record(self, entry: dict[str, Any]) -> int:
        with self.lock:
            self.recorded.append(entry)
            self.counter += 1
            return self.counter

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.recorded)

    def clear(self) -> None:
        with self.lock:
            self.recorded.clear()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeProviderServer
    server_version = "fake-provider/1.0"
    sys_version = ""

    # -- plumbing

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if not self.server.quiet:
            super().log_message(format, *args)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except _CutConnection:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until blank line
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _header_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in self.headers.items():
            k = k.lower()
            out[k] = f"{out[k]}, {v}" if k in out else v
        return out

    def _hint(self, name: str, default: int = 0) -> int:
        raw = self.headers.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return int(float(raw))
        except ValueError:
            return default

    # -- raw senders

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send_body(status, json.dumps(obj).encode(), "application/json", headers)

    def _send_body(
        self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        enc = _Encoder(self.headers.get("x-fake-encoding"))
        payload = enc.whole(body)
        cut = self.headers.get("x-fake-cut-after")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if enc.name:
            self.send_header("Content-Encoding", enc.name)
            self.send_header("Vary", "Accept-Encoding")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if cut is not None and self.command != "HEAD":
            self.wfile.write(payload[: max(0, self._hint("x-fake-cut-after"))])
            self._drop()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _drop(self) -> None:
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            if self.headers.get("x-fake-cut-mode", "").lower() == "rst":
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _CutConnection()

    def _stream(
        self, events: Iterable[bytes], ctype: str, headers: dict[str, str] | None = None,
        trailer: bytes = b"",
    ) -> None:
        """Send events as a chunked body, one HTTP chunk per event, honouring the
        delay / first-chunk-wait / cut / encoding controls. `trailer` is sent after the
        last event and is not counted as an event (e.g. the closing "]" of a JSON array)."""
        enc = _Encoder(self.headers.get("x-fake-encoding"))
        delay = self._hint("x-fake-delay-ms") / 1000.0
        first_wait = self._hint("x-fake-first-chunk-then-wait-ms") / 1000.0
        cut_raw = self.headers.get("x-fake-cut-after")
        cut = self._hint("x-fake-cut-after") if cut_raw is not None else None

        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-cache")
        if enc.name:
            self.send_header("Content-Encoding", enc.name)
            self.send_header("Vary", "Accept-Encoding")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

        def write_chunk(data: bytes) -> None:
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        sent = 0
        for ev in events:
            if cut is not None and sent >= cut:
                self._drop()
            if sent > 0:
                if sent == 1 and first_wait:
                    time.sleep(first_wait)
                elif delay:
                    time.sleep(delay)
            write_chunk(enc.chunk(ev))
            sent += 1
        if cut is not None and sent >= cut:
            # cut after exactly as many events as there were: still drop before the end
            self._drop()
        if trailer:
            write_chunk(enc.chunk(trailer))
        write_chunk(enc.finish())
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- dispatch

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        raw = self._read_body()
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))

        if path.startswith("/_fake/"):
            return self._control(path)

        n = self.server.record(
            {
                "method": self.command,
                "path": self.path,
                "query": query,
                "headers": self._header_dict(),
                "body": raw.decode("utf-8", errors="replace"),
                "time": time.time(),
            }
        )
        self.req_id = f"{n:06d}{uuid.uuid4().hex[:18]}"
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                body = {}
        except ValueError:
            body = {}
        self.body = body
        self.query = query

        try:
            route = self._route(path)
            if route is None:
                return self._send_json(
                    404,
                    {
                        "error": {
                            "message": f"Invalid URL ({self.command} {path})",
                            "type": "invalid_request_error",
                            "param": None,
                            "code": None,
                        }
                    },
                )
            provider, handler, model = route
            status = self._hint("x-fake-status", 0)
            if status >= 400:
                return self._error(provider, status)
            usage_override = None
            if self.headers.get("x-fake-usage"):
                try:
                    usage_override = json.loads(self.headers["x-fake-usage"])
                except ValueError:
                    return self._send_json(
                        400, {"error": {"message": "fake: x-fake-usage is not JSON"}}
                    )
            self.usage_override = usage_override
            handler(model)
        except ValueError as e:  # e.g. unknown x-fake-encoding
            self._send_json(400, {"error": {"message": f"fake: {e}", "type": "fake_error"}})

    def _control(self, path: str) -> None:
        if path == "/_fake/requests" and self.command == "GET":
            return self._send_json(200, self.server.snapshot())
        if path == "/_fake/reset" and self.command == "POST":
            self.server.clear()
            return self._send_json(200, {"ok": True})
        if path == "/_fake/health":
            return self._send_json(200, {"ok": True})
        return self._send_json(404, {"error": {"message": f"unknown control {path}"}})

    def _route(self, path: str):
        """Return (provider, handler, model) or None."""
        if self.command != "POST":
            return None
        body_model = self.body.get("model") if isinstance(self.body.get("model"), str) else None
        openai_routes = {
            "chat/completions": self._openai_chat,
            "completions": self._openai_completions,
            "embeddings": self._openai_embeddings,
            "responses": self._openai_responses,
        }
        if path.startswith("/v1/") and path[4:] in openai_routes:
            return "openai", openai_routes[path[4:]], body_model or "unknown-model"
        if path.startswith("/openai/deployments/"):
            rest = path[len("/openai/deployments/") :]
            dep, _, op = rest.partition("/")
            if dep and op in openai_routes:
                return "openai", openai_routes[op], body_model or urllib.parse.unquote(dep)
        if path.startswith("/openai/v1/") and path[len("/openai/v1/") :] in openai_routes:
            return "openai", openai_routes[path[len("/openai/v1/") :]], body_model or "unknown-model"
        if path == "/v1/messages":
            return "anthropic", self._anthropic_messages, body_model or "unknown-model"
        for prefix in ("/v1beta/models/", "/v1/models/", "/v1alpha/models/"):
            if path.startswith(prefix) and ":" in path:
                model, _, method = path[len(prefix) :].rpartition(":")
                model = urllib.parse.unquote(model)
                if method == "generateContent":
                    return "gemini", self._gemini_generate, model
                if method == "streamGenerateContent":
                    return "gemini", self._gemini_stream, model
        return None

    # -- common bits

    def _usage(self, default: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(self.usage_override if self.usage_override is not None else default)

    def _pieces(self) -> list[str]:
        return _split_text(DEFAULT_TEXT, self._hint("x-fake-chunks", DEFAULT_CHUNKS) or 1)

    def _openai_headers(self) -> dict[str, str]:
        return {
            "x-request-id": f"req_{self.req_id}",
            "openai-processing-ms": "12",
            "openai-organization": "fake-org",
            "openai-version": "2020-10-01",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999000",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": "2ms",
        }

    def _anthropic_headers(self) -> dict[str, str]:
        return {
            "request-id": f"req_{self.req_id}",
            "anthropic-organization-id": "00000000-0000-0000-0000-000000000000",
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": "3999",
            "anthropic-ratelimit-input-tokens-limit": "400000",
            "anthropic-ratelimit-input-tokens-remaining": "399000",
            "anthropic-ratelimit-output-tokens-limit": "80000",
            "anthropic-ratelimit-output-tokens-remaining": "79500",
        }

    def _gemini_headers(self) -> dict[str, str]:
        return {"x-goog-request-id": self.req_id, "Vary": "Origin, X-Origin, Referer",
                "Server-Timing": "gfet4t7; dur=12"}

    def _error(self, provider: str, status: int) -> None:
        msg = f"fake provider error (status {status})"
        if provider == "anthropic":
            etype = {400: "invalid_request_error", 401: "authentication_error",
                     403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
                     529: "overloaded_error"}.get(status, "api_error")
            body = {"type": "error", "error": {"type": etype, "message": msg},
                    "request_id": f"req_{self.req_id}"}
            headers = self._anthropic_headers()
        elif provider == "gemini":
            gstatus = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                       429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}.get(status, "INTERNAL")
            body = {"error": {"code": status, "message": msg, "status": gstatus}}
            headers = self._gemini_headers()
        else:
            etype = {429: "rate_limit_exceeded", 401: "invalid_request_error",
                     400: "invalid_request_error"}.get(status, "server_error")
            body = {"error": {"message": msg, "type": etype, "param": None, "code": None}}
            headers = self._openai_headers()
        if status == 429:
            headers["retry-after"] = "1"
        self._send_json(status, body, headers)

    # -- OpenAI

    def _openai_chat(self, model: str) -> None:
        usage = self._usage(OPENAI_USAGE)
        cid = f"chatcmpl-fake{self.req_id}"
        created = int(time.time())
        text = DEFAULT_TEXT
        if not self.body.get("stream"):
            return self._send_json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text,
                                        "refusal": None, "annotations": []},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                    "service_tier": "default",
                    "system_fingerprint": "fp_fake",
                },
                self._openai_headers(),
            )
        include_usage = bool((self.body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict, finish: str | None, choices: bool = True) -> bytes:
            obj: dict[str, Any] = {
                "id": cid, "object": "chat.completion.chunk", "created": created,
                "model": model, "service_tier": "default", "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}] if choices else [],
            }
            if include_usage:
                obj["usage"] = None
            return f"data: {_j(obj)}\n\n".encode()

        def events():
            yield chunk({"role": "assistant", "content": "", "refusal": None}, None)
            for piece in self._pieces():
                yield chunk({"content": piece}, None)
            yield chunk({}, "stop")
            if include_usage:
                obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                       "model": model, "service_tier": "default",
                       "system_fingerprint": "fp_fake", "choices": [], "usage": usage}
                yield f"data: {_j(obj)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        self._stream(events(), "text/event-stream; charset=utf-8", self._openai_headers())

    def _openai_completions(self, model: str) -> None:
        default = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
                   "prompt_tokens_details": {"cached_tokens": 200},
                   "completion_tokens_details": {"reasoning_tokens": 100}}
        usage = self._usage(default)
        cid = f"cmpl-fake{self.req_id}"
        created = int(time.time())
        if not self.body.get("stream"):
            return self._send_json(
                200,
                {"id": cid, "object": "text_completion", "created": created, "model": model,
                 "choices": [{"text": DEFAULT_TEXT, "index": 0, "logprobs": None,
                              "finish_reason": "stop"}],
                 "usage": usage, "system_fingerprint": "fp_fake"},
                self._openai_headers(),
            )
        include_usage = bool((self.body.get("stream_options") or {}).get("include_usage"))

        def obj(choices: list, **extra) -> bytes:
            o = {"id": cid, "object": "text_completion", "created": created, "model": model,
                 "choices": choices, "system_fingerprint": "fp_fake", **extra}
            if include_usage and "usage" not in o:
                o["usage"] = None
            return f"data: {_j(o)}\n\n".encode()

        def events():
            pieces = self._pieces()
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                yield obj([{"text": piece, "index": 0, "logprobs": None,
                            "finish_reason": "stop" if last else None}])
            if include_usage:
                yield obj([], usage=usage)
            yield b"data: [DONE]\n\n"

        self._stream(events(), "text/event-stream; charset=utf-8", self._openai_headers())

    def _openai_embeddings(self, model: str) -> None:
        inp = self.body.get("input", "")
        n = len(inp) if isinstance(inp, list) and inp and not isinstance(inp[0], int) else 1
        dims = int(self.body.get("dimensions") or 8)
        b64 = self.body.get("encoding_format") == "base64"
        data = []
        for i in range(n):
            vec = [round(((i + 1) * (j + 1) % 17) / 17.0 - 0.5, 6) for j in range(dims)]
            emb: Any = (base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
                        if b64 else vec)
            data.append({"object": "embedding", "index": i, "embedding": emb})
        self._send_json(
            200,
            {"object": "list", "data": data, "model": model,
             "usage": self._usage(OPENAI_EMBEDDINGS_USAGE)},
            self._openai_headers(),
        )

    def _openai_responses(self, model: str) -> None:
        usage = self._usage(OPENAI_RESPONSES_USAGE)
        rid = f"resp_fake{self.req_id}"
        mid = f"msg_fake{self.req_id}"
        created = int(time.time())
        text = DEFAULT_TEXT

        def response(status: str, with_output: bool, with_usage: bool) -> dict:
            return {
                "id": rid, "object": "response", "created_at": created, "status": status,
                "background": False, "error": None, "incomplete_details": None,
                "instructions": self.body.get("instructions"),
                "max_output_tokens": self.body.get("max_output_tokens"),
                "model": model,
                "output": [
                    {"id": mid, "type": "message", "status": "completed", "role": "assistant",
                     "content": [{"type": "output_text", "text": text, "annotations": [],
                                  "logprobs": []}]}
                ] if with_output else [],
                "parallel_tool_calls": True, "previous_response_id": None,
                "reasoning": {"effort": None, "summary": None}, "service_tier": "default",
                "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}},
                "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
                "usage": usage if with_usage else None, "user": None, "metadata": {},
            }

        if not self.body.get("stream"):
            return self._send_json(200, response("completed", True, True),
                                   self._openai_headers())

        seq = iter(range(1_000_000))

        def ev(etype: str, payload: dict) -> bytes:
            obj = {"type": etype, "sequence_number": next(seq), **payload}
            return f"event: {etype}\ndata: {_j(obj)}\n\n".encode()

        def events():
            yield ev("response.created", {"response": response("in_progress", False, False)})
            yield ev("response.in_progress", {"response": response("in_progress", False, False)})
            yield ev("response.output_item.added", {
                "output_index": 0,
                "item": {"id": mid, "type": "message", "status": "in_progress",
                         "role": "assistant", "content": []}})
            yield ev("response.content_part.added", {
                "item_id": mid, "output_index": 0, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
            for piece in self._pieces():
                yield ev("response.output_text.delta", {
                    "item_id": mid, "output_index": 0, "content_index": 0, "delta": piece,
                    "logprobs": []})
            yield ev("response.output_text.done", {
                "item_id": mid, "output_index": 0, "content_index": 0, "text": text,
                "logprobs": []})
            yield ev("response.content_part.done", {
                "item_id": mid, "output_index": 0, "content_index": 0,
                "part": {"type": "output_text", "text": text, "annotations": [], "logprobs": []}})
            yield ev("response.output_item.done", {
                "output_index": 0,
                "item": {"id": mid, "type": "message", "status": "completed",
                         "role": "assistant",
                         "content": [{"type": "output_text", "text": text, "annotations": [],
                                      "logprobs": []}]}})
            yield ev("response.completed", {"response": response("completed", True, True)})

        self._stream(events(), "text/event-stream; charset=utf-8", self._openai_headers())

    # -- Anthropic

    def _anthropic_messages(self, model: str) -> None:
        usage = self._usage(ANTHROPIC_USAGE)
        mid = f"msg_fake{self.req_id}"
        text = DEFAULT_TEXT
        if not self.body.get("stream"):
            return self._send_json(
                200,
                {"id": mid, "type": "message", "role": "assistant", "model": model,
                 "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                 "stop_sequence": None, "usage": usage},
                self._anthropic_headers(),
            )
        start_usage = {k: v for k, v in usage.items()}
        if "output_tokens" in usage:
            start_usage["output_tokens"] = min(1, int(usage["output_tokens"] or 0))
        delta_usage = {"output_tokens": usage["output_tokens"]} if "output_tokens" in usage else {}

        def ev(etype: str, obj: dict) -> bytes:
            return f"event: {etype}\ndata: {_j({'type': etype, **obj})}\n\n".encode()

        def events():
            yield ev("message_start", {"message": {
                "id": mid, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": start_usage}})
            yield ev("content_block_start", {"index": 0,
                                             "content_block": {"type": "text", "text": ""}})
            yield ev("ping", {})
            for piece in self._pieces():
                yield ev("content_block_delta", {"index": 0,
                                                 "delta": {"type": "text_delta", "text": piece}})
            yield ev("content_block_stop", {"index": 0})
            yield ev("message_delta", {"delta": {"stop_reason": "end_turn",
                                                 "stop_sequence": None},
                                       "usage": delta_usage})
            yield ev("message_stop", {})

        self._stream(events(), "text/event-stream; charset=utf-8", self._anthropic_headers())

    # -- Gemini

    def _gemini_chunks(self, model: str, stream: bool) -> list[dict]:
        final = self._usage(GEMINI_USAGE)
        rid = f"fake{self.req_id}"
        pieces = self._pieces() if stream else [DEFAULT_TEXT]
        out = []
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            if last:
                um = final
            else:
                um = copy.deepcopy(final)
                if "candidatesTokenCount" in um:
                    um["candidatesTokenCount"] = int(final["candidatesTokenCount"])* (i + 1) // len(pieces)
                    if "totalTokenCount" in um:
                        um["totalTokenCount"] = (int(final.get("promptTokenCount", 0))
                                                 + um["candidatesTokenCount"]
                                                 + int(final.get("thoughtsTokenCount", 0)))
            cand: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"},
                                    "index": 0}
            if last:
                cand["finishReason"] = "STOP"
            out.append({"candidates": [cand], "usageMetadata": um, "modelVersion": model,
                        "responseId": rid})
        return out

    def _gemini_generate(self, model: str) -> None:
        self._send_json(200, self._gemini_chunks(model, False)[0], self._gemini_headers())

    def _gemini_stream(self, model: str) -> None:
        chunks = self._gemini_chunks(model, True)
        if self.query.get("alt") == "sse":
            events = (f"data: {_j(c)}\r\n\r\n".encode() for c in chunks)
            return self._stream(events, "text/event-stream", self._gemini_headers())

        def array_pieces():
            for i, c in enumerate(chunks):
                yield (("[" if i == 0 else "\n,") + json.dumps(c, indent=2)).encode()

        self._stream(array_pieces(), "application/json; charset=UTF-8", self._gemini_headers(),
                     trailer=b"]")


# ---------------------------------------------------------------------------- library API


class FakeProvider:
    """A running fake provider (background thread)."""

    def __init__(self, server: FakeProviderServer, thread: threading.Thread):
        self._server = server
        self._thread = thread
        self.host, self.port = server.server_address[:2]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        """Every recorded request: {method, path, query, headers, body, time}."""
        return self._server.snapshot()

    def reset(self) -> None:
        self._server.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeProvider":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_fake_provider(host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True) -> FakeProvider:
    server = FakeProviderServer((host, port), quiet=quiet)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05},
        name=f"fake-provider-{server.server_address[1]}", daemon=True,
    )
    thread.start()
    return FakeProvider(server, thread)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fake LLM provider (OpenAI/Azure/Anthropic/Gemini)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9999)
    ap.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = ap.parse_args(argv)
    server = FakeProviderServer((args.host, args.port), quiet=not args.verbose)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
