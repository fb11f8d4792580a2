"""What the key, team, user and spend endpoints share: ledger access, id resolution,
budget merging and the JSON shapes of keys, teams and users.

Shapes follow LiteLLM: budget figures in USD (floats, null when unset), ids as strings,
timestamps as `...Z`. A key is only ever shown masked (`sk-12...abcd`) and by its
`token` (the SHA-256 hash LiteLLM also calls token); the raw key appears once, in the
answer to the request that created it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from metering.credentials import key_hash
from admin.api import AdminContext, ApiError
from admin.schemas import BudgetFields, soft_above_max
from ledger import Store, views
from ledger.directory import KeyRecord, TeamRecord, UserRecord, stamp
from ledger.model import BudgetSpec, ScopeRef, ScopeState, nanos_to_usd, usd_to_nanos

HASH = re.compile(r"[0-9a-f]{64}")


# -- ledger access ---------------------------------------------------------------------------


async def read(ctx: AdminContext, op, *args):
    return await ctx.runtime.ledger.read(op, *args)


async def key_entries(ctx: AdminContext) -> list[views.KeyEntry]:
    """Every key and its budget row, the records taken from this process's directory cache
    (views.key_entries reads them again only if another writer has changed them since)."""
    directory = ctx.runtime.directory
    return await read(ctx, views.key_entries, (directory.revision, list(directory.keys.values())))


async def write(ctx: AdminContext, op, *args):
    """A directory write, then this process's cache refreshed so the proxy sees it at once."""
    result = await ctx.runtime.ledger.write(op, *args)
    await ctx.runtime.directory.refresh(ctx.runtime.ledger)
    return result


async def apply(ctx: AdminContext, saves=(), removes=(), budgets=(), resets=()) -> list[ScopeState | None]:
    saves = list(saves)
    for rec, _ in saves:  # (here, not only in the writer: it may be another process's copy)
        stamp(rec, ctx.now)
    return await write(ctx, Store.apply, ctx.now, saves, list(removes), list(budgets), list(resets))


async def get(ctx: AdminContext, cls: type, id_: str):
    return await read(ctx, Store.get, cls, id_)


async def find(ctx: AdminContext, cls: type, **where):
    return await read(ctx, lambda store: store.find(cls, **where))


async def spend_of(ctx: AdminContext, kind: str, id_: str) -> views.Spend:
    return await read(ctx, views.scope_spend, ScopeRef(kind, id_), ctx.now)


# -- budgets ---------------------------------------------------------------------------------


def usd(nanos: int | None) -> float | None:
    return nanos_to_usd(nanos)


def budget_view(s: views.Spend) -> dict[str, Any]:
    return {
        "spend": usd(s.spend_nanos),
        "max_budget": usd(s.max_nanos),
        "soft_budget": usd(s.soft_nanos),
        "budget_duration": s.duration,
        "budget_reset_at": s.reset_at,
    }


def new_spec(body: BudgetFields) -> BudgetSpec:
    return BudgetSpec(
        max_nanos=usd_to_nanos(body.max_budget),
        soft_nanos=usd_to_nanos(body.soft_budget),
        duration=str(body.budget_duration) if body.budget_duration else None,
    )


def merged_spec(body: BudgetFields, old: views.Spend) -> BudgetSpec | None:
    """The budget after an update: the fields the body carries over the current ones.
    None when the body changes nothing about the budget."""
    if not body.budget_given():
        return None
    spec = BudgetSpec(
        max_nanos=usd_to_nanos(body.max_budget) if body.given("max_budget") else old.max_nanos,
        soft_nanos=usd_to_nanos(body.soft_budget) if body.given("soft_budget") else old.soft_nanos,
        duration=(str(body.budget_duration) if body.budget_duration else None)
        if body.given("budget_duration") else old.duration,
    )
    if spec.max_nanos is not None and spec.soft_nanos is not None and spec.soft_nanos > spec.max_nanos:
        e = soft_above_max(usd(spec.soft_nanos), usd(spec.max_nanos))
        raise ApiError(422, f"soft_budget: {e.message()}", param="soft_budget")
    return spec


def wants_reset(body, what: str) -> bool:
    """`"spend": 0` resets by hand. Any other figure is refused: spend is the sum of the
    ledger's rows for the current period, not a number to set."""
    if not body.given("spend"):
        return False
    if body.spend is None or body.spend == 0:
        return True
    raise ApiError(
        400,
        f"spend can only be reset to 0 (a manual reset that starts a new budget period for this {what}); "
        f"spendgate's spend is the sum of the ledger's calls, so it cannot be set to {body.spend:g}",
        param="spend",
    )


# -- ids -------------------------------------------------------------------------------------


def key_candidates(ident: str) -> list[str]:
    """A key is named by its raw value or by its token (the hash)."""
    return [ident, key_hash(ident)] if HASH.fullmatch(ident) else [key_hash(ident)]


async def find_key(ctx: AdminContext, ident: str, *, deleted_ok: bool = False) -> views.KeyEntry:
    """The key an identifier names (raw key or token), or a 404."""
    for h in key_candidates(ident):
        entry = await read(ctx, views.key_entry, h)
        if entry is None:
            continue
        if entry.record is not None and entry.record.deleted_at is not None and not deleted_ok:
            raise ApiError(404, f"key {entry.masked} was deleted", "not_found_error", "key")
        return entry
    raise ApiError(404, "key not found (give the raw key or its token)", "not_found_error", "key")


async def require_team(ctx: AdminContext, team_id: str, param: str = "team_id") -> TeamRecord:
    team = await get(ctx, TeamRecord, team_id)
    if team is None:
        raise ApiError(404, f"team {team_id!r} not found; create it with /team/new first", "not_found_error", param)
    return team


async def user_or_new(ctx: AdminContext, user_id: str) -> tuple[UserRecord, bool]:
    """A key's user, created (without a budget) when it does not exist yet, as LiteLLM does."""
    user = await get(ctx, UserRecord, user_id)
    if user is not None:
        return user, False
    return UserRecord(user_id=user_id), True


async def alias_free(ctx: AdminContext, alias: str | None, own_hash: str | None = None) -> None:
    if not alias:
        return
    for k in await find(ctx, KeyRecord, key_alias=alias):
        if k.deleted_at is None and k.hash != own_hash:
            raise ApiError(400, f"key_alias {alias!r} is already used by key {k.key_masked}; aliases are unique",
                           param="key_alias")


# -- query arguments -------------------------------------------------------------------------


def query_bool(ctx: AdminContext, name: str, default: bool = False) -> bool:
    value = ctx.query.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ApiError(400, f"{name}: {value!r} is not true or false", param=name)


def query_int(ctx: AdminContext, name: str, default: int, low: int, high: int) -> int:
    value = ctx.query.get(name)
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise ApiError(400, f"{name}: {value!r} is not a whole number", param=name) from None
    if not low <= n <= high:
        raise ApiError(400, f"{name}: must be between {low} and {high}", param=name)
    return n


# -- shapes ----------------------------------------------------------------------------------


def key_view(entry: views.KeyEntry, spend: views.Spend) -> dict[str, Any]:
    """A key as /key/info, /key/list and /spend/keys show it (never the raw key)."""
    r = entry.record
    return {
        "key": entry.masked,
        "key_name": entry.masked,
        "token": entry.hash,
        "key_alias": r.key_alias if r else None,
        **budget_view(spend),
        "models": list(r.models) if r else [],
        "team_id": r.team_id if r else None,
        "user_id": r.user_id if r else None,
        "metadata": dict(r.metadata) if r else {},
        "expires": r.expires_at if r else None,
        "blocked": r.blocked if r else False,
        "provider_key": not r.issued if r else True,
        "created_at": r.created_at if r else None,
        "updated_at": r.updated_at if r else None,
    }


def key_info(entry: views.KeyEntry, spend: views.Spend) -> dict[str, Any]:
    """Flat fields (as the seed shows) and LiteLLM's nested `info` with the same data."""
    view = key_view(entry, spend)
    return {**view, "info": dict(view)}


def team_view(team: TeamRecord, spend: views.Spend) -> dict[str, Any]:
    return {
        "team_id": team.team_id,
        "team_alias": team.team_alias,
        **budget_view(spend),
        "models": list(team.models),
        "members": list(team.members),
        "members_with_roles": [{"user_id": m} for m in team.members],  # roles are not stored
        "metadata": dict(team.metadata),
        "blocked": team.blocked,
        "created_at": team.created_at,
        "updated_at": team.updated_at,
    }


def user_view(user: UserRecord, spend: views.Spend, teams: list[str] | None = None) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "user_email": user.user_email,
        "team_id": user.team_id,
        "teams": teams if teams is not None else ([user.team_id] if user.team_id else []),
        **budget_view(spend),
        "metadata": dict(user.metadata),
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


_NORMALISE = {
    "models": lambda v: list(v or []),
    "metadata": lambda v: dict(v or {}),
    "blocked": bool,
}


def take_given(body, record, *names: str) -> None:
    """Copy onto `record` the fields the request body set (only those: an update changes
    what it names, and an explicit null clears)."""
    for name in names:
        if body.given(name):
            value = getattr(body, name)
            setattr(record, name, _NORMALISE.get(name, lambda v: v)(value))


def expires(ctx: AdminContext, duration) -> datetime | None:
    return duration.add_to(ctx.now) if duration else None
