"""The fake provider's HTTP server: plumbing, control API and dispatch to the provider
modules' routes (tests/fakes/routes.py).

Plain HTTP/1.1 on loopback (stdlib `ThreadingHTTPServer`, one thread per connection,
keep-alive, chunked streaming). It never talks to the internet.
"""

from __future__ import annotations

import argparse
import copy
import http.server
import json
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable
from typing import Any

from fakes import anthropic, bedrock, cohere, gemini, openai, openai_media  # noqa: F401  (their routes, in this order)
from fakes.common import (
    DEFAULT_CHUNKS,
    DEFAULT_TEXT,
    CutConnection,
    Encoder,
    split_text,
)
from fakes.routes import ROUTES

__all__ = ["FakeProvider", "FakeProviderServer", "Handler", "main", "start_fake_provider"]


class FakeProviderServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512
    block_on_close = False

    def __init__(self, addr: tuple[str, int], *, quiet: bool = True):
        super().__init__(addr, Handler)
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


class Handler(http.server.BaseHTTPRequestHandler):
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
        except CutConnection:
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

    def hint(self, name: str, default: int = 0) -> int:
        raw = self.headers.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return int(float(raw))
        except ValueError:
            return default

    # -- raw senders

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(obj).encode(), "application/json", headers)

    def send_body(
        self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        enc = Encoder(self.headers.get("x-fake-encoding"))
        if self.headers.get("x-fake-body") is not None and status < 400:
            body = self.headers["x-fake-body"].encode()  # a malformed answer, verbatim
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
            self.wfile.write(payload[: max(0, self.hint("x-fake-cut-after"))])
            self.drop()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def drop(self) -> None:
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
        raise CutConnection()

    def stream(
        self, events: Iterable[bytes], ctype: str, headers: dict[str, str] | None = None,
        trailer: bytes = b"",
    ) -> None:
        """Send events as a chunked body, one HTTP chunk per event, honouring the
        delay / first-chunk-wait / cut / encoding controls. `trailer` is sent after the
        last event and is not counted as an event (e.g. the closing "]" of a JSON array)."""
        enc = Encoder(self.headers.get("x-fake-encoding"))
        delay = self.hint("x-fake-delay-ms") / 1000.0
        first_wait = self.hint("x-fake-first-chunk-then-wait-ms") / 1000.0
        cut_raw = self.headers.get("x-fake-cut-after")
        cut = self.hint("x-fake-cut-after") if cut_raw is not None else None

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
                self.drop()
            if sent > 0:
                if sent == 1 and first_wait:
                    time.sleep(first_wait)
                elif delay:
                    time.sleep(delay)
            write_chunk(enc.chunk(ev))
            sent += 1
        if cut is not None and sent >= cut:
            # cut after exactly as many events as there were: still drop before the end
            self.drop()
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
        self.raw_body = raw
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                body = {}
        except ValueError:
            body = {}
        self.body = body
        self.query = query

        try:
            found = next(((r, m) for r in ROUTES if r.method == self.command and (m := r.path.fullmatch(path))),
                         None)
            if found is None:
                return self.send_json(404, {"error": {"message": f"Invalid URL ({self.command} {path})",
                                                      "type": "invalid_request_error", "param": None,
                                                      "code": None}})
            fake_route, match = found
            hang = self.hint("x-fake-hang-ms")
            if hang:  # an upstream that accepted the request and went quiet
                time.sleep(hang / 1000)
            status = self.hint("x-fake-status", 0)
            if status >= 400:
                return fake_route.errors(self, status)
            self.usage_override = None
            if self.headers.get("x-fake-usage"):
                try:
                    self.usage_override = json.loads(self.headers["x-fake-usage"])
                except ValueError:
                    return self.send_json(400, {"error": {"message": "fake: x-fake-usage is not JSON"}})
            fake_route.handler(self, match)
        except ValueError as e:  # e.g. unknown x-fake-encoding
            self.send_json(400, {"error": {"message": f"fake: {e}", "type": "fake_error"}})

    def _control(self, path: str) -> None:
        if path == "/_fake/requests" and self.command == "GET":
            return self.send_json(200, self.server.snapshot())
        if path == "/_fake/reset" and self.command == "POST":
            self.server.clear()
            return self.send_json(200, {"ok": True})
        if path == "/_fake/health":
            return self.send_json(200, {"ok": True})
        return self.send_json(404, {"error": {"message": f"unknown control {path}"}})

    # -- for the provider modules

    def usage(self, default: dict[str, Any]) -> dict[str, Any]:
        """The reply's usage: `x-fake-usage` when the request set it, else `default`."""
        return copy.deepcopy(self.usage_override if self.usage_override is not None else default)

    def pieces(self) -> list[str]:
        return split_text(DEFAULT_TEXT, self.hint("x-fake-chunks", DEFAULT_CHUNKS) or 1)

    def body_model(self, default: str = "unknown-model") -> str:
        model = self.body.get("model")
        return model if isinstance(model, str) and model else default


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
    ap = argparse.ArgumentParser(description="Fake LLM provider (OpenAI/Azure/Anthropic/Gemini/Vertex AI/Cohere/Bedrock)")
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
