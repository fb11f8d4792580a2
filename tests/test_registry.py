"""The provider registry is the one list of providers: what is derived from it stays derived.

Hosts agree with genai-prices' `api_pattern`; every route of every provider is recognised
at its own path; the `--allow-hosts` pattern, the config's built-in names and
docs/providers.md follow the registry.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mitmproxy import http

from core.vocab import Transport

from addon.cli import main as spendgate
from config.load import parse_config
from core.vocab import ApiStyle
from providers.base import FREE, Endpoint, Provider
from providers.custom import CustomProvider
from providers.docs import render
from providers.genai_hosts import api_pattern, hosts_of, matches_api_pattern
from providers.registry import BUILTIN, Registry, allow_hosts_pattern, config_names

REPO = Path(__file__).resolve().parents[1]
PROVIDERS = {p.name: p for p in BUILTIN}


def example_host(provider: Provider) -> str:
    if provider.hosts:
        return provider.hosts[0]
    if provider.host_suffixes:
        return "example-resource" + provider.host_suffixes[0]
    prefix, suffix = provider.host_families[0]
    return prefix + "us-east-1" + suffix


#: Hosts genai-prices' api_pattern leaves out although they serve models it prices: Bedrock's
#: FIPS endpoints (the same runtime API and models, behind FIPS 140 TLS) and its newer
#: OpenAI- and Anthropic-style API host; OpenAI's data-residency hosts (`eu.api.openai.com`),
#: Azure Government's and Azure China's OpenAI resources, and Bedrock in AWS China.
NOT_IN_GENAI_PATTERN = {"bedrock-runtime-fips.us-east-1.amazonaws.com", "bedrock-mantle.us-east-1.api.aws",
                        "res.api.openai.com", "res.openai.azure.us", "res.openai.azure.cn",
                        "bedrock-runtime.us-east-1.amazonaws.com.cn"}


def example_path(route) -> str:
    """A concrete path for a route: each `{name}` filled with a value it allows."""
    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in route.choices:
            return route.choices[name][0]
        return {"model": "some-model"}.get(name, "x1")

    return re.sub(r"\{(\w+)\}", value, route.template)


ROUTES = [(p, r) for p in BUILTIN for r in p.routes]


def test_provider_names_and_hosts_are_unique():
    assert len(PROVIDERS) == len(BUILTIN)
    hosts = [h for p in BUILTIN for h in p.hosts]
    assert len(hosts) == len(set(hosts))


@pytest.mark.parametrize("provider", BUILTIN, ids=[p.name for p in BUILTIN])
def test_every_host_is_one_genai_prices_attributes_to_the_price_provider(provider):
    if api_pattern(provider.price_provider) is None:
        pytest.skip(f"genai-prices has no api_pattern for {provider.price_provider}")
    for host in provider.hosts:
        assert matches_api_pattern(provider.price_provider, host), host
    for suffix in provider.host_suffixes:
        host = "res" + suffix
        assert matches_api_pattern(provider.price_provider, host) != (host in NOT_IN_GENAI_PATTERN), host
    for prefix, suffix in provider.host_families:
        host = prefix + "us-east-1" + suffix
        assert matches_api_pattern(provider.price_provider, host) != (host in NOT_IN_GENAI_PATTERN), host


def test_hosts_come_from_genai_prices_where_its_pattern_names_them():
    assert hosts_of("groq") == ("api.groq.com",)
    assert hosts_of("openrouter") == ("api.openrouter.ai", "openrouter.ai")
    assert PROVIDERS["openrouter"].hosts == hosts_of("openrouter")
    assert hosts_of("moonshotai") == ()  # `https://api\.moonshot\.` names no whole host
    assert hosts_of("azure") == ()  # any resource name


@pytest.mark.parametrize(("provider", "route"), ROUTES,
                         ids=[f"{p.name}:{r.method} {r.template}" for p, r in ROUTES])
def test_every_credential_is_read_from_a_request_and_from_its_headers_read_once(provider, route):
    """The HTTP adapter hands a key place the request's headers as a dict, read once; every
    place takes them (a place that did not made every keyless call a 503)."""
    credential = route.credential or provider.credential
    request = http.Request.make("POST", f"https://{example_host(provider)}{example_path(route)}", b"{}",
                                {"content-type": "application/json"})
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert credential.find(request) is None and credential.find(request, headers) is None


@pytest.mark.parametrize(("provider", "route"), ROUTES,
                         ids=[f"{p.name}:{r.method} {r.template}" for p, r in ROUTES])
def test_every_route_is_recognised_at_its_own_path(provider, route):
    found = Registry().provider(example_host(provider), 443)
    assert found is provider
    socket = route.api is not FREE and route.api.transport is Transport.WEBSOCKET
    endpoint = found.socket_route(example_path(route)) if socket else found.route(route.method, example_path(route))
    if socket:  # an upgrade only: a plain GET there is a free read
        assert found.route("GET", example_path(route)) is FREE
    if route.api is FREE:
        assert endpoint is FREE
    else:
        assert isinstance(endpoint, Endpoint) and endpoint.api is route.api
        assert endpoint.provider == provider.name
        assert endpoint.price_provider == (route.price_provider or provider.price_provider)
        assert endpoint.credential is (route.credential or provider.credential)
        if "{model}" in route.template:
            assert endpoint.url_model.endswith("some-model")


def test_allow_hosts_pattern_covers_every_provider_host_and_nothing_else():
    pattern = re.compile(allow_hosts_pattern())
    for provider in BUILTIN:
        assert pattern.match(example_host(provider)), provider.name
        assert pattern.match(example_host(provider) + ":443"), provider.name
    for other in ("example.com", "api.openai.com.evil.example", "openai.azure.com", "github.com:443",
                  "api.openai.com:8443", "s3.amazonaws.com", "bedrock-runtime.a.b.amazonaws.com",
                  "bedrock-runtime.us-east-1.amazonaws.com.evil.example"):
        assert not pattern.match(other), other


def test_a_host_family_is_one_label_between_its_prefix_and_suffix():
    registry, bedrock = Registry(), PROVIDERS["bedrock"]
    for host in ("bedrock-runtime.us-east-1.amazonaws.com", "BEDROCK-RUNTIME.eu-west-3.amazonaws.com:443",
                 "bedrock-runtime-fips.us-gov-west-1.amazonaws.com"):
        assert registry.provider(host) is bedrock, host
        assert re.match(allow_hosts_pattern(), host.lower()), host
    for host in ("s3.amazonaws.com", "bedrock-runtime.amazonaws.com", "bedrock-runtime..amazonaws.com",
                 "bedrock-runtime.a.b.amazonaws.com", "bedrock.us-east-1.amazonaws.com",
                 "x.bedrock-runtime.us-east-1.amazonaws.com"):
        assert registry.provider(host) is None, host


def test_regional_and_sovereign_hosts_are_their_providers():
    """Data-residency and sovereign-cloud hosts serve the same APIs: recognised, and decrypted
    under the allow-hosts pattern (a host no entry names would pass invisible)."""
    registry, pattern = Registry(), re.compile(allow_hosts_pattern())
    expected = {
        "eu.api.openai.com": "openai", "us.api.openai.com:443": "openai", "jp.api.openai.com": "openai",
        "my-res.services.ai.azure.com": "azure", "my-res.openai.azure.us": "azure", "my-res.openai.azure.cn": "azure",
        "bedrock-runtime.cn-north-1.amazonaws.com.cn": "bedrock",
    }
    for host, name in expected.items():
        assert registry.provider(host).name == name, host
        assert pattern.match(host), host
    for host in ("api.openai.com.evil.example", "eu.api.openai.com.evil.example", "services.ai.azure.com",
                 "bedrock-runtime.cn-north-1.amazonaws.com.cn.evil.example"):
        assert registry.provider(host) is None and not pattern.match(host), host


def test_a_request_is_its_providers_by_the_host_it_names_else_by_where_it_goes():
    registry = Registry()
    assert registry.provider("api.anthropic.com", 443, "127.0.0.1").name == "anthropic"  # --map-remote
    assert registry.provider("api.openai.com:x", 443, "api.openai.com").name == "openai"
    assert registry.provider("localhost", 443, "api.openai.com").name == "openai"  # reverse mode
    assert registry.provider("localhost", 443, "example.com") is None
    ip_provider = Registry({"vllm": CustomProvider("vllm", "10.0.0.5", ApiStyle.OPENAI)})
    assert ip_provider.provider("10.0.0.5", 443).name == "vllm"
    assert ip_provider.provider("grafana.corp", 443, "10.0.0.5") is None  # another host at that address


def test_custom_hosts_join_the_allow_hosts_pattern_with_their_port():
    custom = CustomProvider("vllm", "llm.internal:8000", ApiStyle.OPENAI)
    pattern = re.compile(allow_hosts_pattern((custom, *BUILTIN)))
    assert pattern.match("llm.internal:8000") and not pattern.match("llm.internal:443")
    assert pattern.match("api.openai.com")


def test_spendgate_allow_hosts_prints_the_pattern(capsys, tmp_path):
    assert spendgate(["allow-hosts"]) == 0
    assert capsys.readouterr().out.strip() == allow_hosts_pattern()
    config = tmp_path / "c.yaml"
    config.write_text("providers: {gw: {host: 'gw.corp.example', api_style: anthropic}}\n")
    assert spendgate(["allow-hosts", "--config", str(config)]) == 0
    assert re.match(capsys.readouterr().out.strip(), "gw.corp.example")


def test_every_builtin_config_name_sets_options_without_a_host():
    for name in config_names():
        config = parse_config({"providers": {name: {"api_key": "k"}}}, source="test")
        assert config.providers[name].api_key.get_secret_value() == "k"


def test_the_committed_providers_page_is_up_to_date():
    assert (REPO / "docs" / "providers.md").read_text() == render(), "run `make docs`"

