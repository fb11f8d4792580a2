"""Fake Cohere v2: `/v2/chat` (whole, or `"stream": true` → SSE with `event:` names from
`message-start` to `message-end`, then `data: [DONE]`), `/v2/embed`, `/v2/rerank` (and
`/v1/embed`, `/v1/rerank`, which answer alike). No answer names its model, as at Cohere.
Billed units differ from `tokens` (which count tokens Cohere adds and does not bill), so a
test can tell which one was charged. `x-fake-usage` replaces chat's `usage`, or embed's and
rerank's `meta.billed_units`."""

from __future__ import annotations

from typing import Any

from fakes.common import DEFAULT_TEXT, j
from fakes.routes import route

COHERE_CHAT_USAGE: dict[str, Any] = {
    "billed_units": {"input_tokens": 1000.0, "output_tokens": 500.0},
    "tokens": {"input_tokens": 1807.0, "output_tokens": 512.0},
    "cached_tokens": 0.0,
}
COHERE_EMBED_BILLED: dict[str, Any] = {"input_tokens": 1000.0}
COHERE_RERANK_BILLED: dict[str, Any] = {"search_units": 1.0}


def headers(h) -> dict[str, str]:
    return {"x-request-id": h.req_id, "num_tokens": "1000", "x-endpoint-monthly-call-limit": "1000",
            "x-trial-endpoint-call-remaining": "999"}


def errors(h, status: int) -> None:
    h.send_json(status, {"id": h.req_id, "message": f"fake provider error (status {status})"}, headers(h))


def _meta(billed: dict[str, Any]) -> dict[str, Any]:
    return {"api_version": {"version": "2", "is_experimental": False}, "billed_units": billed}


@route("POST", r"/v2/chat", errors)
def chat(h, match) -> None:
    usage = h.usage(COHERE_CHAT_USAGE)
    cid = f"fake-{h.req_id}"
    if not h.body.get("stream"):
        return h.send_json(200, {
            "id": cid, "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": DEFAULT_TEXT}]},
            "usage": usage,
        }, headers(h))

    def ev(etype: str, obj: dict) -> bytes:
        return f"event: {etype}\ndata: {j({'type': etype, **obj})}\n\n".encode()

    def events():
        yield ev("message-start", {"id": cid, "delta": {"message": {
            "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}})
        yield ev("content-start", {"index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}})
        for piece in h.pieces():
            yield ev("content-delta", {"index": 0, "delta": {"message": {"content": {"text": piece}}}})
        yield ev("content-end", {"index": 0})
        yield ev("message-end", {"delta": {"finish_reason": "COMPLETE", "usage": usage}})
        yield b"data: [DONE]\n\n"

    h.stream(events(), "text/event-stream", headers(h))


@route("POST", r"/v[12]/embed", errors)
def embed(h, match) -> None:
    texts = h.body.get("texts") or []
    vectors = [[0.0125, -0.25, 0.5, 0.75] for _ in texts]
    kinds = h.body.get("embedding_types") or ["float"]
    h.send_json(200, {
        "id": f"fake-{h.req_id}", "response_type": "embeddings_by_type",
        "embeddings": {kind: vectors for kind in kinds}, "texts": texts,
        "meta": _meta(h.usage(COHERE_EMBED_BILLED)),
    }, headers(h))


@route("POST", r"/v[12]/rerank", errors)
def rerank(h, match) -> None:
    documents = h.body.get("documents") or []
    results = [{"index": i, "relevance_score": round(1.0 / (i + 1), 4)} for i in range(len(documents))]
    top_n = h.body.get("top_n")
    h.send_json(200, {
        "id": f"fake-{h.req_id}", "results": results[:top_n] if isinstance(top_n, int) else results,
        "meta": _meta(h.usage(COHERE_RERANK_BILLED)),
    }, headers(h))
