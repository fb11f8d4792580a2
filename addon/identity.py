"""Who a call belongs to: its key, the key's user and team, and what it may do.

A virtual key (issued by the admin API) is enforced — expiry, deletion, blocking,
model allow-list — and swapped for the provider's real credential before the call
leaves; upstream never sees it. Any other key is a provider key the developer brought:
tracked by fingerprint as a key scope of its own, or refused with
`general_settings.unknown_keys: block`. Proxy authentication
(`HTTPS_PROXY=http://USER_ID:USER_KEY@proxy:8080`) names the user on egress proxies
where the developer keeps their own provider key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mitmproxy import http

from addon.credentials import KeyFingerprint, fingerprint, key_hash, place_key
from addon.replies import error_response
from ledger import ScopeRef
from ledger.directory import KeyRecord

if TYPE_CHECKING:
    from addon.runtime import Runtime
    from providers.endpoint import Endpoint

PROXY_USER = "spendgate.proxy_user"  # flow.metadata: the user proxy auth proved


class Refusal(Exception):
    """The call is answered by spendgate with this response instead of forwarded."""

    def __init__(self, response: http.Response):
        super().__init__(response.status_code)
        self.response = response


def refuse(status: int, type_: str, message: str, **headers: str) -> Refusal:
    return Refusal(error_response(status, type_, message, headers or None))


@dataclass
class Identity:
    key: KeyFingerprint | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    virtual: bool = False

    def scopes(self) -> tuple[ScopeRef, ...]:
        """Every budget that applies, widest first."""
        refs = [ScopeRef.global_()]
        if self.team_id:
            refs.append(ScopeRef("team", self.team_id))
        if self.user_id:
            refs.append(ScopeRef("user", self.user_id))
        if self.key is not None:
            refs.append(ScopeRef("key", self.key.hash))
        return tuple(refs)


def _check_virtual_key(rec: KeyRecord, model: str | None, rt: Runtime, now: datetime) -> None:
    if rec.deleted_at is not None:
        raise refuse(401, "authentication_error", f"Key {rec.key_masked} has been deleted.")
    if rec.expires_at is not None and rec.expires_at <= now:
        raise refuse(401, "authentication_error",
                     f"Key {rec.key_masked} expired at {rec.expires_at:%Y-%m-%dT%H:%M:%SZ}.")
    if rec.blocked:
        raise refuse(401, "authentication_error", f"Key {rec.key_masked} is blocked.")
    team = rt.directory.teams.get(rec.team_id) if rec.team_id else None
    if team is not None and team.blocked:
        raise refuse(401, "authentication_error", f"Team '{team.team_alias or team.team_id}' is blocked.")
    for owner, allowed in (("Key", rec.models), ("Team", team.models if team else [])):
        if allowed and model not in allowed:
            raise refuse(403, "key_model_access_denied",
                         f"{owner} {rec.key_masked if owner == 'Key' else team.team_alias!r} may not call "
                         f"model {model!r}; allowed: {', '.join(allowed)}.")


def provider_credential(rt: Runtime, endpoint: Endpoint) -> str:
    """The real key for the provider a virtual key's call goes to, from `providers:`."""
    names = ["google", "gemini"] if endpoint.provider == "google" else [endpoint.provider]
    for name in names:
        entry = rt.config.providers.get(name)
        if entry is not None and entry.api_key is not None:
            return entry.api_key.get_secret_value()
    raise refuse(
        503, "provider_key_not_configured",
        f"This proxy has no credential for provider {endpoint.provider!r}: set "
        f"providers.{names[0]}.api_key (e.g. os.environ/{names[0].upper()}_API_KEY) in the spendgate config.",
    )


async def identify(rt: Runtime, flow: http.HTTPFlow, endpoint: Endpoint, model: str | None, now: datetime) -> Identity:
    """Resolve the call's identity and, for a virtual key, swap in the real credential.

    Raises Refusal when the call may not proceed.
    """
    settings = rt.config.general_settings
    key = fingerprint(flow.request)
    rec = await rt.directory.key(rt.ledger, key.hash) if key else None
    ident = Identity(key=key)
    if rec is not None and rec.issued:
        _check_virtual_key(rec, model, rt, now)
        place_key(flow.request, key.location, endpoint, provider_credential(rt, endpoint))
        ident.virtual = True
    elif settings.unknown_keys == "block":
        raise refuse(401, "authentication_error",
                     "This proxy only accepts keys it issued (general_settings.unknown_keys: block).")
    if rec is not None:
        ident.key_alias, ident.user_id, ident.team_id = rec.key_alias, rec.user_id, rec.team_id
        ident.metadata = dict(rec.metadata)
    proxy_user = flow.metadata.get(PROXY_USER)
    if proxy_user and not ident.user_id:
        ident.user_id = proxy_user
    if ident.user_id and not ident.team_id:
        user = rt.directory.users.get(ident.user_id)
        ident.team_id = user.team_id if user else None
    return ident


async def check_proxy_credentials(rt: Runtime, user_id: str, password: str) -> bool:
    """Proxy auth is USER_ID:USER_KEY — a key issued to that user."""
    rec = await rt.directory.key(rt.ledger, key_hash(password))
    return bool(rec and rec.issued and rec.user_id == user_id and rec.deleted_at is None and not rec.blocked)
