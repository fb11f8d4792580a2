"""Admin UI sessions: the master key is typed once, then a cookie stands in for it.

The cookie holds a random token (256 bits); the server keeps only its SHA-256, with
an expiry and a fingerprint of the master key it was issued under, so rotating the
master key (a config reload) ends every session. The cookie is HttpOnly (scripts
can't read it), SameSite=Strict (other sites can't make the browser send it) and
never carries the key. Requests that change something must also carry the
`X-Spendgate-UI` header, which a cross-site form cannot add — a second guard against
cross-site request forgery beside SameSite.

Sessions live in this process's memory: a restart asks the admin to log in again.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

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


def is_ui_session(request: tornado.httputil.HTTPServerRequest, master_key: str | None) -> bool:
    """A request from a logged-in admin UI: a valid session cookie and, unless it only
    reads, the UI's own header."""
    if not SESSIONS.valid(session_cookie(request), master_key):
        return False
    return request.method in SAFE_METHODS or request.headers.get(UI_HEADER) == "1"
