"""Fake OpenAI wire format: chat, legacy completions, Responses, embeddings — as OpenAI,
Azure (deployments and the v1 API) and the OpenAI-compatible providers serve them.

Paths: `/v1/{op}`, `/openai/deployments/{deployment}/{op}` (the model is the deployment's
unless the body names one), and `{any prefix}/{op}` for the compatible providers'
mounts (`/openai/v1` at Groq, `/inference/v1` at Fireworks, `/api/v1` at OpenRouter, ...).
The reply's model echoes the request's.
"""

from __future__ import annotations

import base64
import struct
import time
import urllib.parse
from typing import Any

from fakes.common import DEFAULT_TEXT, j
from fakes.routes import route

OPENAI_USAGE: dict[str, Any] = {
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 100,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
OPENAI_RESPONSES_USAGE: dict[str, Any] = {
    "input_tokens": 1000,
    "input_tokens_details": {"cached_tokens": 200},
    "output_tokens": 500,
    "output_tokens_details": {"reasoning_tokens": 100},
    "total_tokens": 1500,
}
OPENAI_EMBEDDINGS_USAGE: dict[str, Any] = {"prompt_tokens": 1000, "total_tokens": 1000}
#: `web_search_call` items a Responses reply holds when the request has a web search tool.
WEB_SEARCH_CALLS = 2


def headers(h) -> dict[str, str]:
    return {
        "x-request-id": f"req_{h.req_id}",
        "openai-processing-ms": "12",
        "openai-organization": "fake-org",
        "openai-version": "2020-10-01",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-limit-tokens": "30000000",
        "x-ratelimit-remaining-tokens": "29999000",
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-reset-tokens": "2ms",
    }


def errors(h, status: int) -> None:
    etype = {429: "rate_limit_exceeded", 401: "invalid_request_error",
             400: "invalid_request_error"}.get(status, "server_error")
    body = {"error": {"message": f"fake provider error (status {status})", "type": etype, "param": None,
                      "code": None}}
    extra = headers(h)
    if status == 429:
        extra["retry-after"] = "1"
    h.send_json(status, body, extra)


def served_tier(h) -> str:
    """The tier the reply says served it: the one asked for (`auto` and none: `default`)."""
    tier = h.body.get("service_tier")
    return tier if isinstance(tier, str) and tier != "auto" else "default"


def chat(h, model: str) -> None:
    usage = h.usage(OPENAI_USAGE)
    cid = f"chatcmpl-fake{h.req_id}"
    created = int(time.time())
    text = DEFAULT_TEXT
    if not h.body.get("stream"):
        return h.send_json(
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text,
                                    "refusal": None, "annotations": []},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
                "service_tier": served_tier(h),
                "system_fingerprint": "fp_fake",
            },
            headers(h),
        )
    include_usage = bool((h.body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict, finish: str | None, choices: bool = True) -> bytes:
        obj: dict[str, Any] = {
            "id": cid, "object": "chat.completion.chunk", "created": created,
            "model": model, "service_tier": served_tier(h), "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}] if choices else [],
        }
        if include_usage:
            obj["usage"] = None
        return f"data: {j(obj)}\n\n".encode()

    def events():
        yield chunk({"role": "assistant", "content": "", "refusal": None}, None)
        for piece in h.pieces():
            yield chunk({"content": piece}, None)
        yield chunk({}, "stop")
        if include_usage:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": model, "service_tier": served_tier(h),
                   "system_fingerprint": "fp_fake", "choices": [], "usage": usage}
            yield f"data: {j(obj)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    h.stream(events(), "text/event-stream; charset=utf-8", headers(h))

def completions(h, model: str) -> None:
    default = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
               "prompt_tokens_details": {"cached_tokens": 200},
               "completion_tokens_details": {"reasoning_tokens": 100}}
    usage = h.usage(default)
    cid = f"cmpl-fake{h.req_id}"
    created = int(time.time())
    if not h.body.get("stream"):
        return h.send_json(
            200,
            {"id": cid, "object": "text_completion", "created": created, "model": model,
             "choices": [{"text": DEFAULT_TEXT, "index": 0, "logprobs": None,
                          "finish_reason": "stop"}],
             "usage": usage, "system_fingerprint": "fp_fake"},
            headers(h),
        )
    include_usage = bool((h.body.get("stream_options") or {}).get("include_usage"))

    def obj(choices: list, **extra) -> bytes:
        o = {"id": cid, "object": "text_completion", "created": created, "model": model,
             "choices": choices, "system_fingerprint": "fp_fake", **extra}
        if include_usage and "usage" not in o:
            o["usage"] = None
        return f"data: {j(o)}\n\n".encode()

    def events():
        pieces = h.pieces()
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            yield obj([{"text": piece, "index": 0, "logprobs": None,
                        "finish_reason": "stop" if last else None}])
        if include_usage:
            yield obj([], usage=usage)
        yield b"data: [DONE]\n\n"

    h.stream(events(), "text/event-stream; charset=utf-8", headers(h))

def embeddings(h, model: str) -> None:
    inp = h.body.get("input", "")
    n = len(inp) if isinstance(inp, list) and inp and not isinstance(inp[0], int) else 1
    dims = int(h.body.get("dimensions") or 8)
    b64 = h.body.get("encoding_format") == "base64"
    data = []
    for i in range(n):
        vec = [round(((i + 1) * (j + 1) % 17) / 17.0 - 0.5, 6) for j in range(dims)]
        emb: Any = (base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
                    if b64 else vec)
        data.append({"object": "embedding", "index": i, "embedding": emb})
    h.send_json(
        200,
        {"id": f"embd-fake{h.req_id}", "object": "list", "data": data, "model": model,  # (Mistral's SDK needs the id)
         "usage": h.usage(OPENAI_EMBEDDINGS_USAGE)},
        headers(h),
    )

def responses(h, model: str) -> None:
    usage = h.usage(OPENAI_RESPONSES_USAGE)
    rid = f"resp_fake{h.req_id}"
    mid = f"msg_fake{h.req_id}"
    created = int(time.time())
    text = DEFAULT_TEXT

    searches = [
        {"id": f"ws_fake{h.req_id}_{i}", "type": "web_search_call", "status": "completed",
         "action": {"type": "search", "query": "fake query", "sources": []}}
        for i in range(WEB_SEARCH_CALLS)
    ] if any(str(tool.get("type", "")).startswith("web_search") for tool in h.body.get("tools") or ()
             if isinstance(tool, dict)) else []

    def response(status: str, with_output: bool, with_usage: bool) -> dict:
        return {
            "id": rid, "object": "response", "created_at": created, "status": status,
            "background": False, "error": None, "incomplete_details": None,
            "instructions": h.body.get("instructions"),
            "max_output_tokens": h.body.get("max_output_tokens"),
            "model": model,
            "output": searches + [
                {"id": mid, "type": "message", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": text, "annotations": [],
                              "logprobs": []}]}
            ] if with_output else [],
            "parallel_tool_calls": True, "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": served_tier(h),
            "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}},
            "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
            "usage": usage if with_usage else None, "user": None, "metadata": {},
        }

    if not h.body.get("stream"):
        return h.send_json(200, response("completed", True, True),
                               headers(h))

    seq = iter(range(1_000_000))

    def ev(etype: str, payload: dict) -> bytes:
        obj = {"type": etype, "sequence_number": next(seq), **payload}
        return f"event: {etype}\ndata: {j(obj)}\n\n".encode()

    def events():
        yield ev("response.created", {"response": response("in_progress", False, False)})
        yield ev("response.in_progress", {"response": response("in_progress", False, False)})
        for i, item in enumerate(searches):
            yield ev("response.output_item.added", {"output_index": i, "item": {**item, "status": "in_progress"}})
            yield ev("response.output_item.done", {"output_index": i, "item": item})
        yield ev("response.output_item.added", {
            "output_index": len(searches),
            "item": {"id": mid, "type": "message", "status": "in_progress",
                     "role": "assistant", "content": []}})
        yield ev("response.content_part.added", {
            "item_id": mid, "output_index": len(searches), "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
        for piece in h.pieces():
            yield ev("response.output_text.delta", {
                "item_id": mid, "output_index": len(searches), "content_index": 0, "delta": piece,
                "logprobs": []})
        yield ev("response.output_text.done", {
            "item_id": mid, "output_index": len(searches), "content_index": 0, "text": text,
            "logprobs": []})
        yield ev("response.content_part.done", {
            "item_id": mid, "output_index": len(searches), "content_index": 0,
            "part": {"type": "output_text", "text": text, "annotations": [], "logprobs": []}})
        yield ev("response.output_item.done", {
            "output_index": len(searches),
            "item": {"id": mid, "type": "message", "status": "completed",
                     "role": "assistant",
                     "content": [{"type": "output_text", "text": text, "annotations": [],
                                  "logprobs": []}]}})
        yield ev("response.completed", {"response": response("completed", True, True)})

    h.stream(events(), "text/event-stream; charset=utf-8", headers(h))


OPERATIONS = {"chat/completions": chat, "completions": completions, "embeddings": embeddings,
              "responses": responses}
_OPS = "|".join(OPERATIONS)


@route("POST", rf"/openai/deployments/(?P<deployment>[^/]+)/(?P<op>{_OPS})", errors)
def deployment(h, match) -> None:
    OPERATIONS[match["op"]](h, h.body_model(urllib.parse.unquote(match["deployment"])))


# `??`: the shortest prefix, so `/chat/completions` at the root (DeepSeek, Perplexity) is chat,
# not a legacy completion under `/chat`.
@route("POST", rf"(?:/[^?]*?)??/(?P<op>{_OPS})", errors)
def operation(h, match) -> None:
    OPERATIONS[match["op"]](h, h.body_model())
