"""Reference tests for `providers`: which calls are metered, what their requests
say, and how each provider's (non-streamed) usage maps onto `TokenUsage`.

Streams are in test_providers_stream.py.
"""

from __future__ import annotations

import json

import pytest

from core.vocab import ApiStyle, Framing
from providers.anthropic import MESSAGES, AnthropicMessagesParser
from providers.base import FREE, CallRequest, Endpoint
from providers.custom import CustomProvider
from providers.gemini import GENERATE, GeminiParser
from providers.openai import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    RESPONSES,
    OpenAIChatParser,
    OpenAIEmbeddingsParser,
    OpenAIResponsesParser,
    request_stream_usage,
)
from providers.registry import Registry
from core.usage import TokenUsage

# --- recognition --------------------------------------------------------------------

CUSTOM = {
    "ollama": CustomProvider("ollama", "localhost:11434", ApiStyle.OPENAI),
    "vllm": CustomProvider("vllm", "VLLM.internal", ApiStyle.OPENAI, price_provider="openai"),
    "gateway": CustomProvider("gateway", "llm.corp.example", ApiStyle.ANTHROPIC, price_provider="anthropic"),
}
REGISTRY = Registry(CUSTOM)
UNKNOWN = "unknown host"  # not a provider's: the request passes untouched
UNMETERED = None  # a provider's, but no route names it


def recognize(host, path, port=None, method="POST", registry=REGISTRY):
    provider = registry.provider(host, port)
    return UNKNOWN if provider is None else provider.route(method, path)


KINDS = {"chat": CHAT, "completions": COMPLETIONS, "responses": RESPONSES, "embeddings": EMBEDDINGS}


def ep(provider, api, price, **kw) -> Endpoint:
    credential = REGISTRY.named(provider).credential
    return Endpoint(provider=provider, api=api, price_provider=price, credential=credential, **kw)


OPENAI = lambda kind: ep("openai", KINDS[kind], "openai")  # noqa: E731
AZURE = lambda kind, dep=None: ep("azure", KINDS[kind], "azure", url_model=dep)  # noqa: E731
ANTHROPIC = ep("anthropic", MESSAGES, "anthropic")
GEMINI = lambda model, streaming=False, sse=True: ep(  # noqa: E731
    "google", GENERATE, "google", url_model=model, url_streaming=streaming,
    framing=Framing.SSE if sse else Framing.JSON_ARRAY,
)
CUSTOM_EP = lambda name, kind, price=None: ep(name, MESSAGES if kind == "messages" else KINDS[kind], price)  # noqa: E731

RECOGNITION_TABLE = [
    # (host, path, port) -> Endpoint | FREE | UNMETERED | UNKNOWN (for a POST)
    # OpenAI: four metered endpoints; free ones; any other write is unmetered
    (("api.openai.com", "/v1/chat/completions", 443), OPENAI("chat")),
    (("api.openai.com", "/v1/responses", 443), OPENAI("responses")),
    (("api.openai.com", "/v1/completions", 443), OPENAI("completions")),
    (("api.openai.com", "/v1/embeddings", 443), OPENAI("embeddings")),
    (("API.OpenAI.com", "/v1/chat/completions?foo=1", None), OPENAI("chat")),
    (("api.openai.com", "/v1/models", 443), UNMETERED),
    (("api.openai.com", "/v1/files", 443), FREE),
    (("api.openai.com", "/v1/moderations", 443), FREE),
    (("api.openai.com", "/v1/responses/resp_123", 443), UNMETERED),
    (("api.openai.com", "/v1/responses/resp_123/cancel", 443), FREE),
    (("api.openai.com", "/v1/chat/completions/chatcmpl-1", 443), FREE),
    (("api.openai.com", "/v2/chat/completions", 443), UNMETERED),
    (("api.openai.com", "/v1/batches", 443), UNMETERED),
    # Azure OpenAI: deployments (model from URL) and the v1 API (model in the body)
    (
        ("myres.openai.azure.com", "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21", 443),
        AZURE("chat", "gpt4o-prod"),
    ),
    (("myres.openai.azure.com", "/openai/deployments/davinci/completions", None), AZURE("completions", "davinci")),
    (("myres.openai.azure.com", "/openai/deployments/ada/embeddings", None), AZURE("embeddings", "ada")),
    (("myres.cognitiveservices.azure.com", "/openai/deployments/o3/chat/completions", None), AZURE("chat", "o3")),
    (("myres.openai.azure.com", "/openai/v1/chat/completions?api-version=preview", None), AZURE("chat")),
    (("myres.openai.azure.com", "/openai/v1/responses", None), AZURE("responses")),
    (("myres.openai.azure.com", "/openai/responses?api-version=2025-04-01-preview", None), AZURE("responses")),
    (("myres.openai.azure.com", "/openai/v1/embeddings", None), AZURE("embeddings")),
    (("myres.openai.azure.com", "/openai/deployments/gpt4o/images/generations", None), UNMETERED),
    (("myres.openai.azure.com", "/openai/deployments", None), UNMETERED),
    (("myres.openai.azure.com", "/openai/v1/models", None), UNMETERED),
    (("openai.azure.com.evil.example", "/openai/v1/chat/completions", None), UNKNOWN),
    (("openai.azure.com", "/openai/v1/chat/completions", None), UNKNOWN),
    # Anthropic: messages; token counting is free; batches are not metered
    (("api.anthropic.com", "/v1/messages", 443), ANTHROPIC),
    (("api.anthropic.com", "/v1/messages?beta=true", 443), ANTHROPIC),
    (("api.anthropic.com", "/v1/messages/count_tokens", 443), FREE),
    (("api.anthropic.com", "/v1/messages/batches", 443), UNMETERED),
    (("api.anthropic.com", "/v1/complete", 443), UNMETERED),
    # Gemini: model from the URL; streaming from the method; SSE only with alt=sse
    (
        ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:generateContent", 443),
        GEMINI("gemini-2.5-flash"),
    ),
    (
        ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", 443),
        GEMINI("gemini-2.5-pro", streaming=True, sse=True),
    ),
    (
        ("generativelanguage.googleapis.com", "/v1/models/gemini-2.0-flash:streamGenerateContent?key=k", 443),
        GEMINI("gemini-2.0-flash", streaming=True, sse=False),
    ),
    (
        ("generativelanguage.googleapis.com", "/v1alpha/models/gemini-2.5-flash%3AgenerateContent", 443),
        GEMINI("gemini-2.5-flash"),
    ),
    (
        ("generativelanguage.googleapis.com", "/v1beta/tunedModels/my-tune-42:generateContent", 443),
        GEMINI("tunedModels/my-tune-42"),
    ),
    (("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:countTokens", 443), FREE),
    (("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash", 443), UNMETERED),
    (("generativelanguage.googleapis.com", "/v1beta/models", 443), UNMETERED),
    (("generativelanguage.googleapis.com", "/v2/models/gemini-2.5-flash:generateContent", 443), UNMETERED),
    # Custom hosts: port-aware when configured with a port; any prefix before the endpoint
    (("localhost", "/v1/chat/completions", 11434), CUSTOM_EP("ollama", "chat")),
    (("localhost:11434", "/v1/chat/completions", None), CUSTOM_EP("ollama", "chat")),
    (("localhost", "/v1/chat/completions", 8080), UNKNOWN),
    (("localhost", "/v1/chat/completions", None), UNKNOWN),
    (("vllm.internal", "/v1/completions", 8000), CUSTOM_EP("vllm", "completions", "openai")),
    (("vllm.internal", "/api/openai/v1/chat/completions", 443), CUSTOM_EP("vllm", "chat", "openai")),
    (("vllm.internal", "/v1/responses", None), CUSTOM_EP("vllm", "responses", "openai")),
    (("vllm.internal", "/embeddings", None), CUSTOM_EP("vllm", "embeddings", "openai")),
    (("vllm.internal", "/v1/models", None), UNMETERED),
    (("vllm.internal", "/v1/messages", None), UNMETERED),
    (("llm.corp.example", "/anthropic/v1/messages", None), CUSTOM_EP("gateway", "messages", "anthropic")),
    (("llm.corp.example", "/messages", None), CUSTOM_EP("gateway", "messages", "anthropic")),
    (("llm.corp.example", "/v1/messages/count_tokens", None), FREE),
    (("llm.corp.example", "/v1/chat/completions", None), UNMETERED),
    # Unknown hosts
    (("example.com", "/v1/chat/completions", 443), UNKNOWN),
    (("api.openai.com.example.com", "/v1/chat/completions", 443), UNKNOWN),
]


@pytest.mark.parametrize(("where", "expected"), RECOGNITION_TABLE, ids=[f"{h}{p}" for (h, p, _), _ in RECOGNITION_TABLE])
def test_recognition_table(where, expected):
    host, path, port = where
    assert recognize(host, path, port) == expected


def test_reads_on_a_provider_host_are_free():
    assert recognize("api.openai.com", "/v1/models", method="GET") is FREE
    assert recognize("api.anthropic.com", "/api/claude_code/settings", method="GET") is FREE
    assert recognize("api.openai.com", "/v1/files/file-1", method="DELETE") is FREE


def test_builtin_hosts_need_no_configuration():
    assert recognize("api.anthropic.com", "/v1/messages", registry=Registry()) == ANTHROPIC
    assert recognize("localhost", "/v1/chat/completions", 11434, registry=Registry()) == UNKNOWN


def test_custom_host_overrides_a_builtin_host():
    r = Registry({"corp-openai": CustomProvider("corp-openai", "api.openai.com", ApiStyle.OPENAI)})
    assert recognize("api.openai.com", "/v1/chat/completions", registry=r) == Endpoint("corp-openai", CHAT, None)


def test_custom_hosts_with_ipv6_and_trailing_dot():
    r = Registry({"v6": CustomProvider("v6", "[::1]:8000", ApiStyle.OPENAI)})
    assert recognize("::1", "/v1/chat/completions", 8000, registry=r) == Endpoint("v6", CHAT, None)
    assert recognize("[::1]:8000", "/v1/chat/completions", registry=r) == Endpoint("v6", CHAT, None)
    assert recognize("::1", "/v1/chat/completions", 9000, registry=r) == UNKNOWN
    assert recognize("api.openai.com.", "/v1/embeddings", registry=Registry()) == OPENAI("embeddings")


def test_custom_host_given_as_a_base_url():
    r = Registry({"o": CustomProvider("o", "http://LocalHost:11434/v1", ApiStyle.OPENAI)})
    assert recognize("localhost", "/v1/embeddings", 11434, registry=r) == Endpoint("o", EMBEDDINGS, None)


@pytest.mark.parametrize(
    "make",
    [
        lambda: {"x": CustomProvider("x", "h", "gemini")},
        lambda: {"x": CustomProvider("x", "", ApiStyle.OPENAI)},
        lambda: Registry({"a": CustomProvider("a", "h:1", ApiStyle.OPENAI),
                          "b": CustomProvider("b", "H:1", ApiStyle.ANTHROPIC)}),
    ],
)
def test_bad_custom_host_configuration_is_rejected_up_front(make):
    with pytest.raises(ValueError):
        make()


# --- request parsing ----------------------------------------------------------------


def read(endpoint: Endpoint, raw: bytes) -> CallRequest:
    return endpoint.api.read_request(endpoint, raw)


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_chat_request_prefers_max_completion_tokens_and_reads_stream_options():
    r = read(
        OPENAI("chat"),
        body(model="gpt-4o", stream=True, max_tokens=50, max_completion_tokens=100, stream_options={"include_usage": True}),
    )
    assert r == CallRequest(model="gpt-4o", stream=True, max_output_tokens=100, input_bytes=r.input_bytes,
                            stream_usage_requested=True)
    assert r.input_bytes > 0


def test_chat_request_with_only_max_tokens_and_n_choices():
    r = read(OPENAI("chat"), body(model="gpt-4o-mini", max_tokens=64, n=3, messages=[]))
    assert (r.model, r.stream, r.max_output_tokens, r.stream_usage_requested) == ("gpt-4o-mini", False, 192, False)


def test_chat_request_without_cap():
    r = read(OPENAI("chat"), body(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]))
    assert r.max_output_tokens is None and r.parse_error is None


def test_responses_request():
    r = read(OPENAI("responses"), body(model="o4-mini", input="hi", stream=True, max_output_tokens=2000))
    assert (r.model, r.stream, r.max_output_tokens, r.stream_usage_requested) == ("o4-mini", True, 2000, False)


def test_completions_request_counts_best_of():
    r = read(OPENAI("completions"), body(model="gpt-3.5-turbo-instruct", prompt="x", max_tokens=16, best_of=4,
                                                   stream=True, stream_options={"include_usage": False}))
    assert (r.max_output_tokens, r.stream, r.stream_usage_requested) == (64, True, False)


def test_embeddings_request_has_no_output():
    r = read(OPENAI("embeddings"), body(model="text-embedding-3-small", input=["a", "b"]))
    assert (r.model, r.stream, r.max_output_tokens) == ("text-embedding-3-small", False, 0)


def test_anthropic_request():
    r = read(ANTHROPIC, body(model="claude-sonnet-4-5", max_tokens=1024, stream=True, messages=[]))
    assert (r.model, r.stream, r.max_output_tokens, r.stream_usage_requested) == ("claude-sonnet-4-5", True, 1024, False)


def test_azure_body_model_wins_over_deployment():
    dep = AZURE("chat", "prod-gpt4o")
    assert read(dep, body(model="gpt-4o", messages=[])).model == "gpt-4o"
    assert read(dep, body(messages=[])).model == "prod-gpt4o"


def test_gemini_request_model_and_stream_come_from_the_url():
    g = GEMINI("gemini-2.5-flash", streaming=True, sse=False)
    r = read(g, body(model="ignored", contents=[], generationConfig={"maxOutputTokens": 500, "candidateCount": 2}))
    assert (r.model, r.stream, r.max_output_tokens) == ("gemini-2.5-flash", True, 1000)
    r = read(GEMINI("gemini-2.5-pro"), body(contents=[], generation_config={"max_output_tokens": 10}))
    assert (r.model, r.stream, r.max_output_tokens) == ("gemini-2.5-pro", False, 10)


@pytest.mark.parametrize(
    ("raw", "error"),
    [(b"{not json", "invalid JSON in request body"), (b"", "empty request body"), (b"[1, 2]", "request body is not a JSON object"),
     (b"\xff\xfe\x00garbage", "invalid JSON in request body")],
)
def test_unreadable_request_is_still_a_call(raw, error):
    r = read(AZURE("chat", "dep1"), raw)
    assert r == CallRequest(model="dep1", stream=False, max_output_tokens=None, input_bytes=len(raw), parse_error=error)
    g = read(GEMINI("gemini-2.5-flash", streaming=True), raw)
    assert (g.model, g.stream, g.parse_error) == ("gemini-2.5-flash", True, error)


def test_odd_field_types_are_ignored_not_trusted():
    r = read(OPENAI("chat"), body(model=42, stream="yes", max_tokens="100", n=True, stream_options="x"))
    assert (r.model, r.stream, r.max_output_tokens, r.stream_usage_requested, r.parse_error) == (None, False, None, False, None)
    r = read(OPENAI("chat"), body(model="m", max_tokens=-5))
    assert r.max_output_tokens is None


def test_wants_stream_usage_injection():
    chat = OPENAI("chat")
    assert CHAT.wants_stream_usage(read(chat, body(model="m", stream=True)))
    assert not CHAT.wants_stream_usage(read(chat, body(model="m", stream=True, stream_options={"include_usage": True})))
    assert not CHAT.wants_stream_usage(read(chat, body(model="m")))
    responses = OPENAI("responses")
    assert not RESPONSES.wants_stream_usage(read(responses, body(model="m", stream=True)))


def test_request_stream_usage_splices_without_touching_the_rest():
    raw = b'{"model": "gpt-4o",  "stream": true, "messages": [{"role": "user", "content": "h\\u00e9 1.0e3"}]}'
    out = request_stream_usage(raw)
    assert out == b'{"stream_options":{"include_usage":true},' + raw[1:]
    assert json.loads(out)["stream_options"] == {"include_usage": True}


def test_request_stream_usage_merges_existing_stream_options():
    raw = body(model="m", stream=True, stream_options={"include_obfuscation": False, "include_usage": False})
    for streams in (False, True):  # a caller that read the body already: decoded anyway, to merge
        out = json.loads(request_stream_usage(raw, streams=streams))
        assert out["stream_options"] == {"include_obfuscation": False, "include_usage": True}
        assert out["model"] == "m" and out["stream"] is True
    already = body(model="m", stream=True, stream_options={"include_usage": True})
    assert request_stream_usage(already, streams=True) is already


def test_request_stream_usage_re_serialises_an_integer_past_64_bits_as_sent():
    raw = (b'{"model":"m","stream":true,"stream_options":{"include_usage":false},'
           b'"seed":18446744073709551616,"n":99999999999999999999}')
    out = request_stream_usage(raw, streams=True)
    assert b'"seed":18446744073709551616' in out and b'"n":99999999999999999999' in out
    assert json.loads(out)["stream_options"] == {"include_usage": True}


def test_request_stream_usage_re_serialises_a_lone_surrogate_escape_as_sent():
    """Half an emoji (`"\\ud83d"`, a JavaScript client cutting a string) is not UTF-8: the body
    goes out with it escaped, not as an error raised into mitmproxy after admission."""
    raw = b'{"model":"m","stream":true,"stream_options":{"include_usage":false},"user":"caf\xc3\xa9 \\ud83d"}'
    out = request_stream_usage(raw, streams=True)
    assert b"\\ud83d" in out
    assert json.loads(out)["user"] == "caf\u00e9 \ud83d" and json.loads(out)["stream_options"]["include_usage"]


def test_request_stream_usage_of_a_body_read_already_is_spliced_without_decoding(monkeypatch):
    import providers.openai as openai_mod

    monkeypatch.setattr(openai_mod, "load_object", lambda body: pytest.fail("decoded a second time"))
    raw = b'\xef\xbb\xbf {"model": "gpt-4o", "stream": true}'
    assert request_stream_usage(raw, streams=True) == b'\xef\xbb\xbf {"stream_options":{"include_usage":true},' + raw[5:]


@pytest.mark.parametrize(
    "raw",
    [
        body(model="m", stream=True, stream_options={"include_usage": True}),  # already asked
        body(model="m"),  # not a stream: OpenAI rejects stream_options there
        body(model="m", stream=False),
        b"{broken",
        b"[]",
    ],
)
def test_request_stream_usage_leaves_other_bodies_alone(raw):
    assert request_stream_usage(raw) is raw


# --- usage in whole (non-streamed) bodies ------------------------------------------


def new_parser(endpoint: Endpoint):
    return endpoint.api.new_parser(endpoint)


OPENAI_CHAT_BODY = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "o3-mini-2025-01-31",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "2 + 2 = 4.", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1117,
        "completion_tokens": 46,
        "total_tokens": 1163,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 30,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_42bfad963b",
}


def test_openai_chat_body_cached_and_reasoning_are_inside_the_totals():
    p = new_parser(OPENAI("chat"))
    assert isinstance(p, OpenAIChatParser)
    p.feed_body(json.dumps(OPENAI_CHAT_BODY).encode())
    assert p.usage == TokenUsage(input_tokens=1117, cache_read_tokens=1024, output_tokens=46, reasoning_tokens=30)
    assert p.usage.uncached_input_tokens == 93
    assert (p.model, p.complete, p.error, p.output_chars) == ("o3-mini-2025-01-31", True, None, 10)


def test_azure_uses_openai_shapes():
    p = new_parser(AZURE("chat", "prod"))
    azure = dict(OPENAI_CHAT_BODY, model="gpt-4o-2024-11-20", prompt_filter_results=[{"prompt_index": 0}])
    p.feed_body(json.dumps(azure))
    assert p.usage.input_tokens == 1117 and p.model == "gpt-4o-2024-11-20"


def test_openai_completions_body():
    p = new_parser(OPENAI("completions"))
    p.feed_body(json.dumps({
        "id": "cmpl-1", "object": "text_completion", "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": "\n\nHello there", "index": 0, "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }))
    assert p.usage == TokenUsage(input_tokens=5, output_tokens=7)
    assert p.output_chars == 13 and p.complete


def test_openai_embeddings_body():
    p = new_parser(OPENAI("embeddings"))
    assert isinstance(p, OpenAIEmbeddingsParser)
    p.feed_body(json.dumps({
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }))
    assert p.usage == TokenUsage(input_tokens=8)
    assert (p.model, p.complete) == ("text-embedding-3-small", True)


RESPONSES_BODY = {
    "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
    "object": "response",
    "created_at": 1741476777,
    "status": "completed",
    "model": "o4-mini-2025-04-16",
    "output": [
        {"id": "rs_1", "type": "reasoning", "summary": []},
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Paris.", "annotations": []}],
        },
    ],
    "usage": {
        "input_tokens": 2000,
        "input_tokens_details": {"cached_tokens": 1536},
        "output_tokens": 300,
        "output_tokens_details": {"reasoning_tokens": 256},
        "total_tokens": 2300,
    },
}


def test_openai_responses_body():
    p = new_parser(OPENAI("responses"))
    assert isinstance(p, OpenAIResponsesParser)
    p.feed_body(json.dumps(RESPONSES_BODY))
    assert p.usage == TokenUsage(input_tokens=2000, cache_read_tokens=1536, output_tokens=300, reasoning_tokens=256)
    assert (p.model, p.complete, p.output_chars) == ("o4-mini-2025-04-16", True, 6)


def test_a_background_responses_reply_is_billed_later_not_unreadable():
    for status in ("queued", "in_progress"):
        p = new_parser(OPENAI("responses"))
        p.feed_body(json.dumps({"id": "resp_1", "model": "o3-pro", "status": status, "background": True,
                                "output": [], "usage": None}))
        assert p.billed_later and p.error is None and p.usage is None and not p.complete
    p = new_parser(OPENAI("responses"))
    p.feed_body(json.dumps({"id": "resp_2", "model": "o3-pro", "status": "completed", "usage": None}))
    assert p.billed_later is None and p.error == "no usage in response body"


ANTHROPIC_BODY = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hello!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "cache_creation_input_tokens": 2048,
        "cache_read_input_tokens": 10240,
        "cache_creation": {"ephemeral_5m_input_tokens": 2048, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 15,
        "service_tier": "standard",
    },
}


def test_anthropic_body_cache_tokens_are_added_to_input():
    p = new_parser(ANTHROPIC)
    assert isinstance(p, AnthropicMessagesParser)
    p.feed_body(json.dumps(ANTHROPIC_BODY).encode())
    assert p.usage == TokenUsage(
        input_tokens=12 + 2048 + 10240, cache_read_tokens=10240, cache_write_tokens=2048, output_tokens=15
    )
    assert p.usage.uncached_input_tokens == 12
    assert (p.model, p.complete, p.output_chars) == ("claude-sonnet-4-5-20250929", True, 6)


GEMINI_BODY = {
    "candidates": [
        {
            "content": {"parts": [{"text": "The sky is blue."}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 1500,
        "candidatesTokenCount": 6,
        "totalTokenCount": 1606,
        "cachedContentTokenCount": 1024,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1500}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 1024}],
        "thoughtsTokenCount": 100,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "mGcjaL2fNqqkz7IPjY6OyAs",
}


def test_gemini_body_thoughts_are_output_and_cache_is_inside_prompt():
    p = new_parser(GEMINI("gemini-2.5-flash"))
    assert isinstance(p, GeminiParser)
    p.feed_body(json.dumps(GEMINI_BODY))
    assert p.usage == TokenUsage(input_tokens=1500, cache_read_tokens=1024, output_tokens=106, reasoning_tokens=100)
    assert (p.model, p.complete, p.output_chars) == ("gemini-2.5-flash", True, 16)


def test_gemini_tool_use_prompt_tokens_count_as_input():
    p = GeminiParser()
    p.feed_body(json.dumps({"usageMetadata": {"promptTokenCount": 10, "toolUsePromptTokenCount": 90,
                                              "candidatesTokenCount": 5, "totalTokenCount": 105}}))
    assert p.usage == TokenUsage(input_tokens=100, output_tokens=5)


def test_gemini_buffered_json_array_stream_body():
    p = GeminiParser()
    first = {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}], "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}
    p.feed_body(json.dumps([first, GEMINI_BODY]))
    assert p.usage.output_tokens == 106 and p.complete and p.output_chars == 18


def test_gemini_blocked_prompt_is_complete_with_input_only():
    p = GeminiParser()
    p.feed_body(json.dumps({"promptFeedback": {"blockReason": "SAFETY"},
                            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}, "modelVersion": "gemini-2.5-pro"}))
    assert p.usage == TokenUsage(input_tokens=9) and p.complete


@pytest.mark.parametrize(
    ("endpoint", "raw", "error"),
    [
        (OPENAI("chat"), b"<html>502 Bad Gateway</html>", "invalid JSON in response body"),
        (OPENAI("chat"), b'{"error": {"message": "Rate limit", "type": "requests"}}', "no usage in response body"),
        (OPENAI("chat"), b'"just a string"', "unexpected response body: not a JSON object"),
        (OPENAI("responses"), b'{"usage": [1, 2]}', "no usage in response body"),
        (OPENAI("embeddings"), b'{"usage": {"prompt_tokens": "8"}}', "no usage in response body"),
        (ANTHROPIC, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "no usage in response body"),
        (ANTHROPIC, b'{"usage": {"input_tokens": null, "output_tokens": true}}', "no usage in response body"),
        (GEMINI("g"), b'{"candidates": "nope", "usageMetadata": 3}', "no usage in response body"),
        (GEMINI("g"), b"\xff\xfe", "invalid JSON in response body"),
    ],
)
def test_bad_bodies_give_an_error_not_an_exception(endpoint, raw, error):
    p = new_parser(endpoint)
    p.feed_body(raw)
    assert (p.usage, p.complete, p.error) == (None, False, error)


def test_unexpected_nested_shapes_do_not_raise():
    p = new_parser(OPENAI("chat"))
    p.feed_body(b'{"choices": [null, 3, {"message": [1]}, {"message": {"tool_calls": [null, {"function": 5}]}}],'
                b' "usage": {"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": null}}')
    assert p.usage == TokenUsage(input_tokens=3, output_tokens=1) and p.error is None


def test_parser_for_every_kind():
    assert type(new_parser(OPENAI("chat"))) is OpenAIChatParser
    assert type(new_parser(OPENAI("completions"))) is OpenAIChatParser
    assert type(new_parser(OPENAI("responses"))) is OpenAIResponsesParser
    assert type(new_parser(OPENAI("embeddings"))) is OpenAIEmbeddingsParser
    assert type(new_parser(ANTHROPIC)) is AnthropicMessagesParser
    assert type(new_parser(GEMINI("g"))) is GeminiParser


def test_an_event_fed_decoded_reads_as_the_same_event_fed_as_text():
    from providers.openai import OpenAIResponsesParser
    from providers.openai_realtime import RealtimeParser

    responses = [
        {"type": "response.created", "response": {"id": "r1", "model": "gpt-4o"}},
        {"type": "response.output_text.delta", "response_id": "r1", "delta": "héllo"},
        {"type": "response.completed", "response": {"id": "r1", "model": "gpt-4o", "status": "completed",
                                                    "usage": {"input_tokens": 12, "output_tokens": 3}}},
    ]
    realtime = [{"type": "response.done", "response": {"id": "r2", "usage": {
        "input_tokens": 5, "output_tokens": 7, "input_token_details": {"text_tokens": 5},
        "output_token_details": {"text_tokens": 7}}}}]
    for make, events in ((OpenAIResponsesParser, responses), (RealtimeParser, realtime)):
        as_text, decoded = make(), make()
        for event in events:
            as_text.feed_event(json.dumps(event).encode())
            decoded.feed_decoded(event)
        assert decoded.usage is not None and decoded.usage == as_text.usage
        assert (decoded.model, decoded.complete, decoded.output_chars, decoded.events, decoded.error) == (
            as_text.model, as_text.complete, as_text.output_chars, as_text.events, as_text.error)
