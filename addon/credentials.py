"""Find the API key a request carries and turn it into a fingerprint.

No raw key ever leaves this module: the ledger, logs and views see a SHA-256 hash
(for identity) and a masked form like `sk-12...abcd` (for people).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from typing import TYPE_CHECKING

from mitmproxy import http

if TYPE_CHECKING:
    from providers.endpoint import Endpoint

# Where each provider's SDK puts the key, in the order they are looked at.
KEY_HEADERS = ("x-api-key", "api-key", "x-goog-api-key")


@dataclass(frozen=True, slots=True)
class KeyFingerprint:
    hash: str
    masked: str
    location: str  # "authorization", "x-api-key", "api-key", "x-goog-api-key", "query"


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def mask(raw: str) -> str:
    """`sk-1234567890abcdef` → `sk-12...cdef`; short keys keep even less."""
    if len(raw) <= 12:
        return raw[:2] + "..." + raw[-2:] if len(raw) > 4 else "..."
    return f"{raw[:5]}...{raw[-4:]}"


def find_key(request: http.Request) -> tuple[str, str] | None:
    """(raw key, where it was) or None."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip(), "authorization"
    for name in KEY_HEADERS:
        value = request.headers.get(name)
        if value:
            return value.strip(), name
    value = request.query.get("key")
    if value:
        return value, "query"
    return None


def fingerprint(request: http.Request) -> KeyFingerprint | None:
    found = find_key(request)
    if found is None:
        return None
    raw, location = found
    return KeyFingerprint(key_hash(raw), mask(raw), location)


def place_key(request: http.Request, found_at: str, endpoint: Endpoint, real_key: str) -> None:
    """Remove the client's (virtual) key from where it was and put the real one where
    the provider expects it, so upstream sees only the real credential."""
    if found_at == "authorization":
        del request.headers["authorization"]
    elif found_at == "query":
        del request.query["key"]
    else:
        del request.headers[found_at]
    if endpoint.provider == "azure":
        request.headers["api-key"] = real_key
    elif endpoint.style == "anthropic":
        request.headers["x-api-key"] = real_key
    elif endpoint.style == "gemini":
        request.headers["x-goog-api-key"] = real_key
    else:
        request.headers["authorization"] = f"Bearer {real_key}"
