"""Reading credentials out of HTTP headers, once for every listener (proxy and admin API)."""

from __future__ import annotations

__all__ = ["bearer_token"]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None
