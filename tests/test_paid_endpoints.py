"""Unit tests of the paid endpoints beyond chat: reading their requests (JSON and multipart),
their usage parsers (whole, streamed, malformed), settlement of replies that report no
usage, and their prices (genai-prices where it has the model and the unit, else
pricing/supplement.py), each against the bill computed by hand from the price page.

End to end, through mitmdump with the real SDKs: tests/test_e2e_paid_endpoints.py.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.usage import TokenUsage
from core.vocab import CallStatus, EndpointKind, Framing, UsageSource
from metering.call import MeteredCall, settlement_usage
from pricing.estimate import estimate_max_cost
from pricing.prices import GENAI_PRICES_SOURCE, UNPRICED, PriceBook, _with_fees
from pricing.supplement import SUPPLEMENT_SOURCE, UNIT_MODELS, Fee
from providers.anthropic import AnthropicMessagesParser
from providers.base import FREE, CallRequest, Endpoint
from providers.openai import OPENAI, OpenAIChatParser, OpenAIResponsesParser
from providers.openai_audio import SPEECH, TRANSCRIPTIONS, OpenAISpeechParser, OpenAITranscriptionParser
from providers.openai_images import (
    IMAGES_EDIT,
    IMAGES_GENERATE,
    LARGE_BYTES,
    OpenAIImagesParser,
    image_output_tokens,
)
from providers.reading import read_form
from providers.stream import StreamTap

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


def usd(amount: str) -> int:
    return int(Decimal(amount) * 1_000_000_000)


def endpoint(path: str, method: str = "POST") -> Endpoint:
    found = OPENAI.route(method, path)
    assert isinstance(found, Endpoint), (method, path)
    return found


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]], boundary: str = "b0undary"):
    out = b""
    for name, value in fields.items():
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n').encode()
    for name, filename, data in files:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# --- recognition ------------------------------------------------------------------------


@pytest.mark.parametrize("path, kind, framing", [
    ("/v1/images/generations", EndpointKind.IMAGES, Framing.SSE),
    ("/v1/images/edits", EndpointKind.IMAGES, Framing.SSE),
    ("/v1/images/variations", EndpointKind.IMAGES, Framing.SSE),
    ("/v1/audio/transcriptions", EndpointKind.TRANSCRIPTION, Framing.SSE),
    ("/v1/audio/translations", EndpointKind.TRANSLATION, Framing.SSE),
    ("/v1/audio/speech", EndpointKind.SPEECH, Framing.RAW),
])
def test_openai_paid_endpoints_are_metered(path, kind, framing):
    found = endpoint(path)
    assert (found.kind, found.framing, found.price_provider) == (kind, framing, "openai")


@pytest.mark.parametrize("method, path", [
    ("POST", "/v1/moderations"), ("POST", "/v1/responses/input_tokens"), ("GET", "/v1/models"),
    ("GET", "/v1/files/file-abc"), ("GET", "/v1/batches/batch_abc"), ("GET", "/v1/images/generations"),
])
def test_free_calls_stay_free(method, path):
    assert OPENAI.route(method, path) is FREE


# --- multipart --------------------------------------------------------------------------


def test_a_form_gives_its_fields_and_file_sizes_without_copying_files():
    body, ctype = multipart({"model": "gpt-image-1", "prompt": "a hat ünïcode"},
                            [("image[]", "a.png", b"\x89PNG\r\n--b0undar\r\n" + bytes(1000)),
                             ("image[]", "b.png", bytes(10)), ("mask", "m.png", bytes(7))])
    form, error = read_form(body, ctype)
    assert error is None
    assert form.fields == {"model": "gpt-image-1", "prompt": "a hat ünïcode"}
    assert form.files == [("image[]", 1017), ("image[]", 10), ("mask", 7)]
    assert form.count("image[]", "mask") == 3 and form.file_bytes("mask") == 7


def test_a_quoted_boundary_is_read():
    body, _ = multipart({"model": "whisper-1"}, [], boundary="a b")
    form, error = read_form(body, 'multipart/form-data; boundary="a b"')
    assert error is None and form.fields == {"model": "whisper-1"}


@pytest.mark.parametrize("body, ctype, error", [
    (b'{"model": "x"}', "application/json", "request body is not multipart/form-data"),
    (b"no boundary here", "multipart/form-data; boundary=zz", "multipart body without its boundary"),
    (b"--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue", "multipart/form-data; boundary=zz",
     "multipart body cut off"),
    (b"--zz\r\nno headers end", "multipart/form-data; boundary=zz", "multipart part without headers"),
    (b"", "multipart/form-data", "request body is not multipart/form-data"),
])
def test_a_malformed_form_is_a_parse_error_not_an_exception(body, ctype, error):
    assert read_form(body, ctype) == (None, error)


# --- images: requests -------------------------------------------------------------------


def test_image_output_tokens_follow_openais_table_and_bound_the_rest():
    # OpenAI's image generation guide, gpt-image-1: low 272/408/400, medium 1056/1584/1568,
    # high 4160/6240/6208 (square/portrait/landscape); gpt-image-2's formula where larger.
    assert image_output_tokens("1024x1536", "low") == 408
    assert image_output_tokens("1536x1024", "medium") == 1568
    assert image_output_tokens("1024x1536", "high") == 6240
    assert image_output_tokens("1024x1024", "high") == 7024  # gpt-image-2 bills more for a square
    # auto (and nothing) is the dearest: high, at the dearest standard size
    assert image_output_tokens("auto", "auto") == image_output_tokens(None, None) == 7024
    assert image_output_tokens("2048x2048", "high") > image_output_tokens("1024x1024", "high")
    assert image_output_tokens("1024x1024", "xhigh") > image_output_tokens("1024x1024", "high")


def test_a_gpt_image_request_bounds_its_tokens():
    body = json.dumps({"model": "gpt-image-1", "prompt": "a cat", "n": 2, "quality": "low",
                       "size": "1024x1024", "stream": True, "partial_images": 2}).encode()
    req = IMAGES_GENERATE.read_request(endpoint("/v1/images/generations"), body, "application/json")
    # 2 images x (272 low square tokens + 2 partial images x 100)
    assert (req.model, req.stream, req.max_output_tokens) == ("gpt-image-1", True, 944)
    assert req.max_usage == TokenUsage(input_tokens=len(body), output_tokens=944,
                                       units={"output_image_tokens": 944})
    assert req.units == {}


@pytest.mark.parametrize("model, size, quality, unit", [
    ("dall-e-3", "1024x1792", "hd", "images_1024x1792_hd"),
    ("dall-e-3", None, None, "images_1024x1024_standard"),
    ("dall-e-2", "512x512", "hd", "images_512x512_standard"),  # dall-e-2 has one quality
])
def test_a_dalle_request_fixes_its_units(model, size, quality, unit):
    body = {"model": model, "prompt": "a cat", "n": 3}
    body.update({k: v for k, v in (("size", size), ("quality", quality)) if v})
    req = IMAGES_GENERATE.read_request(endpoint("/v1/images/generations"), json.dumps(body).encode())
    assert req.units == {unit: 3} and req.max_usage == TokenUsage(units={unit: 3})


def test_an_image_edit_bounds_each_uploaded_image():
    body, ctype = multipart({"model": "gpt-image-1", "prompt": "a hat", "quality": "high", "size": "1024x1536"},
                            [("image[]", "a.png", bytes(3000)), ("image[]", "b.png", bytes(3000)),
                             ("mask", "m.png", bytes(100))])
    req = IMAGES_EDIT.read_request(endpoint("/v1/images/edits"), body, ctype)
    assert req.parse_error is None
    # 3 images x 10,000 input tokens allowed, + 5 prompt bytes; 6,240 high portrait tokens out
    assert req.max_usage == TokenUsage(input_tokens=30_005, output_tokens=6240,
                                       units={"input_image_tokens": 30_000, "output_image_tokens": 6240})


def test_an_unreadable_image_request_is_still_metered():
    req = IMAGES_GENERATE.read_request(endpoint("/v1/images/generations"), b"{not json")
    assert req.parse_error == "invalid JSON in request body" and req.max_usage.output_tokens == 7024
    body, _ = multipart({"model": "gpt-image-1"}, [])
    req = IMAGES_EDIT.read_request(endpoint("/v1/images/edits"), body, "application/json")
    assert req.parse_error == "request body is not multipart/form-data" and req.max_usage is not None


# --- images: responses ------------------------------------------------------------------

IMAGE_USAGE = {"input_tokens": 550, "input_tokens_details": {"text_tokens": 50, "image_tokens": 500},
               "output_tokens": 4160, "total_tokens": 4710}
IMAGE_TOKENS = TokenUsage(input_tokens=550, output_tokens=4160,
                          units={"input_image_tokens": 500, "output_image_tokens": 4160})


def image_body(size: int, usage=IMAGE_USAGE, prompt: str = "a cat") -> bytes:
    b64 = base64.b64encode(bytes(size)).decode()
    return json.dumps({"created": 1, "data": [{"b64_json": b64, "revised_prompt": prompt}],
                       "usage": usage}).encode()


@pytest.mark.parametrize("size", [100, LARGE_BYTES * 2])
def test_image_usage_is_read_small_or_large(size):
    parser = OpenAIImagesParser()
    parser.feed_body(image_body(size, prompt='say "usage": {"input_tokens": 9}'))
    assert parser.complete and parser.error is None
    assert parser.usage == IMAGE_TOKENS


def test_image_output_split_into_text_and_image_tokens():
    parser = OpenAIImagesParser()
    parser.feed_body(image_body(10, usage={**IMAGE_USAGE, "output_tokens_details": {"text_tokens": 160,
                                                                                      "image_tokens": 4000}}))
    assert parser.usage.units == {"input_image_tokens": 500, "output_image_tokens": 4000}


def test_a_dalle_reply_is_whole_without_usage():
    parser = OpenAIImagesParser()
    parser.feed_body(json.dumps({"created": 1, "data": [{"url": "https://x"}]}).encode())
    assert parser.complete and parser.usage is None and parser.error is None


@pytest.mark.parametrize("body", [b"<html>bad gateway</html>", b'{"error": {"message": "no"}}', b"x" * 70_000])
def test_a_bad_image_body_is_an_error_never_an_exception(body):
    parser = OpenAIImagesParser()
    parser.feed_body(body)
    assert not parser.complete and parser.error


def test_image_stream_counts_partials_and_sums_completed_images():
    parser = OpenAIImagesParser()
    big = base64.b64encode(bytes(LARGE_BYTES)).decode()
    for _ in range(2):
        parser.feed_event(json.dumps({"type": "image_generation.partial_image", "b64_json": big}).encode(),
                          "image_generation.partial_image")
    parser.feed_event(b'{"type":"image_generation.partial_image","b64_json":"AAAA"}')  # no event name
    assert parser.partial_images == 3 and parser.usage is None
    for _ in range(2):  # one completed event per final image
        parser.feed_event(json.dumps({"type": "image_generation.completed", "b64_json": big,
                                      "usage": IMAGE_USAGE}).encode())
    assert parser.complete and parser.usage.output_tokens == 8320
    assert parser.usage.units == {"input_image_tokens": 1000, "output_image_tokens": 8320}


# --- audio: requests --------------------------------------------------------------------


def test_a_whisper_upload_is_bounded_and_estimated_from_its_size():
    body, ctype = multipart({"model": "whisper-1", "response_format": "text"}, [("file", "a.mp3", bytes(48_000))])
    req = TRANSCRIPTIONS.read_request(endpoint("/v1/audio/transcriptions"), body, ctype)
    # bound: 48,000 bytes at 750 bytes/s (6 kbit/s) = 64 s; estimate: at 16,000 bytes/s = 3 s
    assert req.max_usage == TokenUsage(units={"audio_seconds": 64, "input_audio_seconds": 64})
    assert req.expected_usage == TokenUsage(units={"audio_seconds": 3, "input_audio_seconds": 3})
    assert req.stream is False


def test_a_token_transcription_is_bounded_in_tokens():
    body, ctype = multipart({"model": "gpt-4o-transcribe", "stream": "true", "prompt": "names: Ann"},
                            [("file", "a.wav", bytes(15_000))])
    req = TRANSCRIPTIONS.read_request(endpoint("/v1/audio/transcriptions"), body, ctype)
    # 15,000 bytes / 750 = 20 s: 20 x 20 audio tokens + 10 prompt bytes in; 20 x 10 text tokens out
    assert req.max_usage == TokenUsage(input_tokens=410, output_tokens=200, units={"input_audio_tokens": 400})
    assert req.stream is True


def test_tts_1_is_billed_by_the_requests_characters():
    body = json.dumps({"model": "tts-1", "voice": "alloy", "input": "héllo wörld"}).encode()
    req = SPEECH.read_request(endpoint("/v1/audio/speech"), body)
    assert req.units == {"input_characters": 11} and req.max_usage == TokenUsage(units={"input_characters": 11})


def test_gpt_4o_mini_tts_is_bounded_and_estimated_from_its_text():
    body = json.dumps({"model": "gpt-4o-mini-tts", "voice": "alloy", "input": "a" * 300,
                       "instructions": "b" * 100}).encode()
    req = SPEECH.read_request(endpoint("/v1/audio/speech"), body)
    assert req.units == {}
    # bound: 400 bytes in, 300 x 5 audio tokens out; estimate: 400 / 4 in, 300 x 20/15 out
    assert req.max_usage == TokenUsage(input_tokens=400, output_tokens=1500, units={"output_audio_tokens": 1500})
    assert req.expected_usage == TokenUsage(input_tokens=100, output_tokens=400, units={"output_audio_tokens": 400})


# --- audio: responses -------------------------------------------------------------------


@pytest.mark.parametrize("body, usage", [
    ({"text": "hi", "usage": {"type": "tokens", "input_tokens": 1050,
                              "input_token_details": {"audio_tokens": 1000, "text_tokens": 50},
                              "output_tokens": 200, "total_tokens": 1250}},
     TokenUsage(input_tokens=1050, output_tokens=200, units={"input_audio_tokens": 1000})),
    ({"text": "hi", "usage": {"type": "duration", "seconds": 90}},
     TokenUsage(units={"audio_seconds": 90, "input_audio_seconds": 90})),
    ({"text": "hi", "usage": {"type": "duration", "seconds": 12.2}},  # billed by the started second
     TokenUsage(units={"audio_seconds": 13, "input_audio_seconds": 13})),
    ({"text": "hi", "duration": 7.5, "segments": []},  # verbose_json without usage
     TokenUsage(units={"audio_seconds": 8, "input_audio_seconds": 8})),
])
def test_transcription_usage(body, usage):
    parser = OpenAITranscriptionParser()
    parser.feed_body(json.dumps(body).encode())
    assert parser.complete and parser.usage == usage and parser.output_chars == 2


def test_a_plain_text_transcript_is_whole_without_usage():
    parser = OpenAITranscriptionParser()
    parser.feed_body(b"1\n00:00:00,000 --> 00:00:02,000\nhello\n")
    assert parser.complete and parser.usage is None and parser.output_chars > 0


@pytest.mark.parametrize("body", [b'{"error": {"message": "bad"}}', b'{"usage": {"type": "duration", "seconds": -1}}',
                                  b"{truncated", b""])
def test_a_bad_transcription_body_is_an_error(body):
    parser = OpenAITranscriptionParser()
    parser.feed_body(body)
    assert not parser.complete and parser.error


def test_a_transcription_stream_is_priced_from_its_done_event():
    parser = OpenAITranscriptionParser()
    parser.feed_event(b'{"type":"transcript.text.delta","delta":"hel"}')
    parser.feed_event(b'{"type":"transcript.text.delta","delta":"lo"}')
    assert parser.output_chars == 5 and not parser.complete
    parser.feed_event(json.dumps({"type": "transcript.text.done", "text": "hello", "usage": {
        "type": "tokens", "input_tokens": 20, "input_token_details": {"audio_tokens": 15}, "output_tokens": 2}}))
    assert parser.complete and parser.usage == TokenUsage(input_tokens=20, output_tokens=2,
                                                          units={"input_audio_tokens": 15})


def test_a_raw_speech_stream_is_whole_at_its_end():
    parser = OpenAISpeechParser()
    tap = StreamTap(parser, framing=Framing.RAW, content_encoding=None)
    assert tap(b"\xff\xfb" + bytes(100)) == b"\xff\xfb" + bytes(100)  # passed on unchanged
    assert not parser.complete
    tap(b"")
    assert parser.complete and parser.usage is None and parser.error is None


def test_a_speech_sse_stream_reports_its_tokens():
    parser = OpenAISpeechParser()
    tap = StreamTap(parser, framing=Framing.SSE, content_encoding=None)
    tap(b'data: {"type":"speech.audio.delta","audio":"' + base64.b64encode(bytes(3000)) + b'"}\n\n')
    tap(b'data: {"type":"speech.audio.done","usage":{"input_tokens":100,"output_tokens":1000}}\n\n')
    tap(b"")
    assert parser.complete
    assert parser.usage == TokenUsage(input_tokens=100, output_tokens=1000, units={"output_audio_tokens": 1000})


def test_a_speech_error_body_is_not_audio():
    parser = OpenAISpeechParser()
    parser.feed_body(b'{"error": {"message": "bad voice"}}')
    assert not parser.complete and parser.error


# --- fees beyond tokens: parsers --------------------------------------------------------

SEARCH = {"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "q"}}
RESPONSE_USAGE = {"input_tokens": 1000, "output_tokens": 500}


def test_responses_web_search_calls_are_units():
    parser = OpenAIResponsesParser()
    parser.feed_body(json.dumps({"model": "gpt-5", "service_tier": "flex", "usage": RESPONSE_USAGE,
                                 "output": [SEARCH, {**SEARCH, "action": {"type": "open_page"}},
                                            {"type": "message", "content": []}]}))
    assert parser.usage == TokenUsage(input_tokens=1000, output_tokens=500, units={"web_searches": 2})
    assert parser.service_tier == "flex"


def test_responses_stream_counts_web_searches_once():
    parser = OpenAIResponsesParser()
    for _ in range(3):
        parser.feed_event(json.dumps({"type": "response.output_item.done", "item": SEARCH}))
    assert parser.usage == TokenUsage(units={"web_searches": 3})  # a cut-off stream keeps them
    parser.feed_event(json.dumps({"type": "response.completed", "response": {
        "service_tier": "priority", "usage": RESPONSE_USAGE, "output": [SEARCH, SEARCH, SEARCH]}}))
    assert parser.complete and parser.usage.units == {"web_searches": 3} and parser.service_tier == "priority"


def test_chat_reports_its_served_tier():
    parser = OpenAIChatParser()
    parser.feed_body(json.dumps({"model": "gpt-5", "service_tier": "flex", "choices": [],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1}}))
    assert parser.service_tier == "flex" and parser.price_context == {"service_tier": "flex"}


def test_anthropic_web_searches_and_one_hour_writes_are_units():
    parser = AnthropicMessagesParser()
    parser.feed_event(json.dumps({"type": "message_start", "message": {"model": "claude-sonnet-4-5", "usage": {
        "input_tokens": 1000, "cache_creation_input_tokens": 50_000, "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 20_000, "ephemeral_1h_input_tokens": 30_000},
        "output_tokens": 1, "service_tier": "priority", "speed": "fast"}}}))
    parser.feed_event(json.dumps({"type": "message_delta", "usage": {
        "output_tokens": 500, "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 1}}}))
    assert parser.usage == TokenUsage(input_tokens=51_000, cache_write_tokens=50_000, output_tokens=500,
                                      units={"web_searches": 3, "cache_write_1h_tokens": 30_000})
    assert parser.service_tier == "priority"
    assert parser.price_context == {"service_tier": "priority", "speed": "fast"}


def test_anthropic_usage_without_fees_has_no_units():
    parser = AnthropicMessagesParser()
    parser.feed_body(json.dumps({"usage": {"input_tokens": 5, "output_tokens": 1, "cache_creation": {
        "ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}, "server_tool_use": {
        "web_search_requests": 0}}}))
    assert parser.usage.units == {}


def test_a_one_hour_breakdown_never_exceeds_its_total():
    parser = AnthropicMessagesParser()
    parser.feed_body(json.dumps({"usage": {"input_tokens": 5, "output_tokens": 1, "cache_creation_input_tokens": 10,
                                           "cache_creation": {"ephemeral_1h_input_tokens": 99}}}))
    assert parser.usage.units == {"cache_write_1h_tokens": 10}


# --- settlement of replies without usage ------------------------------------------------


def call_for(path: str, request: CallRequest) -> MeteredCall:
    return MeteredCall(endpoint=endpoint(path), request=request, started_at=AT, path=path)


def test_request_units_are_the_bill_of_a_whole_reply():
    units = {"input_characters": 1000}
    call = call_for("/v1/audio/speech", CallRequest("tts-1", False, 0, 50, units=units))
    call.parser.feed_body(b"\xff\xfbaudio")
    assert settlement_usage(call, 200, None) == (TokenUsage(units=units), UsageSource.REPORTED, CallStatus.OK)


def test_a_cut_off_reply_is_still_charged_what_the_request_fixes():
    units = {"input_characters": 1000}
    call = call_for("/v1/audio/speech", CallRequest("tts-1", False, 0, 50, units=units))
    call.streamed = True
    assert settlement_usage(call, 200, "connection reset") == (
        TokenUsage(units=units), UsageSource.ESTIMATED, CallStatus.PARTIAL)


def test_an_error_reply_with_request_units_is_not_billed():
    call = call_for("/v1/audio/speech", CallRequest("tts-1", False, 0, 50, units={"input_characters": 10}))
    call.parser.feed_body(b"<html>502 Bad Gateway</html>")  # not JSON: looks like audio
    assert settlement_usage(call, 502, None) == (None, UsageSource.NONE, CallStatus.UPSTREAM_ERROR)


def test_expected_usage_is_charged_as_an_estimate_with_the_text_seen():
    expected = TokenUsage(input_tokens=10, output_tokens=20)
    call = call_for("/v1/audio/transcriptions", CallRequest("gpt-4o-transcribe", False, None, 50,
                                                            expected_usage=expected))
    call.parser.feed_body(b"x" * 400)  # a plain-text transcript: 100 tokens at 4 bytes each
    assert settlement_usage(call, 200, None) == (
        TokenUsage(input_tokens=10, output_tokens=100), UsageSource.ESTIMATED, CallStatus.OK)


def test_a_duration_estimate_never_gains_tokens():
    expected = TokenUsage(units={"audio_seconds": 3, "input_audio_seconds": 3})
    call = call_for("/v1/audio/transcriptions", CallRequest("whisper-1", False, None, 50, expected_usage=expected))
    call.parser.feed_body(b"a long transcript " * 50)
    assert settlement_usage(call, 200, None)[0] == expected


def test_the_served_tier_goes_on_the_record(book):
    call = call_for("/v1/chat/completions", CallRequest("gpt-5", False, None, 50))
    call.parser.feed_body(json.dumps({"service_tier": "flex", "choices": [],
                                      "usage": {"prompt_tokens": 10_000, "completion_tokens": 1_000}}))
    record = call.record(book, 200, None)
    # gpt-5 at flex: 10k x $0.625/M + 1k x $5/M = $0.01125
    assert (record.service_tier, record.cost_nanos) == ("flex", usd("0.01125"))


# --- prices -----------------------------------------------------------------------------


@pytest.mark.parametrize("model, unit, price", [
    # OpenAI's price page, image generation (DALL·E), per image
    ("dall-e-3", "images_1024x1024_standard", "0.040"),
    ("dall-e-3", "images_1024x1024_hd", "0.080"),
    ("dall-e-3", "images_1024x1792_standard", "0.080"),
    ("dall-e-3", "images_1792x1024_standard", "0.080"),
    ("dall-e-3", "images_1024x1792_hd", "0.120"),
    ("dall-e-3", "images_1792x1024_hd", "0.120"),
    ("dall-e-2", "images_256x256_standard", "0.016"),
    ("dall-e-2", "images_512x512_standard", "0.018"),
    ("dall-e-2", "images_1024x1024_standard", "0.020"),
])
def test_dalle_is_priced_per_image_from_the_supplement(book, model, unit, price):
    cost = book.cost("openai", model, TokenUsage(units={unit: 2}), AT)
    assert (cost.nanos, cost.source) == (2 * usd(price), SUPPLEMENT_SOURCE)


def test_every_supplement_model_is_one_genai_prices_lacks():
    for model in UNIT_MODELS:
        assert PriceBook()._find_genai(model.provider, model.model) is None, model.model


def test_an_unlisted_dalle_size_or_tokens_are_unpriced_never_free(book):
    assert book.cost("openai", "dall-e-3", TokenUsage(units={"images_999x999_hd": 1}), AT) == UNPRICED
    assert book.cost("openai", "dall-e-3", TokenUsage(input_tokens=10), AT) == UNPRICED


@pytest.mark.parametrize("model, usage, price", [
    # gpt-image-1: 50 text x $5/M + 500 image x $10/M + 4,160 out x $40/M
    ("gpt-image-1", IMAGE_TOKENS, "0.17165"),
    # gpt-image-1.5 prices image output apart: 50 x $5/M + 500 x $8/M + 160 text out x $10/M + 4,000 x $32/M
    ("gpt-image-1.5", TokenUsage(input_tokens=550, output_tokens=4160,
                                 units={"input_image_tokens": 500, "output_image_tokens": 4000}), "0.13385"),
    # whisper-1: 90 s x $0.006/min (genai-prices $0.36/h)
    ("whisper-1", TokenUsage(units={"audio_seconds": 90, "input_audio_seconds": 90}), "0.009"),
    # gpt-4o-transcribe: 50 text x $2.50/M + 1,000 audio x $6/M + 200 out x $10/M
    ("gpt-4o-transcribe", TokenUsage(input_tokens=1050, output_tokens=200, units={"input_audio_tokens": 1000}),
     "0.008125"),
    # gpt-4o-mini-transcribe: 50 x $1.25/M + 1,000 x $3/M + 200 x $5/M
    ("gpt-4o-mini-transcribe", TokenUsage(input_tokens=1050, output_tokens=200,
                                          units={"input_audio_tokens": 1000}), "0.0040625"),
    # tts-1: $15 per million characters; tts-1-hd: $30
    ("tts-1", TokenUsage(units={"input_characters": 1000}), "0.015"),
    ("tts-1-hd", TokenUsage(units={"input_characters": 1000}), "0.03"),
    # gpt-4o-mini-tts: 100 text in x $0.60/M + 1,000 audio out x $12/M
    ("gpt-4o-mini-tts", TokenUsage(input_tokens=100, output_tokens=1000, units={"output_audio_tokens": 1000}),
     "0.01206"),
    # gpt-5 + 2 web searches: 10k x $1.25/M + 1k x $10/M + 2 x $10/1k
    ("gpt-5", TokenUsage(input_tokens=10_000, output_tokens=1_000, units={"web_searches": 2}), "0.0425"),
])
def test_openai_paid_units_are_priced_by_genai_prices(book, model, usage, price):
    cost = book.cost("openai", model, usage, AT)
    assert (cost.nanos, cost.source) == (usd(price), GENAI_PRICES_SOURCE)


def test_web_search_calls_on_a_model_genai_prices_lists_without_them(book):
    # gpt-4.1-nano: 10k x $0.10/M + 1k x $0.40/M + 2 searches x $10/1k (OpenAI's page: all models)
    cost = book.cost("openai", "gpt-4.1-nano", TokenUsage(input_tokens=10_000, output_tokens=1_000,
                                                          units={"web_searches": 2}), AT)
    assert (cost.nanos, cost.source) == (usd("0.0214"), f"{GENAI_PRICES_SOURCE} + {SUPPLEMENT_SOURCE}")
    # ...and the same model without searches keeps genai-prices alone as its source
    plain = book.cost("openai", "gpt-4.1-nano", TokenUsage(input_tokens=10_000, output_tokens=1_000), AT)
    assert (plain.nanos, plain.source) == (usd("0.0014"), GENAI_PRICES_SOURCE)


def test_gpt_41_web_search_is_genai_prices_ten_dollars_not_the_preview_rate(book):
    # genai-prices has gpt-4.1 and web searches: its $10/1k is used (OpenAI bills the older
    # web_search_preview tool on gpt-4.1 at $25/1k: a known disagreement, see docs/providers.md)
    # 10k x $2/M + 1k x $8/M + 2 x $10/1k = $0.048
    cost = book.cost("openai", "gpt-4.1", TokenUsage(input_tokens=10_000, output_tokens=1_000,
                                                     units={"web_searches": 2}), AT)
    assert cost.nanos == usd("0.048")


def test_anthropic_fees(book):
    # claude-sonnet-4-5: 10k x $3/M + 1k x $15/M + 3 searches x $10/1k = $0.075
    searches = TokenUsage(input_tokens=10_000, output_tokens=1_000, units={"web_searches": 3})
    assert book.cost("anthropic", "claude-sonnet-4-5", searches, AT).nanos == usd("0.075")
    # 1k plain + 50k 1-hour writes x $6/M + 500 x $15/M = $0.3105; without the split, $0.198
    writes = TokenUsage(input_tokens=51_000, cache_write_tokens=50_000, output_tokens=500)
    assert book.cost("anthropic", "claude-sonnet-4-5", writes, AT).nanos == usd("0.198")
    one_hour = TokenUsage(input_tokens=51_000, cache_write_tokens=50_000, output_tokens=500,
                          units={"cache_write_1h_tokens": 50_000})
    assert book.cost("anthropic", "claude-sonnet-4-5", one_hour, AT).nanos == usd("0.3105")
    # claude-3-haiku, which genai-prices lists without web searches: 10k x $0.25/M + 1k x $1.25/M + $0.03
    cost = book.cost("anthropic", "claude-3-haiku", searches, AT)
    assert (cost.nanos, cost.source) == (usd("0.03375"), f"{GENAI_PRICES_SOURCE} + {SUPPLEMENT_SOURCE}")


def test_the_one_hour_fee_is_twice_the_input_price_where_missing():
    from genai_prices.types import ModelPrice as GpPrice
    prices = GpPrice(input_mtok=Decimal(3), output_mtok=Decimal(15), cache_write_mtok=Decimal("3.75"))
    fee = Fee("anthropic", "cache_write_1h_mtok", source="x", factor_of="input_mtok", factor=Decimal(2))
    priced, keys = _with_fees(prices, (fee,))
    assert priced.cache_write_1h_mtok == Decimal(6) and keys == {"cache_write_1h_tokens"}
    assert prices.cache_write_1h_mtok is None  # genai-prices' own set is left alone


@pytest.mark.parametrize("model, tier, price, source", [
    # genai-prices' variants: gpt-5 flex $0.625/$5, priority $2.50/$20 (10k in, 1k out)
    ("gpt-5", "flex", "0.01125", GENAI_PRICES_SOURCE),
    ("gpt-5", "priority", "0.045", GENAI_PRICES_SOURCE),
    ("gpt-5", "default", "0.0225", GENAI_PRICES_SOURCE),
    ("gpt-5", "auto", "0.0225", GENAI_PRICES_SOURCE),
    ("gpt-4.1", "priority", "0.049", GENAI_PRICES_SOURCE),
    # gpt-4.1 has no flex variant: OpenAI bills flex at Batch rates, half of $2/$8
    ("gpt-4.1", "flex", "0.014", f"{GENAI_PRICES_SOURCE} + {SUPPLEMENT_SOURCE} (flex tier)"),
    # gpt-5-nano has no priority price anywhere: the standard one, and the source says so
    ("gpt-5-nano", "priority", "0.0009",
     f"{GENAI_PRICES_SOURCE} (service_tier priority: no price of its own, standard prices)"),
])
def test_the_served_tier_prices_the_call(book, model, tier, price, source):
    cost = book.cost("openai", model, TokenUsage(input_tokens=10_000, output_tokens=1_000), AT,
                     {"service_tier": tier})
    assert (cost.nanos, cost.source) == (usd(price), source)


def test_anthropic_fast_mode_has_its_own_price(book):
    # claude-opus-4-8 fast: 10k x $10/M + 1k x $50/M = $0.15 (standard: $0.075)
    usage = TokenUsage(input_tokens=10_000, output_tokens=1_000)
    assert book.cost("anthropic", "claude-opus-4-8", usage, AT, {"speed": "fast"}).nanos == usd("0.15")
    assert book.cost("anthropic", "claude-opus-4-8", usage, AT, {"service_tier": "standard"}).nanos == usd("0.075")


def test_a_quantity_the_model_has_no_price_for_is_unpriced(book):
    # tokens on a model priced per audio hour; audio seconds on a model priced per token
    assert book.cost("openai", "whisper-1", TokenUsage(input_tokens=100), AT) == UNPRICED
    assert book.cost("openai", "gpt-4o", TokenUsage(units={"audio_seconds": 10}), AT) == UNPRICED
    # a unit genai-prices has no name for, on a genai-prices model
    assert book.cost("openai", "gpt-image-1", TokenUsage(units={"images_1024x1024_hd": 1}), AT) == UNPRICED


# --- reservations -----------------------------------------------------------------------


def test_a_dalle_reservation_is_its_exact_price(book):
    req = IMAGES_GENERATE.read_request(endpoint("/v1/images/generations"), json.dumps(
        {"model": "dall-e-3", "prompt": "x", "size": "1792x1024", "quality": "hd"}).encode())
    assert estimate_max_cost(book, "openai", req, "images", AT, 4096).nanos == usd("0.12")


def test_a_gpt_image_reservation_is_its_dearest_bill(book):
    body = json.dumps({"model": "gpt-image-1", "prompt": "x", "n": 2}).encode()
    req = IMAGES_GENERATE.read_request(endpoint("/v1/images/generations"), body)
    # 2 images at auto (high, square: 7,024 tokens each) x $40/M, + the body's bytes x $5/M
    assert estimate_max_cost(book, "openai", req, "images", AT, 4096).nanos == 2 * 7024 * 40_000 + len(body) * 5_000


def test_a_whisper_reservation_is_its_longest_possible_audio(book):
    body, ctype = multipart({"model": "whisper-1"}, [("file", "a.ogg", bytes(45_000))])
    req = TRANSCRIPTIONS.read_request(endpoint("/v1/audio/transcriptions"), body, ctype)
    # 45,000 bytes at 750 bytes/s = 60 s = 1 min x $0.006
    assert estimate_max_cost(book, "openai", req, "transcription", AT, 4096).nanos == usd("0.006")


def test_a_priority_request_is_reserved_at_priority_prices(book):
    req = CallRequest("gpt-5", False, 1_000, 10_000, service_tier="priority")
    # 10k x $2.50/M + 1k x $20/M = $0.045 (standard: $0.0225)
    assert estimate_max_cost(book, "openai", req, "chat", AT, 4096).nanos == usd("0.045")


def test_a_chat_call_to_a_model_without_token_prices_reserves_as_unpriced(book):
    assert estimate_max_cost(book, "openai", CallRequest("whisper-1", False, 100, 100), "chat", AT, 4096) == UNPRICED


def test_count_units_are_not_clamped_to_the_token_totals():
    from metering.bounds import bound_usage

    request = CallRequest("tts-1", False, 0, 80)
    for usage in (TokenUsage(units={"input_characters": 4096}),
                  TokenUsage(units={"audio_seconds": 1500, "input_audio_seconds": 1500}),
                  TokenUsage(units={"images_1024x1024_hd": 10})):
        assert bound_usage(usage, request.input_bytes, request.max_output_tokens, None) == (usage, {})
    # a token part is still bounded by its total
    fixed, anomaly = bound_usage(TokenUsage(input_tokens=10, units={"input_audio_tokens": 50}),
                                 request.input_bytes, request.max_output_tokens, None)
    assert fixed.units == {"input_audio_tokens": 10} and anomaly == {"units.input_audio_tokens": 50}


def test_an_anthropic_usage_read_early_is_not_changed_by_later_events():
    parser = AnthropicMessagesParser()
    parser.feed_event(json.dumps({"type": "message_start", "message": {"usage": {"input_tokens": 5,
                                                                                 "output_tokens": 1}}}))
    early = parser.usage
    parser.feed_event(json.dumps({"type": "message_delta", "usage": {
        "output_tokens": 9, "server_tool_use": {"web_search_requests": 2}}}))
    assert early.units == {} and parser.usage.units == {"web_searches": 2}


def test_an_unreadable_upload_is_bounded_as_one_image_and_the_longest_prompt():
    req = IMAGES_EDIT.read_request(endpoint("/v1/images/edits"), bytes(1_000_000), "multipart/form-data; boundary=q")
    assert req.parse_error == "multipart body without its boundary"
    assert req.max_usage.input_tokens == 128_000 + 10_000
