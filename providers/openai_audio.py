"""OpenAI's Audio API: `/audio/transcriptions` and `/audio/translations` (multipart uploads,
speech to text) and `/audio/speech` (text to speech).

How each model is billed, and where the figures come from:

- gpt-4o-transcribe and -mini-transcribe: token usage (`usage.type: tokens`), audio and text
  input priced apart (`input_token_details.audio_tokens` → `units["input_audio_tokens"]`),
  whole or in the stream's `transcript.text.done` event.
- whisper-1: by the audio's duration (`usage.type: duration`, or verbose_json's `duration`)
  → `units["audio_seconds"]` and `units["input_audio_seconds"]`, as genai-prices prices it.
  A `text`, `srt` or `vtt` reply (and a translation) reports nothing: the duration is
  estimated from the upload's size, and the call recorded as estimated.
- tts-1 and tts-1-hd: by the request's input characters (`units["input_characters"]`): the
  reply is audio bytes.
- gpt-4o-mini-tts: tokens, reported only with `stream_format: sse` (`speech.audio.done`);
  the audio reply says nothing, so it is estimated from the text and recorded as such.

Audio replies are passed through as they arrive (framing `raw`): never held back.

Reservations (the most a call can cost) come from the request alone, so they are bounds:
- an upload's duration is at most its size at the lowest bitrate speech is encoded at
  (`MIN_AUDIO_BYTES_PER_SECOND`, 6 kbit/s Opus), its audio input tokens at most
  `MAX_AUDIO_TOKENS_PER_SECOND` of that, its transcript at most `MAX_TEXT_TOKENS_PER_SECOND`;
- speech output at most `MAX_SPEECH_TOKENS_PER_CHAR` audio tokens per input character.
"""

from __future__ import annotations

import math
from typing import Any

from core.usage import TokenUsage
from core.vocab import EndpointKind
from providers.base import Api, CallRequest, Endpoint
from providers.parsing import UsageParser, count_at, get_path, slen
from providers.reading import load_object, read_form, text_field
from providers.values import count

__all__ = [
    "SPEECH",
    "TRANSCRIPTIONS",
    "TRANSLATIONS",
    "OpenAISpeechParser",
    "OpenAITranscriptionParser",
    "SpeechApi",
    "TranscriptionApi",
    "transcription_usage",
]

#: 6 kbit/s, the lowest bitrate Opus encodes speech at: no upload holds more audio per byte.
MIN_AUDIO_BYTES_PER_SECOND = 750
#: 128 kbit/s, a common MP3 bitrate: the estimate of a duration nobody reported.
TYPICAL_AUDIO_BYTES_PER_SECOND = 16_000
#: Audio tokens per second of input speech: 10 (OpenAI's Realtime guide: a token per
#: 100 ms of user audio); bounds allow twice that.
AUDIO_TOKENS_PER_SECOND = 10
MAX_AUDIO_TOKENS_PER_SECOND = 20
#: Transcript tokens per second of speech: about 3 (150 words a minute); bounds allow 10.
TEXT_TOKENS_PER_SECOND = 3
MAX_TEXT_TOKENS_PER_SECOND = 10
#: gpt-4o-mini-tts output: about 20 audio tokens per second (OpenAI's estimate of
#: $0.015 a minute at $12 per million), at about 15 characters a second; bounds allow 5
#: tokens a character (speech three times slower than usual).
SPEECH_TOKENS_PER_CHAR = 20 / 15
MAX_SPEECH_TOKENS_PER_CHAR = 5
BYTES_PER_TOKEN = 4  # an estimate of text tokens from their bytes


def _ceil(value: float) -> int:
    return math.ceil(value) if value > 0 else 0


def _by_duration(model: str | None) -> bool:
    """whisper-1 (and other Whisper deployments) bill by the second, not by tokens."""
    return bool(model) and "whisper" in model.lower()  # type: ignore[union-attr]


def duration_units(seconds: float) -> dict[str, int]:
    """A duration as genai-prices' units: `audio_seconds` and its input part."""
    s = _ceil(seconds)
    return {"audio_seconds": s, "input_audio_seconds": s}


# --- transcriptions and translations ---------------------------------------------------


def _transcription_usage(model: str | None, audio_bytes: int, prompt_bytes: int, *, bytes_per_second: int,
                         audio_rate: int, text_rate: int, bytes_per_token: int) -> TokenUsage:
    """The usage of transcribing `audio_bytes` of audio with a `prompt_bytes` prompt, at
    the given rates: the bound (lowest bitrate, highest token rates, a token per prompt
    byte) or the estimate (typical ones)."""
    seconds = audio_bytes / bytes_per_second
    if _by_duration(model):
        return TokenUsage(units=duration_units(seconds))
    audio = _ceil(seconds * audio_rate)
    return TokenUsage(
        input_tokens=audio + _ceil(prompt_bytes / bytes_per_token),
        output_tokens=_ceil(seconds * text_rate),
        units={"input_audio_tokens": audio},
    )


class TranscriptionApi(Api):
    """`/audio/transcriptions` or `/audio/translations`: a multipart upload (`file`)."""

    def __init__(self, kind: EndpointKind) -> None:
        self.kind = kind  # type: ignore[misc]

    meters = ("gpt-4o-transcribe family: audio and text input, output tokens; whisper-1: audio seconds "
              "(estimated from the upload when the reply has no usage)")

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        form, error = read_form(body, content_type)
        fields = form.fields if form is not None else {}
        model = text_field(fields.get("model")) or endpoint.url_model
        audio = form.file_bytes("file") if form is not None else len(body)
        prompt = len(fields.get("prompt", "").encode())
        return CallRequest(
            model=model,
            # whisper-1 ignores `stream`; the others stream their transcript as SSE
            stream=fields.get("stream") == "true" and not _by_duration(model),
            max_output_tokens=None,
            input_bytes=len(body),
            parse_error=error,
            max_usage=_transcription_usage(model, audio, prompt, bytes_per_second=MIN_AUDIO_BYTES_PER_SECOND,
                                           audio_rate=MAX_AUDIO_TOKENS_PER_SECOND,
                                           text_rate=MAX_TEXT_TOKENS_PER_SECOND, bytes_per_token=1),
            expected_usage=_transcription_usage(model, audio, prompt,
                                                bytes_per_second=TYPICAL_AUDIO_BYTES_PER_SECOND,
                                                audio_rate=AUDIO_TOKENS_PER_SECOND,
                                                text_rate=TEXT_TOKENS_PER_SECOND,
                                                bytes_per_token=BYTES_PER_TOKEN),
        )

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return OpenAITranscriptionParser()


TRANSCRIPTIONS = TranscriptionApi(EndpointKind.TRANSCRIPTION)
TRANSLATIONS = TranscriptionApi(EndpointKind.TRANSLATION)


def transcription_usage(u: Any) -> TokenUsage | None:
    """A transcription's `usage`: `{type: tokens, ...}` or `{type: duration, seconds}`."""
    if not isinstance(u, dict):
        return None
    if u.get("type") == "duration" or ("seconds" in u and "input_tokens" not in u):
        seconds = u.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            return None
        return TokenUsage(units=duration_units(seconds))
    inp, out = count(u.get("input_tokens")), count(u.get("output_tokens"))
    if inp is None and out is None:
        return None
    audio = count_at(u, "input_token_details", "audio_tokens") or count_at(u, "input_tokens_details", "audio_tokens")
    return TokenUsage(input_tokens=inp or 0, output_tokens=out or 0,
                      units={"input_audio_tokens": audio} if audio else {})


class OpenAITranscriptionParser(UsageParser):
    """A transcription or translation reply: JSON with `usage` (or verbose_json's
    `duration`), plain text (`text`, `srt`, `vtt`: whole, no usage), or an SSE stream of
    `transcript.text.delta` events ending in `transcript.text.done` with usage."""

    def feed_body(self, body: bytes | str) -> None:
        if body[:64].lstrip()[:1] not in (b"{", "{"):  # a plain-text transcript: whole, no usage
            self.output_chars += len(body)
            self.complete = bool(body)
            if not body:
                self.note_error("empty response body")
            return
        super().feed_body(body)

    def _on_body(self, obj: Any) -> None:
        self.output_chars += slen(obj.get("text"))
        usage = transcription_usage(obj.get("usage"))
        if usage is None:
            duration = obj.get("duration")
            if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration >= 0:
                usage = TokenUsage(units=duration_units(duration))  # verbose_json without usage
        if usage is not None:
            self._usage = usage
            self.complete = True
        elif isinstance(obj.get("text"), str):
            self.complete = True  # a translation: whole, says nothing of usage
        else:
            self.note_error("no usage in response body")

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        etype = obj.get("type") if isinstance(obj.get("type"), str) else event or ""
        if etype == "transcript.text.delta":
            self.output_chars += slen(obj.get("delta"))
        elif etype == "transcript.text.done":
            self.ended = True
            usage = transcription_usage(obj.get("usage"))
            if usage is not None:
                self._usage = usage
                self.complete = True


# --- speech ---------------------------------------------------------------------------


def _by_characters(model: str | None) -> bool:
    """tts-1 and tts-1-hd bill by input character; gpt-4o-mini-tts by tokens."""
    return bool(model) and model.lower().startswith("tts-")  # type: ignore[union-attr]


class SpeechApi(Api):
    """`/audio/speech`: text in (`input`, `instructions`), audio out (bytes, or SSE with
    `stream_format: sse`)."""

    kind = EndpointKind.SPEECH
    meters = ("tts-1, tts-1-hd: input characters (from the request); gpt-4o-mini-tts: text input and audio "
              "output tokens (estimated from the text when the reply is audio bytes)")

    def read_request(self, endpoint: Endpoint, body: bytes, content_type: str = "") -> CallRequest:
        obj, error = load_object(body)
        fields = obj or {}
        model = text_field(fields.get("model")) or endpoint.url_model
        text = fields.get("input") if isinstance(fields.get("input"), str) else ""
        instructions = fields.get("instructions") if isinstance(fields.get("instructions"), str) else ""
        if error is not None:
            text = ""
        if _by_characters(model):
            units = {"input_characters": len(text) if error is None else len(body)}
            return CallRequest(model=model, stream=False, max_output_tokens=0, input_bytes=len(body),
                               parse_error=error, units=units, max_usage=TokenUsage(units=units))
        text_bytes = len(text.encode()) + len(instructions.encode()) if error is None else len(body)
        chars = len(text) if error is None else len(body)
        most_out = _ceil(chars * MAX_SPEECH_TOKENS_PER_CHAR)
        expected_out = _ceil(chars * SPEECH_TOKENS_PER_CHAR)
        return CallRequest(
            model=model,
            stream=fields.get("stream_format") == "sse",
            max_output_tokens=most_out,
            input_bytes=len(body),
            parse_error=error,
            max_usage=TokenUsage(input_tokens=text_bytes, output_tokens=most_out,
                                 units={"output_audio_tokens": most_out}),
            expected_usage=TokenUsage(input_tokens=_ceil(text_bytes / BYTES_PER_TOKEN), output_tokens=expected_out,
                                      units={"output_audio_tokens": expected_out}),
        )

    def new_parser(self, endpoint: Endpoint) -> UsageParser:
        return OpenAISpeechParser()


SPEECH = SpeechApi()


class OpenAISpeechParser(UsageParser):
    """A speech reply: audio bytes (passed through; their end is all they say), or SSE
    `speech.audio.delta` events (base64 audio, never parsed) and `speech.audio.done` with
    `usage: {input_tokens, output_tokens}` (the output is audio)."""

    def end_of_stream(self) -> None:
        if self.events == 0 and self.error is None:  # raw audio, not SSE: whole once it ended
            self.complete = self.ended = True

    def feed_body(self, body: bytes | str) -> None:
        if body[:1] in (b"{", "{"):
            super().feed_body(body)  # an error, or JSON we don't expect: no usage in it
        elif body:
            self.complete = self.ended = True  # audio bytes, buffered
        else:
            self.note_error("empty response body")

    def feed_event(self, data: bytes | str, event: str | None = None) -> None:
        head = data[:120].encode("utf-8", "replace") if isinstance(data, str) else data[:120]
        if b'"speech.audio.delta"' in head:
            self.events += 1
            return
        super().feed_event(data, event)

    def _on_body(self, obj: Any) -> None:
        self.note_error("no usage in response body")

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        etype = obj.get("type") if isinstance(obj.get("type"), str) else event or ""
        if etype != "speech.audio.done":
            return
        self.ended = True
        u = obj.get("usage")
        inp, out = count(get_path(u, "input_tokens")), count(get_path(u, "output_tokens"))
        if inp is None and out is None:
            self.note_error("no usage in speech.audio.done")
            return
        self._usage = TokenUsage(input_tokens=inp or 0, output_tokens=out or 0,
                                 units={"output_audio_tokens": out} if out else {})
        self.complete = True
