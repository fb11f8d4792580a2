"""Reference tests for Cohere: recognition, requests, and usage billed on `billed_units`
(never `tokens`), whole and streamed, for chat, embed and rerank.

Prices are genai-prices' `cohere` provider, which match cohere.com/pricing: command-a
(= command-a-03-2025) $2.50/M input, $10/M output; command-r-plus-08-2024 the same;
embed-v4.0 $0.12/M input. genai-prices has no rerank price.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from test_providers_stream import run, splits, sse

from core.usage import TokenUsage
from core.vocab import Framing
from metering.call import MeteredCall
from pricing.prices import PriceBook
from providers import cohere
from providers.base import FREE, Endpoint
from providers.registry import Registry

REGISTRY = Registry()
AT = datetime(2026, 12, 1, 12, tzinfo=UTC)


def endpoint(path: str, host: str = "api.cohere.com"):
    provider = REGISTRY.provider(host, 443)
    return None if provider is None else provider.route("POST", path)


def ep(api) -> Endpoint:
    return Endpoint("cohere", api, "cohere", cohere.COHERE.credential)


@pytest.mark.parametrize(("host", "path", "expected"), [
    ("api.cohere.com", "/v2/chat", ep(cohere.CHAT)),
    ("api.cohere.ai", "/v2/chat", ep(cohere.CHAT)),
    ("api.cohere.com", "/v2/embed", ep(cohere.EMBED)),
    ("api.cohere.com", "/v1/embed", ep(cohere.EMBED)),
    ("api.cohere.com", "/v2/rerank", ep(cohere.RERANK)),
    ("api.cohere.ai", "/v1/rerank", ep(cohere.RERANK)),
    ("api.cohere.com", "/v1/tokenize", FREE),
    ("api.cohere.com", "/v1/chat", None),  # legacy, JSON-lines streams: unmetered
    ("api.cohere.com", "/v2/classify", None),
])
def test_recognition(host, path, expected):
    assert endpoint(path, host) == expected


def test_hosts_are_genai_prices_own():
    assert cohere.COHERE.hosts == ("api.cohere.ai", "api.cohere.com")


def test_chat_request_reads_model_max_tokens_and_stream():
    body = b'{"model": "command-a-03-2025", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50, "stream": true}'
    req = cohere.CHAT.read_request(ep(cohere.CHAT), body)
    assert (req.model, req.stream, req.max_output_tokens) == ("command-a-03-2025", True, 50)


def test_embed_and_rerank_requests_have_no_output():
    for api in (cohere.EMBED, cohere.RERANK):
        req = api.read_request(ep(api), b'{"model": "m", "texts": ["a"]}')
        assert (req.model, req.max_output_tokens) == ("m", 0)


CHAT_BODY = {
    "id": "c14c80c3", "finish_reason": "COMPLETE",
    "message": {"role": "assistant", "content": [{"type": "thinking", "thinking": "Hm."}, {"type": "text", "text": "Hi!"}],
                "tool_plan": "Look.", "tool_calls": [{"id": "t", "type": "function",
                                                      "function": {"name": "f", "arguments": "{}"}}]},
    "usage": {"billed_units": {"input_tokens": 50.0, "output_tokens": 26.0},
              "tokens": {"input_tokens": 793.0, "output_tokens": 61.0}, "cached_tokens": 176.0},
}


def test_chat_body_is_billed_on_billed_units_not_tokens():
    p = cohere.CohereChatParser()
    p.feed_body(json.dumps(CHAT_BODY))
    assert (p.usage, p.complete, p.model, p.error) == (TokenUsage(input_tokens=50, output_tokens=26), True, None, None)
    assert p.output_chars == len("Hm.") + len("Hi!") + len("Look.") + len("f") + len("{}")


def test_fractional_billed_units_are_rounded_up():
    p = cohere.CohereChatParser()
    p.feed_body(b'{"usage": {"billed_units": {"input_tokens": 10.2, "output_tokens": 3}}}')
    assert p.usage == TokenUsage(input_tokens=11, output_tokens=3)


@pytest.mark.parametrize(("raw", "error"), [
    (b'{"id": "x", "message": "invalid api token"}', "no usage in response body"),
    (b'{"usage": {"tokens": {"input_tokens": 10, "output_tokens": 3}}}', "no usage in response body"),
    (b'{"usage": {"billed_units": {"input_tokens": -1, "output_tokens": "3"}}}', "no usage in response body"),
    (b'{"message": [1], "usage": 7}', "no usage in response body"),
    (b"[]", "unexpected response body: not a JSON object"),
])
def test_bad_chat_bodies_give_an_error_not_an_exception(raw, error):
    p = cohere.CohereChatParser()
    p.feed_body(raw)
    assert (p.usage, p.complete, p.error) == (None, False, error)


STREAM_HEAD = sse(
    ("message-start", {"id": "5c1f", "type": "message-start", "delta": {"message": {
        "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
    ("content-start", {"type": "content-start", "index": 0,
                       "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
    ("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hel"}}}}),
    ("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "lo \"x\""}}}}),
)
STREAM = STREAM_HEAD + sse(
    ("content-end", {"type": "content-end", "index": 0}),
    ("tool-plan-delta", {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "Plan"}}}),
    ("tool-call-start", {"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {
        "id": "t", "type": "function", "function": {"name": "calc", "arguments": ""}}}}}),
    ("tool-call-delta", {"type": "tool-call-delta", "index": 0,
                         "delta": {"message": {"tool_calls": {"function": {"arguments": "{\"a\":1}"}}}}}),
    ("message-end", {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {
        "billed_units": {"input_tokens": 50, "output_tokens": 26}, "tokens": {"input_tokens": 793, "output_tokens": 61},
        "cached_tokens": 176}}}),
    (None, "[DONE]"),
)
CHAT_STREAM_ENDPOINT = Endpoint("cohere", cohere.CHAT, "cohere", framing=Framing.SSE)


def test_chat_stream_usage_is_the_same_at_every_split():
    for label, chunks in splits(STREAM):
        parser, tap, forwarded = run(CHAT_STREAM_ENDPOINT, True, chunks)
        assert forwarded == STREAM, label
        assert (parser.usage, parser.complete, parser.ended, parser.error) == (
            TokenUsage(input_tokens=50, output_tokens=26), True, True, None), label
        assert parser.output_chars == len('Hello "x"') + len("Plan") + len("calc") + len('{"a":1}'), label


def test_chat_stream_without_event_names_is_read_by_its_type():
    body = b"".join(b"data: " + line.split(b"data: ", 1)[1] for line in STREAM.split(b"\n\n") if b"data: " in line)
    body = body.replace(b"}data: ", b"}\n\ndata: ").replace(b"]data: ", b"]\n\ndata: ") + b"\n\n"
    parser, _, _ = run(CHAT_STREAM_ENDPOINT, True, [body])
    assert parser.usage == TokenUsage(input_tokens=50, output_tokens=26) and parser.complete


def test_chat_stream_cut_before_message_end_is_charged_an_estimate():
    call = MeteredCall(endpoint=CHAT_STREAM_ENDPOINT,
                       request=cohere.CHAT.read_request(CHAT_STREAM_ENDPOINT, b'{"model": "command-a-03-2025", '
                                                                              b'"stream": true, "messages": []}'),
                       started_at=AT, path="/v2/chat")
    call.streamed = True
    run_parser, _, _ = run(CHAT_STREAM_ENDPOINT, True, [STREAM_HEAD])
    call.parser = run_parser
    record = call.record(PriceBook(), 200, "peer closed connection")
    assert (record.status, record.usage_source, record.model) == ("partial", "estimated", "command-a-03-2025")
    assert record.cost_nanos > 0 and record.usage.output_tokens == 3  # 9 characters seen, 4 per token


def test_embed_body_is_billed_on_meta_billed_units():
    p = cohere.CohereEmbedParser()
    p.feed_body(b'{"id": "e", "embeddings": {"float": [[0.1]]}, "texts": ["hello"], '
                b'"meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 7.0}}}')
    assert (p.usage, p.complete) == (TokenUsage(input_tokens=7), True)


def test_embed_of_images_bills_text_and_image_tokens_when_input_tokens_is_absent():
    p = cohere.CohereEmbedParser()
    p.feed_body(b'{"meta": {"billed_units": {"images": 1, "image_tokens": 1000, "text_tokens": 5}}}')
    assert p.usage == TokenUsage(input_tokens=1005)


def test_rerank_body_is_billed_in_search_units():
    p = cohere.CohereRerankParser()
    p.feed_body(b'{"results": [{"index": 0, "relevance_score": 0.9}], '
                b'"meta": {"billed_units": {"search_units": 2.0}}}')
    assert (p.usage, p.complete) == (TokenUsage(units={"rerank_searches": 2}), True)


@pytest.mark.parametrize("parser", [cohere.CohereEmbedParser, cohere.CohereRerankParser])
@pytest.mark.parametrize("raw", [b'{"meta": {"billed_units": {}}}', b'{"meta": 3}', b'{"message": "bad"}',
                                 b'{"meta": {"billed_units": {"input_tokens": true, "search_units": "1"}}}'])
def test_bad_embed_and_rerank_bodies_give_an_error(parser, raw):
    p = parser()
    p.feed_body(raw)
    assert (p.usage, p.complete, p.error) == (None, False, "no usage in response body")


def test_prices():
    book = PriceBook()
    # command-a-03-2025 and command-r-plus-08-2024: 10,000 × $2.50/M + 1,000 × $10/M = $0.035
    for model in ("command-a-03-2025", "command-r-plus-08-2024"):
        assert book.cost("cohere", model, TokenUsage(input_tokens=10_000, output_tokens=1_000), AT).nanos == 35_000_000
    # embed-v4.0: 1,000 × $0.12/M = $0.00012
    assert book.cost("cohere", "embed-v4.0", TokenUsage(input_tokens=1_000), AT).nanos == 120_000
    # no rerank price: unknown, never $0
    cost = book.cost("cohere", "rerank-v3.5", TokenUsage(units={"rerank_searches": 1}), AT)
    assert (cost.nanos, cost.source) == (None, "unpriced")
