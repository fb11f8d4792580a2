"""Fake Anthropic Messages: `/v1/messages`, whole or streamed (message_start ...
message_stop), with Anthropic's usage convention (input excludes cache reads and writes).
Also Claude on Vertex AI: `…/publishers/anthropic/models/{model}:rawPredict|streamRawPredict`,
the model in the URL (the body has none), and `count-tokens:rawPredict`."""

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


def message(h, model: str, usage: dict[str, Any]) -> dict[str, Any]:
    """A whole Messages reply (also the body of Bedrock's InvokeModel for Claude)."""
    return {"id": f"msg_fake{h.req_id}", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": DEFAULT_TEXT}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": usage}


def stream_events(h, model: str, usage: dict[str, Any]):
    """A Messages stream's events as objects, message_start ... message_stop (also what
    Bedrock's InvokeModelWithResponseStream carries in its chunks)."""
    start_usage = {k: v for k, v in usage.items()}
    if "output_tokens" in usage:
        start_usage["output_tokens"] = min(1, int(usage["output_tokens"] or 0))
    delta_usage = {"output_tokens": usage["output_tokens"]} if "output_tokens" in usage else {}
    if "server_tool_use" in usage:  # cumulative, like the output count: Anthropic repeats it at the end
        delta_usage["server_tool_use"] = usage["server_tool_use"]
        start_usage["server_tool_use"] = {"web_search_requests": 0}
    yield {"type": "message_start", "message": {
        "id": f"msg_fake{h.req_id}", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}}
    yield {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    yield {"type": "ping"}
    for piece in h.pieces():
        yield {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
    yield {"type": "content_block_stop", "index": 0}
    yield {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
           "usage": delta_usage}
    yield {"type": "message_stop"}


def messages(h, model: str) -> None:
    usage = h.usage(ANTHROPIC_USAGE)
    if not h.body.get("stream"):
        return h.send_json(200, message(h, model, usage), headers(h))
    events = (f"event: {ev['type']}\ndata: {j(ev)}\n\n".encode() for ev in stream_events(h, model, usage))
    h.stream(events, "text/event-stream; charset=utf-8", headers(h))


@route("POST", r"/v1/messages", errors)
def messages_route(h, match) -> None:
    messages(h, h.body_model())


@route("POST", r"/v1(?:beta1)?/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/(?P<model>[^/:]+)"
               r":(?P<method>rawPredict|streamRawPredict)", errors)
def vertex_raw_predict(h, match) -> None:
    if match["model"] == "count-tokens":
        return h.send_json(200, {"input_tokens": 42}, headers(h))
    messages(h, match["model"])
