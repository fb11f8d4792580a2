"""Teams: `/team/new`, `/team/update`, `/team/info`, `/team/member_add`, `/team/delete`.

A team has its own budget (kind "team"); every call made with a key whose `team_id` is
the team is charged to it. Team aliases are labels, not ids: like LiteLLM, two teams may
share one (the seed creates "engineering" twice).
"""

from __future__ import annotations

import uuid
from typing import Any

from admin.api import AdminContext, ApiError, route
from admin.endpoints.common import (
    apply,
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
from admin.schemas import DeleteTeamRequest, Member, NewTeamRequest, TeamMemberAddRequest, UpdateTeamRequest
from ledger import views
from ledger.directory import KeyRecord, TeamRecord, UserRecord
from ledger.model import ScopeRef


async def member_users(ctx: AdminContext, members: list[Member], team_id: str) -> list[UserRecord]:
    """The users behind member entries: found by id or email, created when new (as
    LiteLLM's member_add does), and given this team when they have none yet."""
    users: dict[str, UserRecord] = {}
    for m in members:
        user = None
        if m.user_id:
            user = await get(ctx, UserRecord, m.user_id) or UserRecord(user_id=m.user_id, user_email=m.user_email)
        else:
            same = await find(ctx, UserRecord, user_email=m.user_email)
            if len(same) > 1:
                raise ApiError(400, f"user_email {m.user_email!r} matches {len(same)} users; give user_id",
                               param="member")
            user = same[0] if same else UserRecord(user_id=str(uuid.uuid4()), user_email=m.user_email)
        if user.team_id is None:
            user.team_id = team_id
        users[user.user_id] = user
    return list(users.values())


@route("POST", "/team/new", body=NewTeamRequest)
async def new_team(ctx: AdminContext, body: NewTeamRequest) -> dict[str, Any]:
    team_id = body.team_id or str(uuid.uuid4())
    if await get(ctx, TeamRecord, team_id) is not None:
        raise ApiError(400, f"team_id {team_id!r} already exists; change it with /team/update", param="team_id")
    users = await member_users(ctx, [*body.members, *body.members_with_roles], team_id)
    team = TeamRecord(
        team_id=team_id,
        team_alias=body.team_alias,
        members=[u.user_id for u in users],
        models=list(body.models or []),
        metadata=dict(body.metadata or {}),
        blocked=bool(body.blocked),
    )
    [state, *_] = await apply(ctx, saves=[(team, new_spec(body)), *((u, None) for u in users)])
    return team_view(team, views.current(state, ctx.now))


@route("POST", "/team/update", body=UpdateTeamRequest)
async def update_team(ctx: AdminContext, body: UpdateTeamRequest) -> dict[str, Any]:
    """Change alias, budget, models, metadata or blocked; `"spend": 0` resets by hand."""
    team = await require_team(ctx, body.team_id)
    reset = wants_reset(body, "team")
    spec = merged_spec(body, await spend_of(ctx, "team", team.team_id))
    take_given(body, team, "team_alias", "models", "metadata", "blocked")
    ref = ScopeRef("team", team.team_id)
    changed = body.model_fields_set - {"team_id", "spend"}
    if changed or reset:
        await apply(ctx, saves=[(team, spec)] if changed else [], resets=[ref] if reset else [])
    return team_view(await get(ctx, TeamRecord, team.team_id), await spend_of(ctx, "team", team.team_id))


@route("GET", "/team/info")
async def team_info(ctx: AdminContext) -> dict[str, Any]:
    """`?team_id=`: the team (flat and as `team_info`), its keys and its members."""
    team_id = ctx.query.get("team_id")
    if not team_id:
        raise ApiError(400, "give the team: /team/info?team_id=<id>", param="team_id")
    team = await require_team(ctx, team_id)
    view = team_view(team, await spend_of(ctx, "team", team_id))
    keys = []
    for k in await find(ctx, KeyRecord, team_id=team_id):
        if k.deleted_at is None:
            entry = await read(ctx, views.key_entry, k.hash)
            keys.append(key_view(entry, views.current(entry.state, ctx.now)))
    members = []
    for user_id in team.members:
        user = await get(ctx, UserRecord, user_id)
        members.append({"user_id": user_id, "team_id": team_id, "user_email": user.user_email if user else None})
    return {**view, "team_info": dict(view), "keys": keys, "team_memberships": members}


@route("POST", "/team/member_add", body=TeamMemberAddRequest)
async def member_add(ctx: AdminContext, body: TeamMemberAddRequest) -> dict[str, Any]:
    """Add users (by user_id or user_email; new ones are created) to a team."""
    team = await require_team(ctx, body.team_id)
    users = await member_users(ctx, body.member_list(), team.team_id)
    for u in users:
        if u.user_id not in team.members:
            team.members.append(u.user_id)
    await apply(ctx, saves=[(team, None), *((u, None) for u in users)])
    view = team_view(team, await spend_of(ctx, "team", team.team_id))
    updated = [user_view(u, await spend_of(ctx, "user", u.user_id)) for u in users]
    return {**view, "updated_users": updated}


@route("POST", "/team/delete", body=DeleteTeamRequest)
async def delete_team(ctx: AdminContext, body: DeleteTeamRequest) -> dict[str, Any]:
    """Delete teams — all of them or none. As in LiteLLM the team's virtual keys are
    deleted with it; registered provider keys and users just lose the team."""
    missing = [t for t in body.team_ids if await get(ctx, TeamRecord, t) is None]
    if missing:
        raise ApiError(404, f"team not found, nothing deleted: {', '.join(missing)}", "not_found_error", "team_ids")
    saves, removes, deleted_keys = [], [], []
    for team_id in dict.fromkeys(body.team_ids):
        removes.append((TeamRecord, team_id))
        for k in await find(ctx, KeyRecord, team_id=team_id):
            if k.deleted_at is not None:
                continue
            if k.issued:
                removes.append((KeyRecord, k.hash))
                deleted_keys.append(k.key_masked)
            else:
                k.team_id = None
                saves.append((k, None))
        for u in await find(ctx, UserRecord, team_id=team_id):
            u.team_id = None
            saves.append((u, None))
    await apply(ctx, saves=saves, removes=removes)
    return {"deleted_teams": list(dict.fromkeys(body.team_ids)), "deleted_keys": deleted_keys}
