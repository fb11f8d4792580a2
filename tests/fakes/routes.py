"""How a fake provider module declares what it answers: `@route(method, path_regex)`.

Each module in tests/fakes/ (one per provider or wire family) registers its handlers here;
tests/fakes/server.py imports the modules, so the list of fakes is declared in one place.
A handler is `fn(h, match)`: `h` the request handler (body, query, headers and the
senders: `h.send_json`, `h.stream`, `h.usage`, `h.pieces`), `match` the path's regex match.
`errors(h, status)` answers `x-fake-status: N` in that provider's error shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ROUTES", "FakeRoute", "route"]

Handler = Callable[[Any, re.Match[str]], None]
Errors = Callable[[Any, int], None]


@dataclass(frozen=True)
class FakeRoute:
    method: str
    path: re.Pattern[str]
    handler: Handler
    errors: Errors


ROUTES: list[FakeRoute] = []


def route(method: str, path: str, errors: Errors) -> Callable[[Handler], Handler]:
    """Register `handler` for `method` requests whose path (no query) fully matches `path`."""

    def register(handler: Handler) -> Handler:
        ROUTES.append(FakeRoute(method, re.compile(path), handler, errors))
        return handler

    return register
