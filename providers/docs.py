"""`python -m providers.docs`: docs/providers.md, generated from the provider registry.

Every built-in provider, the hosts it answers for, each endpoint with what is metered and
how it is priced, and where its key is read: the registry is the only place this is
written, so the page cannot drift from what the proxy does (tests/test_registry.py keeps
the committed page equal to this output; `make docs` rewrites it).
"""

from __future__ import annotations

from providers.base import FREE, READ_METHODS, Provider
from providers.registry import BUILTIN, allow_hosts_pattern

INTRO = """\
# Providers

<!-- Generated from providers/registry.py by `python -m providers.docs` (`make docs`). Do not edit. -->

Every provider below is recognised with no configuration, by the host the client asked for.
A call to one of its metered endpoints is priced from the usage the provider reports, under
the genai-prices provider named (a `pricing:` entry in the config wins over it). On a
provider's host:

- a request no endpoint names is *unmetered*: `{reads}` requests are free reads and pass;
  anything else is recorded with status `unmetered` (or refused, with
  `general_settings.unmetered_endpoints: block`);
- a *free* endpoint costs nothing and holds no budget.

A `{{name}}` segment in a path is any value; `{{model}}` is the model the call is priced as.
Custom hosts (a vLLM, Ollama or gateway) are configured under `providers:`
(docs/config-reference.md).

The recommended mitmproxy `--allow-hosts` pattern, which decrypts provider traffic only
(`spendgate allow-hosts` prints it; `spendgate allow-hosts --config PATH` adds a config's
custom hosts):

```
{pattern}
```
"""


def _hosts(provider: Provider) -> str:
    names = [f"`{h}`" for h in provider.hosts] + [f"`*{s}`" for s in provider.host_suffixes]
    names += [f"`{p}*{s}`" for p, s in provider.host_families]
    return ", ".join(names)


def _keys(provider: Provider) -> str:
    return ", ".join(place.label for place in provider.credential.reads)


def _swap(provider: Provider) -> str:
    """Where a virtual key's real replacement comes from and goes to."""
    name = provider.config_names[0]
    options = []
    for place in provider.credential.puts:
        fields = " + ".join(f"`providers.{name}.{f}`" for f in place.needs)
        fields += "".join(f" (+ `{f}` if set)" for f in place.optional)
        options.append(f"{fields} in {place.put_label}")
    return "; else ".join(options)


def _segments(provider: Provider) -> list[str]:
    """The values a path segment is limited to (`{version}`: v1, v1beta1), where a route limits one."""
    allowed: dict[str, tuple[str, ...]] = {}
    for route in provider.routes:
        for name, values in route.choices.items():
            allowed.setdefault(name, values)
    return [f"- `{{{name}}}` is one of: {', '.join(f'`{v}`' for v in values)}" for name, values in allowed.items()]


def _section(provider: Provider) -> list[str]:
    lines = [
        f"## {provider.title}",
        "",
        f"- Provider name (ledger, `providers:` config): {', '.join(f'`{n}`' for n in provider.config_names)}",
        f"- Hosts: {_hosts(provider)}",
        f"- Priced as genai-prices provider: `{provider.price_provider}`" if provider.price_provider
        else "- Priced only by `pricing:` entries",
        f"- Key read from: {_keys(provider)}; a virtual key is swapped for {_swap(provider)}",
        *_segments(provider),
        *(f"- {note}" for note in provider.notes),
        "",
        "| Method | Path | Endpoint | Metered |",
        "|---|---|---|---|",
    ]
    for route in provider.routes:
        if route.api is FREE:
            kind, metered = "free", route.note or "free"
        else:
            kind = f"`{route.api.kind}`"
            metered = route.api.meters + (f"; {route.note}" if route.note else "")
            if route.price_provider and route.price_provider != provider.price_provider:
                metered += f" (priced as `{route.price_provider}`)"
            if route.stream:
                metered += "; streamed"
        lines.append(f"| {route.method} | `{route.template}` | {kind} | {metered} |")
    lines.append("")
    return lines


def render() -> str:
    lines = [INTRO.format(reads=", ".join(sorted(READ_METHODS)), pattern=allow_hosts_pattern())]
    for provider in BUILTIN:
        lines += _section(provider)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
