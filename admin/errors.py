"""The admin listener's one error shape, LiteLLM's `{"error": {"message", "type", "param", "code"}}`.

Its own module so that everything answering on the listener — the API, the UI's login,
`/metrics` and the requests refused before routing — writes errors the same way.
"""

from __future__ import annotations

import json


class ApiError(Exception):
    """A client-facing error: status, type and a message that says what to fix."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param = status, message, type_, param
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found", "not_found_error")


def error_body(e: ApiError) -> str:
    return json.dumps({"error": {"message": e.message, "type": e.type, "param": e.param, "code": str(e.status)}})


def send_error(handler, e: ApiError) -> None:
    """Answer a tornado request with `e` as JSON (status, headers and body)."""
    handler.set_status(e.status)
    handler.set_header("Content-Type", "application/json")
    for name, value in e.headers.items():
        handler.set_header(name, value)
    handler.finish(error_body(e))
