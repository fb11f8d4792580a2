"""OpenAI-compatible providers, as data: each is one `compatible(...)` entry.

An entry says where the OpenAI-style API is mounted on the provider's host (`/openai/v1`
at Groq), which of the optional endpoints it offers, and the genai-prices provider that
prices it; its hosts come from genai-prices' `api_pattern` unless the entry names them
(tests/test_registry.py checks named hosts against the pattern). Streams and keys are
OpenAI's; usage is read with genai-prices' extractor for the price provider where it has
one (providers/genai_usage.py: xAI and Perplexity count differently), else as OpenAI's.
`reports_cost` marks a provider whose replies state what the call was charged
(OpenRouter's `usage.cost`): that figure is the call's cost.
"""

from __future__ import annotations

from providers.base import Provider
from providers.genai_hosts import hosts_of
from providers.openai import Dialect, openai_apis, openai_routes

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
    reports_cost: bool = False,
    notes: tuple[str, ...] = (),
    responses_socket: bool = False,
) -> Provider:
    """A provider speaking OpenAI's wire format under each of `bases` on its hosts."""
    price_provider = price_provider or name
    found = hosts or hosts_of(price_provider)
    if not found:
        raise ValueError(f"{name}: genai-prices names no whole host for {price_provider!r}; list its hosts")
    apis = openai_apis(Dialect(usage_of=price_provider, reports_cost=reports_cost))
    routes = tuple(
        route for base in bases
        for route in openai_routes(base, responses=responses, completions=completions, embeddings=embeddings,
                                   responses_socket=responses_socket, apis=apis)
    )
    return Provider(name, title=title, price_provider=price_provider, hosts=found, routes=routes, notes=notes)


OPENAI_COMPATIBLE: tuple[Provider, ...] = (
    compatible("groq", "Groq", bases=("/openai/v1",), responses=True),
    compatible("mistral", "Mistral AI", embeddings=True),
    compatible("deepseek", "DeepSeek", bases=("", "/v1"), completions=True, notes=(
        "Prices change with the time of day (off-peak hours are cheaper): a call is priced at the rates "
        "in force when its request arrived (UTC), as genai-prices lists them.",)),
    compatible("x-ai", "xAI", responses=True, responses_socket=True, notes=(
        "Chat `completion_tokens` leave out `completion_tokens_details.reasoning_tokens`: reasoning is "
        "billed as output on top (read with genai-prices' x-ai extractor).",)),
    compatible("openrouter", "OpenRouter", bases=("/api/v1",), responses=True, completions=True,
               embeddings=True, reports_cost=True, notes=(
        "Model ids are `vendor/model`. A reply that states its charged cost (`usage.cost`, in the body or "
        "the stream's last chunk; plus `cost_details.upstream_inference_cost` on a bring-your-own-key call) "
        "is recorded at that cost, price source `reported`, bounded like usage (never more than the most "
        "the call could use at the model's list price, $1M without one; a negative figure is not believed). "
        "Without it the call is priced from its usage under genai-prices' `openrouter` provider.",)),
    compatible("together", "Together AI", completions=True, embeddings=True),
    compatible("fireworks", "Fireworks AI", bases=("/inference/v1",), completions=True, embeddings=True),
    compatible("perplexity", "Perplexity", bases=("", "/v1"), notes=(
        "`usage.reasoning_tokens` and `citation_tokens` are billed as output beside `completion_tokens`, "
        "`num_search_queries` as web searches, and the per-request fee genai-prices lists is charged on "
        "every call (read with genai-prices' perplexity extractor).",)),
    compatible("cerebras", "Cerebras", completions=True),
    compatible("moonshotai", "Moonshot AI", hosts=("api.moonshot.ai", "api.moonshot.cn")),
    compatible("novita", "Novita AI", bases=("/openai", "/openai/v1", "/v3/openai"), completions=True,
               embeddings=True),
    # The other genai-prices providers whose API is OpenAI-style, on hosts its api_pattern names.
    compatible("arcee", "Arcee AI", bases=("/api/v1",)),
    compatible("avian", "Avian"),
    compatible("baseten", "Baseten Model APIs"),
    compatible("doubleword", "Doubleword", responses=True, embeddings=True),
    compatible("github-copilot", "GitHub Copilot", bases=("",), responses=True),
    compatible("minimax", "MiniMax"),
    compatible("ovhcloud", "OVHcloud AI Endpoints", embeddings=True),
    compatible("quicksilverpro", "QuickSilver Pro", responses=True),
    compatible("zai", "Z.AI", bases=("/api/paas/v4", "/api/coding/paas/v4")),
    compatible("zhipuai", "Zhipu AI (BigModel)", bases=("/api/paas/v4", "/api/coding/paas/v4")),
)
