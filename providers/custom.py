"""Configured providers: a self-hosted server or gateway (vLLM, Ollama, an internal proxy)
speaking a known wire format on a host of its own (`providers:` in the config).

Gateways mount the API under any prefix (`/api/openai/v1/chat/completions`), so a custom
host's routes match by the path's end, not exactly as the built-in providers' do.
"""

from __future__ import annotations

from core.vocab import ApiStyle
from providers.anthropic import ANTHROPIC_CREDENTIAL, MESSAGES
from providers.base import (
    BEARER,
    FREE,
    READ_METHODS,
    Endpoint,
    Free,
    Provider,
    strip_path,
)
from providers.openai import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES

__all__ = ["CustomProvider", "split_host_port"]

# Checked in order: /chat/completions before /completions, which it also ends with.
_SUFFIXES = {
    ApiStyle.OPENAI: (("/chat/completions", CHAT), ("/responses", RESPONSES), ("/completions", COMPLETIONS),
                      ("/embeddings", EMBEDDINGS)),
    ApiStyle.ANTHROPIC: (("/messages/count_tokens", FREE), ("/messages", MESSAGES)),
}


def split_host_port(host: str) -> tuple[str, int | None]:
    """`Host:port` or `[v6]:port` into a normalised host name and port."""
    host = host.strip()
    port: int | None = None
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            rest = host[end + 1:]
            host = host[1:end]
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
    elif host.count(":") == 1:
        name, _, p = host.partition(":")
        if p.isdigit():
            host, port = name, int(p)
    return host.lower().rstrip("."), port


class CustomProvider(Provider):
    """`providers.<name>: {host, api_style, price_provider}` from the config.

    `host` may carry a port (`localhost:11434`); then only that port matches, otherwise
    any port does. A pasted base URL (`http://localhost:11434/v1`) means its host.
    """

    def __init__(self, name: str, host: str, api_style: ApiStyle, price_provider: str | None = None) -> None:
        style = ApiStyle(api_style)
        authority = host.split("://", 1)[-1].split("/", 1)[0]
        self.host, self.port = split_host_port(authority)
        if not self.host:
            raise ValueError(f"custom host {name!r}: empty host")
        super().__init__(
            name, price_provider=price_provider, routes=(), hosts=(self.host,),
            credential=ANTHROPIC_CREDENTIAL if style is ApiStyle.ANTHROPIC else BEARER,
        )
        self.api_style = style
        self._endpoints = tuple(
            (suffix, FREE if api is FREE else Endpoint(name, api, price_provider, self.credential))
            for suffix, api in _SUFFIXES[style]
        )

    def route(self, method: str, path: str) -> Endpoint | Free | None:
        p = strip_path(path)
        if method == "POST":
            for suffix, endpoint in self._endpoints:
                if p.endswith(suffix):
                    return endpoint
        return FREE if method in READ_METHODS else None
