"""End to end: prices — unpriced models, config overrides, custom hosts — through mitmdump.

Fake default chat usage: 1000 prompt tokens (200 cached), 500 completion tokens
(100 of them reasoning); see tests/fake_provider.py.
"""

from __future__ import annotations

import json

import openai
import pytest
from e2e_helpers import Ledger, start_proxy

HI = [{"role": "user", "content": "hi"}]
VLLM_HOST = "vllm.internal.test"
GATEWAY_HOST = "claude-gw.internal.test"

CONFIG = {
    "litellm_settings": {"max_budget": 100.0, "budget_duration": "30d"},
    "providers": {
        "vllm": {"host": VLLM_HOST, "api_style": "openai"},
        "gateway": {"host": GATEWAY_HOST, "api_style": "anthropic"},
    },
    "pricing": {
        # wins over genai-prices' gpt-4o ($2.50/M, $1.25/M cached, $10/M)
        "gpt-4o": {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002,
                   "cache_read_input_token_cost": 0.0000005},
        # a model genai-prices has never heard of, served by the custom host
        "my-vllm-model": {"input_cost_per_token": 0.0000001, "output_cost_per_token": 0.0000002},
    },
}
# gpt-4o override: 800 × $1/M + 200 cached × $0.50/M + 500 × $2/M
OVERRIDE_GPT4O_NANOS = 800_000 + 100_000 + 1_000_000
# my-vllm-model: no cache price, so cached tokens cost plain input: 1000 × $0.10/M + 500 × $0.20/M
VLLM_NANOS = 100_000 + 100_000


@pytest.fixture(scope="module")
def proxy(fake_provider_session, tmp_path_factory):
    p = start_proxy(fake_provider_session.url, tmp_path_factory.mktemp("prices"), CONFIG,
                    extra_hosts=(VLLM_HOST, GATEWAY_HOST))
    yield p
    p.stop()


@pytest.fixture
def since(proxy, fake_provider):
    proxy.ledger.settled()
    return proxy.ledger.mark()


def test_unpriced_model_is_served_and_recorded_as_unpriced_never_free(proxy, since, fake_provider):
    client = proxy.openai_client()
    for _ in range(2):
        assert client.chat.completions.create(model="my-local-model", messages=HI).choices
    assert list(client.chat.completions.create(model="my-local-model", messages=HI, stream=True))
    assert len(fake_provider.requests()) == 3
    rows = proxy.ledger.rows(since, 3)
    assert len(rows) == 3
    for row in rows:
        assert (row["model"], row["status"], row["cost_nanos"], row["cost_usd"], row["priced"]) == (
            "my-local-model", "unpriced", None, None, 0)
        assert (row["input_tokens"], row["output_tokens"], row["usage_source"]) == (1000, 500, "reported")
    assert proxy.ledger.settled()["spend_nanos"] == 0
    warnings = [line for line in proxy.log_text().splitlines()
                if "no price known" in line and "my-local-model" in line]
    assert len(warnings) == 1, warnings


def test_config_price_wins_over_genai_prices(proxy, since):
    proxy.openai_client().chat.completions.create(model="gpt-4o", messages=HI)
    row = proxy.ledger.row(since)
    assert (row["cost_nanos"], row["price_source"]) == (OVERRIDE_GPT4O_NANOS, "config")


def test_custom_host_is_metered_with_its_override_price(proxy, since, fake_provider):
    client = proxy.openai_client(base_url=f"https://{VLLM_HOST}/v1")
    client.chat.completions.create(model="my-vllm-model", messages=HI)
    chunks = list(client.chat.completions.create(model="my-vllm-model", messages=HI, stream=True))
    assert chunks and all(c.choices for c in chunks)
    assert [r["headers"]["host"] for r in fake_provider.requests()] == [f"127.0.0.1:{fake_provider.port}"] * 2
    rows = proxy.ledger.rows(since, 2)
    assert [(r["provider"], r["model"], r["streamed"], r["cost_nanos"], r["price_source"]) for r in rows] == [
        ("vllm", "my-vllm-model", 0, VLLM_NANOS, "config"), ("vllm", "my-vllm-model", 1, VLLM_NANOS, "config")]


def test_anthropic_style_custom_host_is_metered_by_model_name(proxy, since, fake_provider):
    client = proxy.anthropic_client(base_url=f"https://{GATEWAY_HOST}")
    client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=HI)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=HI) as stream:
        assert "".join(stream.text_stream)
    rows = proxy.ledger.rows(since, 2)
    # no price_provider configured: genai-prices finds claude-sonnet-4-5 by name;
    # 700 × $3/M + 200 × $0.30/M + 100 × $3.75/M + 500 × $15/M
    assert [(r["provider"], r["endpoint"], r["streamed"], r["cost_nanos"]) for r in rows] == [
        ("gateway", "messages", 0, 10_035_000), ("gateway", "messages", 1, 10_035_000)]


def test_unpriced_models_block_refuses_them_before_upstream(make_proxy, fake_provider):
    proxy = make_proxy({"general_settings": {"unpriced_models": "block"}})
    ledger = Ledger(proxy.ledger_path)
    client = proxy.openai_client(max_retries=2)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="my-local-model", messages=HI)
    error = caught.value.response.json()["error"]
    assert error["type"] == "model_not_priced" and error["code"] == "400"
    assert "my-local-model" in error["message"] and "unpriced_models: block" in error["message"]
    assert fake_provider.requests() == []
    # a priced model still goes through
    client.chat.completions.create(model="gpt-4o", messages=HI)
    assert len(fake_provider.requests()) == 1
    blocked, served = ledger.rows(0, 2)
    assert (blocked["status"], blocked["error"], blocked["http_status"]) == ("blocked", "model_not_priced", 400)
    assert (served["status"], served["cost_nanos"]) == ("ok", 7_250_000)  # genai-prices gpt-4o


def test_unpriced_model_on_a_curl_stream_is_unpriced_too(proxy, since):
    out = proxy.curl("-X", "POST", "https://api.openai.com/v1/chat/completions",
                     "-H", "authorization: Bearer sk-curl", "-H", "content-type: application/json",
                     "-d", json.dumps({"model": "another-local-model", "messages": HI, "stream": True}))
    assert out.returncode == 0 and "[DONE]" in out.stdout
    assert '"choices":[]' not in out.stdout  # the usage chunk spendgate asked for was not passed on
    row = proxy.ledger.row(since)
    assert (row["status"], row["cost_nanos"], row["priced"], row["streamed"]) == ("unpriced", None, 0, 1)
