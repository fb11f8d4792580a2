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

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.vocab import ScopeKind
from ledger import ScopeRef
from ledger.directory import KeyRecord
from metering.credentials import KeyFingerprint, fingerprint, key_hash
from metering.refusals import refusal

if TYPE_CHECKING:
    from mitmproxy import http

    from metering.runtime import Runtime
    from providers.base import Endpoint

__all__ = ["Identity", "check_proxy_credentials", "identify", "provider_credential"]

GLOBAL_SCOPE = ScopeRef.global_()


@dataclass
class Identity:
    key: KeyFingerprint | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    virtual: bool = False
    _scopes: tuple[ScopeRef, ...] | None = field(default=None, repr=False, compare=False)

    def scopes(self) -> tuple[ScopeRef, ...]:
        """Every budget that applies, widest first. Made once (a call asks to reserve, to
        settle and to journal): an identity is complete before anyone asks."""
        if self._scopes is None:
            self._scopes = self._make_scopes()
        return self._scopes

    def _make_scopes(self) -> tuple[ScopeRef, ...]:
        refs = [GLOBAL_SCOPE]
        if self.team_id:
            refs.append(ScopeRef(ScopeKind.TEAM, self.team_id))
        if self.user_id:
            refs.append(ScopeRef(ScopeKind.USER, self.user_id))
        if self.key is not None:
            refs.append(ScopeRef(ScopeKind.KEY, self.key.hash))
        return tuple(refs)


def _check_virtual_key(rec: KeyRecord, model: str | None, rt: Runtime, now: datetime,
                       check_model: bool = True) -> None:
    if rec.deleted_at is not None:
        raise refusal(401, "authentication_error", f"Key {rec.key_masked} has been deleted.")
    if rec.expires_at is not None and rec.expires_at <= now:
        raise refusal(401, "authentication_error",
                      f"Key {rec.key_masked} expired at {rec.expires_at:%Y-%m-%dT%H:%M:%SZ}.")
    if rec.blocked:
        raise refusal(401, "authentication_error", f"Key {rec.key_masked} is blocked.")
    team = rt.directory.teams.get(rec.team_id) if rec.team_id else None
    if team is not None and team.blocked:
        raise refusal(401, "authentication_error", f"Team '{team.team_alias or team.team_id}' is blocked.")
    for owner, allowed in (("Key", rec.models), ("Team", team.models if team else [])):
        if allowed and check_model and model not in allowed:
            raise refusal(403, "key_model_access_denied",
                          f"{owner} {rec.key_masked if owner == 'Key' else team.team_alias!r} may not call "
                          f"model {model!r}; allowed: {', '.join(allowed)}.")


def provider_credential(rt: Runtime, endpoint: Endpoint) -> Mapping[str, str]:
    """The real credential for the provider a virtual key's call goes to, from `providers:`:
    the entry's secret fields by name, enough for one of the places the provider takes one."""
    names = rt.registry.named(endpoint.provider).config_names
    credential = endpoint.credential
    for name in names:
        entry = rt.config.providers.get(name)
        if entry is not None:
            secrets = entry.secrets()
            if credential.placement(secrets) is not None:
                return secrets
    wanted = " or ".join(
        " and ".join(f"providers.{names[0]}.{field}" for field in place.needs) for place in credential.puts)
    first = credential.place.needs[0]
    example = f"{names[0].upper().replace('-', '_')}_API_KEY" if first == "api_key" else first.upper()
    raise refusal(
        503, "provider_key_not_configured",
        f"This proxy has no credential for provider {endpoint.provider!r}: set {wanted} "
        f"(e.g. os.environ/{example}) in the spendgate config.",
    )


async def identify(rt: Runtime, request: http.Request, endpoint: Endpoint, model: str | None, now: datetime,
                   proxy_user: str | None = None, headers: Mapping[str, str] | None = None, *,
                   check_model: bool = True) -> Identity:
    """Resolve the call's identity and, for a virtual key, swap in the real credential
    (`headers`: the request's by lower-case name, read before any swap). `check_model`
    False: the model is not known yet (a WebSocket handshake; each turn on the socket is
    checked with its own).

    Raises Refusal when the call may not proceed.
    """
    settings = rt.config.general_settings
    key = fingerprint(request, endpoint.credential, headers)
    rec = await rt.directory.key(rt.ledger, key.hash) if key else None
    ident = Identity(key=key)
    if rec is not None and rec.issued:
        _check_virtual_key(rec, model, rt, now, check_model)
        if endpoint.credential.no_virtual_keys:
            raise refusal(400, "virtual_key_not_supported", endpoint.credential.no_virtual_keys)
        endpoint.credential.swap(request, provider_credential(rt, endpoint))
        ident.virtual = True
    elif settings.unknown_keys == "block":
        raise refusal(401, "authentication_error",
                      "This proxy only accepts keys it issued (general_settings.unknown_keys: block).")
    if rec is not None:
        ident.key_alias, ident.user_id, ident.team_id = rec.key_alias, rec.user_id, rec.team_id
        ident.metadata = dict(rec.metadata)
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

