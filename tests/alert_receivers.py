"""Real alert receivers on loopback for the alert tests.

HttpReceiver   a threaded HTTP server recording every POST (Slack and webhook alerts).
               `.answer(500)` makes it fail, `.down()` closes its port (connection refused),
               `.up()` listens again on the same port.
SmtpReceiver   an aiosmtpd SMTP server recording every message; optionally STARTTLS with a
               self-signed certificate made on the spot (`self_signed_cert`) and AUTH.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from e2e_helpers import wait_for as wait_until  # one polling helper for every e2e module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.status = 200
        self.reply = b"ok"
        self.received: list[dict[str, Any]] = []  # accepted (2xx) posts
        self.refused: list[dict[str, Any]] = []  # posts answered with an error
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self.held = 0  # requests waiting in hold()
        self._server: ThreadingHTTPServer | None = None
        self.up()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def up(self) -> None:
        if self._server is not None:
            return
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (a SIGKILLed proxy): nothing delivered
                    self.close_connection = True
                    return
                if not receiver._open.is_set():
                    with receiver._lock:
                        receiver.held += 1
                    receiver._open.wait(60)
                    with receiver._lock:
                        receiver.held -= 1
                post = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                        "json": json.loads(body) if body else None}
                with receiver._lock:
                    status, reply = receiver.status, receiver.reply
                    (receiver.received if status < 300 else receiver.refused).append(post)
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        for _ in range(100):  # the port may linger briefly after down()
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"cannot listen again on {self.port}")
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Close the port: deliveries get connection refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def hold(self) -> None:
        """Keep every request waiting, unanswered, until `release()`: a receiver that hangs."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def answer(self, status: int, reply: bytes = b"") -> None:
        with self._lock:
            self.status, self.reply = status, reply or (b"ok" if status < 300 else b"internal_error")

    def posts(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.received if path is None or p["path"] == path]

    def bodies(self, path: str | None = None) -> list[Any]:
        return [p["json"] for p in self.posts(path)]

    def wait_for(self, n: int, path: str | None = None, timeout: float = 15.0) -> list[dict[str, Any]]:
        return wait_until(lambda: len(self.posts(path)) >= n, timeout) and self.posts(path) or self.posts(path)

    def stop(self) -> None:
        self.release()
        self.down()


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append({
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "message": email.message_from_bytes(envelope.content, policy=email.policy.default),
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
        })
        return "250 Message accepted for delivery"


class SmtpReceiver:
    def __init__(self, tls_context: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None,
                 port: int | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.recorder = _Recorder()
        self.port = port or free_port()
        kwargs: dict[str, Any] = {}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        if auth is not None:
            def check(server, session, envelope, mechanism, auth_data):
                ok = (auth_data.login.decode(), auth_data.password.decode()) == auth
                return AuthResult(success=ok, handled=False)

            kwargs.update(authenticator=check, auth_required=True, auth_require_tls=True)
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.recorder.messages)

    def wait_for(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.recorder.messages) >= n, timeout)
        return self.messages

    def stop(self) -> None:
        self.controller.stop()


def self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """(cert.pem, key.pem) for `host`, made with `cryptography` (a mitmproxy dependency)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
