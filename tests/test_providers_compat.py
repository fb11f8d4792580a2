"""The OpenAI-compatible providers' own rules: usage read in each provider's dialect
(genai-prices' extractors), OpenRouter's stated cost and its bounds, DeepSeek's
time-of-day prices.

Prices by hand (per million tokens), each from the provider's price page:

    xAI grok-3-mini (docs.x.ai/docs/models): $0.30 input, $0.075 cached input, $0.50 output;
        reasoning tokens are billed as output, and chat `completion_tokens` leave them out.
    Perplexity sonar-deep-research (docs.perplexity.ai/getting-started/pricing): $2 input,
        $8 output, $2 citation tokens, $3 reasoning tokens, $5 per 1,000 search queries.
    DeepSeek deepseek-chat (api-docs.deepseek.com/quick_start/pricing): standard hours
        (00:30-16:30 UTC) $0.27 input (cache miss), $0.07 cache hit, $1.10 output; off-peak
        (16:30-00:30 UTC) half of that: $0.135, $0.035, $0.55.
    OpenRouter openai/gpt-4o-mini (openrouter.ai/openai/gpt-4o-mini): $0.15 input,
        $0.075 cached input, $0.60 output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.vocab import CallStatus, PriceSource
from metering.bounds import MAX_COST_NANOS
from metering.call import Ending, MeteredCall
from pricing.estimate import estimate_max_cost
from pricing.prices import GENAI_PRICES_SOURCE, PriceBook
from providers.registry import Registry

PEAK = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # DeepSeek's standard hours
OFF_PEAK = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)  # 16:30-00:30 UTC: off-peak
PRICES = PriceBook()


def call_for(host: str, path: str, body: dict, at: datetime = PEAK) -> MeteredCall:
    endpoint = Registry().provider(host).route("POST", path)
    raw = json.dumps(body).encode()
    return MeteredCall(endpoint=endpoint, request=endpoint.api.read_request(endpoint, raw), started_at=at, path=path)


def chat_reply(model: str, usage: dict) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "model": model, "usage": usage,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                    "finish_reason": "stop"}]}).encode()


def settle_body(host: str, path: str, model: str, usage: dict, at: datetime = PEAK):
    call = call_for(host, path, {"model": model, "messages": [{"role": "user", "content": "hi"}]}, at)
    call.parser.feed_body(chat_reply(model, usage))
    return call.record(PRICES, 200, None)


# --- usage in each provider's dialect --------------------------------------------------------


def test_xai_reasoning_tokens_are_billed_as_output_beside_completion_tokens():
    # xAI: total 1000 + 50 + 400 = 1450: the 400 reasoning tokens are not inside completion_tokens.
    usage = {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1450,
             "prompt_tokens_details": {"cached_tokens": 200},
             "completion_tokens_details": {"reasoning_tokens": 400}}
    row = settle_body("api.x.ai", "/v1/chat/completions", "grok-3-mini", usage)
    assert (row.usage.input_tokens, row.usage.cache_read_tokens) == (1000, 200)
    assert (row.usage.output_tokens, row.usage.reasoning_tokens) == (450, 400)
    # 800 x $0.30 + 200 x $0.075 + 450 x $0.50 = 240 + 15 + 225 micro-dollars
    assert row.cost_nanos == 480_000


def test_xai_responses_usage_counts_reasoning_inside_output_tokens():
    call = call_for("api.x.ai", "/v1/responses", {"model": "grok-3-mini", "input": "hi"})
    call.parser.feed_body(json.dumps({"model": "grok-3-mini", "output": [], "usage": {
        "input_tokens": 1000, "input_tokens_details": {"cached_tokens": 200}, "output_tokens": 450,
        "output_tokens_details": {"reasoning_tokens": 400}}}))
    row = call.record(PRICES, 200, None)
    assert (row.usage.output_tokens, row.usage.reasoning_tokens, row.cost_nanos) == (450, 400, 480_000)


def test_perplexity_citation_and_reasoning_tokens_and_searches_are_billed():
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 11500, "citation_tokens": 2000,
             "reasoning_tokens": 8000, "num_search_queries": 4, "search_context_size": "low"}
    row = settle_body("api.perplexity.ai", "/chat/completions", "sonar-deep-research", usage)
    assert (row.usage.output_tokens, row.usage.reasoning_tokens) == (10_500, 8000)
    assert dict(row.usage.units) == {"output_citation_tokens": 2000, "web_searches": 4}
    # 1000 x $2 + 500 x $8 + 2000 x $2 + 8000 x $3 (per M) + 4 x $5/1000
    #   = 2000 + 4000 + 4000 + 24000 + 20000 micro-dollars = $0.054
    assert row.cost_nanos == 54_000_000


def test_a_usage_the_dialect_cannot_read_falls_back_to_openais_reading():
    # Perplexity's extractor requires completion_tokens; OpenAI's reading takes total_tokens.
    row = settle_body("api.perplexity.ai", "/chat/completions", "sonar", {"total_tokens": 700})
    assert (row.status, row.usage.input_tokens, row.usage.output_tokens) == (CallStatus.OK, 700, 0)


# --- OpenRouter: the charged cost the reply states -------------------------------------------

OR_USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 200}, "completion_tokens_details": {"reasoning_tokens": 0}}
OR_LIST_NANOS = 435_000  # 800 x $0.15 + 200 x $0.075 + 500 x $0.60 = 120 + 15 + 300 micro-dollars


def openrouter(usage: dict):
    return settle_body("openrouter.ai", "/api/v1/chat/completions", "openai/gpt-4o-mini", usage)


def test_openrouter_stated_cost_is_the_cost_recorded_with_its_source():
    row = openrouter({**OR_USAGE, "cost": 0.000512, "is_byok": False,
                      "cost_details": {"upstream_inference_cost": None}})
    assert (row.cost_nanos, row.price_source, row.status, row.anomaly) == (512_000, PriceSource.REPORTED, "ok", None)
    assert row.usage.input_tokens == 1000  # the tokens are still the reported ones


def test_openrouter_byok_call_adds_the_upstream_bill_to_openrouters_fee():
    row = openrouter({**OR_USAGE, "cost": 0.00002, "is_byok": True,
                      "cost_details": {"upstream_inference_cost": 0.0004}})
    assert (row.cost_nanos, row.price_source) == (420_000, PriceSource.REPORTED)


def test_openrouter_without_a_stated_cost_is_priced_by_its_openrouter_list_price():
    row = openrouter(OR_USAGE)
    assert (row.cost_nanos, row.price_source) == (OR_LIST_NANOS, GENAI_PRICES_SOURCE)


def test_openrouter_stream_states_its_cost_in_the_last_chunk():
    call = call_for("openrouter.ai", "/api/v1/chat/completions",
                    {"model": "openai/gpt-4o-mini", "messages": [], "stream": True})
    call.streamed = True
    for event in ({"model": "openai/gpt-4o-mini", "choices": [{"delta": {"content": "hi"}}]},
                  {"model": "openai/gpt-4o-mini", "choices": [{"delta": {}, "finish_reason": "stop"}]},
                  {"model": "openai/gpt-4o-mini", "choices": [], "usage": {**OR_USAGE, "cost": 0.0007}}):
        call.parser.feed_event(json.dumps(event))
    call.parser.feed_event("[DONE]")
    row = call.record(PRICES, 200, None)
    assert (row.cost_nanos, row.price_source, row.streamed) == (700_000, PriceSource.REPORTED, True)


def test_a_hostile_stated_cost_is_clamped_to_the_most_the_call_could_cost_and_flagged():
    row = openrouter({**OR_USAGE, "cost": 1e30})
    resolved = PRICES.resolve("openrouter", "openai/gpt-4o-mini")
    # The most: the context window (128k) in and out at the dearest rates -- far below $1M.
    most = PRICES.max_price(resolved, resolved.context_window, resolved.context_window, PEAK).nanos
    assert (row.cost_nanos, row.price_source) == (most, PriceSource.REPORTED)
    assert 0 < most < MAX_COST_NANOS
    assert row.anomaly == {"reported_cost_nanos": 10**39}


def test_a_stated_cost_for_an_unpriced_model_is_believed_up_to_a_million_dollars():
    row = settle_body("openrouter.ai", "/api/v1/chat/completions", "nobody/knows-this", {**OR_USAGE, "cost": 1e30})
    assert (row.cost_nanos, row.price_source, row.status) == (MAX_COST_NANOS, PriceSource.REPORTED, "ok")
    row = settle_body("openrouter.ai", "/api/v1/chat/completions", "nobody/knows-this", {**OR_USAGE, "cost": 0.25})
    assert (row.cost_nanos, row.price_source, row.status) == (250_000_000, PriceSource.REPORTED, "ok")


@pytest.mark.parametrize(("cost", "anomaly", "error"), [
    (-5, {"reported_cost_nanos": -5_000_000_000}, None),
    ("0.01", None, "unreadable usage.cost: priced from the usage instead"),
    (True, None, "unreadable usage.cost: priced from the usage instead"),
])
def test_a_stated_cost_that_is_not_a_cost_is_not_believed_and_the_list_price_applies(cost, anomaly, error):
    row = openrouter({**OR_USAGE, "cost": cost})
    assert (row.cost_nanos, row.price_source, row.anomaly, row.error) == (
        OR_LIST_NANOS, GENAI_PRICES_SOURCE, anomaly, error)


def test_an_infinite_stated_cost_is_not_believed():
    call = call_for("openrouter.ai", "/api/v1/chat/completions", {"model": "openai/gpt-4o-mini", "messages": []})
    call.parser.feed_body(chat_reply("openai/gpt-4o-mini", OR_USAGE).replace(b'"total_tokens"', b'"cost": Infinity, "total_tokens"'))
    row = call.record(PRICES, 200, None)
    assert (row.cost_nanos, row.price_source) == (OR_LIST_NANOS, GENAI_PRICES_SOURCE)


def test_other_providers_never_take_a_cost_from_the_reply():
    row = settle_body("api.groq.com", "/openai/v1/chat/completions", "llama-3.3-70b-versatile",
                      {**OR_USAGE, "cost": 99.0})
    assert row.price_source == GENAI_PRICES_SOURCE
    # 1000 x $0.59 + 500 x $0.79 (console.groq.com/docs/models; no cache price: cached as input)
    assert row.cost_nanos == 985_000


def test_the_stated_cost_survives_the_journal():
    call = call_for("openrouter.ai", "/api/v1/chat/completions", {"model": "openai/gpt-4o-mini", "messages": []})
    call.parser.feed_body(chat_reply("openai/gpt-4o-mini", {**OR_USAGE, "cost": 0.0009}))
    ending = Ending.from_json(json.loads(json.dumps(call.ending(200, None).to_json())))
    assert ending.reported_cost_nanos == 900_000


# --- DeepSeek: the price in force at the call's time -----------------------------------------

DS_USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 200},
            "prompt_cache_hit_tokens": 200, "prompt_cache_miss_tokens": 800}


@pytest.mark.parametrize("path", ["/chat/completions", "/v1/chat/completions"])
def test_deepseek_calls_are_priced_at_the_rates_of_their_time_of_day(path):
    peak = settle_body("api.deepseek.com", path, "deepseek-chat", DS_USAGE, PEAK)
    off_peak = settle_body("api.deepseek.com", path, "deepseek-chat", DS_USAGE, OFF_PEAK)
    # standard: 800 x $0.27 + 200 x $0.07 + 500 x $1.10 = 216 + 14 + 550 micro-dollars
    assert peak.cost_nanos == 780_000
    # off-peak, half price: 800 x $0.135 + 200 x $0.035 + 500 x $0.55 = 108 + 7 + 275
    assert off_peak.cost_nanos == 390_000


def test_deepseek_reservations_follow_the_time_of_day_too():
    call = call_for("api.deepseek.com", "/chat/completions",
                    {"model": "deepseek-chat", "messages": [], "max_tokens": 1000})
    peak, off = (estimate_max_cost(PRICES, "deepseek", call.request, call.endpoint.kind, at, 4096).nanos
                 for at in (PEAK, OFF_PEAK))
    assert peak == 2 * off > 0


def test_a_groq_stream_reports_its_usage_in_x_groq_when_usage_was_not_asked_for():
    call = call_for("api.groq.com", "/openai/v1/chat/completions",
                    {"model": "llama-3.3-70b-versatile", "messages": [], "stream": True})
    call.streamed = True
    call.parser.feed_event(json.dumps({"model": "llama-3.3-70b-versatile", "choices": [{"delta": {"content": "hi"}}]}))
    call.parser.feed_event(json.dumps({"model": "llama-3.3-70b-versatile",
                                       "choices": [{"delta": {}, "finish_reason": "stop"}],
                                       "x_groq": {"id": "req_1", "usage": {"prompt_tokens": 1000,
                                                                           "completion_tokens": 500}}}))
    call.parser.feed_event("[DONE]")
    row = call.record(PRICES, 200, None)
    assert (row.status, row.usage_source, row.cost_nanos) == ("ok", "reported", 985_000)  # 590 + 395 µ$
