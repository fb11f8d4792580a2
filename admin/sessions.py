"""Admin UI sessions: the master key is typed once, then a cookie stands in for it.

The cookie holds a random token (256 bits); the server keeps only its SHA-256, with
an expiry and a fingerprint of the master key it was issued under, so rotating the
master key (a config reload) ends every session. The cookie is HttpOnly (scripts
can't read it), SameSite=Strict (other sites can't make the browser send it) and
never carries the key. Requests that change something must also carry the
`X-Spendgate-UI` header, which a cross-site form cannot add, and come from the console's
own page (`Origin`, which browsers send with every such request, names this listener) —
guards against cross-site request forgery beside SameSite, and against a page that made
its own name resolve to this listener (DNS rebinding; the listener checks `Host` too).

Sessions live in this process's memory: a restart asks the admin to log in again.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import tornado.httputil

COOKIE = "spendgate_session"
UI_HEADER = "X-Spendgate-UI"
LIFETIME = 12 * 3600  # seconds
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Session:
    expires: float
    master: str  # digest of the master key it was issued under


class SessionStore:
    def __init__(self, lifetime: float = LIFETIME):
        self.lifetime = lifetime
        self._sessions: dict[str, Session] = {}

    def issue(self, master_key: str) -> str:
        self._prune()
        token = secrets.token_urlsafe(32)
        self._sessions[_digest(token)] = Session(time.monotonic() + self.lifetime, _digest(master_key))
        return token

    def valid(self, token: str | None, master_key: str | None) -> bool:
        """True for a live session issued under the current master key. Looked up by the
        token's digest, so timing says nothing about the token itself."""
        if not token or not master_key:
            return False
        session = self._sessions.get(_digest(token))
        if session is None:
            return False
        if session.expires < time.monotonic() or session.master != _digest(master_key):
            self._sessions.pop(_digest(token), None)
            return False
        return True

    def revoke(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_digest(token), None)

    def _prune(self) -> None:
        now = time.monotonic()
        for digest in [d for d, s in self._sessions.items() if s.expires < now]:
            del self._sessions[digest]


SESSIONS = SessionStore()


def session_cookie(request: tornado.httputil.HTTPServerRequest) -> str | None:
    morsel = request.cookies.get(COOKIE)
    return morsel.value if morsel is not None else None


def same_origin(request: tornado.httputil.HTTPServerRequest) -> bool:
    """The request comes from a page of this listener: its `Origin` names the host and
    port the request was sent to. (The scheme may differ: a TLS-terminating proxy in front
    of the listener makes the page https while the listener sees http.)"""
    origin = request.headers.get("Origin")
    if not origin:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()


def is_ui_session(request: tornado.httputil.HTTPServerRequest, master_key: str | None) -> bool:
    """A request from a logged-in admin UI: a valid session cookie and, unless it only
    reads, the UI's own header and an `Origin` on this listener."""
    if not SESSIONS.valid(session_cookie(request), master_key):
        return False
    return request.method in SAFE_METHODS or (request.headers.get(UI_HEADER) == "1" and same_origin(request))
