"""Fake Gemini generateContent / streamGenerateContent (SSE with `?alt=sse`, else a JSON
array sent in pieces); the model comes from the URL, and `usageMetadata` rides on every
chunk, growing to the final numbers. Also embedContent / batchEmbedContents (the Gemini API
answers them with no usage unless `x-fake-usage` gives one; Vertex AI with
`usageMetadata`) and countTokens, on the Gemini API's paths and Vertex AI's
(`/{v1|v1beta1}[/projects/{p}/locations/{l}]/publishers/google/models/{m}:{method}`)."""

from __future__ import annotations

import copy
import json
import urllib.parse
from typing import Any

from fakes.common import DEFAULT_TEXT, j
from fakes.routes import route

GEMINI_USAGE: dict[str, Any] = {
    "promptTokenCount": 1000,
    "cachedContentTokenCount": 200,
    "candidatesTokenCount": 400,
    "thoughtsTokenCount": 100,
    "totalTokenCount": 1500,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1000}],
    "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 200}],
}


def headers(h) -> dict[str, str]:
    return {"x-goog-request-id": h.req_id, "Vary": "Origin, X-Origin, Referer", "Server-Timing": "gfet4t7; dur=12"}


def errors(h, status: int) -> None:
    gstatus = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
               503: "UNAVAILABLE"}.get(status, "INTERNAL")
    extra = headers(h)
    if status == 429:
        extra["retry-after"] = "1"
    h.send_json(status, {"error": {"code": status, "message": f"fake provider error (status {status})",
                                   "status": gstatus}}, extra)


def usage_chunks(h, model: str, stream: bool) -> list[dict]:
    final = h.usage(GEMINI_USAGE)
    rid = f"fake{h.req_id}"
    pieces = h.pieces() if stream else [DEFAULT_TEXT]
    out = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        if last:
            um = final
        else:
            um = copy.deepcopy(final)
            if "candidatesTokenCount" in um:
                um["candidatesTokenCount"] = int(final["candidatesTokenCount"])* (i + 1) // len(pieces)
                if "totalTokenCount" in um:
                    um["totalTokenCount"] = (int(final.get("promptTokenCount", 0))
                                             + um["candidatesTokenCount"]
                                             + int(final.get("thoughtsTokenCount", 0)))
        cand: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"},
                                "index": 0}
        if last:
            cand["finishReason"] = "STOP"
        out.append({"candidates": [cand], "usageMetadata": um, "modelVersion": model,
                    "responseId": rid})
    return out

def generate(h, model: str) -> None:
    h.send_json(200, usage_chunks(h, model, False)[0], headers(h))

def stream(h, model: str) -> None:
    chunks = usage_chunks(h, model, True)
    if h.query.get("alt") == "sse":
        events = (f"data: {j(c)}\r\n\r\n".encode() for c in chunks)
        return h.stream(events, "text/event-stream", headers(h))

    def array_pieces():
        for i, c in enumerate(chunks):
            yield (("[" if i == 0 else "\n,") + json.dumps(c, indent=2)).encode()

    h.stream(array_pieces(), "application/json; charset=UTF-8", headers(h),
                 trailer=b"]")


GEMINI_EMBED_USAGE: dict[str, Any] = {"promptTokenCount": 1000,
                                      "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1000}]}


def embed(h, model: str, *, vertex: bool, batch: bool) -> None:
    """The Gemini API's embeddings carry no usage (unless `x-fake-usage` says one); Vertex AI's do."""
    values = [0.0125, -0.25, 0.5, 0.75]
    if batch:
        n = len(h.body.get("requests") or [])
        body: dict[str, Any] = {"embeddings": [{"values": values} for _ in range(n)]}
    else:
        body = {"embedding": {"values": values}}
        if vertex:
            body["truncated"] = False
    if vertex or h.usage_override is not None:
        body["usageMetadata"] = h.usage(GEMINI_EMBED_USAGE)
    h.send_json(200, body, headers(h))


def count_tokens(h, model: str) -> None:
    h.send_json(200, {"totalTokens": 42, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 42}]}, headers(h))


METHODS = {
    "generateContent": lambda h, model, vertex: generate(h, model),
    "streamGenerateContent": lambda h, model, vertex: stream(h, model),
    "embedContent": lambda h, model, vertex: embed(h, model, vertex=vertex, batch=False),
    "batchEmbedContents": lambda h, model, vertex: embed(h, model, vertex=vertex, batch=True),
    "countTokens": lambda h, model, vertex: count_tokens(h, model),
}
_METHODS = "|".join(METHODS)


@route("POST", rf"/v1(?:beta|alpha)?/models/(?P<model>[^/]+):(?P<method>{_METHODS})", errors)
def model_method(h, match) -> None:
    METHODS[match["method"]](h, urllib.parse.unquote(match["model"]), False)


@route("POST", rf"/v1(?:beta1)?(?:/projects/[^/]+/locations/[^/]+)?/publishers/google/models/(?P<model>[^/]+)"
               rf":(?P<method>{_METHODS})", errors)
def vertex_model_method(h, match) -> None:
    METHODS[match["method"]](h, urllib.parse.unquote(match["model"]), True)
