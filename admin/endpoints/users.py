"""Users: `/user/new`, `/user/update`, `/user/info`, `/user/delete`.

A user has its own budget (kind "user"); every call made with a key whose `user_id` is
the user is charged to it. `/user/new` also returns a new virtual key for the user, as
LiteLLM does (`"auto_create_key": false` to skip it).
"""

from __future__ import annotations

import uuid
from typing import Any

from metering.credentials import key_hash, mask
from admin.api import AdminContext, ApiError, route
from admin.endpoints.common import (
    apply,
    expires,
    find,
    get,
    key_view,
    merged_spec,
    new_spec,
    read,
    require_team,
    spend_of,
    take_given,
    team_view,
    user_view,
    wants_reset,
)
from admin.endpoints.keys import new_raw_key
from admin.schemas import DeleteUserRequest, NewUserRequest, UpdateUserRequest
from ledger import views
from ledger.directory import KeyRecord, TeamRecord, UserRecord
from ledger.model import ScopeRef


async def teams_of(ctx: AdminContext, user: UserRecord) -> list[TeamRecord]:
    return [t for t in await find(ctx, TeamRecord) if user.user_id in t.members or t.team_id == user.team_id]


@route("POST", "/user/new", body=NewUserRequest)
async def new_user(ctx: AdminContext, body: NewUserRequest) -> dict[str, Any]:
    user_id = body.user_id or str(uuid.uuid4())
    if await get(ctx, UserRecord, user_id) is not None:
        raise ApiError(400, f"user_id {user_id!r} already exists; change it with /user/update", param="user_id")
    teams = [await require_team(ctx, t, "team_id" if t == body.team_id else "teams") for t in body.team_ids()]
    user = UserRecord(
        user_id=user_id,
        user_email=body.user_email,
        team_id=teams[0].team_id if teams else None,
        metadata=dict(body.metadata or {}),
    )
    saves: list = [(user, new_spec(body))]
    for team in teams:
        if user_id not in team.members:
            team.members.append(user_id)
            saves.append((team, None))
    raw = key = None
    if body.auto_create_key:
        raw = new_raw_key()
        key = KeyRecord(
            hash=key_hash(raw), key_masked=mask(raw), key_alias=body.key_alias, user_id=user_id,
            team_id=user.team_id, models=list(body.models or []), issued=True,
            expires_at=expires(ctx, body.duration),
        )
        saves.append((key, None))
    [state, *_] = await apply(ctx, saves=saves)
    out = user_view(user, views.current(state, ctx.now), [t.team_id for t in teams])
    out.update({
        "key": raw,
        "token": key.hash if key else None,
        "key_name": key.key_masked if key else None,
        "key_alias": key.key_alias if key else None,
        "expires": key.expires_at if key else None,
        "models": list(body.models or []),
    })
    return out


async def find_user(ctx: AdminContext, body: UpdateUserRequest) -> UserRecord:
    if body.user_id:
        user = await get(ctx, UserRecord, body.user_id)
        if user is None:
            raise ApiError(404, f"user {body.user_id!r} not found", "not_found_error", "user_id")
        return user
    same = await find(ctx, UserRecord, user_email=body.user_email)
    if not same:
        raise ApiError(404, f"no user with user_email {body.user_email!r}", "not_found_error", "user_email")
    if len(same) > 1:
        raise ApiError(400, f"user_email {body.user_email!r} matches {len(same)} users; give user_id",
                       param="user_email")
    return same[0]


@route("POST", "/user/update", body=UpdateUserRequest)
async def update_user(ctx: AdminContext, body: UpdateUserRequest) -> dict[str, Any]:
    """Change email, team, metadata or budget; `"spend": 0` resets by hand."""
    user = await find_user(ctx, body)
    reset = wants_reset(body, "user")
    spec = merged_spec(body, await spend_of(ctx, "user", user.user_id))
    saves: list = []
    if body.user_id and body.given("user_email"):
        user.user_email = body.user_email
    take_given(body, user, "metadata")
    if body.given("team_id"):
        if body.team_id:
            team = await require_team(ctx, body.team_id)
            if user.user_id not in team.members:
                team.members.append(user.user_id)
                saves.append((team, None))
        user.team_id = body.team_id
    changed = body.model_fields_set - {"user_id", "spend"}
    if changed:
        saves.insert(0, (user, spec))
    if saves or reset:
        await apply(ctx, saves=saves, resets=[ScopeRef("user", user.user_id)] if reset else [])
    user = await get(ctx, UserRecord, user.user_id)
    return user_view(user, await spend_of(ctx, "user", user.user_id),
                     [t.team_id for t in await teams_of(ctx, user)])


@route("GET", "/user/info")
async def user_info(ctx: AdminContext) -> dict[str, Any]:
    """`?user_id=`: the user (flat and as `user_info`), its keys and its teams."""
    user_id = ctx.query.get("user_id")
    if not user_id:
        raise ApiError(400, "give the user: /user/info?user_id=<id>", param="user_id")
    user = await get(ctx, UserRecord, user_id)
    if user is None:
        raise ApiError(404, f"user {user_id!r} not found", "not_found_error", "user_id")
    teams = await teams_of(ctx, user)
    view = user_view(user, await spend_of(ctx, "user", user_id), [t.team_id for t in teams])
    keys = []
    for k in await find(ctx, KeyRecord, user_id=user_id):
        if k.deleted_at is None:
            entry = await read(ctx, views.key_entry, k.hash)
            keys.append(key_view(entry, views.current(entry.state, ctx.now)))
    team_views = [team_view(t, await spend_of(ctx, "team", t.team_id)) for t in teams]
    return {**view, "user_info": dict(view), "keys": keys, "teams": team_views}


@route("POST", "/user/delete", body=DeleteUserRequest)
async def delete_user(ctx: AdminContext, body: DeleteUserRequest) -> dict[str, Any]:
    """Delete users — all of them or none. As in LiteLLM their virtual keys are deleted
    too; registered provider keys just lose the user; teams lose the member."""
    ids = list(dict.fromkeys(body.user_ids))
    missing = [u for u in ids if await get(ctx, UserRecord, u) is None]
    if missing:
        raise ApiError(404, f"user not found, nothing deleted: {', '.join(missing)}", "not_found_error", "user_ids")
    saves, removes, deleted_keys = [], [], []
    for user_id in ids:
        removes.append((UserRecord, user_id))
        for k in await find(ctx, KeyRecord, user_id=user_id):
            if k.deleted_at is not None:
                continue
            if k.issued:
                removes.append((KeyRecord, k.hash))
                deleted_keys.append(k.key_masked)
            else:
                k.user_id = None
                saves.append((k, None))
    for team in await find(ctx, TeamRecord):
        kept = [m for m in team.members if m not in ids]
        if kept != team.members:
            team.members = kept
            saves.append((team, None))
    await apply(ctx, saves=saves, removes=removes)
    return {"deleted_users": ids, "deleted_keys": deleted_keys}
