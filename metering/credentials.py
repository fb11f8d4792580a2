"""Turn the API key a request carries into a fingerprint.

No raw key ever leaves this module: the ledger, logs and views see a SHA-256 hash (for
identity) and a masked form like `sk-12...abcd` (for people). Where a provider reads its
key is the provider's own declaration (`providers.base.Credential`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mitmproxy import http

    from providers.base import Credential

__all__ = ["KeyFingerprint", "fingerprint", "key_hash", "mask"]


@dataclass(frozen=True, slots=True)
class KeyFingerprint:
    hash: str
    masked: str


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def mask(raw: str) -> str:
    """`sk-1234567890abcdef` → `sk-12...cdef`; short keys keep even less."""
    if len(raw) <= 12:
        return raw[:2] + "..." + raw[-2:] if len(raw) > 4 else "..."
    return f"{raw[:5]}...{raw[-4:]}"


def fingerprint(request: http.Request, credential: Credential,
                headers: Mapping[str, str] | None = None) -> KeyFingerprint | None:
    """The fingerprint of the key `request` carries where the provider reads it, or None
    (`headers`: the request's, by lower-case name, when the caller has them so)."""
    found = credential.find(request, headers)
    if found is None:
        return None
    raw = found[0]
    return KeyFingerprint(key_hash(raw), mask(raw))
