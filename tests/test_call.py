"""What a call is charged when its usage is incomplete (metering.call.settlement_usage)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from metering.call import MeteredCall, settlement_usage
from providers.base import CallRequest
from providers.registry import Registry

TEXT = "0123456789"  # 10 characters: 2.5 tokens at 4 bytes per token


def call_for(host: str, path: str, input_bytes: int = 400) -> MeteredCall:
    endpoint = Registry().provider(host).route("POST", path)
    request = CallRequest(model="m", stream=True, max_output_tokens=100, input_bytes=input_bytes)
    call = MeteredCall(endpoint=endpoint, request=request, started_at=datetime.now(UTC), path=path)
    call.streamed = True
    return call


def feed(call: MeteredCall, *events: dict) -> None:
    for event in events:
        call.parser.feed_event(json.dumps(event))


def test_anthropic_stream_cut_after_text_is_charged_the_text_not_message_starts_placeholder():
    call = call_for("api.anthropic.com", "/v1/messages")
    feed(
        call,
        {"type": "message_start", "message": {"model": "m", "usage": {
            "input_tokens": 700, "cache_read_input_tokens": 200, "cache_creation_input_tokens": 100,
            "output_tokens": 1}}},
        *[{"type": "content_block_delta", "delta": {"type": "text_delta", "text": TEXT}}] * 4,
    )
    usage, source, status = settlement_usage(call, 200, "peer closed connection")
    assert (source, status) == ("estimated", "partial")
    # input as reported by message_start; output from the 40 characters seen, not the 1
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (1000, 200, 100)
    assert usage.output_tokens == 10


def test_reported_output_above_the_text_seen_is_kept():
    call = call_for("generativelanguage.googleapis.com", "/v1beta/models/m:streamGenerateContent")
    feed(call, {"candidates": [{"content": {"parts": [{"text": TEXT}]}}],
                "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 30, "thoughtsTokenCount": 20}})
    usage, source, _ = settlement_usage(call, 200, "client disconnected")
    assert source == "estimated"
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (50, 50, 20)


def test_nothing_reported_is_guessed_from_request_size_and_text():
    call = call_for("api.openai.com", "/v1/chat/completions", input_bytes=401)
    feed(call, {"model": "m", "choices": [{"delta": {"content": TEXT}}]})
    usage, source, status = settlement_usage(call, 200, "client disconnected")
    assert (usage.input_tokens, usage.output_tokens, source, status) == (101, 3, "estimated", "partial")


def test_complete_usage_is_charged_as_reported():
    call = call_for("api.openai.com", "/v1/chat/completions")
    feed(call, {"model": "m", "choices": [{"delta": {"content": TEXT * 100}}]},
         {"model": "m", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}})
    usage, source, status = settlement_usage(call, 200, None)
    assert (usage.input_tokens, usage.output_tokens, source, status) == (10, 5, "reported", "ok")


def test_a_call_that_never_reached_the_provider_is_not_charged():
    call = call_for("api.openai.com", "/v1/chat/completions")
    call.reached_upstream = False
    assert settlement_usage(call, None, "Connect call failed") == (None, "none", "error")


def test_reached_upstream_is_told_by_the_server_connection():
    from mitmproxy.test import tflow

    from addon.http import _reached_upstream

    answered = tflow.tflow(resp=True)
    assert _reached_upstream(answered)
    sent = tflow.tflow(err=True)  # the test flow's server connection was set up
    assert sent.server_conn.timestamp_tcp_setup is not None and _reached_upstream(sent)
    refused = tflow.tflow(err=True)
    refused.server_conn.timestamp_tcp_setup = None
    assert not _reached_upstream(refused)
    tls_failed = tflow.tflow(err=True)
    tls_failed.server_conn.tls = True
    tls_failed.server_conn.timestamp_tls_setup = None
    assert not _reached_upstream(tls_failed)
