"""End to end: the OpenAI-compatible providers through a real mitmdump with the addon →
the fake provider, each with its own SDK where PyPI has one (groq, mistralai) and the
openai SDK pointed (`base_url`) at the others; buffered and streamed.

Each cost is the bill computed by hand from the fake's usage and the provider's price page
(per million tokens, the constants below). The fake reports, unless a case says otherwise,
1000 input tokens (200 of them cached) and 500 output tokens (100 of them reasoning); a
model without a cache price bills cached tokens as input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal

import pytest
from e2e_helpers import start_proxy

from ledger.model import parse_iso

HI = [{"role": "user", "content": "hi"}]
CONFIG = {"litellm_settings": {"max_budget": 100.0, "budget_duration": "30d"}}


def bill(input_: str, output: str, cached: str | None = None, *, input_tokens: int = 1000, cached_tokens: int = 200,
         output_tokens: int = 500, fee: str = "0") -> int:
    """Nano-dollars of a call at per-million prices (`cached` None: cached tokens cost as input)."""
    cached_price = Decimal(input_ if cached is None else cached)
    usd = ((input_tokens - cached_tokens) * Decimal(input_) + cached_tokens * cached_price
           + output_tokens * Decimal(output)) / 1_000_000 + Decimal(fee)
    return int(usd * 1_000_000_000)


# Price pages, USD per million tokens.
# api-docs.deepseek.com/quick_start/pricing: deepseek-chat, standard hours 00:30-16:30 UTC, and
# off-peak (16:30-00:30 UTC) at half price.
DEEPSEEK_STANDARD = bill("0.27", "1.10", "0.07")  # 216 + 14 + 550 µ$
DEEPSEEK_OFF_PEAK = bill("0.135", "0.55", "0.035")  # 108 + 7 + 275 µ$
DEEPSEEK_PEAK_HOURS = (time(0, 30), time(16, 30))
# docs.x.ai/docs/models: grok-3-mini $0.30 input, $0.075 cached, $0.50 output (reasoning is output).
XAI_USAGE = {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1450,
             "prompt_tokens_details": {"cached_tokens": 200}, "completion_tokens_details": {"reasoning_tokens": 400}}
XAI_CHAT = bill("0.30", "0.50", "0.075", output_tokens=450)  # reasoning is outside completion_tokens at xAI
XAI_RESPONSES = bill("0.30", "0.50", "0.075")
# openrouter.ai/openai/gpt-4o-mini: $0.15 input, $0.075 cached, $0.60 output (OpenAI's own prices).
OPENROUTER_LIST = bill("0.15", "0.60", "0.075")
OPENROUTER_STATED = 512_000  # the fake states usage.cost = 0.000512 in these cases
OPENROUTER_USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
                    "prompt_tokens_details": {"cached_tokens": 200}, "cost": 0.000512, "is_byok": False}
# together.ai/pricing: Llama 3.3 70B Instruct Turbo $0.88 in and out.
TOGETHER = bill("0.88", "0.88")
# fireworks.ai/pricing: DeepSeek V3 (0324) $0.90 in and out.
FIREWORKS = bill("0.90", "0.90")
# docs.perplexity.ai/getting-started/pricing: sonar $1 in, $1 out, and a request fee of $12 per
# 1,000 requests at high search context ($5 low, $8 medium: genai-prices charges $12 whatever the
# context size, so these cases ask for high).
PERPLEXITY_USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
                    "search_context_size": "high"}
PERPLEXITY = bill("1", "1", input_tokens=1000, cached_tokens=0, fee="0.012")
# cerebras.ai/pricing: Llama 3.1 8B $0.10 in and out.
CEREBRAS = bill("0.10", "0.10")
# platform.moonshot.ai/docs/pricing: kimi-k2-0905-preview $0.60 input (cache miss), $0.15 cache hit, $2.50 output.
MOONSHOT = bill("0.60", "2.50", "0.15")
# docs.z.ai/guides/overview/pricing: GLM-4.6 $0.60 input, $0.11 cached, $2.20 output.
ZAI = bill("0.60", "2.20", "0.11")
# groq.com/pricing: Llama 3.3 70B Versatile $0.59 in, $0.79 out.
GROQ = bill("0.59", "0.79")
# mistral.ai/pricing: Codestral $0.30 in, $0.90 out; Mistral Embed $0.10 in.
MISTRAL_CODESTRAL = bill("0.30", "0.90")
MISTRAL_EMBED = 100_000  # 1000 x $0.10 / M


@dataclass(frozen=True)
class Case:
    id: str
    provider: str
    base_url: str
    model: str
    nanos: int | None  # None: DeepSeek, priced by the time of day
    usage: dict | None = None  # the fake's usage (x-fake-usage), else its default
    price_source: str = "genai-prices 0.2.3"
    extra: dict = field(default_factory=dict)  # more request body


CHAT_CASES = [
    Case("deepseek", "deepseek", "https://api.deepseek.com", "deepseek-chat", None),
    Case("deepseek-v1", "deepseek", "https://api.deepseek.com/v1", "deepseek-chat", None),
    Case("x-ai", "x-ai", "https://api.x.ai/v1", "grok-3-mini", XAI_CHAT, XAI_USAGE),
    Case("openrouter-stated-cost", "openrouter", "https://openrouter.ai/api/v1", "openai/gpt-4o-mini",
         OPENROUTER_STATED, OPENROUTER_USAGE, price_source="reported"),
    Case("openrouter-list-price", "openrouter", "https://openrouter.ai/api/v1", "openai/gpt-4o-mini",
         OPENROUTER_LIST),
    Case("together", "together", "https://api.together.xyz/v1", "meta-llama/Llama-3.3-70B-Instruct-Turbo", TOGETHER),
    Case("fireworks", "fireworks", "https://api.fireworks.ai/inference/v1",
         "accounts/fireworks/models/deepseek-v3-0324", FIREWORKS),
    Case("perplexity", "perplexity", "https://api.perplexity.ai", "sonar", PERPLEXITY, PERPLEXITY_USAGE,
         extra={"web_search_options": {"search_context_size": "high"}}),
    Case("cerebras", "cerebras", "https://api.cerebras.ai/v1", "llama3.1-8b", CEREBRAS),
    Case("moonshot", "moonshotai", "https://api.moonshot.ai/v1", "kimi-k2-0905-preview", MOONSHOT),
    Case("zai", "zai", "https://api.z.ai/api/paas/v4", "glm-4.6", ZAI),
]


@pytest.fixture(scope="module")
def proxy(fake_provider_session, tmp_path_factory):
    p = start_proxy(fake_provider_session.url, tmp_path_factory.mktemp("compat"), CONFIG)
    yield p
    p.stop()


@pytest.fixture
def fake(fake_provider_session):
    fake_provider_session.reset()
    return fake_provider_session


def expected_nanos(case: Case, row: dict) -> int:
    if case.nanos is not None:
        return case.nanos
    at = parse_iso(row["started_at"]).time()
    start, end = DEEPSEEK_PEAK_HOURS
    return DEEPSEEK_STANDARD if start <= at < end else DEEPSEEK_OFF_PEAK


def headers(case: Case) -> dict[str, str]:
    return {"x-fake-usage": json.dumps(case.usage)} if case.usage else {}


def check(row: dict, case: Case, streamed: bool, endpoint: str = "chat") -> None:
    assert (row["provider"], row["endpoint"], row["model"], row["status"], row["streamed"]) == (
        case.provider, endpoint, case.model, "ok", int(streamed))
    assert (row["cost_nanos"], row["price_source"]) == (expected_nanos(case, row), case.price_source)


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("case", CHAT_CASES, ids=[c.id for c in CHAT_CASES])
def test_openai_sdk_chat_on_each_compatible_host_is_billed_as_its_price_page_says(proxy, fake, case, stream):
    client = proxy.openai_client(base_url=case.base_url, default_headers=headers(case))
    since = proxy.ledger.mark()
    reply = client.chat.completions.create(model=case.model, messages=HI, max_tokens=600, stream=stream,
                                           extra_body=case.extra or None)
    if stream:
        chunks = list(reply)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("Hello")
        assert all(c.choices for c in chunks)  # the usage chunk spendgate asked for is not passed on
    else:
        assert reply.choices[0].message.content.startswith("Hello"), reply
    [seen] = fake.requests()
    assert seen["path"].endswith("/chat/completions")
    check(proxy.ledger.row(since), case, stream)


RESPONSES_CASES = [
    Case("x-ai", "x-ai", "https://api.x.ai/v1", "grok-3-mini", XAI_RESPONSES),
    Case("openrouter-stated-cost", "openrouter", "https://openrouter.ai/api/v1", "openai/gpt-4o-mini",
         OPENROUTER_STATED, {"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 200},
                             "output_tokens": 500, "cost": 0.000512}, price_source="reported"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("case", RESPONSES_CASES, ids=[c.id for c in RESPONSES_CASES])
def test_openai_sdk_responses_on_compatible_hosts(proxy, fake, case, stream):
    client = proxy.openai_client(base_url=case.base_url, default_headers=headers(case))
    since = proxy.ledger.mark()
    reply = client.responses.create(model=case.model, input="hi", stream=stream)
    if stream:
        assert [e.type for e in reply][-1] == "response.completed"
    else:
        assert reply.output_text.startswith("Hello")
    check(proxy.ledger.row(since), case, stream, endpoint="responses")


# --- the providers' own SDKs ---------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
def test_groq_sdk_chat_is_billed_at_groqs_prices(proxy, fake, stream):
    client = proxy.groq_client()
    since = proxy.ledger.mark()
    reply = client.chat.completions.create(model="llama-3.3-70b-versatile", messages=HI, max_tokens=600,
                                           stream=stream)
    text = ("".join(c.choices[0].delta.content or "" for c in reply if c.choices) if stream
            else reply.choices[0].message.content)
    assert text.startswith("Hello")
    [seen] = fake.requests()
    assert seen["path"] == "/openai/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer gsk_test-groq-key"
    check(proxy.ledger.row(since), Case("groq", "groq", "", "llama-3.3-70b-versatile", GROQ), stream)


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
def test_mistral_sdk_chat_is_billed_at_mistrals_prices(proxy, fake, stream):
    client = proxy.mistral_client()
    since = proxy.ledger.mark()
    if stream:
        events = list(client.chat.stream(model="codestral-latest", messages=HI, max_tokens=600))
        text = "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
    else:
        text = client.chat.complete(model="codestral-latest", messages=HI, max_tokens=600).choices[0].message.content
    assert text.startswith("Hello")
    [seen] = fake.requests()
    assert seen["path"] == "/v1/chat/completions"
    check(proxy.ledger.row(since), Case("mistral", "mistral", "", "codestral-latest", MISTRAL_CODESTRAL), stream)


def test_mistral_sdk_embeddings_are_billed_at_mistrals_prices(proxy, fake):
    since = proxy.ledger.mark()
    reply = proxy.mistral_client().embeddings.create(model="mistral-embed", inputs=["hello", "world"])
    assert len(reply.data) == 2
    check(proxy.ledger.row(since), Case("mistral", "mistral", "", "mistral-embed", MISTRAL_EMBED), False,
          endpoint="embeddings")


# --- bad input -----------------------------------------------------------------------------------

MALFORMED = [
    ("api.deepseek.com", "/chat/completions", "deepseek-chat"),
    ("api.x.ai", "/v1/chat/completions", "grok-3-mini"),
    ("openrouter.ai", "/api/v1/chat/completions", "openai/gpt-4o-mini"),
    ("api.perplexity.ai", "/chat/completions", "sonar"),
    ("api.z.ai", "/api/paas/v4/chat/completions", "glm-4.6"),
]


@pytest.mark.parametrize(("host", "path", "model"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_answer_passes_unchanged_and_is_estimated(proxy, fake, host, path, model):
    since = proxy.ledger.mark()
    body = '{"id": "x", "usage": {"prompt_tokens": 1e999, "cost":'
    with proxy.httpx_client() as http:
        r = http.post(f"https://{host}{path}", headers={"authorization": "Bearer k-0001", "x-fake-body": body},
                      json={"model": model, "messages": HI, "max_tokens": 50})
    assert r.text == body
    row = proxy.ledger.row(since)
    assert (row["status"], row["usage_source"], row["error"]) == ("parse_error", "estimated",
                                                                  "invalid JSON in response body")
    assert row["input_tokens"] > 0 and row["cost_nanos"] > 0


@pytest.mark.parametrize(("host", "path", "model"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_stream_with_garbage_usage_and_cost_passes_unchanged_and_is_estimated(proxy, fake, host, path, model):
    since = proxy.ledger.mark()
    usage = {"prompt_tokens": "many", "completion_tokens": [1], "cost": {"usd": 1e30}}
    with proxy.httpx_client() as http:
        r = http.post(f"https://{host}{path}", headers={"authorization": "Bearer k-0001",
                                                        "x-fake-usage": json.dumps(usage)},
                      json={"model": model, "messages": HI, "max_tokens": 50, "stream": True,
                            "stream_options": {"include_usage": True}})
    assert json.dumps(usage, separators=(",", ":")) in r.text and r.text.endswith("data: [DONE]\n\n")
    row = proxy.ledger.row(since)
    assert (row["status"], row["usage_source"], row["streamed"]) == ("partial", "estimated", 1)
    assert row["price_source"] != "reported"
    # the text seen (50 characters → 13 tokens) is the output charged
    assert row["output_tokens"] == 13 and 0 < row["cost_nanos"] < 20_000_000  # (sonar: a $0.012 request fee)
