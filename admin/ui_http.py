"""The admin UI's own HTTP surface: static files under `/ui/`, login, logout, session.

The UI is plain HTML, CSS and JavaScript in `admin/ui/` (no build step, nothing
fetched from elsewhere at run time); everything it shows comes from the JSON admin
API, authenticated by the session cookie that logging in sets (`admin.sessions`).

Login and logout change state, so they too must come from the console's own page
(`Origin`); a login takes its address's turn in the failure throttle like any request
presenting a key, and its body is JSON or a form — any other type (`text/plain`, which a
cross-site form may send) is a 415.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import tornado.web

from admin.api import encode_json, is_master_key, parse_json
from admin.errors import ApiError, send_error
from admin.metrics import enabled as metrics_enabled
from admin.sessions import COOKIE, LIFETIME, SESSIONS, same_origin, session_cookie
from admin.throttle import THROTTLE

if TYPE_CHECKING:
    from metering.runtime import ProcessState

UI_DIR = Path(__file__).resolve().parent / "ui"
LOGIN_TYPES = ("application/json", "application/x-www-form-urlencoded")

SECURITY_HEADERS = {
    # Everything the UI loads is its own: no inline script, no other origin.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _master_key(state: ProcessState) -> str | None:
    rt = state.runtime
    master = rt.config.general_settings.master_key if rt else None
    return master.get_secret_value() if master else None


class _UiHandler(tornado.web.RequestHandler):
    def initialize(self, state: ProcessState) -> None:
        self.state = state

    def check_xsrf_cookie(self) -> None:  # SameSite=Strict cookie + JSON-only bodies
        return

    def set_default_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)
        self.set_header("Cache-Control", "no-store")

    def json(self, status: int, payload: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(encode_json(payload))

    def require_same_origin(self) -> None:
        if not same_origin(self.request):
            raise ApiError(403, "refused: this request must come from the admin console's own page (Origin)",
                           "permission_error", "Origin")


class LoginHandler(_UiHandler):
    """POST /ui/login {"master_key": "..."} (JSON, or a form) → a session cookie. The key
    travels in the body only, never in a URL."""

    async def post(self) -> None:
        try:
            self.require_same_origin()
            master = _master_key(self.state)
            if master is None:
                raise ApiError(503, "no general_settings.master_key is configured; the admin UI is locked",
                               "authentication_error")
            given = self._given_key()
            async with THROTTLE.attempt(self.request.remote_ip) as attempt:
                if not isinstance(given, str) or not is_master_key(given.strip(), master):
                    attempt.failed()  # answered after the address's delay
                    raise ApiError(401, "That is not the master key.", "authentication_error", "master_key")
                attempt.succeeded()
        except ApiError as e:
            return send_error(self, e)
        token = SESSIONS.issue(master)
        self.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Strict",
                        secure=self.request.protocol == "https", max_age=LIFETIME)
        self.json(200, {"logged_in": True})

    def _given_key(self) -> Any:
        kind = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind not in LOGIN_TYPES:
            raise ApiError(415, f"send the master key as JSON ({LOGIN_TYPES[0]}) or a form ({LOGIN_TYPES[1]}), "
                           f"not {kind or 'a body without a Content-Type'}", param="Content-Type")
        raw = self.request.body or b""
        if kind == LOGIN_TYPES[0]:
            body = parse_json(raw or b"{}")
            return body.get("master_key") if isinstance(body, dict) else None
        try:
            values = parse_qs(raw.decode("utf-8"), strict_parsing=False).get("master_key")
        except UnicodeDecodeError:
            raise ApiError(400, "the form is not valid UTF-8", param="master_key") from None
        return values[0] if values else None


class LogoutHandler(_UiHandler):
    def post(self) -> None:
        try:
            self.require_same_origin()
        except ApiError as e:
            return send_error(self, e)
        SESSIONS.revoke(session_cookie(self.request))
        self.clear_cookie(COOKIE, path="/", httponly=True, samesite="Strict")
        self.json(200, {"logged_in": False})


class SessionHandler(_UiHandler):
    """GET /ui/session: whether this browser is logged in (the UI's first question)."""

    def get(self) -> None:
        master = _master_key(self.state)
        logged_in = SESSIONS.valid(session_cookie(self.request), master)
        self.json(200, {"logged_in": logged_in, "master_key_configured": master is not None,
                        "metrics_enabled": logged_in and metrics_enabled(self.state.runtime)})


class StaticHandler(tornado.web.StaticFileHandler):
    def set_default_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")  # revalidate (ETag): a new release shows at once


def ui_handlers(state: ProcessState) -> list:
    args = {"state": state}
    return [
        (r"/ui/login", LoginHandler, args),
        (r"/ui/logout", LogoutHandler, args),
        (r"/ui/session", SessionHandler, args),
        (r"/ui", tornado.web.RedirectHandler, {"url": "/ui/"}),
        (r"/ui/(.*)", StaticHandler, {"path": str(UI_DIR), "default_filename": "index.html"}),
    ]
