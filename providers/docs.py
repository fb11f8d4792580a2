"""`python -m providers.docs`: docs/providers.md, generated from the provider registry.

Every built-in provider, the hosts it answers for, each endpoint with what is metered and
how it is priced, and where its key is read: the registry is the only place this is
written, so the page cannot drift from what the proxy does (tests/test_registry.py keeps
the committed page equal to this output; `make docs` rewrites it).
"""

from __future__ import annotations

from core.vocab import Transport
from pricing.prices import GENAI_PRICES_SOURCE
from pricing.supplement import FEES, SUPPLEMENT_SOURCE, TIERS, UNIT_MODELS
from providers.base import FREE, READ_METHODS, Provider
from providers.registry import BUILTIN, allow_hosts_pattern

INTRO = """\
# Providers

<!-- Generated from providers/registry.py by `python -m providers.docs` (`make docs`). Do not edit. -->

Every provider below is recognised with no configuration, by the host the client asked for
(or, where that names none, by the host the proxy connects to).
A call to one of its metered endpoints is priced from the usage the provider reports, under
the genai-prices provider named (a `pricing:` entry in the config wins over it). On a
provider's host:

- a request no endpoint names is *unmetered*: `{reads}` requests are free reads and pass;
  anything else is recorded with status `unmetered` (or refused, with
  `general_settings.unmetered_endpoints: block`);
- a *free* endpoint costs nothing and holds no budget;
- a *WebSocket* endpoint is an upgrade request (`wss://`): each turn on the socket is a
  call of its own, recorded with `transport: websocket` (docs/websocket.md). An upgrade to
  any other path of the host is recorded as one `unmetered` call.

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
        method = route.method
        if route.api is not FREE and route.api.transport is Transport.WEBSOCKET:
            method = "WebSocket"  # an upgrade GET; each turn on the socket is a call (docs/websocket.md)
        lines.append(f"| {method} | `{route.template}` | {kind} | {metered} |")
    lines.append("")
    return lines


PRICING = """\
## How fees and tiers are priced

A call's `units` (docs/ledger.md) hold what it is billed for beyond the five token classes,
under genai-prices' unit names: `web_searches`, `cache_write_1h_tokens`, `input_image_tokens`,
`output_image_tokens`, `input_audio_tokens`, `output_audio_tokens`, `audio_seconds` and
`input_audio_seconds`, `input_characters`; and spendgate's own `images_<size>_<quality>`
for dall-e. A tier the provider reports (`service_tier`: OpenAI's `flex` or `priority`,
Anthropic's `speed: fast`) prices the call at that tier.

- **genai-prices** (price source `{gp}`) is the price list. Where it has the model and the unit, its price
  is the one used: gpt-image, transcription and speech models by their units, whisper-1 per
  audio hour, tts-1 per character, web searches on most OpenAI and Anthropic models,
  Anthropic's 1-hour cache writes, and the tier variants it lists (OpenAI flex and priority,
  Anthropic fast mode).
- **The supplement** (`pricing/supplement.py`, price source `{gp} + {sup}` or `{sup}`)
  adds only what genai-prices lacks, each from the provider's price page (the dall-e
  figures are those OpenAI published before retiring dall-e in May 2026):

{supplement}

- A usage holding a quantity nobody prices (tokens on a model priced per character, an
  image size the supplement doesn't list) is unpriced, never $0. A tier with no price of its
  own for the model (OpenAI `scale`, `priority` where none is listed) is priced at the
  standard rate, and the price source says so.
- Known disagreement, kept as genai-prices has it: OpenAI bills the older
  `web_search_preview` tool on non-reasoning models (gpt-4o, gpt-4.1) at $25 per 1,000 calls
  with the search content free; genai-prices, and so spendgate, charge $10 per 1,000 plus
  the tokens. `open_page` and `find_in_page` actions of a web search are counted as calls.
- **The price in force at the call's time**: every call is priced at the rates genai-prices
  lists for the moment its request arrived (`started_at`, UTC), its reservation too. Where a
  price changes with the time of day (DeepSeek's off-peak hours, 16:30-00:30 UTC for
  `deepseek-chat` at half price) two identical calls at different hours cost differently;
  where it changes on a date (Mistral, OpenRouter), a call is priced at the rates of its day.
- **OpenAI-compatible providers** are read in their own dialect: genai-prices' usage
  extractor for the provider, where it has one, says which fields count what (xAI's chat
  reasoning tokens are billed as output beside `completion_tokens`; Perplexity's
  `citation_tokens`, `reasoning_tokens` and `num_search_queries`); else usage is read as
  OpenAI's.
- **A cost the provider states** (OpenRouter's `usage.cost`, in the body or a stream's last
  chunk, plus `cost_details.upstream_inference_cost` on a bring-your-own-key call) is the
  call's cost, price source `reported`. It is bounded like usage: at most what the most
  input and output the call could use cost at the model's list price (`$1M` for a model
  without one; above that it is clamped and the raw figure kept in `anomaly`); a negative
  or unreadable figure is not believed, and the call is priced from its usage. Only
  providers marked so are believed (a `cost` in any other provider's reply is ignored).
- Known disagreement: Perplexity's request fee depends on the search context size ($5, $8,
  $12 per 1,000 requests for `sonar` at low, medium, high); genai-prices lists one fee
  per model, the high one, and so spendgate charges it for every `sonar` call.
- Replies that report no usage (dall-e images, tts-1 audio) are billed from the request
  (`reported`: the request fixes the bill). gpt-4o-mini-tts audio bytes, plain-text
  transcripts and translations are charged an estimate from the request (`usage_source:
  estimated`, status `ok`). Reservations of images and audio are bounds from the request:
  `n` images at the dearest size and quality it allows; an upload's audio at most its size
  at 6 kbit/s (see providers/openai_images.py and openai_audio.py).
"""


def _supplement_lines() -> list[str]:
    lines = []
    for fee in FEES:
        price = f"${fee.usd}" if fee.usd is not None else f"{fee.factor} x `{fee.factor_of}`"
        lines.append(f"  - `{fee.price_key}` for {fee.provider} models that lack it: {price} — {fee.source}")
    for rule in TIERS:
        lines.append(f"  - {rule.provider} `{rule.tier}` tier where genai-prices has no variant: "
                     f"{rule.factor} x the standard token prices — {rule.source}")
    for model in UNIT_MODELS:
        prices = ", ".join(f"`{unit}` ${price}" for unit, price in model.prices.items())
        lines.append(f"  - {model.provider} `{model.model}` (not in genai-prices), per image: {prices} — {model.source}")
    return lines


def render() -> str:
    lines = [INTRO.format(reads=", ".join(sorted(READ_METHODS)), pattern=allow_hosts_pattern())]
    lines.append(PRICING.format(gp=GENAI_PRICES_SOURCE, sup=SUPPLEMENT_SOURCE,
                                supplement="\n".join(_supplement_lines())))
    for provider in BUILTIN:
        lines += _section(provider)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
