"""Read what a request body says about the call before it is forwarded.

Budget reservations need the model, whether the answer streams and the most
output tokens it may produce; all three are read here without trusting the
body's shape. A body we cannot read is still a call: it gets a `CallRequest`
with `parse_error` set rather than an exception.
"""

from __future__ import annotations

import json
from typing import Any

from providers._values import count as _count
from providers.endpoint import CallRequest, Endpoint

__all__ = ["parse_request", "request_stream_usage", "wants_stream_usage_injection"]


def _choices(value: Any) -> int:
    n = _count(value)
    return n if n and n > 1 else 1


def _max_output(endpoint: Endpoint, body: dict[str, Any]) -> int | None:
    """The cap on output tokens for the whole call (per-choice cap × number of choices)."""
    kind = endpoint.kind
    if kind == "embeddings":
        return 0
    if kind == "chat":
        cap = _count(body.get("max_completion_tokens"))
        if cap is None:
            cap = _count(body.get("max_tokens"))
        return None if cap is None else cap * _choices(body.get("n"))
    if kind == "responses":
        return _count(body.get("max_output_tokens"))
    if kind == "completions":
        cap = _count(body.get("max_tokens"))
        # best_of generates server-side candidates that are billed too
        n = max(_choices(body.get("n")), _choices(body.get("best_of")))
        return None if cap is None else cap * n
    if kind == "messages":
        return _count(body.get("max_tokens"))
    if kind == "generate":
        # Google's JSON mapping accepts both camelCase and proto snake_case names.
        cfg = body.get("generationConfig")
        if not isinstance(cfg, dict):
            cfg = body.get("generation_config")
        if not isinstance(cfg, dict):
            return None
        cap = _count(cfg.get("maxOutputTokens", cfg.get("max_output_tokens")))
        n = _choices(cfg.get("candidateCount", cfg.get("candidate_count")))
        return None if cap is None else cap * n
    return None


def _load(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    if not body:
        return None, "empty request body"
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, "invalid JSON in request body"
    if not isinstance(obj, dict):
        return None, "request body is not a JSON object"
    return obj, None


def parse_request(endpoint: Endpoint, body: bytes) -> CallRequest:
    """Read model, streaming and output cap from a (decoded) request body.

    The body's `model` wins over the URL's, except for Gemini where the URL is
    the only authority. `max_output_tokens` is multiplied by `n` /
    `candidateCount` / `best_of` because each choice may use the full cap.
    """
    obj, error = _load(body)
    if obj is None:
        return CallRequest(
            model=endpoint.url_model,
            stream=endpoint.url_streaming,
            max_output_tokens=0 if endpoint.kind == "embeddings" else None,
            input_bytes=len(body),
            parse_error=error,
        )
    model = endpoint.url_model
    if endpoint.style != "gemini":
        body_model = obj.get("model")
        if isinstance(body_model, str) and body_model:
            model = body_model
    stream = endpoint.url_streaming or obj.get("stream") is True
    usage_requested = False
    if endpoint.style == "openai" and endpoint.kind in ("chat", "completions"):
        opts = obj.get("stream_options")
        usage_requested = isinstance(opts, dict) and opts.get("include_usage") is True
    return CallRequest(
        model=model,
        stream=stream,
        max_output_tokens=_max_output(endpoint, obj),
        input_bytes=len(body),
        stream_usage_requested=usage_requested,
    )


def wants_stream_usage_injection(endpoint: Endpoint, call: CallRequest) -> bool:
    """True when spendgate should ask for stream usage on the client's behalf.

    Only OpenAI-style chat/completions streams report usage on request; every
    other kind reports it unasked.
    """
    return (
        endpoint.style == "openai"
        and endpoint.kind in ("chat", "completions")
        and call.stream
        and not call.stream_usage_requested
        and call.parse_error is None
    )


def request_stream_usage(body: bytes) -> bytes:
    """The body with `stream_options.include_usage = true` merged in.

    Returned unchanged if it is not a JSON object with `"stream": true` (OpenAI
    rejects `stream_options` on non-streamed calls) or already asks for usage.
    When the client sent no `stream_options`, the member is spliced in after the
    opening brace so the rest of the body (possibly megabytes of images) keeps
    its exact bytes; otherwise the body is re-serialised.
    """
    obj, error = _load(body)
    if obj is None or obj.get("stream") is not True:
        return body
    opts = obj.get("stream_options")
    if isinstance(opts, dict) and opts.get("include_usage") is True:
        return body
    if "stream_options" not in obj:
        start = body.find(b"{")
        if start >= 0 and body[:start].strip() in (b"", b"\xef\xbb\xbf"):  # UTF-8, maybe with BOM
            # The object has at least "stream", so a comma always follows.
            return body[: start + 1] + b'"stream_options":{"include_usage":true},' + body[start + 1 :]
    merged = dict(opts) if isinstance(opts, dict) else {}
    merged["include_usage"] = True
    obj["stream_options"] = merged
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
