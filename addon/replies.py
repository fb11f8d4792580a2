"""spendgate's HTTP answers in the provider's place, in OpenAI's error shape.

Every SDK already knows how to read `{"error": {"message", "type", "param", "code"}}`,
so a refused call surfaces as a readable exception in the client, not a parse error.
"""

from __future__ import annotations

import json

from mitmproxy import http

from metering.refusals import Refusal

__all__ = ["error_body", "error_response", "refusal_response"]


def error_body(status: int, type_: str, message: str) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": str(status)}}


def error_response(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> http.Response:
    return http.Response.make(
        status,
        json.dumps(error_body(status, type_, message)).encode(),
        {"content-type": "application/json", **(headers or {})},
    )


def refusal_response(refusal: Refusal) -> http.Response:
    return error_response(refusal.status, refusal.type, refusal.message, refusal.headers)
