"""Reading a request body before it is forwarded, without trusting its shape.

Budget reservations need the model, whether the answer streams and the most output tokens
it may produce. Every JSON API reads them the same way; only where the output cap lives
differs, and that is the `Api`'s `max_output(body)`. Uploads (OpenAI's image edits and
audio) are multipart forms: `read_form` gives their text fields and the size of each file.
A body that cannot be read is still a call: it gets a `CallRequest` with `parse_error` set
rather than an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core import jsontext
from providers.base import CallRequest, Endpoint
from providers.values import count

__all__ = ["Form", "choices", "load_object", "read_form", "read_json_request", "text_field"]


def choices(value: Any) -> int:
    """A choice count (`n`, `candidateCount`, `best_of`): at least 1."""
    n = count(value)
    return n if n and n > 1 else 1


def load_object(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(the body as a JSON object, None) or (None, why it is not one)."""
    if not body:
        return None, "empty request body"
    try:
        obj = jsontext.loads(body)
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
        service_tier=text_field(obj.get("service_tier")),
    )


def text_field(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def _unreadable_cap(max_output: Callable[[dict[str, Any]], int | None]) -> int | None:
    """An API without output (embeddings) says 0 of an empty body too: keep that bound."""
    return 0 if max_output({}) == 0 else None


# --- multipart forms -----------------------------------------------------------------

#: A text field longer than this is not kept (a prompt is at most 32,000 characters).
MAX_FIELD_BYTES = 256 * 1024
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_PART_NAME = re.compile(rb'\bname="([^"]*)"', re.IGNORECASE)
_PART_FILENAME = re.compile(rb'\bfilename\*?="?([^";\r\n]*)', re.IGNORECASE)


@dataclass(slots=True)
class Form:
    """A multipart/form-data body: its text fields (the last value of each name wins, as
    servers read them) and, for each file part, its field name and size in bytes."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, int]] = field(default_factory=list)

    def file_bytes(self, *names: str) -> int:
        """The total size of the files sent under `names` (all files without names)."""
        return sum(size for name, size in self.files if not names or name in names)

    def count(self, *names: str) -> int:
        return sum(1 for name, _ in self.files if name in names)


def read_form(body: bytes, content_type: str) -> tuple[Form | None, str | None]:
    """(the form, None) or (None, why the body is not one). File contents are never
    copied: only their sizes are kept."""
    m = _BOUNDARY.search(content_type or "")
    if m is None or "multipart/form-data" not in content_type.lower():
        return None, "request body is not multipart/form-data"
    delimiter = b"--" + (m.group(1) or m.group(2)).encode("latin-1", "replace")
    pos = body.find(delimiter)
    if pos < 0:
        return None, "multipart body without its boundary"
    form = Form()
    while True:
        pos += len(delimiter)
        if body[pos:pos + 2] == b"--":
            return form, None
        head_end = body.find(b"\r\n\r\n", pos)
        if head_end < 0:
            return None, "multipart part without headers"
        end = body.find(b"\r\n" + delimiter, head_end + 4)
        if end < 0:
            return None, "multipart body cut off"
        head = body[pos:head_end]
        name = _PART_NAME.search(head)
        key = name.group(1).decode("utf-8", "replace") if name else ""
        start = head_end + 4
        if _PART_FILENAME.search(head):
            form.files.append((key, end - start))
        elif end - start <= MAX_FIELD_BYTES:
            form.fields[key] = body[start:end].decode("utf-8", "replace")
        pos = end + 2
