"""Reference tests for Google beyond generateContent: Vertex AI's hosts and routes (Gemini
and Claude), Gemini embeddings (the Gemini API's answers may report no usage: the request's
own count is charged, estimated), and what a Vertex credential allows.

Prices are genai-prices' (the `google` provider, which holds Vertex's Claude prices and
falls back to Anthropic's): gemini-embedding-001 $0.15/M input (ai.google.dev/pricing);
claude-sonnet-4-5 $3/M input, $15/M output (cloud.google.com/vertex-ai/generative-ai/pricing,
the same as anthropic.com/pricing).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from core.usage import TokenUsage
from core.vocab import Framing
from metering.call import MeteredCall, settlement_usage
from pricing.prices import PriceBook
from providers.anthropic import MESSAGES
from providers.base import FREE, Endpoint
from providers.gemini import EMBED, GENERATE, GEMINI, GeminiEmbedParser
from providers.registry import Registry
from providers.vertex import VERTEX, VERTEX_CLAUDE_CREDENTIAL, VERTEX_CREDENTIAL

REGISTRY = Registry()
AT = datetime(2026, 12, 1, 12, tzinfo=UTC)
UNKNOWN = "unknown host"
PROJECT = "/v1/projects/my-proj/locations/us-east5/publishers"


def recognize(host: str, path: str, method: str = "POST"):
    provider = REGISTRY.provider(host, 443)
    return UNKNOWN if provider is None else provider.route(method, path)


def vertex(api, model, *, streaming=False, sse=True, credential=VERTEX_CREDENTIAL) -> Endpoint:
    return Endpoint("vertex", api, "google", credential, url_model=model, url_streaming=streaming,
                    framing=Framing.SSE if sse else Framing.JSON_ARRAY)


RECOGNITION = [
    # Gemini on Vertex AI: regional, global, multi-region and express-mode hosts; v1 and v1beta1
    (("us-central1-aiplatform.googleapis.com",
      "/v1beta1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"),
     vertex(GENERATE, "gemini-2.5-flash")),
    (("aiplatform.googleapis.com",
      "/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"),
     vertex(GENERATE, "gemini-2.5-pro", streaming=True)),
    (("europe-west4-aiplatform.googleapis.com",
      "/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent"),
     vertex(GENERATE, "gemini-2.5-pro", streaming=True, sse=False)),
    (("aiplatform.us.rep.googleapis.com",
      "/v1/projects/p/locations/us/publishers/google/models/gemini-2.5-flash:generateContent"),
     vertex(GENERATE, "gemini-2.5-flash")),
    (("aiplatform.googleapis.com", "/v1beta1/publishers/google/models/gemini-2.5-flash:generateContent"),
     vertex(GENERATE, "gemini-2.5-flash")),
    (("us-central1-aiplatform.googleapis.com",
      "/v1beta1/projects/p/locations/us-central1/publishers/google/models/gemini-embedding-001:embedContent"),
     vertex(EMBED, "gemini-embedding-001")),
    (("us-central1-aiplatform.googleapis.com",
      "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:countTokens"), FREE),
    # Claude on Vertex AI: the model (with its @date) from the URL; token counting is free
    (("us-east5-aiplatform.googleapis.com", f"{PROJECT}/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"),
     vertex(MESSAGES, "claude-sonnet-4-5@20250929", credential=VERTEX_CLAUDE_CREDENTIAL)),
    (("aiplatform.googleapis.com", f"{PROJECT}/anthropic/models/claude-opus-4-1@20250805:streamRawPredict"),
     vertex(MESSAGES, "claude-opus-4-1@20250805", credential=VERTEX_CLAUDE_CREDENTIAL)),
    (("us-east5-aiplatform.googleapis.com", f"{PROJECT}/anthropic/models/count-tokens:rawPredict"), FREE),
    # on Vertex's hosts but not metered: recorded as unmetered
    (("us-central1-aiplatform.googleapis.com", f"{PROJECT}/google/models/text-embedding-005:predict"), None),
    (("us-central1-aiplatform.googleapis.com", "/v1/projects/p/locations/l/endpoints/123:generateContent"), None),
    (("us-central1-aiplatform.googleapis.com", f"{PROJECT}/google/models/gemini-2.5-flash:batchEmbedContents"), None),
    (("us-central1-aiplatform.googleapis.com", "/v1beta/projects/p/locations/l/publishers/google/models/g:generateContent"),
     None),
    (("us-central1-aiplatform.googleapis.com", "/v1/projects/p/locations/l/batchPredictionJobs"), None),
    # the Gemini API stays the Gemini API, now with embeddings
    (("generativelanguage.googleapis.com", "/v1/models/gemini-embedding-001:batchEmbedContents"),
     Endpoint("google", EMBED, "google", GEMINI.credential, url_model="gemini-embedding-001")),
    (("generativelanguage.googleapis.com", "/v1beta/models/gemini-embedding-001:embedContent"),
     Endpoint("google", EMBED, "google", GEMINI.credential, url_model="gemini-embedding-001")),
    (("generativelanguage.googleapis.com", "/v1/models/gemini-2.5-flash:countTokens"), FREE),
    # the suffix swallows no other Google API
    (("storage.googleapis.com", "/upload/storage/v1/b/x/o"), UNKNOWN),
    (("oauth2.googleapis.com", "/token"), UNKNOWN),
    (("us-central1-run.googleapis.com", "/v1/projects/p"), UNKNOWN),
    (("us-central1-aiplatform-staging.googleapis.com", "/v1/x:generateContent"), UNKNOWN),
    (("-aiplatform.googleapis.com", "/v1/x"), UNKNOWN),
    (("aiplatform.googleapis.com.evil.example", "/v1/publishers/google/models/g:generateContent"), UNKNOWN),
    (("googleapis.com", "/v1/publishers/google/models/g:generateContent"), UNKNOWN),
]


@pytest.mark.parametrize(("where", "expected"), RECOGNITION, ids=[f"{h}{p}" for (h, p), _ in RECOGNITION])
def test_recognition(where, expected):
    assert recognize(*where) == expected


def test_reads_on_vertex_are_free():
    assert recognize("us-central1-aiplatform.googleapis.com", "/v1/projects/p/locations/l/models", "GET") is FREE


def test_vertex_hosts_are_a_suffix_family_found_without_a_regex():
    assert REGISTRY.provider("ASIA-NORTHEAST1-aiplatform.googleapis.com") is VERTEX
    assert REGISTRY.provider("us-central1-aiplatform.googleapis.com:443") is VERTEX
    assert REGISTRY.provider("generativelanguage.googleapis.com") is GEMINI
    assert VERTEX.host_suffixes == ("-aiplatform.googleapis.com",)


def test_claude_on_vertex_refuses_virtual_keys_and_gemini_takes_an_api_key():
    assert VERTEX_CLAUDE_CREDENTIAL.no_virtual_keys.startswith("Claude on Vertex AI accepts only OAuth")
    assert VERTEX_CLAUDE_CREDENTIAL.reads == VERTEX_CREDENTIAL.reads  # its tokens are tracked alike
    assert VERTEX_CREDENTIAL.no_virtual_keys == "" and VERTEX_CREDENTIAL.place.name == "x-goog-api-key"


# --- requests -----------------------------------------------------------------------


def embed_endpoint(path="/v1/models/gemini-embedding-001:batchEmbedContents"):
    return recognize("generativelanguage.googleapis.com", path)


def test_batch_embed_request_counts_the_bytes_of_its_texts():
    body = {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"role": "user", "parts": [{"text": "hello"}]}},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "naïve €"}, {"text": ""}]},
         "title": "Doc", "taskType": "RETRIEVAL_DOCUMENT"},
    ]}
    req = EMBED.read_request(embed_endpoint(), json.dumps(body).encode())
    # "hello" 5 bytes + "naïve €" 10 (ï is 2, € is 3) + the title "Doc" 3; role and model are not embedded
    assert req.input_tokens_estimate == 5 + len("naïve €".encode()) + 3 == 18
    assert (req.model, req.stream, req.max_output_tokens) == ("gemini-embedding-001", False, 0)


def test_embed_content_request_counts_its_content_parts():
    req = EMBED.read_request(embed_endpoint("/v1/models/gemini-embedding-001:embedContent"),
                             b'{"content": {"parts": [{"text": "abc"}, {"inline_data": {"mime_type": "x", "data": "QUJD"}}]}}')
    assert req.input_tokens_estimate == 3 + 1 + 4  # every string in the parts: an upper bound


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]"])
def test_unreadable_embed_request_has_no_count(raw):
    req = EMBED.read_request(embed_endpoint(), raw)
    assert req.parse_error and req.input_tokens_estimate is None and req.max_output_tokens == 0


def test_odd_embed_request_shapes_count_what_is_text():
    body = b'{"requests": [null, 3, {"content": "x"}, {"content": {"parts": [{"text": 5}, [["deep"]]]}}]}'
    assert EMBED.read_request(embed_endpoint(), body).input_tokens_estimate == 4


def test_a_deeply_nested_embed_request_does_not_exhaust_the_stack():
    body = b'{"content": {"parts": ' + b"[" * 900 + b'"abc"' + b"]" * 900 + b"}}"
    assert EMBED.read_request(embed_endpoint(), body).input_tokens_estimate == 3


def test_claude_on_vertex_request_takes_the_model_from_the_url():
    endpoint = recognize("us-east5-aiplatform.googleapis.com",
                         f"{PROJECT}/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict")
    req = endpoint.api.read_request(endpoint, b'{"anthropic_version": "vertex-2023-10-16", "max_tokens": 64, '
                                              b'"stream": true, "messages": []}')
    assert (req.model, req.stream, req.max_output_tokens) == ("claude-sonnet-4-5@20250929", True, 64)


# --- embedding usage ----------------------------------------------------------------


def test_embed_answer_with_usage_is_complete():
    p = GeminiEmbedParser()
    p.feed_body(b'{"embedding": {"values": [0.1]}, "usageMetadata": {"promptTokenCount": 12}, "truncated": false}')
    assert (p.usage, p.complete, p.error) == (TokenUsage(input_tokens=12), True, None)


def test_embed_answer_without_usage_ended_without_a_report():
    p = GeminiEmbedParser()
    p.feed_body(b'{"embeddings": [{"values": [0.1]}, {"values": [0.2]}]}')
    assert (p.usage, p.complete, p.ended, p.error) == (None, False, True, None)


@pytest.mark.parametrize(("raw", "error"), [
    (b'{"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}', "no usage in response body"),
    (b'{"embedding": [1], "usageMetadata": {"promptTokenCount": "3"}}', "no usage in response body"),
    (b"\xff", "invalid JSON in response body"),
])
def test_bad_embed_answers_give_an_error(raw, error):
    p = GeminiEmbedParser()
    p.feed_body(raw)
    assert (p.usage, p.complete, p.ended, p.error) == (None, False, False, error)


def embed_call(body: dict, answer: bytes) -> MeteredCall:
    endpoint = embed_endpoint()
    call = MeteredCall(endpoint=endpoint, request=EMBED.read_request(endpoint, json.dumps(body).encode()),
                       started_at=AT, path="/v1/models/gemini-embedding-001:batchEmbedContents")
    call.parser.feed_body(answer)
    return call


TEXTS = {"requests": [{"content": {"parts": [{"text": "x" * 4000}]}}, {"content": {"parts": [{"text": "y" * 6000}]}}]}


def test_embeddings_without_usage_are_charged_the_requests_count_as_estimated():
    call = embed_call(TEXTS, b'{"embeddings": [{"values": [0.1]}, {"values": [0.2]}]}')
    assert settlement_usage(call, 200, None) == (TokenUsage(input_tokens=10_000), "estimated", "ok")
    record = call.record(PriceBook(), 200, None)
    # gemini-embedding-001: 10,000 tokens (at most one per byte of text) × $0.15/M = $0.0015
    assert (record.cost_nanos, record.usage_source, record.status) == (1_500_000, "estimated", "ok")
    assert record.price_source.startswith("genai-prices")


def test_embeddings_with_usage_are_charged_as_reported():
    call = embed_call(TEXTS, b'{"embeddings": [{"values": [0.1]}], "usageMetadata": {"promptTokenCount": 2500}}')
    record = call.record(PriceBook(), 200, None)
    # 2,500 × $0.15/M = $0.000375
    assert (record.cost_nanos, record.usage_source, record.status) == (375_000, "reported", "ok")


def test_an_unreadable_embed_answer_is_a_parse_error_charged_the_requests_count():
    call = embed_call(TEXTS, b"<html>oops</html>")
    usage, source, status = settlement_usage(call, 200, None)
    assert (usage.input_tokens, source, status) == (10_000, "estimated", "parse_error")


def test_an_upstream_error_without_usage_is_not_charged():
    call = embed_call(TEXTS, b'{"error": {"code": 429, "message": "quota"}}')
    assert settlement_usage(call, 429, None) == (None, "none", "upstream_error")


# --- prices -------------------------------------------------------------------------


def test_claude_on_vertex_is_priced_by_genai_prices_google_provider_with_its_date_suffix():
    book = PriceBook()
    # 10,000 × $3/M + 1,000 × $15/M = $0.045
    usage = TokenUsage(input_tokens=10_000, output_tokens=1_000)
    assert book.cost("google", "claude-sonnet-4-5@20250929", usage, AT).nanos == 45_000_000
    assert book.resolve("google", "claude-sonnet-4-5@20250929").provider.id == "google"
    # a Claude model google's list lacks falls back to anthropic's: claude-3-sonnet, $3/M input
    assert book.cost("google", "claude-3-sonnet@20240229", TokenUsage(input_tokens=1_000_000), AT).nanos == 3_000_000_000
