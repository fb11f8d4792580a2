"""The API hosts genai-prices already knows: each of its providers carries an
`api_pattern` regex (`https://api\\.groq\\.com`, `https://api\\.cohere\\.(?:ai|com)`).

A provider entry takes its hosts from there rather than writing them again. Only a
pattern whose host part is a finite set of names can be used so; for the others
(`https://api\\.moonshot\\.` names no whole host, Azure's matches any resource name) the
entry lists its hosts, and tests/test_registry.py checks each against the pattern.
"""

from __future__ import annotations

import functools
import re
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

from genai_prices import data_snapshot

__all__ = ["api_pattern", "hosts_of", "matches_api_pattern"]

_MAX_NAMES = 64


@functools.cache
def _patterns() -> dict[str, str]:
    return {p.id: p.api_pattern for p in data_snapshot.get_snapshot().providers if p.api_pattern}


def api_pattern(provider_id: str) -> str | None:
    """genai-prices' `api_pattern` for a provider id, or None."""
    return _patterns().get(provider_id)


def matches_api_pattern(provider_id: str, host: str) -> bool:
    """Whether `https://<host>/` is a URL genai-prices attributes to `provider_id`."""
    pattern = api_pattern(provider_id)
    return pattern is not None and re.match(pattern, f"https://{host}/") is not None


def hosts_of(provider_id: str) -> tuple[str, ...]:
    """Every host name genai-prices' pattern for `provider_id` allows, when they are a
    finite set of whole names; () otherwise."""
    pattern = api_pattern(provider_id)
    if not pattern or not pattern.startswith("https://"):
        return ()
    try:
        names = _expand(sre_parse.parse(pattern[len("https://"):]))
    except _NotFinite:
        return ()
    hosts = tuple(sorted({n.rstrip("/") for n in names}))
    if not all(h and not h.endswith(".") and "." in h for h in hosts):
        return ()  # a prefix, not a whole host name
    return hosts


class _NotFinite(Exception):
    pass


def _expand(items) -> list[str]:
    """The strings a parsed regex matches, up to the first `/` or end anchor."""
    out = [""]
    for op, arg in items:
        if op is sre_constants.LITERAL:
            ch = chr(arg)
            if ch == "/":
                return out
            out = [s + ch for s in out]
        elif op is sre_constants.SUBPATTERN:
            out = [s + t for s in out for t in _expand(arg[-1])]
        elif op is sre_constants.BRANCH:
            out = [s + t for s in out for branch in arg[1] for t in _expand(branch)]
        elif op is sre_constants.MAX_REPEAT and arg[0] == 0 and arg[1] == 1:
            options = [""] + _expand(arg[2])
            out = [s + t for s in out for t in options]
        elif op is sre_constants.AT:
            return out
        else:
            raise _NotFinite(op)
        if len(out) > _MAX_NAMES:
            raise _NotFinite("too many names")
    return out
