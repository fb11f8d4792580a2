"""The built-in providers, in one tuple, and recognition derived from it.

`BUILTIN` is the only list of providers spendgate knows without configuration. From it
come: `Registry.provider()` (which host belongs to which provider), the recommended
mitmproxy `--allow-hosts` pattern (`allow_hosts_pattern`, printed by `spendgate
allow-hosts` and used by `make run`), the provider names the config accepts
(`config_names`), docs/providers.md (`python -m providers.docs`) and the tests' tables.

Recognition runs on every request through the proxy, so an unknown host costs one dict
lookup and one `str.endswith` over a tuple of suffixes (host families' included): no
regex, no URL parsing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from providers.anthropic import ANTHROPIC
from providers.azure import AZURE
from providers.base import KeyPlace, Provider
from providers.bedrock import BEDROCK, BEDROCK_MANTLE
from providers.cohere import COHERE
from providers.custom import CustomProvider, split_host_port
from providers.gemini import GEMINI
from providers.openai import OPENAI
from providers.openai_compat import OPENAI_COMPATIBLE
from providers.vertex import VERTEX

__all__ = ["BUILTIN", "Registry", "allow_hosts_pattern", "config_names", "credential_fields", "credential_places"]

BUILTIN: tuple[Provider, ...] = (OPENAI, AZURE, ANTHROPIC, GEMINI, VERTEX, COHERE, BEDROCK, BEDROCK_MANTLE,
                                 *OPENAI_COMPATIBLE)


def config_names(providers: Iterable[Provider] = BUILTIN) -> frozenset[str]:
    """Every name under `providers:` in the config that means a built-in provider."""
    return frozenset(name for p in providers for name in p.config_names)


def credential_places(name: str, providers: Iterable[Provider] = BUILTIN) -> tuple[KeyPlace, ...]:
    """The places a real credential for the provider configured as `name` can be put in
    (a custom provider's: a plain API key)."""
    for provider in providers:
        if name in provider.config_names:
            return provider.credential.puts
    return (KeyPlace.BEARER,)  # type: ignore[attr-defined]


def credential_fields(name: str, providers: Iterable[Provider] = BUILTIN) -> frozenset[str]:
    """The `providers.<name>.…` fields a real credential for that provider can be made of."""
    return frozenset(f for place in credential_places(name, providers) for f in (*place.needs, *place.optional))


def allow_hosts_pattern(providers: Iterable[Provider] = BUILTIN) -> str:
    """mitmproxy's `--allow-hosts` regex: decrypt the providers' traffic only, everything
    else passes through as an opaque tunnel. A configured host with a port matches that
    port only; every other host the HTTPS port."""
    on_443, with_port = [], []
    for provider in providers:
        port = getattr(provider, "port", None)
        if port:
            with_port.append(f"{provider.host_pattern}:{port}")
        else:
            on_443.append(provider.host_pattern)
    alternatives = [f"({'|'.join(on_443)})(:443)?"] if on_443 else []
    return "^(" + "|".join(alternatives + with_port) + ")$"


class Registry:
    """Which provider a (host, port) belongs to: the built-ins, and the configured hosts,
    which are looked at first (a configured entry may take over a built-in host, e.g. to
    price `api.openai.com` as another provider)."""

    __slots__ = ("_by_host", "_by_host_port", "_by_name", "_suffixes", "_by_suffix", "providers")

    def __init__(self, custom: Mapping[str, CustomProvider] = MappingProxyType({}),
                 builtin: Iterable[Provider] = BUILTIN) -> None:
        self.providers: tuple[Provider, ...] = (*custom.values(), *builtin)
        self._by_name = {p.name: p for p in reversed(self.providers)}
        self._by_host: dict[str, Provider] = {}
        self._by_host_port: dict[tuple[str, int], Provider] = {}
        self._by_suffix: list[tuple[str, str, Provider]] = []  # (prefix, suffix, provider)
        owners: dict[tuple[str, int | None], str] = {}
        for provider in custom.values():
            other = owners.setdefault((provider.host, provider.port), provider.name)
            if other != provider.name:
                raise ValueError(f"custom hosts {other!r} and {provider.name!r} both use {provider.host!r}")
            if provider.port is None:
                self._by_host[provider.host] = provider
            else:
                self._by_host_port[(provider.host, provider.port)] = provider
        for provider in builtin:
            for host in provider.hosts:
                self._by_host.setdefault(host, provider)
            self._by_suffix += [("", suffix, provider) for suffix in provider.host_suffixes]
            self._by_suffix += [(prefix, suffix, provider) for prefix, suffix in provider.host_families]
        self._suffixes = tuple(suffix for _, suffix, _ in self._by_suffix)

    def named(self, name: str) -> Provider:
        """The provider called `name` (the `provider` of its endpoints)."""
        return self._by_name[name]

    def provider(self, host: str, port: int | None = None, target: str | None = None) -> Provider | None:
        """The provider answering at `host` (as the client asked for it: its Host header, or
        HTTP/2's :authority), else at `target` (where the proxy connects: the CONNECT target,
        the SNI), or None — a Host header the provider's edge ignores (`api.openai.com:x`)
        must not take a call to it out of the meter. A target that is an IP address (a
        transparent proxy's) is not asked: one address may serve many hosts besides a custom
        provider configured by it."""
        h = host.lower()
        if ":" in h or h.endswith(".") or h.startswith("["):
            h, host_port = split_host_port(h)
            if port is None:
                port = host_port
        if self._by_host_port and port is not None:
            found = self._by_host_port.get((h, port))
            if found is not None:
                return found
        found = self._by_host.get(h)
        if found is not None:
            return found
        if h.endswith(self._suffixes):
            for prefix, suffix, provider in self._by_suffix:
                if not h.endswith(suffix) or len(h) <= len(prefix) + len(suffix):
                    continue
                if not prefix:
                    return provider
                if h.startswith(prefix) and "." not in h[len(prefix):-len(suffix)]:  # one label between
                    return provider
        return self.provider(target, port) if target is not None and target != host and not _is_ip(target) else None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
