"""Reference tests for AWS Bedrock: recognition and model ids, request reading, usage
(Converse, InvokeModel's model bodies, streams), the event-stream framer, SigV4 keys and
re-signing, and prices.

Event streams are built with the fake's encoder (tests/fakes/bedrock.py), which follows the
byte layout AWS documents; botocore decodes them in the proxy.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from mitmproxy import http

from core.usage import TokenUsage
from core.vocab import Framing
from fakes.bedrock import event, frame
from providers.base import FREE, KeyPlace, SigV4, sigv4_access_key
from providers.bedrock import BEDROCK, CONVERSE, INVOKE, ConverseParser, InvokeParser, bedrock_model
from providers.framing import MAX_EVENT_BYTES
from providers.framing.aws_eventstream import EventStreamFramer
from providers.registry import Registry
from providers.stream import StreamTap
from pricing.prices import PriceBook

HOST = "bedrock-runtime.us-east-1.amazonaws.com"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
T = datetime(2026, 12, 1, tzinfo=UTC)


def endpoint(path: str, method: str = "POST"):
    return Registry().provider(HOST).route(method, path)


# --- recognition and model ids ----------------------------------------------------------------

ARN = "arn:aws:bedrock:us-east-1:123456789012"


@pytest.mark.parametrize(("path", "model"), [
    ("/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse", SONNET),  # boto3 encodes ':'
    ("/model/anthropic.claude-sonnet-4-5-20250929-v1:0/invoke", SONNET),  # the anthropic SDK does not
    ("/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream", "us." + SONNET),
    (f"/model/{ARN.replace(':', '%3A')}%3Ainference-profile%2Fglobal.{SONNET.replace(':', '%3A')}/invoke",
     "global." + SONNET),
    ("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Famazon.nova-pro-v1%3A0/converse",
     "amazon.nova-pro-v1:0"),
    ("/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Feu.amazon.nova-pro-v1:0/converse",
     "eu.amazon.nova-pro-v1:0"),
    (f"/model/{ARN}:application-inference-profile%2Fa1b2c3d4e5/invoke",
     f"{ARN}:application-inference-profile/a1b2c3d4e5"),  # names no model
])
def test_the_url_model_is_what_genai_prices_can_price(path, model):
    found = endpoint(path)
    assert found.url_model == model and found.price_provider == "aws"


@pytest.mark.parametrize(("path", "api", "streams"), [
    ("/model/m/converse", CONVERSE, False),
    ("/model/m/converse-stream", CONVERSE, True),
    ("/model/m/invoke", INVOKE, False),
    ("/model/m/invoke-with-response-stream", INVOKE, True),
])
def test_routes_and_their_framing(path, api, streams):
    found = endpoint(path)
    assert (found.api, found.url_streaming) == (api, streams)
    assert found.framing == (Framing.AWS_EVENTSTREAM if streams else Framing.SSE)


def test_token_counts_and_reads_are_free_other_writes_unmetered():
    assert endpoint("/model/m/count-tokens") is FREE
    assert endpoint("/model/m/converse", "GET") is FREE
    assert endpoint("/model/m/async-invoke") is None  # unmetered: recorded, never invisible
    assert endpoint("/guardrail/g1/version/1/apply") is None


@pytest.mark.parametrize(("model", "priced_as"), [
    (SONNET, "regional.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("us." + SONNET, "regional.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("apac." + SONNET, "regional.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("global." + SONNET, "global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("us.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
    ("meta.llama3-3-70b-instruct-v1:0", "meta.llama3-3-70b-instruct-v1:0"),
    (bedrock_model(f"{ARN}::foundation-model/{SONNET}"), "regional.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    (f"{ARN}:application-inference-profile/a1b2c3d4e5", None),
])
def test_genai_prices_matches_the_model_ids_bedrock_urls_carry(model, priced_as):
    resolved = PriceBook().resolve("aws", model)
    assert (resolved.model.id if resolved else None) == priced_as


def test_bedrock_model_leaves_anything_but_a_model_arn_alone():
    assert bedrock_model(SONNET) == SONNET
    assert bedrock_model(f"{ARN}:inference-profile/us.{SONNET}") == f"us.{SONNET}"
    assert bedrock_model(f"{ARN}:provisioned-model/abc") == f"{ARN}:provisioned-model/abc"
    assert bedrock_model("arn:broken") == "arn:broken"


# --- request reading --------------------------------------------------------------------------


def test_converse_reads_its_output_cap_and_takes_the_model_from_the_url():
    found = endpoint("/model/us.amazon.nova-pro-v1%3A0/converse-stream")
    body = json.dumps({"messages": [], "inferenceConfig": {"maxTokens": 321}, "model": "ignored"}).encode()
    request = CONVERSE.read_request(found, body)
    assert (request.model, request.stream, request.max_output_tokens, request.input_bytes) == (
        "us.amazon.nova-pro-v1:0", True, 321, len(body))


@pytest.mark.parametrize(("body", "cap"), [
    ({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": []}, 100),  # Anthropic
    ({"prompt": "hi", "max_gen_len": 200}, 200),  # Llama
    ({"messages": [], "inferenceConfig": {"maxTokens": 300}}, 300),  # Nova
    ({"messages": [], "inferenceConfig": {"max_new_tokens": 400}}, 400),  # Nova, older name
    ({"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 500}}, 500),  # Titan
    ({"messages": [], "max_completion_tokens": 600}, 600),  # OpenAI-shaped
    ({"inputText": "an embedding"}, None),
])
def test_invoke_reads_the_output_cap_wherever_the_model_family_puts_it(body, cap):
    request = INVOKE.read_request(endpoint("/model/m/invoke"), json.dumps(body).encode())
    assert request.max_output_tokens == cap and request.stream is False and request.parse_error is None


def test_only_the_url_says_whether_invoke_streams():
    body = json.dumps({"stream": True, "max_tokens": 5}).encode()
    assert INVOKE.read_request(endpoint("/model/m/invoke"), body).stream is False
    assert INVOKE.read_request(endpoint("/model/m/invoke-with-response-stream"), b"{}").stream is True


def test_an_unreadable_request_body_is_still_a_call():
    request = INVOKE.read_request(endpoint("/model/m/invoke"), b"\x00not json")
    assert request.parse_error and request.model == "m" and request.input_bytes == 9


# --- Converse usage ---------------------------------------------------------------------------

# The AWS documentation's example, 1-hour cache writes included.
CONVERSE_REPLY = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Hi!"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 100, "outputTokens": 50, "totalTokens": 1150, "cacheReadInputTokens": 800,
              "cacheWriteInputTokens": 200, "cacheDetails": [{"ttl": "1h", "inputTokens": 200}]},
    "metrics": {"latencyMs": 302},
}


def test_converse_input_excludes_the_cache_and_is_added_back():
    parser = ConverseParser("us." + SONNET)
    parser.feed_body(json.dumps(CONVERSE_REPLY))
    assert parser.complete and parser.error is None and parser.model == "us." + SONNET
    assert parser.usage == TokenUsage(input_tokens=1100, cache_read_tokens=800, cache_write_tokens=200,
                                      output_tokens=50, units={"cache_write_1h_tokens": 200})
    assert parser.output_chars == 3


def test_converse_with_one_hour_cache_writes_is_priced_at_their_rate():
    parser = ConverseParser()
    parser.feed_body(json.dumps(CONVERSE_REPLY))
    cost = PriceBook().cost("aws", "global." + SONNET, parser.usage, T)
    # Sonnet 4.5 global: 100 × $3/M + 800 cache read × $0.30/M + 200 1h writes × $6/M + 50 × $15/M
    assert cost.nanos == 300_000 + 240_000 + 1_200_000 + 750_000


def test_a_converse_body_without_usage_is_an_error():
    parser = ConverseParser()
    parser.feed_body(b'{"output": {"message": {"content": [{"text": "abcd"}]}}}')
    assert not parser.complete and parser.usage is None and parser.error and parser.output_chars == 4


def converse_stream(*, usage=True, exception=False) -> bytes:
    events = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"a": 1}'}}}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": "end_turn"}),
    ]
    if exception:
        events.append(frame({":exception-type": "throttlingException", ":content-type": "application/json",
                             ":message-type": "exception"}, b'{"message":"Too many requests"}'))
    if usage:
        events.append(event("metadata", {"usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15,
                                                   "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0},
                                         "metrics": {"latencyMs": 300}}))
    return b"".join(events)


def tap(parser, body: bytes, split: int | None = None) -> bytes:
    """Run `body` through a StreamTap (whole, or in two at `split`); what it forwarded."""
    t = StreamTap(parser, framing=Framing.AWS_EVENTSTREAM, content_encoding=None)
    pieces = [body] if split is None else [body[:split], body[split:]]
    out = b"".join(t(p) for p in pieces if p)
    t(b"")
    return out


def test_converse_stream_usage_is_in_its_metadata_event_wherever_the_bytes_are_cut():
    body = converse_stream()
    for split in (None, *range(1, len(body))):
        parser = ConverseParser()
        assert tap(parser, body, split) == body
        assert parser.complete and parser.ended and parser.error is None, split
        assert parser.usage == TokenUsage(input_tokens=10, output_tokens=5)
        assert parser.output_chars == len("Hello") + len('{"a": 1}')


def test_a_stream_exception_is_recorded():
    parser = ConverseParser()
    tap(parser, converse_stream(usage=False, exception=True))
    assert parser.error == "stream exception:throttlingException: Too many requests" and not parser.complete


def test_a_cut_off_converse_stream_has_no_usage_but_its_text():
    parser = ConverseParser()
    body = converse_stream()
    tap(parser, body[: len(body) - 30])
    assert not parser.complete and parser.usage is None and parser.output_chars == 13 and parser.error is None


# --- InvokeModel usage ------------------------------------------------------------------------

ANTHROPIC_BODY = {
    "id": "msg_bdrk_019V", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 30, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 7, "output_tokens": 265},
}
TOKEN_HEADERS = {"x-amzn-bedrock-input-token-count": "14", "x-amzn-bedrock-output-token-count": "9"}


def test_an_anthropic_body_wins_over_the_token_count_headers():
    parser = InvokeParser("us." + SONNET)
    parser.feed_headers(TOKEN_HEADERS)  # they may disagree with the body, which is the bill
    parser.feed_body(json.dumps(ANTHROPIC_BODY))
    assert parser.complete and parser.model == "us." + SONNET  # the URL's, not the body's
    assert parser.usage == TokenUsage(input_tokens=42, cache_read_tokens=7, cache_write_tokens=5, output_tokens=265)


def test_without_a_url_model_the_anthropic_body_names_it():
    parser = InvokeParser(None)  # an application inference profile's ARN
    parser.feed_body(json.dumps(ANTHROPIC_BODY))
    assert parser.model == "claude-sonnet-4-5-20250929"


@pytest.mark.parametrize(("body", "usage"), [
    # Nova (messages-v1)
    ({"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}}, "stopReason": "end_turn",
      "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15, "cacheReadInputTokenCount": 4,
                "cacheWriteInputTokenCount": 0}},
     TokenUsage(input_tokens=16, cache_read_tokens=4, output_tokens=3)),
    # Llama
    ({"generation": "hi", "prompt_token_count": 20, "generation_token_count": 7, "stop_reason": "stop"},
     TokenUsage(input_tokens=20, output_tokens=7)),
    # Titan text
    ({"inputTextTokenCount": 6, "results": [{"tokenCount": 8, "outputText": "hi", "completionReason": "FINISH"}]},
     TokenUsage(input_tokens=6, output_tokens=8)),
    # Titan embeddings
    ({"embedding": [0.1, 0.2], "inputTextTokenCount": 9}, TokenUsage(input_tokens=9)),
    # OpenAI-shaped (gpt-oss)
    ({"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 11, "completion_tokens": 2,
                                                             "prompt_tokens_details": {"cached_tokens": 3}}},
     TokenUsage(input_tokens=11, cache_read_tokens=3, output_tokens=2)),
])
def test_other_model_families_are_read_from_their_own_body(body, usage):
    parser = InvokeParser("m")
    parser.feed_headers(TOKEN_HEADERS)
    parser.feed_body(json.dumps(body))
    assert parser.complete and parser.error is None and parser.usage == usage


def test_a_body_without_usage_falls_back_to_the_token_count_headers():
    parser = InvokeParser("cohere.command-r-plus-v1:0")
    parser.feed_headers({**TOKEN_HEADERS, "x-amzn-bedrock-cache-read-input-token-count": "2"})
    parser.feed_body(b'{"text": "hi", "finish_reason": "COMPLETE"}')
    assert parser.complete and parser.usage == TokenUsage(input_tokens=16, cache_read_tokens=2, output_tokens=9)


def test_a_body_without_usage_or_headers_is_an_error():
    parser = InvokeParser("m")
    parser.feed_body(b'{"text": "hi"}')
    assert not parser.complete and parser.usage is None and parser.error


def chunk(obj: dict) -> bytes:
    return event("chunk", {"bytes": base64.b64encode(json.dumps(obj).encode()).decode()})


METRICS = {"inputTokenCount": 25, "outputTokenCount": 12, "invocationLatency": 812, "firstByteLatency": 401}
ANTHROPIC_STREAM = [
    {"type": "message_start", "message": {"model": "claude-sonnet-4-5-20250929", "usage": {
        "input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 3, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 12}},
    {"type": "message_stop", "amazon-bedrock-invocationMetrics": METRICS},
]


def test_invoke_stream_chunks_carry_anthropic_events_read_by_the_anthropic_parser():
    body = b"".join(chunk(e) for e in ANTHROPIC_STREAM)
    for split in (None, 1, 11, 12, 13, len(body) // 2, len(body) - 1):
        parser = InvokeParser(SONNET)
        assert tap(parser, body, split) == body
        assert parser.complete and parser.ended and parser.error is None
        assert parser.usage == TokenUsage(input_tokens=28, cache_read_tokens=3, output_tokens=12)
        assert parser.output_chars == 5


def test_invoke_stream_cut_before_message_delta_keeps_the_reported_input():
    body = b"".join(chunk(e) for e in ANTHROPIC_STREAM[:3])
    parser = InvokeParser(SONNET)
    tap(parser, body)
    assert not parser.complete and parser.usage.input_tokens == 28 and parser.output_chars == 5


def test_another_familys_stream_is_priced_from_the_invocation_metrics():
    body = chunk({"generation": "Hel", "prompt_token_count": 25, "generation_token_count": 1}) + chunk(
        {"generation": "lo", "generation_token_count": 12, "stop_reason": "stop",
         "amazon-bedrock-invocationMetrics": METRICS})
    parser = InvokeParser("meta.llama3-3-70b-instruct-v1:0")
    tap(parser, body)
    assert parser.complete and parser.usage == TokenUsage(input_tokens=25, output_tokens=12)
    assert parser.output_chars == 5


def test_a_chunk_that_is_not_base64_is_recorded_and_passed_on():
    body = event("chunk", {"bytes": "%%%not base64"}) + chunk(ANTHROPIC_STREAM[-1])
    parser = InvokeParser(SONNET)
    assert tap(parser, body) == body
    assert parser.error == "stream chunk: bytes are not base64"
    assert parser.usage == TokenUsage(input_tokens=25, output_tokens=12)  # the metrics still count


# --- the framer -------------------------------------------------------------------------------


def frames(body: bytes, step: int | None = None) -> list[tuple[bytes | None, str | None, int]]:
    out: list = []
    framer = EventStreamFramer(lambda data, name, end: out.append((data, name, end)))
    step = step or len(body)
    for i in range(0, len(body), step):
        framer.feed(body[i:i + step])
    framer.finish()
    return out


def test_messages_are_emitted_with_their_event_type_and_end_offset_in_any_split():
    body = converse_stream()
    whole = frames(body)
    assert [name for _, name, _ in whole] == ["messageStart", "contentBlockDelta", "contentBlockDelta",
                                             "contentBlockStop", "messageStop", "metadata"]
    assert whole[-1][2] == len(body)
    assert frames(body, 1) == whole and frames(body, 7) == whole


def test_the_research_example_frame_decodes():
    raw = bytes.fromhex(
        "0000006c0000004bd8eedd3d0b3a6576656e742d747970650700056368756e6b0d3a636f6e74656e742d74797065070010"
        "6170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b226279746573223a2022"
        "6533303d227dfc468f5c")
    assert frames(raw) == [(b'{"bytes": "e30="}', "chunk", 108)]
    assert frame({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
                 b'{"bytes": "e30="}') == raw  # the fake's encoder writes the same bytes


def test_error_messages_carry_their_code_and_message():
    err = frame({":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b"")
    assert frames(err) == [(b'{"message": "boom"}', "error:InternalFailure", len(err))]


def test_a_bad_crc_stops_parsing_and_the_bytes_still_pass():
    good = converse_stream()
    spoilt = bytearray(good)
    spoilt[len(event("messageStart", {"role": "assistant"})) + 20] ^= 0xFF  # inside the second message
    parser = ConverseParser()
    assert tap(parser, bytes(spoilt)) == bytes(spoilt)
    assert "ChecksumMismatch" in parser.error and not parser.complete


@pytest.mark.parametrize(("prelude", "problem"), [
    ((8).to_bytes(4, "big") + bytes(8), "shorter than its prelude"),
    ((MAX_EVENT_BYTES + 1).to_bytes(4, "big") + bytes(8), "larger than MAX_EVENT_BYTES"),
])
def test_impossible_lengths_stop_parsing(prelude, problem):
    parser = ConverseParser()
    assert tap(parser, prelude + b"rest") == prelude + b"rest"
    assert problem in parser.error


# --- SigV4 keys and re-signing ----------------------------------------------------------------

AUTH = ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261201/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, Signature=" + "ab" * 32)


def test_the_key_of_a_sigv4_request_is_its_access_key_id():
    assert sigv4_access_key(AUTH) == "AKIAIOSFODNN7EXAMPLE"
    for other in (None, "", "Bearer ABSK123", "AWS4-HMAC-SHA256 SignedHeaders=host", "AWS4-HMAC-SHA256 Credential=/x"):
        assert sigv4_access_key(other) is None, other
    request = http.Request.make("POST", f"https://{HOST}/model/m/converse", b"{}", {"authorization": AUTH})
    assert BEDROCK.credential.find(request) == ("AKIAIOSFODNN7EXAMPLE", KeyPlace.SIGV4)
    bearer = http.Request.make("POST", f"https://{HOST}/model/m/converse", b"{}", {"authorization": "Bearer ABSKk"})
    assert BEDROCK.credential.find(bearer) == ("ABSKk", KeyPlace.BEARER)


def boto3_request(monkeypatch, **credentials) -> http.Request:
    """What boto3 sends for a Converse call (signed at a frozen time), as a mitmproxy request."""
    import boto3
    import botocore.auth

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: datetime(2026, 12, 1, 10, 30, 0))
    for name in ("AWS_BEARER_TOKEN_BEDROCK", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.client("bedrock-runtime", region_name="us-east-1", **credentials)
    sent = {}

    def capture(request, **_):
        sent["request"] = request
        return object()  # a response short-circuits the send: nothing leaves

    client.meta.events.register("before-send.bedrock-runtime.Converse", capture)
    with pytest.raises(Exception):  # the short-circuit response is not a real one
        client.converse(modelId="us." + SONNET, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    r = sent["request"]
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in r.headers.items()}
    return http.Request.make("POST", r.url, r.body, headers)


def test_resigning_reproduces_the_signature_boto3_makes_with_the_real_keys(monkeypatch):
    real = {"aws_access_key_id": "AKIAREALUPSTREAM0001", "aws_secret_access_key": "real/Secret+Key0000"}
    expected = boto3_request(monkeypatch, **real).headers["authorization"]
    request = boto3_request(monkeypatch, aws_access_key_id="sk-virtual-key", aws_secret_access_key="whatever")
    BEDROCK.credential.swap(request, real)
    assert request.headers["authorization"] == expected
    assert request.headers["x-amz-date"] == "20261201T103000Z"
    assert "sk-virtual-key" not in str(request.headers)


def test_resigning_with_temporary_credentials_signs_their_session_token(monkeypatch):
    real = {"aws_access_key_id": "ASIATEMPORARY0000001", "aws_secret_access_key": "s3cret", "aws_session_token": "tok"}
    expected = boto3_request(monkeypatch, aws_session_token="tok", **{k: real[k] for k in list(real)[:2]})
    request = boto3_request(monkeypatch, aws_access_key_id="sk-virtual", aws_secret_access_key="x",
                            aws_session_token="the-clients-own")
    BEDROCK.credential.swap(request, real)
    assert request.headers["x-amz-security-token"] == "tok"
    assert request.headers["authorization"] == expected.headers["authorization"]


def test_a_bedrock_api_key_replaces_the_signature_when_no_aws_keys_are_configured(monkeypatch):
    request = boto3_request(monkeypatch, aws_access_key_id="sk-virtual", aws_secret_access_key="x",
                            aws_session_token="t")
    assert BEDROCK.credential.placement({"api_key": "ABSKreal"}) is KeyPlace.BEARER
    BEDROCK.credential.swap(request, {"api_key": "ABSKreal"})
    assert request.headers["authorization"] == "Bearer ABSKreal"
    assert "x-amz-date" not in request.headers and "x-amz-security-token" not in request.headers


def test_aws_keys_win_over_a_bedrock_api_key_and_half_a_key_pair_is_not_enough():
    both = {"api_key": "ABSK", "aws_access_key_id": "AKIA", "aws_secret_access_key": "s"}
    assert isinstance(BEDROCK.credential.placement(both), SigV4)
    assert BEDROCK.credential.placement({"aws_access_key_id": "AKIA"}) is None


# --- config -----------------------------------------------------------------------------------


def test_the_config_takes_aws_keys_for_bedrock_only_and_whole():
    from config.load import ConfigError, parse_config

    config = parse_config({"providers": {"bedrock": {"aws_access_key_id": "AKIA", "aws_secret_access_key": "s",
                                                     "aws_session_token": "t"}}}, source="test")
    assert config.providers["bedrock"].secrets() == {"aws_access_key_id": "AKIA", "aws_secret_access_key": "s",
                                                     "aws_session_token": "t"}
    with pytest.raises(ConfigError, match=r"providers.bedrock.aws_access_key_id: needs aws_secret_access_key"):
        parse_config({"providers": {"bedrock": {"aws_access_key_id": "AKIA", "api_key": "k"}}}, source="test")
    with pytest.raises(ConfigError, match=r"providers.openai.aws_access_key_id: not a credential 'openai' takes"):
        parse_config({"providers": {"openai": {"aws_access_key_id": "AKIA", "aws_secret_access_key": "s"}}},
                     source="test")
    with pytest.raises(ConfigError, match=r"providers.vllm.aws_secret_access_key: not a credential"):
        parse_config({"providers": {"vllm": {"host": "llm.internal", "api_style": "openai",
                                             "aws_secret_access_key": "s"}}}, source="test")
