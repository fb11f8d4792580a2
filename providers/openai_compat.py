"""OpenAI-compatible providers, as data: each is one `compatible(...)` entry.

An entry says where the OpenAI-style API is mounted on the provider's host (`/openai/v1`
at Groq), which of the optional endpoints it offers, and the genai-prices provider that
prices it; its hosts come from genai-prices' `api_pattern` unless the entry names them
(tests/test_registry.py checks named hosts against the pattern). Usage, streams and keys
are OpenAI's.
"""

from __future__ import annotations

from providers.base import Provider
from providers.genai_hosts import hosts_of
from providers.openai import openai_routes

__all__ = ["OPENAI_COMPATIBLE", "compatible"]


def compatible(
    name: str,
    title: str,
    *,
    bases: tuple[str, ...] = ("/v1",),
    price_provider: str | None = None,
    hosts: tuple[str, ...] = (),
    responses: bool = False,
    completions: bool = False,
    embeddings: bool = False,
    responses_socket: bool = False,
) -> Provider:
    """A provider speaking OpenAI's wire format under each of `bases` on its hosts."""
    price_provider = price_provider or name
    found = hosts or hosts_of(price_provider)
    if not found:
        raise ValueError(f"{name}: genai-prices names no whole host for {price_provider!r}; list its hosts")
    routes = tuple(
        route for base in bases
        for route in openai_routes(base, responses=responses, completions=completions, embeddings=embeddings,
                               responses_socket=responses_socket)
    )
    return Provider(name, title=title, price_provider=price_provider, hosts=found, routes=routes)


OPENAI_COMPATIBLE: tuple[Provider, ...] = (
    compatible("groq", "Groq", bases=("/openai/v1",), responses=True),
    compatible("mistral", "Mistral AI", embeddings=True),
    compatible("deepseek", "DeepSeek", bases=("", "/v1"), completions=True),
    compatible("x-ai", "xAI", responses=True, responses_socket=True),
    compatible("openrouter", "OpenRouter", bases=("/api/v1",), responses=True, completions=True,
               embeddings=True),
    compatible("together", "Together AI", completions=True, embeddings=True),
    compatible("fireworks", "Fireworks AI", bases=("/inference/v1",), completions=True, embeddings=True),
    compatible("perplexity", "Perplexity", bases=("", "/v1")),
    compatible("cerebras", "Cerebras", completions=True),
    compatible("moonshotai", "Moonshot AI", hosts=("api.moonshot.ai", "api.moonshot.cn")),
    compatible("novita", "Novita AI", bases=("/openai/v1", "/v3/openai"), completions=True, embeddings=True),
)
