"""Which client application made a call: core/clients.py's table, in-process.

The User-Agents are what each client sends (read from their source: Codex's
`get_codex_user_agent`, the Stainless SDKs' `user_agent`, botocore's `user_agent()`,
google-genai's `_api_client`); the end-to-end tests check the real SDKs' against them.
"""

from __future__ import annotations

import pytest

from core import clients
from core.clients import client_of, client_of_headers

CASES = [
    ("claude-cli/2.1.3 (external, cli)", "claude-code/2.1"),
    ("claude-cli/1.0.119 (external, sdk-ts)", "claude-code/1.0"),
    ("codex_cli_rs/0.169.0 (Ubuntu 24.04.2 LTS; x86_64) WindowsTerminal", "codex/0.169"),
    ("codex_exec/0.46.1 (Mac OS 15.6.1; arm64) xterm-256color", "codex/0.46"),
    ("GeminiCLI/0.1.12 (linux; x64)", "gemini-cli/0.1"),
    ("OpenAI/Python 3.57.0", "openai-python/3.57"),
    ("AsyncOpenAI/Python 1.2.3", "openai-python/1.2"),
    ("Anthropic/Python 0.40.0", "anthropic-python/0.40"),
    ("Anthropic/JS 0.60.0", "anthropic-node/0.60"),
    ("OpenAI/JS 5.1.0", "openai-node/5.1"),
    ("Groq/Python 0.9.0", "groq-python/0.9"),
    ("Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.1 md/arch#x86_64 lang/python#3.12.1", "boto3/1.44"),
    ("Botocore/1.44.8 Python/3.12.1 Linux/6.1", "botocore/1.44"),
    ("google-genai-sdk/1.2.0 gl-python/3.12.3", "google-genai/1.2"),
    ("cohere/7.3.1", "cohere-python/7.3"),
    ("speakeasy-sdk/python 3.7.0 2.935.1 1.0.0 mistralai", "mistralai-python/3.7"),
    ("curl/8.5.0", "curl"),
    ("python-httpx/0.28.1", "python-httpx"),
    ("python-requests/2.32.3", "python-requests"),
    ("Python/3.12 aiohttp/3.9.1", "aiohttp"),
    ("Go-http-client/2.0", "go-http-client"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "browser"),
    # anything else: its first product token, version cut to major.minor
    ("MyAgent/1.2.3 (linux)", "myagent/1.2"),
    ("opencode/0.15.2", "opencode/0.15"),
    ("weird agent", "weird"),
    ("(nothing)", "other"),
]


@pytest.mark.parametrize("user_agent, client", CASES)
def test_a_user_agent_names_its_client(user_agent, client):
    assert client_of(user_agent) == client


def test_no_user_agent_is_no_client_unless_an_agent_header_names_it():
    assert client_of(None) is None and client_of("   ") is None
    assert client_of_headers({}) is None
    assert client_of_headers({"originator": "codex_cli_rs"}) == "codex"
    assert client_of_headers({"x-app": "cli"}) == "claude-code"
    assert client_of_headers({"originator": "MyTool/2.0.1"}) == "mytool/2.0"
    # the User-Agent, when there is one, is what names the client
    assert client_of_headers({"user-agent": "claude-cli/2.1.3 (external, cli)", "x-app": "cli"}) == "claude-code/2.1"


def test_mitmproxy_headers_are_read_whatever_their_case():
    from mitmproxy.http import Headers

    assert client_of_headers(Headers(**{"User-Agent": "OpenAI/Python 3.57.0"})) == "openai-python/3.57"
    assert client_of_headers(Headers(Originator="codex_cli_rs")) == "codex"


def test_a_client_chosen_name_is_bounded_and_cleaned():
    assert client_of("A" * 500 + "/1.0 <script>") == "a" * clients.NAME_MAX + "/1.0"
    assert client_of("A<script>/1.0") == "a"
    assert client_of("x/" + "9" * 100 + ".1") == "x/99999999.1"
    assert client_of("Évil\u202e/1") == "other"


def test_each_user_agent_is_parsed_once_and_the_cache_stays_bounded():
    clients._parse.cache_clear()
    for _ in range(3):
        assert client_of("OpenAI/Python 3.57.0") == "openai-python/3.57"
    info = clients._parse.cache_info()
    assert (info.misses, info.hits) == (1, 2)  # parsed once
    for i in range(clients.CACHE_MAX * 2):
        client_of(f"tool{i}/1.0")
    assert clients._parse.cache_info().currsize <= clients.CACHE_MAX
