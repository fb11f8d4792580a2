"""Fake AWS Bedrock runtime: Converse, ConverseStream, InvokeModel (Anthropic bodies) and
InvokeModelWithResponseStream (Anthropic events in `chunk` messages, the last with
`amazon-bedrock-invocationMetrics`), on `/model/{modelId}/…` with the id percent-encoded
as boto3 sends it.

Streams are `application/vnd.amazon.eventstream`, written by the encoder below (botocore
only decodes), one HTTP chunk per message, so `x-fake-cut-after: N` cuts after N messages.
`x-fake-corrupt-frame: N` spoils the message CRC of the N-th message (0-based): a
malformed frame. Converse usage follows Bedrock's convention (inputTokens excludes cache
reads and writes); `x-fake-usage` replaces it (Converse's `usage`, or Anthropic's for invoke).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import urllib.parse
from typing import Any

from fakes.anthropic import ANTHROPIC_USAGE, message, messages, stream_events
from fakes.common import DEFAULT_TEXT, j
from fakes.routes import route

#: Converse's default usage: the Anthropic fake's figures in Bedrock's names (1500 in all).
CONVERSE_USAGE: dict[str, Any] = {
    "inputTokens": 700,
    "outputTokens": 500,
    "totalTokens": 1500,
    "cacheReadInputTokens": 200,
    "cacheWriteInputTokens": 100,
}

EVENTSTREAM = "application/vnd.amazon.eventstream"
_ERRORS = {400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
           408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
           503: "ServiceUnavailableException"}


# --- the event-stream encoder (tests only) --------------------------------------------------


def _header(name: str, value: str) -> bytes:
    """One string header (type 7): name length, name, type, value length, value."""
    n, v = name.encode(), value.encode()
    return struct.pack("!B", len(n)) + n + b"\x07" + struct.pack("!H", len(v)) + v


def frame(headers: dict[str, str], payload: bytes, *, corrupt: bool = False) -> bytes:
    """One event-stream message: total and headers lengths, prelude CRC, headers, payload,
    and a CRC of everything before it (spoilt when `corrupt`)."""
    head = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack("!II", 16 + len(head) + len(payload), len(head))
    body = prelude + struct.pack("!I", binascii.crc32(prelude)) + head + payload
    crc = binascii.crc32(body) ^ (0xFFFFFFFF if corrupt else 0)
    return body + struct.pack("!I", crc)


def event(event_type: str, obj: dict[str, Any], *, corrupt: bool = False) -> bytes:
    """An event message as Bedrock sends it (with its random-length padding field `p`)."""
    payload = j({**obj, "p": "abcdefghijklmnopqrstuvwxyz"[: 3 + len(event_type) % 20]}).encode()
    return frame({":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
                 payload, corrupt=corrupt)


def _corrupting(h, events):
    """Yield the events, encoded, with the `x-fake-corrupt-frame`-th one spoilt."""
    bad = h.hint("x-fake-corrupt-frame", -1)
    for i, (event_type, obj) in enumerate(events):
        yield event(event_type, obj, corrupt=i == bad)


# --- replies -------------------------------------------------------------------------------


def headers(h) -> dict[str, str]:
    return {"x-amzn-RequestId": f"fake-{h.req_id}"}


def errors(h, status: int) -> None:
    code = _ERRORS.get(status, "InternalServerException")
    extra = {**headers(h), "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    h.send_json(status, {"message": f"fake provider error (status {status})"}, extra)


def model_id(match: re.Match[str]) -> str:
    return urllib.parse.unquote(match.group("model"))


def anthropic_model(model: str) -> str:
    """The model an Anthropic reply names: `us.anthropic.claude-sonnet-4-5-20250929-v1:0`
    (or an ARN to it) -> `claude-sonnet-4-5-20250929`."""
    name = model.rsplit("/", 1)[-1]
    name = name[name.find("anthropic.") + len("anthropic."):] if "anthropic." in name else name
    return re.sub(r"-v\d+(:\d+)?$", "", name)


def _converse_output() -> dict[str, Any]:
    return {"message": {"role": "assistant", "content": [{"text": DEFAULT_TEXT}]}}


@route("POST", r"/model/(?P<model>[^/]+)/converse", errors)
def converse(h, match) -> None:
    h.send_json(200, {"output": _converse_output(), "stopReason": "end_turn", "usage": h.usage(CONVERSE_USAGE),
                      "metrics": {"latencyMs": 302}}, headers(h))


@route("POST", r"/model/(?P<model>[^/]+)/converse-stream", errors)
def converse_stream(h, match) -> None:
    usage = h.usage(CONVERSE_USAGE)

    def events():
        yield "messageStart", {"role": "assistant"}
        for piece in h.pieces():
            yield "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}
        yield "contentBlockStop", {"contentBlockIndex": 0}
        yield "messageStop", {"stopReason": "end_turn"}
        yield "metadata", {"usage": usage, "metrics": {"latencyMs": 300}}

    h.stream(_corrupting(h, events()), EVENTSTREAM, headers(h))


def _token_headers(usage: dict[str, Any]) -> dict[str, str]:
    return {"X-Amzn-Bedrock-Input-Token-Count": str(usage.get("input_tokens", 0)),
            "X-Amzn-Bedrock-Output-Token-Count": str(usage.get("output_tokens", 0)),
            "X-Amzn-Bedrock-Invocation-Latency": "812"}


@route("POST", r"/model/(?P<model>[^/]+)/invoke", errors)
def invoke(h, match) -> None:
    usage = h.usage(ANTHROPIC_USAGE)
    h.send_json(200, message(h, anthropic_model(model_id(match)), usage), {**headers(h), **_token_headers(usage)})


@route("POST", r"/model/(?P<model>[^/]+)/invoke-with-response-stream", errors)
def invoke_stream(h, match) -> None:
    usage = h.usage(ANTHROPIC_USAGE)
    metrics = {"inputTokenCount": usage.get("input_tokens", 0), "outputTokenCount": usage.get("output_tokens", 0),
               "invocationLatency": 812, "firstByteLatency": 401}

    def chunks():
        for ev in stream_events(h, anthropic_model(model_id(match)), usage):
            if ev["type"] == "ping":
                continue  # Bedrock passes no pings on
            if ev["type"] == "message_stop":
                ev = {**ev, "amazon-bedrock-invocationMetrics": metrics}
            yield "chunk", {"bytes": base64.b64encode(json.dumps(ev).encode()).decode()}

    h.stream(_corrupting(h, chunks()), EVENTSTREAM, {**headers(h), "X-Amzn-Bedrock-Content-Type": "application/json"})


@route("POST", r"/anthropic/v1/messages", errors)
def anthropic_messages(h, match) -> None:
    """Anthropic's Messages API as Bedrock serves it (bedrock-runtime and bedrock-mantle hosts)."""
    messages(h, h.body_model())
