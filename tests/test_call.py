"""What a call is charged when its usage is incomplete (metering.call.settlement_usage)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from core.usage import TokenUsage
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


# --- what a response may claim --------------------------------------------------------

from metering.bounds import FALLBACK_TOKENS, MAX_COST_NANOS, bound_cost, bound_usage  # noqa: E402
from pricing.prices import PriceBook  # noqa: E402


def test_a_report_beyond_the_context_window_is_clamped_and_kept_as_an_anomaly():
    request = CallRequest(model="gpt-4o", stream=False, max_output_tokens=100, input_bytes=100)
    usage, anomaly = bound_usage(TokenUsage(input_tokens=9 * 10**15, cache_read_tokens=2**63, output_tokens=50),
                                 request.input_bytes, request.max_output_tokens, context_window=128_000)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (128_000, 128_000, 50)
    assert anomaly == {"input_tokens": 9 * 10**15, "cache_read_tokens": 2**63}


def test_plausible_usage_is_untouched_and_server_side_input_is_allowed():
    # previous_response_id: the input is larger than the 10-byte body, but within the context
    request = CallRequest(model="gpt-4o", stream=False, max_output_tokens=None, input_bytes=10)
    usage = TokenUsage(input_tokens=100_000, output_tokens=20_000, units={"web_searches": 3})
    assert bound_usage(usage, request.input_bytes, request.max_output_tokens, 128_000) == (usage, {})
    # no context window known: a generous fallback, still far below any overflow
    big = TokenUsage(input_tokens=10**30, units={"web_searches": 10**9, "input_audio_tokens": 10**12})
    bounded, anomaly = bound_usage(big, request.input_bytes, request.max_output_tokens, None)
    assert bounded.input_tokens == FALLBACK_TOKENS and bounded.units["input_audio_tokens"] == FALLBACK_TOKENS
    assert set(anomaly) == {"input_tokens", "units.web_searches", "units.input_audio_tokens"}
    assert bound_cost(MAX_COST_NANOS * 10) == (MAX_COST_NANOS, {"cost_nanos": MAX_COST_NANOS * 10})


def test_an_impossible_report_is_recorded_clamped_with_its_raw_figure():
    call = call_for("api.openai.com", "/v1/chat/completions", input_bytes=100)
    call.streamed = False
    call.parser.feed_body(json.dumps({"model": "gpt-4o", "choices": [], "usage": {
        "prompt_tokens": 9_000_000_000_000_000, "completion_tokens": 5}}))
    record = call.record(PriceBook(), 200, None)
    assert record.usage.input_tokens == 128_000 and record.anomaly == {"input_tokens": 9_000_000_000_000_000}
    # 128_000 x $2.50/M + 5 x $10/M: what gpt-4o could cost at most for its input, not $22.5 billion
    assert record.cost_nanos == 320_000_000 + 50_000 and record.status == "ok"


def test_usage_within_bounds_passes_as_it_is_and_each_bound_still_clamps():
    from metering.bounds import bound_usage
    from providers.base import CallRequest

    request = CallRequest(model="m", stream=False, max_output_tokens=100, input_bytes=400)
    ok = TokenUsage(input_tokens=300, cache_read_tokens=300, cache_write_tokens=10, output_tokens=90,
                    reasoning_tokens=90)
    assert bound_usage(ok, request.input_bytes, request.max_output_tokens, 1000) == (ok, {})
    assert bound_usage(ok, request.input_bytes, request.max_output_tokens, 1000)[0] is ok
    for bad, clamped in (
        (TokenUsage(input_tokens=5000), {"input_tokens": 5000}),
        (TokenUsage(input_tokens=-1), {"input_tokens": -1}),
        (TokenUsage(output_tokens=5000), {"output_tokens": 5000}),
        (TokenUsage(input_tokens=10, cache_read_tokens=11), {"cache_read_tokens": 11}),
        (TokenUsage(input_tokens=10, cache_write_tokens=11), {"cache_write_tokens": 11}),
        (TokenUsage(output_tokens=10, reasoning_tokens=11), {"reasoning_tokens": 11}),
        (TokenUsage(input_tokens=10, units={"web_searches": -2}), {"units.web_searches": -2}),
    ):
        assert bound_usage(bad, request.input_bytes, request.max_output_tokens, 1000)[1] == clamped


def test_a_background_stream_left_early_is_charged_its_hold_and_one_that_ends_its_usage():
    """OpenAI finishes (and bills) a background response whatever the client does: a stream
    left before its usage is charged what was held, not the text seen."""
    created = {"type": "response.created", "response": {"id": "r1", "model": "m", "background": True,
                                                         "status": "in_progress", "usage": None}}
    delta = {"type": "response.output_text.delta", "delta": TEXT}
    left = call_for("api.openai.com", "/v1/responses")
    feed(left, created, delta)
    assert settlement_usage(left, 200, "client disconnected") == (None, "none", "ok")
    ending = left.ending(200, "client disconnected")
    assert ending.billed_later and ending.error.startswith("client disconnected; a background response")
    done = call_for("api.openai.com", "/v1/responses")
    feed(done, created, delta, {"type": "response.completed", "response": {
        "id": "r1", "model": "m", "background": True, "status": "completed",
        "usage": {"input_tokens": 10, "output_tokens": 3}}})
    usage, source, status = settlement_usage(done, 200, None)
    assert (usage.input_tokens, usage.output_tokens, source, status) == (10, 3, "reported", "ok")
    assert not done.ending(200, None).billed_later
