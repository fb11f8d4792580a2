"""Fake Anthropic Messages: `/v1/messages`, whole or streamed (message_start ...
message_stop), with Anthropic's usage convention (input excludes cache reads and writes)."""

from __future__ import annotations

from typing import Any

from fakes.common import DEFAULT_TEXT, j
from fakes.routes import route

ANTHROPIC_USAGE: dict[str, Any] = {
    "input_tokens": 700,
    "cache_creation_input_tokens": 100,
    "cache_read_input_tokens": 200,
    "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 500,
    "service_tier": "standard",
}


def headers(h) -> dict[str, str]:
    return {
        "request-id": f"req_{h.req_id}",
        "anthropic-organization-id": "00000000-0000-0000-0000-000000000000",
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-requests-remaining": "3999",
        "anthropic-ratelimit-input-tokens-limit": "400000",
        "anthropic-ratelimit-input-tokens-remaining": "399000",
        "anthropic-ratelimit-output-tokens-limit": "80000",
        "anthropic-ratelimit-output-tokens-remaining": "79500",
    }


def errors(h, status: int) -> None:
    etype = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
    body = {"type": "error", "error": {"type": etype, "message": f"fake provider error (status {status})"},
            "request_id": f"req_{h.req_id}"}
    extra = headers(h)
    if status == 429:
        extra["retry-after"] = "1"
    h.send_json(status, body, extra)


def messages(h, model: str) -> None:
    usage = h.usage(ANTHROPIC_USAGE)
    mid = f"msg_fake{h.req_id}"
    text = DEFAULT_TEXT
    if not h.body.get("stream"):
        return h.send_json(
            200,
            {"id": mid, "type": "message", "role": "assistant", "model": model,
             "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
             "stop_sequence": None, "usage": usage},
            headers(h),
        )
    start_usage = {k: v for k, v in usage.items()}
    if "output_tokens" in usage:
        start_usage["output_tokens"] = min(1, int(usage["output_tokens"] or 0))
    delta_usage = {"output_tokens": usage["output_tokens"]} if "output_tokens" in usage else {}

    def ev(etype: str, obj: dict) -> bytes:
        return f"event: {etype}\ndata: {j({'type': etype, **obj})}\n\n".encode()

    def events():
        yield ev("message_start", {"message": {
            "id": mid, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": start_usage}})
        yield ev("content_block_start", {"index": 0,
                                         "content_block": {"type": "text", "text": ""}})
        yield ev("ping", {})
        for piece in h.pieces():
            yield ev("content_block_delta", {"index": 0,
                                             "delta": {"type": "text_delta", "text": piece}})
        yield ev("content_block_stop", {"index": 0})
        yield ev("message_delta", {"delta": {"stop_reason": "end_turn",
                                             "stop_sequence": None},
                                   "usage": delta_usage})
        yield ev("message_stop", {})

    h.stream(events(), "text/event-stream; charset=utf-8", headers(h))


@route("POST", r"/v1/messages", errors)
def messages_route(h, match) -> None:
    messages(h, h.body_model())
