"""Decide whether a proxied request is a metered LLM call, and which kind.

This runs on every request that passes through the proxy, so an unknown host
costs only a couple of dict lookups and two suffix checks: no regex, no URL
parsing unless the host is one we know. Path rules are exact where the
provider's API is fixed (OpenAI, Anthropic, Azure, Gemini) and suffix-based for
configured self-hosted servers, whose gateways mount the API under any prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal
from urllib.parse import unquote

from providers.endpoint import Endpoint

__all__ = ["CustomHost", "Recognizer"]

ApiStyle = Literal["openai", "anthropic"]


@dataclass(frozen=True, slots=True)
class CustomHost:
    """A self-hosted or gateway server speaking a known wire format.

    `host` may carry a port (`localhost:11434`); then only that port matches,
    otherwise any port does. `price_provider` is the genai-prices provider id
    to price its models with, or None when its calls have no list price.
    """

    name: str
    host: str
    api_style: ApiStyle = "openai"
    price_provider: str | None = None


# --- built-in providers -----------------------------------------------------------

_OPENAI_PATHS: dict[str, Endpoint] = {
    path: Endpoint(provider="openai", style="openai", kind=kind, price_provider="openai")
    for path, kind in (
        ("/v1/chat/completions", "chat"),
        ("/v1/responses", "responses"),
        ("/v1/completions", "completions"),
        ("/v1/embeddings", "embeddings"),
    )
}

_ANTHROPIC_MESSAGES = Endpoint(
    provider="anthropic", style="anthropic", kind="messages", price_provider="anthropic"
)

# Azure's v1 API has no deployment in the URL: the body names the model.
_AZURE_V1_PATHS: dict[str, Endpoint] = {
    path: Endpoint(provider="azure", style="openai", kind=kind, price_provider="azure")
    for path, kind in (
        ("/openai/v1/chat/completions", "chat"),
        ("/openai/v1/responses", "responses"),
        ("/openai/responses", "responses"),
        ("/openai/v1/embeddings", "embeddings"),
    )
}
# Operation after /openai/deployments/{deployment}/
_AZURE_DEPLOYMENT_OPS = {"chat/completions": "chat", "completions": "completions", "embeddings": "embeddings"}
_AZURE_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com")

_GEMINI_VERSIONS = frozenset({"v1", "v1beta", "v1alpha"})
_GEMINI_METHODS = {"generateContent": False, "streamGenerateContent": True}


def _strip_path(path: str) -> str:
    """The path without query or fragment, and without a trailing slash."""
    for sep in ("?", "#"):
        i = path.find(sep)
        if i >= 0:
            path = path[:i]
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def _query(path: str) -> str:
    i = path.find("?")
    if i < 0:
        return ""
    q = path[i + 1 :]
    j = q.find("#")
    return q if j < 0 else q[:j]


def _openai(path: str) -> Endpoint | None:
    return _OPENAI_PATHS.get(_strip_path(path))


def _anthropic(path: str) -> Endpoint | None:
    return _ANTHROPIC_MESSAGES if _strip_path(path) == "/v1/messages" else None


def _azure(path: str) -> Endpoint | None:
    p = _strip_path(path)
    hit = _AZURE_V1_PATHS.get(p)
    if hit is not None:
        return hit
    prefix = "/openai/deployments/"
    if not p.startswith(prefix):
        return None
    deployment, _, op = p[len(prefix) :].partition("/")
    kind = _AZURE_DEPLOYMENT_OPS.get(op)
    if kind is None or not deployment:
        return None
    return Endpoint(
        provider="azure",
        style="openai",
        kind=kind,  # type: ignore[arg-type]
        price_provider="azure",
        url_model=unquote(deployment),
    )


def _gemini(path: str) -> Endpoint | None:
    # /v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse
    p = unquote(_strip_path(path))  # some clients send ':' as %3A
    parts = p.split("/")
    if len(parts) != 4 or parts[0] or parts[1] not in _GEMINI_VERSIONS:
        return None
    collection = parts[2]
    if collection not in ("models", "tunedModels"):
        return None
    model, _, method = parts[3].rpartition(":")
    streaming = _GEMINI_METHODS.get(method)
    if streaming is None or not model:
        return None
    if collection == "tunedModels":
        model = f"tunedModels/{model}"
    sse = True
    if streaming:
        sse = any(kv.strip() == "alt=sse" for kv in _query(path).split("&"))
    return Endpoint(
        provider="google",
        style="gemini",
        kind="generate",
        price_provider="google",
        url_model=model,
        url_streaming=streaming,
        sse=sse,
    )


_BUILTIN_HOSTS: dict[str, Callable[[str], Endpoint | None]] = {
    "api.openai.com": _openai,
    "api.anthropic.com": _anthropic,
    "generativelanguage.googleapis.com": _gemini,
}


# --- custom hosts -----------------------------------------------------------------

_OPENAI_SUFFIXES = (
    ("/chat/completions", "chat"),  # before /completions, which it also ends with
    ("/responses", "responses"),
    ("/completions", "completions"),
    ("/embeddings", "embeddings"),
)


def _split_host_port(host: str) -> tuple[str, int | None]:
    """`Host:port` or `[v6]:port` into a normalised host name and port."""
    host = host.strip()
    port: int | None = None
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            rest = host[end + 1 :]
            host = host[1:end]
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
    elif host.count(":") == 1:
        name, _, p = host.partition(":")
        if p.isdigit():
            host, port = name, int(p)
    return host.lower().rstrip("."), port


class _Custom:
    __slots__ = ("endpoints", "style")

    def __init__(self, spec: CustomHost) -> None:
        self.style = spec.api_style
        mk = lambda kind: Endpoint(  # noqa: E731
            provider=spec.name, style=spec.api_style, kind=kind, price_provider=spec.price_provider
        )
        self.endpoints = {kind: mk(kind) for _, kind in _OPENAI_SUFFIXES} | {"messages": mk("messages")}

    def match(self, path: str) -> Endpoint | None:
        p = _strip_path(path)
        if self.style == "anthropic":
            return self.endpoints["messages"] if p.endswith("/messages") else None
        for suffix, kind in _OPENAI_SUFFIXES:
            if p.endswith(suffix):
                return self.endpoints[kind]
        return None


class Recognizer:
    """Maps (host, path, port) to the `Endpoint` it calls, or None if not metered.

    Only the URL is looked at; the caller meters POST requests only. Custom
    hosts are checked first, so a configured entry can take over a built-in host
    (e.g. to point `api.openai.com` at another price provider).
    """

    __slots__ = ("_by_host", "_by_host_port")

    def __init__(self, custom: Mapping[str, CustomHost] = MappingProxyType({})) -> None:
        self._by_host: dict[str, _Custom] = {}
        self._by_host_port: dict[tuple[str, int], _Custom] = {}
        owners: dict[tuple[str, int | None], str] = {}
        for spec in custom.values():
            if spec.api_style not in ("openai", "anthropic"):
                raise ValueError(f"custom host {spec.name!r}: unknown api_style {spec.api_style!r}")
            # Tolerate a pasted base URL: "http://localhost:11434/v1" means localhost:11434.
            authority = spec.host.split("://", 1)[-1].split("/", 1)[0]
            host, port = _split_host_port(authority)
            if not host:
                raise ValueError(f"custom host {spec.name!r}: empty host")
            other = owners.setdefault((host, port), spec.name)
            if other != spec.name:
                raise ValueError(f"custom hosts {other!r} and {spec.name!r} both use {spec.host!r}")
            if port is None:
                self._by_host[host] = _Custom(spec)
            else:
                self._by_host_port[(host, port)] = _Custom(spec)

    def recognize(self, host: str, path: str, port: int | None = None) -> Endpoint | None:
        h = host.lower()
        if ":" in h or h.endswith(".") or h.startswith("["):
            h, host_port = _split_host_port(h)
            if port is None:
                port = host_port
        if self._by_host_port and port is not None:
            c = self._by_host_port.get((h, port))
            if c is not None:
                return c.match(path)
        if self._by_host:
            c = self._by_host.get(h)
            if c is not None:
                return c.match(path)
        builtin = _BUILTIN_HOSTS.get(h)
        if builtin is not None:
            return builtin(path)
        if h.endswith(_AZURE_SUFFIXES):
            return _azure(path)
        return None
