"""Find the API key a request carries and turn it into a fingerprint.

No raw key ever leaves this module: the ledger, logs and views see a SHA-256 hash
(for identity) and a masked form like `sk-12...abcd` (for people).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mitmproxy import http

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
