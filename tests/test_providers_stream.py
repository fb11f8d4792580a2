"""Reference tests for streamed responses: `StreamTap` framing, decoding and
forwarding, and each provider's streamed usage, whole or cut off.

Every stream here is checked three ways: fed whole, split in two at every byte
boundary, and dribbled one byte at a time. The usage must not depend on where
the network happened to cut the bytes, and what the client receives must be
exactly what upstream sent.
"""

from __future__ import annotations

import gzip
import json
import zlib

import brotli
import pytest
import zstandard

from core.vocab import Framing
from providers import anthropic, gemini, openai
from providers.base import Endpoint
from providers.openai import OpenAIChatParser
from providers.parsing import UsageParser
from providers.stream import StreamTap, feed_stream_body
from core.usage import TokenUsage

CHAT = Endpoint(provider="openai", api=openai.CHAT, price_provider="openai")
COMPLETIONS = Endpoint(provider="openai", api=openai.COMPLETIONS, price_provider="openai")
RESPONSES = Endpoint(provider="openai", api=openai.RESPONSES, price_provider="openai")
ANTHROPIC = Endpoint(provider="anthropic", api=anthropic.MESSAGES, price_provider="anthropic")
GEMINI_SSE = Endpoint(provider="google", api=gemini.GENERATE, price_provider="google",
                      url_model="gemini-2.5-flash", url_streaming=True, framing=Framing.SSE)
GEMINI_ARRAY = Endpoint(provider="google", api=gemini.GENERATE, price_provider="google",
                        url_model="gemini-2.5-flash", url_streaming=True, framing=Framing.JSON_ARRAY)


def parser_for(endpoint: Endpoint) -> UsageParser:
    return endpoint.api.new_parser(endpoint)


def framing(sse_: bool) -> Framing:
    return Framing.SSE if sse_ else Framing.JSON_ARRAY


def sse(*events: tuple[str | None, object], eol: str = "\n") -> bytes:
    """Build an SSE body from (event name, data) pairs; data "[DONE]" is sent raw."""
    out = []
    for name, data in events:
        lines = [] if name is None else [f"event: {name}"]
        lines.append("data: " + (data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))))
        out.append(eol.join(lines) + eol + eol)
    return "".join(out).encode()


def chat_chunk(delta: dict | None = None, finish: str | None = None, usage: object = None, choices: bool = True) -> dict:
    chunk = {
        "id": "chatcmpl-BYk5ytM2PZKH3RTj7mNVakB2VgvGt",
        "object": "chat.completion.chunk",
        "created": 1747829862,
        "model": "o3-mini-2025-01-31",
        "service_tier": "default",
        "system_fingerprint": "fp_42bfad963b",
        "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}] if choices else [],
        "usage": usage,
    }
    return chunk


CHAT_USAGE = {
    "prompt_tokens": 1117,
    "completion_tokens": 46,
    "total_tokens": 1163,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 30, "audio_tokens": 0,
                                  "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
}
CHAT_USAGE_CHUNK = sse((None, chat_chunk(usage=CHAT_USAGE, choices=False)))
CHAT_BODY = sse(
    (None, chat_chunk({"role": "assistant", "content": "", "refusal": None})),
    (None, chat_chunk({"content": "2 + 2"})),
    (None, chat_chunk({"content": " = 4 — «sûr»."})),
    (None, chat_chunk({}, finish="stop")),
)
CHAT_STREAM = CHAT_BODY + CHAT_USAGE_CHUNK + b"data: [DONE]\n\n"
CHAT_STREAM_NO_USAGE = CHAT_BODY + b"data: [DONE]\n\n"
CHAT_EXPECTED = TokenUsage(input_tokens=1117, cache_read_tokens=1024, output_tokens=46, reasoning_tokens=30)

COMPLETIONS_STREAM = sse(
    (None, {"id": "cmpl-1", "object": "text_completion", "model": "gpt-3.5-turbo-instruct",
            "choices": [{"text": "Hello", "index": 0, "logprobs": None, "finish_reason": None}], "usage": None}),
    (None, {"id": "cmpl-1", "object": "text_completion", "model": "gpt-3.5-turbo-instruct",
            "choices": [{"text": " world", "index": 0, "logprobs": None, "finish_reason": "length"}], "usage": None}),
    (None, {"id": "cmpl-1", "object": "text_completion", "model": "gpt-3.5-turbo-instruct", "choices": [],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}}),
    (None, "[DONE]"),
)

RESPONSES_USAGE = {
    "input_tokens": 2000,
    "input_tokens_details": {"cached_tokens": 1536},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 256},
    "total_tokens": 2300,
}


def responses_obj(status: str, usage: object = None) -> dict:
    return {"id": "resp_1", "object": "response", "created_at": 1741290958, "status": status,
            "model": "o4-mini-2025-04-16", "output": [], "usage": usage}


RESPONSES_HEAD = sse(
    ("response.created", {"type": "response.created", "sequence_number": 0, "response": responses_obj("in_progress")}),
    ("response.in_progress", {"type": "response.in_progress", "sequence_number": 1, "response": responses_obj("in_progress")}),
    ("response.output_item.added", {"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
                                    "item": {"id": "msg_1", "type": "message", "status": "in_progress", "content": [], "role": "assistant"}}),
    ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 3, "item_id": "msg_1",
                                    "output_index": 0, "content_index": 0, "delta": "Par"}),
    ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_1",
                                    "output_index": 0, "content_index": 0, "delta": "is."}),
)
RESPONSES_STREAM = RESPONSES_HEAD + sse(
    ("response.output_text.done", {"type": "response.output_text.done", "sequence_number": 5, "item_id": "msg_1",
                                   "output_index": 0, "content_index": 0, "text": "Paris."}),
    ("response.completed", {"type": "response.completed", "sequence_number": 6,
                            "response": responses_obj("completed", RESPONSES_USAGE)}),
)
RESPONSES_EXPECTED = TokenUsage(input_tokens=2000, cache_read_tokens=1536, output_tokens=300, reasoning_tokens=256)

ANTHROPIC_START = sse(
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 2048, "cache_read_input_tokens": 10240,
                  "cache_creation": {"ephemeral_5m_input_tokens": 2048, "ephemeral_1h_input_tokens": 0},
                  "output_tokens": 1, "service_tier": "standard"}}}),
)
ANTHROPIC_BODY = ANTHROPIC_START + sse(
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Add."}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "!"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("content_block_start", {"type": "content_block_start", "index": 2,
                             "content_block": {"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"a\": 1}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
)
ANTHROPIC_STREAM = ANTHROPIC_BODY + sse(
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 7}}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                       "usage": {"input_tokens": 12, "cache_creation_input_tokens": 2048,
                                 "cache_read_input_tokens": 10240, "output_tokens": 15, "server_tool_use": None}}),
    ("message_stop", {"type": "message_stop"}),
)
ANTHROPIC_EXPECTED = TokenUsage(input_tokens=12 + 2048 + 10240, cache_read_tokens=10240, cache_write_tokens=2048,
                                output_tokens=15)


def gemini_chunk(text: str, usage: dict, finish: str | None = None) -> dict:
    cand: dict = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    return {"candidates": [cand], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash",
            "responseId": "mGcjaL2fNqqkz7IPjY6OyAs"}


GEMINI_CHUNKS = [
    gemini_chunk("The sky", {"promptTokenCount": 1500, "totalTokenCount": 1600, "cachedContentTokenCount": 1024,
                             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1500}], "thoughtsTokenCount": 100}),
    gemini_chunk(" is \"blue\" {]} \\o/", {"promptTokenCount": 1500, "candidatesTokenCount": 4, "totalTokenCount": 1604,
                                        "cachedContentTokenCount": 1024, "thoughtsTokenCount": 100}),
    gemini_chunk(".", {"promptTokenCount": 1500, "candidatesTokenCount": 6, "totalTokenCount": 1606,
                       "cachedContentTokenCount": 1024, "thoughtsTokenCount": 100}, finish="STOP"),
]
# Gemini's SSE uses CRLF line ends.
GEMINI_SSE_STREAM = sse(*[(None, c) for c in GEMINI_CHUNKS], eol="\r\n")
# Without alt=sse: one JSON array, pretty-printed, elements separated by "\n,\r\n".
GEMINI_ARRAY_STREAM = ("[" + "\n,\r\n".join(json.dumps(c, indent=2) for c in GEMINI_CHUNKS) + "]").encode()
GEMINI_EXPECTED = TokenUsage(input_tokens=1500, cache_read_tokens=1024, output_tokens=106, reasoning_tokens=100)

STREAMS = {
    # name: (endpoint, sse, bytes, usage, model, output_chars)
    "openai-chat": (CHAT, True, CHAT_STREAM, CHAT_EXPECTED, "o3-mini-2025-01-31", len("2 + 2 = 4 — «sûr».")),
    "openai-completions": (COMPLETIONS, True, COMPLETIONS_STREAM, TokenUsage(input_tokens=4, output_tokens=2),
                           "gpt-3.5-turbo-instruct", 11),
    "openai-responses": (RESPONSES, True, RESPONSES_STREAM, RESPONSES_EXPECTED, "o4-mini-2025-04-16", 6),
    "anthropic": (ANTHROPIC, True, ANTHROPIC_STREAM, ANTHROPIC_EXPECTED, "claude-sonnet-4-5-20250929",
                  len("Add.") + len("Hello!") + len('{"a": 1}')),
    "gemini-sse": (GEMINI_SSE, True, GEMINI_SSE_STREAM, GEMINI_EXPECTED, "gemini-2.5-flash", len("The sky is \"blue\" {]} \\o/.")),
    "gemini-array": (GEMINI_ARRAY, False, GEMINI_ARRAY_STREAM, GEMINI_EXPECTED, "gemini-2.5-flash",
                     len("The sky is \"blue\" {]} \\o/.")),
}


def collect(out: bytes | tuple[bytes, ...]) -> bytes:
    """What mitmproxy would send for one tap call (bytes, or an iterable of chunks)."""
    return out if isinstance(out, bytes) else b"".join(out)


def run(endpoint: Endpoint, sse_: bool, chunks: list[bytes], encoding: str | None = None,
        drop: bool = False) -> tuple[UsageParser, StreamTap, bytes]:
    parser = parser_for(endpoint)
    tap = StreamTap(parser, framing=framing(sse_), content_encoding=encoding, drop_usage_only_events=drop)
    forwarded = b""
    for chunk in chunks:
        out = tap(chunk)
        # mitmproxy sends an empty chunk as the end of an HTTP/1.1 chunked body: never return one mid-stream
        assert out != b"", "an empty bytes chunk mid-stream would end the client's chunked body"
        forwarded += collect(out)
    forwarded += collect(tap(b""))
    assert tap.finished
    return parser, tap, forwarded


def splits(data: bytes):
    """Every way of cutting data in two, plus one byte at a time."""
    yield "whole", [data]
    for i in range(1, len(data)):
        yield f"cut@{i}", [data[:i], data[i:]]
    yield "bytewise", [data[i : i + 1] for i in range(len(data))]


@pytest.mark.parametrize("name", STREAMS)
def test_stream_usage_is_the_same_at_every_split(name):
    endpoint, is_sse, data, usage, model, chars = STREAMS[name]
    for label, chunks in splits(data):
        parser, tap, forwarded = run(endpoint, is_sse, chunks)
        assert forwarded == data, label
        assert (parser.usage, parser.complete, parser.model, parser.output_chars, parser.error) == (
            usage, True, model, chars, None), label
        assert tap.bytes_in == tap.bytes_out == tap.decoded_bytes == len(data)


@pytest.mark.parametrize("name", STREAMS)
def test_buffered_stream_body_gives_the_same_usage(name):
    endpoint, is_sse, data, usage, model, _ = STREAMS[name]
    parser = feed_stream_body(parser_for(endpoint), data, framing=framing(is_sse))
    assert (parser.usage, parser.complete, parser.model) == (usage, True, model)


def test_stream_ends_are_recognised():
    for name in ("openai-chat", "openai-responses", "anthropic", "gemini-sse"):
        endpoint, is_sse, data, *_ = STREAMS[name]
        assert run(endpoint, is_sse, [data])[0].ended, name


# --- content encodings --------------------------------------------------------------


def gzip_flushed(data: bytes, step: int) -> bytes:
    """gzip as a streaming server writes it: a sync flush after every `step` bytes."""
    c = zlib.compressobj(wbits=31)
    out = b"".join(c.compress(data[i : i + step]) + c.flush(zlib.Z_SYNC_FLUSH) for i in range(0, len(data), step))
    return out + c.flush()


def brotli_flushed(data: bytes, step: int) -> bytes:
    c = brotli.Compressor()
    out = b"".join(c.process(data[i : i + step]) + c.flush() for i in range(0, len(data), step))
    return out + c.finish()


def zstd_flushed(data: bytes, step: int) -> bytes:
    c = zstandard.ZstdCompressor().compressobj()
    out = b"".join(c.compress(data[i : i + step]) + c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
                   for i in range(0, len(data), step))
    return out + c.flush()


ENCODED = {
    "gzip": gzip.compress,
    "gzip-flushed": lambda d: gzip_flushed(d, 100),
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": lambda d: (lambda c: c.compress(d) + c.flush())(zlib.compressobj(wbits=-15)),
    "br": brotli.compress,
    "br-flushed": lambda d: brotli_flushed(d, 100),
    "zstd": zstandard.ZstdCompressor().compress,
    "zstd-flushed": lambda d: zstd_flushed(d, 100),
}


@pytest.mark.parametrize("name", ["openai-chat", "anthropic", "gemini-array"])
@pytest.mark.parametrize("codec", ENCODED)
def test_encoded_streams_are_decoded_for_parsing_and_forwarded_as_is(name, codec):
    endpoint, is_sse, data, usage, model, _ = STREAMS[name]
    encoded = ENCODED[codec](data)
    header = codec.split("-")[0] if codec != "x-gzip" else "x-gzip"
    for label, chunks in splits(encoded):
        # drop is asked for but must be ignored: encoded bytes are not event bytes
        parser, tap, forwarded = run(endpoint, is_sse, chunks, encoding=header.upper(), drop=True)
        assert forwarded == encoded, label
        assert (parser.usage, parser.complete, parser.model, parser.error) == (usage, True, model, None), label
        assert tap.decoded_bytes == len(data) and tap.bytes_in == tap.bytes_out == len(encoded)
        assert tap.dropped_events == 0


def test_stacked_encodings_are_undone_in_reverse():
    data = STREAMS["openai-chat"][2]
    encoded = brotli.compress(gzip.compress(data))
    parser, _, forwarded = run(CHAT, True, [encoded[:7], encoded[7:]], encoding="gzip, br")
    assert forwarded == encoded and parser.usage == CHAT_EXPECTED


def test_multi_member_gzip():
    data = CHAT_STREAM
    encoded = gzip.compress(data[:300]) + gzip.compress(data[300:])
    parser, _, _ = run(CHAT, True, [encoded])
    assert parser.usage is None  # not told it is gzip: the bytes are not SSE
    parser, _, _ = run(CHAT, True, [encoded], encoding="gzip")
    assert parser.usage == CHAT_EXPECTED


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd", "deflate"])
def test_undecodable_stream_is_forwarded_untouched_and_reported(encoding):
    data = b"this is not compressed at all\n\n" + CHAT_STREAM
    parser, tap, forwarded = run(CHAT, True, [data[:40], data[40:]], encoding=encoding)
    assert forwarded == data
    assert parser.error and "could not decode" in parser.error
    assert parser.usage is None and not parser.complete


def test_unknown_encoding_is_reported_and_forwarded():
    parser, _, forwarded = run(CHAT, True, [CHAT_STREAM], encoding="compress", drop=True)
    assert forwarded == CHAT_STREAM
    assert parser.error == "unsupported content-encoding 'compress'"


def test_identity_encoding_is_no_encoding():
    parser, _, _ = run(CHAT, True, [CHAT_STREAM], encoding="identity")
    assert parser.usage == CHAT_EXPECTED


# --- dropping the usage-only chunk spendgate asked for --------------------------------


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_drop_removes_only_the_usage_chunk_and_keeps_done(eol):
    data = sse(*[(None, json.loads(e[6:])) for e in CHAT_BODY.decode().split("\n\n") if e], eol=eol)
    usage_chunk = sse((None, chat_chunk(usage=CHAT_USAGE, choices=False)), eol=eol)
    done = f"data: [DONE]{eol}{eol}".encode()
    for label, chunks in splits(data + usage_chunk + done):
        parser, tap, forwarded = run(CHAT, True, chunks, drop=True)
        assert forwarded == data + done, label
        assert parser.usage == CHAT_EXPECTED and parser.complete, label
        assert tap.dropped_events == 1
        assert tap.bytes_out == len(data + done)


def test_drop_forwards_each_complete_event_at_once():
    parser = parser_for(CHAT)
    tap = StreamTap(parser, framing=Framing.SSE, content_encoding=None, drop_usage_only_events=True)
    first, rest = CHAT_BODY.split(b"\n\n", 1)
    assert tap(first[:20]) == ()  # incomplete: held back (an empty tuple, not b"")
    assert tap(first[20:] + b"\n\n" + rest[:5]) == first + b"\n\n"
    assert collect(tap(rest[5:] + CHAT_USAGE_CHUNK)) == rest
    assert collect(tap(b"data: [DONE]\n\n")) == b"data: [DONE]\n\n"
    assert tap(b"") == b""


def test_drop_keeps_comments_and_stray_blank_lines_around_the_usage_chunk():
    data = b": keep-alive\n\n" + CHAT_BODY + b"\n" + CHAT_USAGE_CHUNK + b": bye\n\ndata: [DONE]\n\n"
    _, _, forwarded = run(CHAT, True, [data], drop=True)
    assert forwarded == b": keep-alive\n\n" + CHAT_BODY + b"\n" + b": bye\n\ndata: [DONE]\n\n"


def test_drop_keeps_a_usage_chunk_that_still_has_choices():
    # vLLM-style continuous usage: the finishing chunk carries choices *and* usage
    data = sse((None, chat_chunk({"content": "x"}, finish="stop", usage=CHAT_USAGE)), (None, "[DONE]"))
    parser, tap, forwarded = run(CHAT, True, [data], drop=True)
    assert forwarded == data and parser.usage == CHAT_EXPECTED and tap.dropped_events == 0


def test_drop_keeps_azure_content_filter_chunk_without_usage():
    filter_chunk = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
                    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}
    data = sse((None, filter_chunk)) + CHAT_STREAM
    parser, _, forwarded = run(CHAT, True, [data], drop=True)
    assert forwarded == data.replace(CHAT_USAGE_CHUNK, b"")
    assert parser.model == "o3-mini-2025-01-31"


def test_drop_of_a_usage_chunk_missing_its_final_blank_line():
    body = CHAT_BODY + CHAT_USAGE_CHUNK[:-1]  # ends "...}\n" and then the connection closes
    parser, tap, forwarded = run(CHAT, True, [body], drop=True)
    assert forwarded == CHAT_BODY and parser.usage == CHAT_EXPECTED and tap.dropped_events == 1


def test_drop_releases_a_half_received_last_event_unchanged():
    body = CHAT_BODY + CHAT_USAGE_CHUNK[:50]
    parser, _, forwarded = run(CHAT, True, [body], drop=True)
    assert forwarded == body and parser.usage is None and parser.error is None


def test_without_drop_the_usage_chunk_is_forwarded():
    _, _, forwarded = run(CHAT, True, [CHAT_STREAM])
    assert forwarded == CHAT_STREAM


def test_is_usage_only_event_without_feeding():
    p = OpenAIChatParser()
    assert p.is_usage_only_event(CHAT_USAGE_CHUNK[6:-2])
    assert not p.is_usage_only_event(b"[DONE]")
    assert not p.is_usage_only_event(b'{"choices":[],"usage":null}')
    assert not p.is_usage_only_event(b"{oops")
    assert not parser_for(ANTHROPIC).is_usage_only_event(b'{"choices":[],"usage":{}}')


# --- cut-off streams: partial usage ---------------------------------------------------


def test_anthropic_cut_after_message_start_knows_the_input():
    parser, _, _ = run(ANTHROPIC, True, [ANTHROPIC_START])
    assert parser.usage == TokenUsage(input_tokens=12300, cache_read_tokens=10240, cache_write_tokens=2048, output_tokens=1)
    assert (parser.complete, parser.ended, parser.output_chars, parser.error) == (False, False, 0, None)


def test_anthropic_cut_mid_content_counts_generated_characters():
    parser, _, _ = run(ANTHROPIC, True, [ANTHROPIC_BODY + b"event: content_block_delta\ndata: {\"type\":\"content_bl"])
    assert parser.usage.input_tokens == 12300 and parser.usage.output_tokens == 1
    assert parser.output_chars == len("Add.Hello!") + len('{"a": 1}')
    assert not parser.complete and parser.error is None


def test_anthropic_message_delta_is_cumulative_not_summed():
    parser, _, _ = run(ANTHROPIC, True, [ANTHROPIC_STREAM])
    assert parser.usage.output_tokens == 15  # 7 then 15, not 22


def test_openai_chat_stream_without_usage_reports_characters_only():
    parser, _, _ = run(CHAT, True, [CHAT_STREAM_NO_USAGE])
    assert parser.usage is None and not parser.complete
    assert parser.ended  # [DONE]: it ended normally, the client just never asked for usage
    assert parser.output_chars == len("2 + 2 = 4 — «sûr».")


def test_openai_chat_stream_counts_tool_call_arguments():
    data = sse(
        (None, chat_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                            "function": {"name": "get_weather", "arguments": ""}}]})),
        (None, chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]})),
        (None, chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]})),
    )
    parser, _, _ = run(CHAT, True, [data])
    assert parser.output_chars == len("get_weather") + len('{"city":"Paris"}')


def test_responses_cut_before_completion():
    parser, _, _ = run(RESPONSES, True, [RESPONSES_HEAD])
    assert (parser.usage, parser.complete, parser.model, parser.output_chars) == (None, False, "o4-mini-2025-04-16", 6)


@pytest.mark.parametrize("terminal", ["response.incomplete", "response.failed"])
def test_responses_incomplete_and_failed_carry_usage(terminal):
    data = RESPONSES_HEAD + sse((terminal, {"type": terminal, "sequence_number": 9,
                                            "response": responses_obj(terminal.split(".")[1], RESPONSES_USAGE)}))
    parser, _, _ = run(RESPONSES, True, [data])
    assert parser.usage == RESPONSES_EXPECTED and parser.complete


def test_responses_failed_without_usage_ended_but_incomplete():
    data = RESPONSES_HEAD + sse(("response.failed", {"type": "response.failed", "response": responses_obj("failed")}))
    parser, _, _ = run(RESPONSES, True, [data])
    assert parser.usage is None and parser.ended and not parser.complete


@pytest.mark.parametrize("name", ["gemini-sse", "gemini-array"])
def test_gemini_cut_after_first_chunk_is_partial(name):
    endpoint, is_sse, data, *_ = STREAMS[name]
    cut = data.index(b"The sky") + 600  # somewhere inside the second chunk
    parser, _, _ = run(endpoint, is_sse, [data[:cut]])
    assert parser.usage == TokenUsage(input_tokens=1500, cache_read_tokens=1024, output_tokens=100, reasoning_tokens=100)
    assert not parser.complete and parser.error is None and parser.output_chars == len("The sky")


def test_gemini_array_error_object_instead_of_array():
    parser, _, _ = run(GEMINI_ARRAY, False, [b'{"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}'])
    assert parser.usage is None and parser.error is None and parser.events == 1


def test_gemini_array_nested_arrays_and_escapes():
    chunk = {"candidates": [{"content": {"parts": [{"text": "a\\\"]}[{"}, {"functionCall": {"name": "f", "args": {"x": [1, [2]]}}}]},
                             "finishReason": "STOP"}],
             "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}}
    data = json.dumps([chunk]).encode()
    for label, chunks in splits(data):
        parser, _, _ = run(GEMINI_ARRAY, False, chunks)
        assert parser.usage == TokenUsage(input_tokens=3, output_tokens=2) and parser.complete, label


# --- malformed input --------------------------------------------------------------------


def test_malformed_event_is_an_error_and_parsing_goes_on():
    data = CHAT_BODY + b"data: {\"choices\": [tru\n\n" + CHAT_USAGE_CHUNK + b"data: [DONE]\n\n"
    parser, _, forwarded = run(CHAT, True, [data], drop=True)
    assert parser.error == "invalid JSON in stream event"
    assert parser.usage == CHAT_EXPECTED and parser.complete
    assert forwarded == data.replace(CHAT_USAGE_CHUNK, b"")


@pytest.mark.parametrize(
    "event",
    [b"[1,2,3]", b"42", b"null", b'"text"', b"\xff\xfe\xfd", b'{"choices": 5, "usage": "lots"}',
     b'{"type": "message_start", "message": [1]}', b'{"type": "message_delta", "usage": {"output_tokens": -3}}',
     b'{"type": "response.completed", "response": {"usage": {"input_tokens": "many"}}}',
     b'{"candidates": [{"content": {"parts": "x"}}], "usageMetadata": {"promptTokenCount": 1.5}}'],
)
@pytest.mark.parametrize("endpoint", [CHAT, COMPLETIONS, RESPONSES, ANTHROPIC, GEMINI_SSE])
def test_odd_events_never_raise(endpoint, event):
    parser, _, forwarded = run(endpoint, True, [b"data: " + event + b"\n\n"])
    assert forwarded == b"data: " + event + b"\n\n"
    assert parser.usage is None or isinstance(parser.usage, TokenUsage)


def test_sse_framing_details():
    # comments, event names, id/retry fields, a field without a space, multi-line data, a BOM
    data = (b"\xef\xbb\xbf: hello\n"
            b"retry: 1000\n"
            b"id: 7\n"
            b"event:message_start\n"
            b'data:{"type":"message_start",\n'
            b'data: "message":{"model":"claude-x","usage":{"input_tokens":5,"output_tokens":0}}}\n'
            b"\n"
            b"data:\n\n"
            b"\n\n\n"
            b'data: {"type":"message_delta","usage":{"output_tokens":9}}\n\n')
    for label, chunks in splits(data):
        parser, _, forwarded = run(ANTHROPIC, True, chunks)
        assert forwarded == data
        assert (parser.usage, parser.model, parser.complete, parser.error) == (
            TokenUsage(input_tokens=5, output_tokens=9), "claude-x", True, None), label


def test_sse_events_chunked_as_providers_send_them_frame_as_bytewise():
    """A chunk of whole events (the usual chunk) is split without the line-by-line walk:
    every event, its name and its end offset must come out as they do byte by byte."""
    from providers.framing.sse import SSEFramer

    events = [b"\xef\xbb\xbfdata: first\n\n", b"data: plain\n\n", b"data:no-space\n\n", b"data:\n\n",
              b"data:  two spaces\n\n", b"event: named\ndata: x\n\n", b"data: a\ndata: b\n\n",
              b": comment\n\n", b"\n\n", b"id: 3\ndata: after-id\n\n", b"data: three\n\n\n\n",
              b"data: last\n\n"]
    data = b"".join(events)

    def framed(chunks):
        out = []
        framer = SSEFramer(lambda d, e, end: out.append((d, e, end)))
        for chunk in chunks:
            framer.feed(chunk)
        framer.finish()
        return out

    expected = framed([data[i:i + 1] for i in range(len(data))])
    assert [d for d, _, _ in expected if d] == [b"first", b"plain", b"no-space", b" two spaces", b"x", b"a\nb",
                                                b"after-id", b"three", b"last"]
    assert framed(events) == expected
    assert framed([events[0], b"".join(events[1:6]), b"".join(events[6:])]) == expected
    assert framed([b"".join(events[:3]), *events[3:]]) == expected


def test_event_name_is_used_when_data_has_no_type():
    parser, _, _ = run(ANTHROPIC, True, [b'event: message_delta\ndata: {"usage": {"output_tokens": 4}}\n\n'])
    assert parser.usage == TokenUsage(output_tokens=4)


def test_calls_after_the_end_pass_through():
    parser = parser_for(CHAT)
    tap = StreamTap(parser, framing=Framing.SSE, content_encoding=None)
    tap(CHAT_STREAM)
    assert tap(b"") == b""
    assert tap(b"late") == b"late"


def test_oversized_event_stops_parsing_but_not_forwarding(monkeypatch):
    """The limit bounds what is *buffered* while an event is incomplete."""
    import providers.framing.base as stream_mod

    monkeypatch.setattr(stream_mod, "MAX_EVENT_BYTES", 1000)
    long_line = b'data: {"choices":[{"delta":{"content":"' + b"x" * 5000 + b'"}}]}\n\n'
    many_lines = b"data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n" * 100 + b"\n"
    for huge in (long_line, many_lines):
        chunks = [huge[i : i + 100] for i in range(0, len(huge), 100)] + [CHAT_STREAM]
        for drop in (False, True):
            parser, _, forwarded = run(CHAT, True, chunks, drop=drop)
            assert forwarded == huge + CHAT_STREAM
            assert "larger than MAX_EVENT_BYTES" in parser.error and parser.usage is None
    monkeypatch.setattr(stream_mod, "MAX_EVENT_BYTES", 100)
    g = GEMINI_ARRAY_STREAM
    parser, _, forwarded = run(GEMINI_ARRAY, False, [g[i : i + 30] for i in range(0, len(g), 30)])
    assert forwarded == GEMINI_ARRAY_STREAM and "larger than MAX_EVENT_BYTES" in parser.error


def test_gemini_array_malformed_element_is_reported_and_the_rest_parsed():
    good = json.dumps(GEMINI_CHUNKS[2]).encode()
    data = b'[{"candidates": [tru]}\n,\r\n' + good + b"]"
    for label, chunks in splits(data):
        parser, _, forwarded = run(GEMINI_ARRAY, False, chunks)
        assert forwarded == data
        assert parser.error == "invalid JSON in stream event", label
        assert parser.usage == GEMINI_EXPECTED and parser.complete, label
    parser, _, _ = run(GEMINI_ARRAY, False, [good[:-1] + b"x}"])  # malformed last element, settled at the end
    assert parser.error == "invalid JSON in stream event" and parser.events == 1


@pytest.mark.parametrize("name", STREAMS)
def test_random_many_way_chunkings(name):
    import random

    endpoint, is_sse, data, usage, model, chars = STREAMS[name]
    rng = random.Random(1234)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 40)))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        parser, _, forwarded = run(endpoint, is_sse, chunks)
        assert forwarded == data
        assert (parser.usage, parser.output_chars, parser.error) == (usage, chars, None), cuts
