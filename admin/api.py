"""The admin API's plumbing: routing, auth, JSON bodies and JSON errors.

Endpoints are plain async functions registered with `@route`; they receive an
`AdminContext` and a validated pydantic body (or the query arguments), and return
something JSON-serialisable. Whatever a client gets wrong comes back as a JSON error
naming the problem — never a 500 — in LiteLLM's `{"error": {...}}` shape.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import tornado.web
from pydantic import BaseModel, ValidationError

from admin.errors import ApiError, not_found, send_error
from admin.sessions import is_ui_session

if TYPE_CHECKING:
    from addon.loader import BudgetConfig
    from addon.runtime import Runtime

log = logging.getLogger("spendgate.admin")

Access = Literal["master", "master_or_own_key", "public"]
__all__ = ["ApiError", "not_found"]  # endpoints import them from here


@dataclass
class Caller:
    """Who is calling: the master key, or a virtual key (by hash) asking about itself."""

    is_master: bool
    key_hash: str | None = None


@dataclass
class AdminContext:
    config: BudgetConfig
    caller: Caller
    query: dict[str, str] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def runtime(self) -> Runtime:
        rt = self.config.runtime
        if rt is None:
            raise ApiError(503, "spendgate is not configured yet", "service_unavailable")
        return rt


Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    body: type[BaseModel] | None
    access: Access


ROUTES: list[Route] = []


def route(method: str, path: str, *, body: type[BaseModel] | None = None, access: Access = "master"):
    """Register an endpoint. `body` validates a JSON request body (POST)."""

    def register(fn: Handler) -> Handler:
        ROUTES.append(Route(method, path, fn, body, access))
        return fn

    return register


def bearer_token(request: tornado.httputil.HTTPServerRequest) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return request.headers.get("x-api-key") or None


def is_master_key(token: str | None, master: str | None) -> bool:
    """Constant-time comparison, so the master key can't be guessed byte by byte."""
    if not token or not master:
        return False
    return hmac.compare_digest(token.encode(), master.encode())


def validation_message(e: ValidationError) -> tuple[str, str | None]:
    """`field.path: what is wrong` for each problem, and the first field's name."""
    parts, first = [], None
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"]) or "body"
        first = first or where
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts), first


class ApiHandler(tornado.web.RequestHandler):
    """One tornado handler serving every registered route of a path."""

    def initialize(self, config: BudgetConfig, routes: dict[str, Route]) -> None:
        self.config = config
        self.routes = routes

    def check_xsrf_cookie(self) -> None:  # a bearer-token API, not a cookie session
        return

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    async def get(self) -> None:
        await self._serve("GET")

    async def post(self) -> None:
        await self._serve("POST")

    async def delete(self) -> None:
        await self._serve("DELETE")

    async def _serve(self, method: str) -> None:
        try:
            r = self.routes.get(method)
            if r is None:
                raise ApiError(405, f"{method} is not allowed on {self.request.path}; use {', '.join(self.routes)}")
            caller = self._authenticate(r.access)
            ctx = AdminContext(self.config, caller, {k: self.get_argument(k) for k in self.request.arguments})
            args = [ctx]
            if r.body is not None:
                args.append(self._body(r.body))
            result = await r.handler(*args)
            self.write_json(200, result)
        except ApiError as e:
            self.write_error_json(e)
        except Exception:
            log.exception("admin API: %s %s failed", method, self.request.path)
            self.write_error_json(ApiError(500, "internal error; see the proxy log", "internal_error"))

    def _authenticate(self, access: Access) -> Caller:
        if access == "public":
            return Caller(is_master=False)
        token = bearer_token(self.request)
        rt = self.config.runtime
        master = rt.config.general_settings.master_key if rt else None
        master_value = master.get_secret_value() if master else None
        if is_master_key(token, master_value):
            return Caller(is_master=True)
        if token is None and is_ui_session(self.request, master_value):  # the admin UI's cookie
            return Caller(is_master=True)
        if token and access == "master_or_own_key":
            from addon.credentials import key_hash

            return Caller(is_master=False, key_hash=key_hash(token))
        if master_value is None:
            raise ApiError(401, "no general_settings.master_key is configured; the admin API is locked",
                           "authentication_error")
        raise ApiError(401, "missing or invalid master key (Authorization: Bearer <master_key>)",
                       "authentication_error")

    def _body(self, model: type[BaseModel]) -> BaseModel:
        raw = self.request.body or b"{}"
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"request body is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "request body must be a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as e:
            message, field_name = validation_message(e)
            raise ApiError(422, message, param=field_name) from None

    def write_json(self, status: int, payload: Any) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload, default=_json_default))

    def write_error_json(self, e: ApiError) -> None:
        send_error(self, e)


class NotFoundHandler(ApiHandler):
    def initialize(self, config: BudgetConfig, routes: dict[str, Route] | None = None) -> None:
        super().initialize(config, {})

    async def _serve(self, method: str) -> None:
        self.write_error_json(ApiError(404, f"no such endpoint: {method} {self.request.path}", "not_found_error"))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def application(config: BudgetConfig, extra_handlers: list | None = None) -> tornado.web.Application:
    """The tornado app for every registered route (import the endpoint modules first)."""
    by_path: dict[str, dict[str, Route]] = {}
    for r in ROUTES:
        by_path.setdefault(r.path, {})[r.method] = r
    handlers = [(path, ApiHandler, {"config": config, "routes": methods}) for path, methods in by_path.items()]
    handlers += extra_handlers or []
    return tornado.web.Application(
        handlers,
        default_handler_class=NotFoundHandler,
        default_handler_args={"config": config},
        compress_response=True,
    )
