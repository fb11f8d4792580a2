"""The admin UI's own HTTP surface: static files under `/ui/`, login, logout, session.

The UI is plain HTML, CSS and JavaScript in `admin/ui/` (no build step, nothing
fetched from elsewhere at run time); everything it shows comes from the JSON admin
API, authenticated by the session cookie that logging in sets (`admin.sessions`).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tornado.web

from admin.api import is_master_key
from admin.metrics import enabled as metrics_enabled
from admin.sessions import COOKIE, LIFETIME, SESSIONS, session_cookie

if TYPE_CHECKING:
    from metering.runtime import ProcessState as BudgetConfig

UI_DIR = Path(__file__).resolve().parent / "ui"
FAILED_LOGIN_DELAY = 0.5  # seconds: makes guessing the master key over HTTP slower still

SECURITY_HEADERS = {
    # Everything the UI loads is its own: no inline script, no other origin.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _master_key(config: BudgetConfig) -> str | None:
    rt = config.runtime
    master = rt.config.general_settings.master_key if rt else None
    return master.get_secret_value() if master else None


class _UiHandler(tornado.web.RequestHandler):
    def initialize(self, config: BudgetConfig) -> None:
        self.config = config

    def check_xsrf_cookie(self) -> None:  # SameSite=Strict cookie + JSON-only bodies
        return

    def set_default_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)
        self.set_header("Cache-Control", "no-store")

    def json(self, status: int, payload: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def error(self, status: int, message: str, type_: str) -> None:
        self.json(status, {"error": {"message": message, "type": type_, "param": None, "code": str(status)}})


class LoginHandler(_UiHandler):
    """POST /ui/login {"master_key": "..."} → a session cookie. The key travels in the
    body only, never in a URL."""

    async def post(self) -> None:
        master = _master_key(self.config)
        if master is None:
            return self.error(503, "no general_settings.master_key is configured; the admin UI is locked",
                              "authentication_error")
        try:
            body = json.loads(self.request.body or b"{}")
            given = body.get("master_key") if isinstance(body, dict) else None
        except (ValueError, UnicodeDecodeError):
            given = None
        if not isinstance(given, str) or not is_master_key(given.strip(), master):
            await asyncio.sleep(FAILED_LOGIN_DELAY)
            return self.error(401, "That is not the master key.", "authentication_error")
        token = SESSIONS.issue(master)
        self.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Strict",
                        secure=self.request.protocol == "https", max_age=LIFETIME)
        self.json(200, {"logged_in": True})


class LogoutHandler(_UiHandler):
    def post(self) -> None:
        SESSIONS.revoke(session_cookie(self.request))
        self.clear_cookie(COOKIE, path="/", httponly=True, samesite="Strict")
        self.json(200, {"logged_in": False})


class SessionHandler(_UiHandler):
    """GET /ui/session: whether this browser is logged in (the UI's first question)."""

    def get(self) -> None:
        master = _master_key(self.config)
        logged_in = SESSIONS.valid(session_cookie(self.request), master)
        self.json(200, {"logged_in": logged_in, "master_key_configured": master is not None,
                        "metrics_enabled": logged_in and metrics_enabled(self.config.runtime)})


class StaticHandler(tornado.web.StaticFileHandler):
    def set_default_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")  # revalidate (ETag): a new release shows at once


def ui_handlers(config: BudgetConfig) -> list:
    args = {"config": config}
    return [
        (r"/ui/login", LoginHandler, args),
        (r"/ui/logout", LogoutHandler, args),
        (r"/ui/session", SessionHandler, args),
        (r"/ui", tornado.web.RedirectHandler, {"url": "/ui/"}),
        (r"/ui/(.*)", StaticHandler, {"path": str(UI_DIR), "default_filename": "index.html"}),
    ]
