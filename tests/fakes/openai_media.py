"""Fake OpenAI images and audio: `/v1/images/{generations,edits,variations}` and
`/v1/audio/{transcriptions,translations,speech}`, in the shapes openai 3.57 reads.

- Images: GPT image models answer with token usage (`IMAGES_USAGE`); dall-e with a `data`
  list and no usage. `stream: true` sends `partial_images` partial-image events, then a
  `*.completed` event with the usage. The image is `IMAGE_BYTES` of base64 (over 64 KB, so
  the proxy's large-body reading is what meters it).
- Transcriptions: token models report `TRANSCRIBE_USAGE`; whisper-1 a duration
  (`WHISPER_SECONDS`); `text`/`srt`/`vtt` formats are plain text; `stream=true` (not
  whisper) is SSE ending in `transcript.text.done` with usage. Translations: no usage.
- Speech: audio bytes in `SPEECH_CHUNKS` chunks (audio/mpeg), or with `stream_format:
  sse` `speech.audio.delta` events and `speech.audio.done` with `SPEECH_USAGE`.
`x-fake-usage` replaces any of these usages.
"""

from __future__ import annotations

import base64
import time
from email.parser import BytesParser
from email.policy import default as email_policy
from typing import Any

from fakes.common import DEFAULT_TEXT, j
from fakes.openai import errors, headers
from fakes.routes import route

IMAGES_USAGE: dict[str, Any] = {
    "input_tokens": 550, "input_tokens_details": {"text_tokens": 50, "image_tokens": 500},
    "output_tokens": 4160, "total_tokens": 4710,
}
IMAGE_BYTES = 96 * 1024
TRANSCRIBE_USAGE: dict[str, Any] = {
    "type": "tokens", "input_tokens": 1050, "input_token_details": {"audio_tokens": 1000, "text_tokens": 50},
    "output_tokens": 200, "total_tokens": 1250,
}
WHISPER_SECONDS = 90
SPEECH_USAGE: dict[str, Any] = {"input_tokens": 100, "output_tokens": 1000, "total_tokens": 1100}
SPEECH_CHUNKS = 4
AUDIO = bytes(range(256)) * 64  # 16 KB of "audio" per chunk


def form(h) -> dict[str, Any]:
    """The multipart body's fields (text) and files (bytes), by name; files under a
    repeated name (`image[]`) as a list."""
    ctype = h.headers.get("content-type", "")
    if "multipart/form-data" not in ctype:
        return {}
    msg = BytesParser(policy=email_policy).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + h.raw_body)
    out: dict[str, Any] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            out.setdefault(name, []).append(payload)
        else:
            out[name] = payload.decode("utf-8", "replace")
    return out


def _image_b64() -> str:
    return base64.b64encode((b"\x89PNG fake image " * (IMAGE_BYTES // 16))[: IMAGE_BYTES * 3 // 4]).decode()


def _sse(etype: str, obj: dict) -> bytes:
    return f"event: {etype}\ndata: {j({'type': etype, **obj})}\n\n".encode()


@route("POST", r"(?:/[^?]*?)?/images/(?P<op>generations|edits|variations)", errors)
def images(h, match) -> None:
    fields = h.body if match["op"] == "generations" else form(h)
    model = fields.get("model") or "dall-e-2"
    n = int(fields.get("n") or 1)
    created = int(time.time())
    if str(model).startswith("dall-e"):
        data = [{"url": f"https://fake.invalid/img/{h.req_id}/{i}.png", "revised_prompt": fields.get("prompt")}
                for i in range(n)]
        return h.send_json(200, {"created": created, "data": data}, headers(h))
    usage = h.usage(IMAGES_USAGE)
    if fields.get("stream") in (True, "true"):
        prefix = "image_edit" if match["op"] == "edits" else "image_generation"

        def events():
            for i in range(int(fields.get("partial_images") or 0)):
                yield _sse(f"{prefix}.partial_image", {"b64_json": _image_b64(), "partial_image_index": i,
                                                        "created_at": created, "size": "1024x1024",
                                                        "quality": "high", "background": "opaque",
                                                        "output_format": "png"})
            yield _sse(f"{prefix}.completed", {"b64_json": _image_b64(), "created_at": created,
                                                "size": "1024x1024", "quality": "high", "background": "opaque",
                                                "output_format": "png", "usage": usage})

        return h.stream(events(), "text/event-stream; charset=utf-8", headers(h))
    h.send_json(200, {"created": created, "background": "opaque", "output_format": "png", "quality": "high",
                      "size": "1024x1024", "data": [{"b64_json": _image_b64()} for _ in range(n)],
                      "usage": usage}, headers(h))


@route("POST", r"(?:/[^?]*?)?/audio/(?P<op>transcriptions|translations)", errors)
def transcriptions(h, match) -> None:
    fields = form(h)
    model = fields.get("model") or "whisper-1"
    fmt = fields.get("response_format") or "json"
    whisper = "whisper" in model
    text = DEFAULT_TEXT
    if fmt in ("text", "srt", "vtt"):
        body = text if fmt == "text" else f"1\n00:00:00,000 --> 00:01:30,000\n{text}\n"
        return h.send_body(200, body.encode(), "text/plain; charset=utf-8", headers(h))
    duration = {"type": "duration", "seconds": WHISPER_SECONDS}
    usage = h.usage(duration if whisper else TRANSCRIBE_USAGE)
    if fields.get("stream") == "true" and not whisper:
        def events():
            for piece in h.pieces():
                yield f"data: {j({'type': 'transcript.text.delta', 'delta': piece, 'logprobs': None})}\n\n".encode()
            yield f"data: {j({'type': 'transcript.text.done', 'text': text, 'usage': usage})}\n\n".encode()

        return h.stream(events(), "text/event-stream; charset=utf-8", headers(h))
    reply: dict[str, Any] = {"text": text}
    if fmt == "verbose_json":
        reply = {"task": "transcribe" if match["op"] == "transcriptions" else "translate", "language": "english",
                 "duration": float(WHISPER_SECONDS), "text": text, "segments": []}
    if match["op"] == "transcriptions":
        reply["usage"] = usage
    h.send_json(200, reply, headers(h))


@route("POST", r"(?:/[^?]*?)?/audio/speech", errors)
def speech(h, match) -> None:
    if h.body.get("stream_format") == "sse":
        usage = h.usage(SPEECH_USAGE)

        def events():
            for _ in range(SPEECH_CHUNKS):
                yield f"data: {j({'type': 'speech.audio.delta', 'audio': base64.b64encode(AUDIO).decode()})}\n\n".encode()
            yield f"data: {j({'type': 'speech.audio.done', 'usage': usage})}\n\n".encode()

        return h.stream(events(), "text/event-stream; charset=utf-8", headers(h))
    h.stream((AUDIO for _ in range(SPEECH_CHUNKS)), "audio/mpeg", headers(h))
