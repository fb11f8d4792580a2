"""Reading a JSON request body before it is forwarded, without trusting its shape.

Budget reservations need the model, whether the answer streams and the most output tokens
it may produce. Every JSON API reads them the same way; only where the output cap lives
differs, and that is the `Api`'s `max_output(body)`. A body that cannot be read is still a
call: it gets a `CallRequest` with `parse_error` set rather than an exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from providers.base import CallRequest, Endpoint
from providers.values import count

__all__ = ["choices", "load_object", "read_json_request"]


def choices(value: Any) -> int:
    """A choice count (`n`, `candidateCount`, `best_of`): at least 1."""
    n = count(value)
    return n if n and n > 1 else 1


def load_object(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(the body as a JSON object, None) or (None, why it is not one)."""
    if not body:
        return None, "empty request body"
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, "invalid JSON in request body"
    if not isinstance(obj, dict):
        return None, "request body is not a JSON object"
    return obj, None


def read_json_request(
    endpoint: Endpoint,
    body: bytes,
    max_output: Callable[[dict[str, Any]], int | None],
    *,
    model_in_body: bool = True,
    stream_usage_requested: Callable[[dict[str, Any]], bool] | None = None,
    input_tokens: Callable[[dict[str, Any]], int | None] | None = None,
) -> CallRequest:
    """Model, streaming and output cap of a (decoded) JSON request body.

    The body's `model` wins over the URL's, unless `model_in_body` is False (Gemini, where
    the URL is the only authority). `max_output` multiplies by `n` / `candidateCount` /
    `best_of` itself, because each choice may use the full cap. `input_tokens` counts the
    input from the body, for an API whose answers may not (`CallRequest.input_tokens_estimate`).
    """
    obj, error = load_object(body)
    if obj is None:
        return CallRequest(
            model=endpoint.url_model,
            stream=endpoint.url_streaming,
            max_output_tokens=_unreadable_cap(max_output),
            input_bytes=len(body),
            parse_error=error,
        )
    model = endpoint.url_model
    if model_in_body:
        body_model = obj.get("model")
        if isinstance(body_model, str) and body_model:
            model = body_model
    return CallRequest(
        model=model,
        stream=endpoint.url_streaming or obj.get("stream") is True,
        max_output_tokens=max_output(obj),
        input_bytes=len(body),
        stream_usage_requested=bool(stream_usage_requested and stream_usage_requested(obj)),
        input_tokens_estimate=input_tokens(obj) if input_tokens else None,
    )


def _unreadable_cap(max_output: Callable[[dict[str, Any]], int | None]) -> int | None:
    """An API without output (embeddings) says 0 of an empty body too: keep that bound."""
    return 0 if max_output({}) == 0 else None
