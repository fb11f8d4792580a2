"""Virtual keys: `/key/generate`, `/key/update`, `/key/delete`, `/key/info`, `/key/list`.

A virtual key is `sk-` + a random secret; only its SHA-256 hash (LiteLLM's `token`) is
stored, and the raw key is returned once. The same endpoints manage provider keys that
spendgate did not issue (a developer's own key through HTTPS_PROXY): they appear after
their first call, by token, and take budgets, models, owners and metadata like virtual
keys; `/key/generate` with `"provider_key": true` registers one before first use.
"""

from __future__ import annotations

import secrets
from typing import Any

from metering.credentials import key_hash, mask
from admin.api import AdminContext, ApiError, route
from admin.endpoints.common import (
    HASH,
    alias_free,
    apply,
    expires,
    find,
    find_key,
    get,
    key_candidates,
    key_entries,
    key_info,
    key_view,
    merged_spec,
    new_spec,
    query_bool,
    query_int,
    read,
    require_team,
    spend_of,
    take_given,
    user_or_new,
    wants_reset,
)
from admin.schemas import DeleteKeyRequest, GenerateKeyRequest, UpdateKeyRequest
from ledger import views
from ledger.directory import KeyRecord
from ledger.model import BudgetSpec, ScopeRef

KEY_PREFIX = "sk-"


def new_raw_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def shown(ident: str) -> str:
    """How a key a client named is echoed back: tokens as they are, raw keys masked."""
    return ident if HASH.fullmatch(ident) else mask(ident)


def _check_explicit(ctx: AdminContext, raw: str, provider: bool) -> None:
    master = ctx.runtime.config.general_settings.master_key
    if master is not None and secrets.compare_digest(raw.encode(), master.get_secret_value().encode()):
        raise ApiError(400, "key: the master key cannot be used as a virtual key", param="key")
    if raw != raw.strip() or any(c.isspace() for c in raw) or len(raw) < 8:
        raise ApiError(422, "key: must be at least 8 characters with no spaces", param="key")
    if not provider and not raw.startswith(KEY_PREFIX):
        raise ApiError(422, f"key: a virtual key must start with {KEY_PREFIX!r} "
                       "(to register a provider's own key, add \"provider_key\": true)", param="key")


@route("POST", "/key/generate", body=GenerateKeyRequest)
async def generate_key(ctx: AdminContext, body: GenerateKeyRequest) -> dict[str, Any]:
    """A new virtual key (returned raw, once), or a provider key registered by hash."""
    provider = body.provider_key
    if provider and not body.key:
        raise ApiError(422, "key: provider_key needs the provider's key in `key`", param="key")
    if body.key is not None:
        _check_explicit(ctx, body.key, provider)
    raw = body.key or new_raw_key()
    h = key_hash(raw)
    existing = await get(ctx, KeyRecord, h)
    if existing is not None and (existing.issued or not provider):
        if existing.issued:
            gone = " (deleted; a deleted key cannot come back)" if existing.deleted_at else ""
            raise ApiError(400, f"key {existing.key_masked} already exists{gone}", param="key")
        raise ApiError(400, f"key {existing.key_masked} is a provider key seen in traffic; it cannot become a "
                       "virtual key (set its budget with /key/update, or register it with \"provider_key\": true)",
                       param="key")
    if existing is None and not provider and await read(ctx, views.key_seen, h):
        raise ApiError(400, f"key {mask(raw)} has been used as a provider key through the proxy; "
                       "register it with \"provider_key\": true rather than as a virtual key", param="key")
    if body.team_id:
        await require_team(ctx, body.team_id)
    await alias_free(ctx, body.key_alias, h)
    saves: list = []
    rec = KeyRecord(
        hash=h,
        key_masked=mask(raw),
        key_alias=body.key_alias,
        user_id=body.user_id,
        team_id=body.team_id,
        models=list(body.models or []),
        metadata=dict(body.metadata or {}),
        issued=not provider,
        blocked=bool(body.blocked),
        expires_at=expires(ctx, body.duration),
        created_at=existing.created_at if existing else None,  # a provider key tracked since its first call
    )
    saves.append((rec, new_spec(body)))
    if body.user_id:
        user, created = await user_or_new(ctx, body.user_id)
        if created:
            saves.append((user, None))
    [state, *_] = await apply(ctx, saves=saves)
    out = key_view(views.KeyEntry(h, rec.key_masked, rec, state), views.current(state, ctx.now))
    out["key"] = rec.key_masked if provider else raw
    out["token_id"] = h
    out["duration"] = str(body.duration) if body.duration else None
    return out


@route("POST", "/key/update", body=UpdateKeyRequest)
async def update_key(ctx: AdminContext, body: UpdateKeyRequest) -> dict[str, Any]:
    """Change any generate field; `"spend": 0` resets the key's budget period by hand."""
    entry = await find_key(ctx, body.key)
    ref = ScopeRef("key", entry.hash)
    reset = wants_reset(body, "key")
    spec = merged_spec(body, views.current(entry.state, ctx.now))
    rec = entry.record or KeyRecord(hash=entry.hash, key_masked=entry.masked, issued=False)
    saves: list = []
    if body.given("key_alias"):
        await alias_free(ctx, body.key_alias, entry.hash)
        rec.key_alias = body.key_alias
    take_given(body, rec, "models", "metadata", "blocked")
    if body.given("duration"):
        rec.expires_at = expires(ctx, body.duration)
    if body.given("team_id"):
        if body.team_id:
            await require_team(ctx, body.team_id)
        rec.team_id = body.team_id
    if body.given("user_id"):
        if body.user_id:
            user, created = await user_or_new(ctx, body.user_id)
            if created:
                saves.append((user, None))
        rec.user_id = body.user_id
    # A spend reset alone does not register a provider key (which `unknown_keys: block`
    # would then let through); any other change does.
    if body.model_fields_set - {"key", "spend"}:
        saves.insert(0, (rec, spec))
    if saves or reset:
        await apply(ctx, saves=saves, resets=[ref] if reset else [])
    entry = await read(ctx, views.key_entry, entry.hash)
    return key_view(entry, await spend_of(ctx, "key", entry.hash))


@route("POST", "/key/delete", body=DeleteKeyRequest)
async def delete_key(ctx: AdminContext, body: DeleteKeyRequest) -> dict[str, Any]:
    """Delete keys by raw key, token or alias — all of them or none. A deleted virtual key
    is refused by the proxy from then on; a provider key is forgotten (budget removed)."""
    found: dict[str, views.KeyEntry] = {}
    shown_names, missing = [], []
    for ident in body.keys or []:
        try:
            entry = await find_key(ctx, ident)
        except ApiError:
            missing.append(shown(ident))
            continue
        found[entry.hash] = entry
        shown_names.append(shown(ident))
    for alias in body.key_aliases or []:
        live = [k for k in await find(ctx, KeyRecord, key_alias=alias) if k.deleted_at is None]
        if not live:
            missing.append(f"alias {alias!r}")
            continue
        for k in live:
            found[k.hash] = await read(ctx, views.key_entry, k.hash)
        shown_names.append(alias)
    if missing:
        raise ApiError(404, f"not found, nothing deleted: {', '.join(missing)}", "not_found_error", "keys")
    removes = [(KeyRecord, e.hash) for e in found.values() if e.record is not None]
    cleared = [(ScopeRef("key", e.hash), BudgetSpec()) for e in found.values()
               if e.record is None or not e.record.issued]
    await apply(ctx, removes=removes, budgets=cleared)
    return {"deleted_keys": shown_names, "tokens": list(found)}


@route("GET", "/key/info", access="master_or_own_key")
async def info_key(ctx: AdminContext) -> dict[str, Any]:
    """`?key=` (raw or token) for the master key; a key calling with its own bearer token
    gets its own info and nobody else's."""
    ident = ctx.query.get("key")
    if ctx.caller.is_master:
        if not ident:
            raise ApiError(400, "give the key to look up: /key/info?key=<key or token>", param="key")
        entry = await find_key(ctx, ident)
    else:
        own = ctx.caller.key_hash
        entry = await read(ctx, views.key_entry, own)
        rec = entry.record if entry else None
        if entry is None or (rec is not None and rec.deleted_at is not None):
            raise ApiError(401, "unknown or deleted key; use the master key or a live key", "authentication_error")
        if rec is not None and rec.expires_at is not None and rec.expires_at <= ctx.now:
            raise ApiError(401, f"key {rec.key_masked} expired", "authentication_error")
        if ident and own not in key_candidates(ident):
            raise ApiError(403, "a key may only read its own info (/key/info without ?key=); "
                           "other keys need the master key", "permission_error", "key")
    return key_info(entry, await spend_of(ctx, "key", entry.hash))


@route("GET", "/key/list")
async def list_keys(ctx: AdminContext) -> dict[str, Any]:
    """Keys by token (LiteLLM's shape), or whole key objects with `return_full_object=true`.
    Filters: user_id, team_id, key_alias, provider_key=true|false."""
    page = query_int(ctx, "page", 1, 1, 1_000_000)
    size = query_int(ctx, "size", 100, 1, 1000)
    full = query_bool(ctx, "return_full_object")
    entries = await key_entries(ctx)
    for name in ("user_id", "team_id", "key_alias"):
        if ctx.query.get(name):
            entries = [e for e in entries if e.record is not None and getattr(e.record, name) == ctx.query[name]]
    if ctx.query.get("provider_key"):
        want = query_bool(ctx, "provider_key")
        entries = [e for e in entries if (e.record is None or not e.record.issued) == want]
    total = len(entries)
    chunk = entries[(page - 1) * size: page * size]
    keys = [key_view(e, views.current(e.state, ctx.now)) if full else e.hash for e in chunk]
    return {"keys": keys, "total_count": total, "current_page": page, "total_pages": max(1, -(-total // size))}
