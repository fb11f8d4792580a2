"""Spend views: `/spend/keys`, `/spend/teams`, `/spend/users` and `/spend/report`.

The three lists are JSON arrays of budgeted scopes, each item with numeric `spend` and
`max_budget`, so the seed's daily check works as written:

    curl .../spend/keys -H 'Authorization: Bearer sk-1234' | jq '.[] | select(.spend > .max_budget * 0.8)'

jq cannot multiply null, so a scope without a `max_budget` would stop that pipeline with
an error; such scopes (a provider key seen in traffic, a user without a budget) are listed
with `?include_unbudgeted=true`, where their `max_budget` is null. `spend` is the
current-period spend: the sum of the scope's ledger rows since its period started.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from admin.api import AdminContext, ApiError, route
from admin.endpoints.common import find, key_entries, key_view, query_bool, read, team_view, usd, user_view
from ledger import views
from ledger.directory import TeamRecord

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
REPORT_DAYS_DEFAULT = 30


def _listing(ctx: AdminContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not query_bool(ctx, "include_unbudgeted"):
        items = [i for i in items if i["max_budget"] is not None]
    return sorted(items, key=lambda i: -i["spend"])


@route("GET", "/spend/keys")
async def spend_keys(ctx: AdminContext) -> list[dict[str, Any]]:
    entries = await key_entries(ctx)
    return _listing(ctx, [key_view(e, views.current(e.state, ctx.now)) for e in entries])


@route("GET", "/spend/teams")
async def spend_teams(ctx: AdminContext) -> list[dict[str, Any]]:
    entries = await read(ctx, views.team_entries)
    return _listing(ctx, [team_view(t, views.current(st, ctx.now)) for t, st in entries])


@route("GET", "/spend/users")
async def spend_users(ctx: AdminContext) -> list[dict[str, Any]]:
    entries = await read(ctx, views.user_entries)
    return _listing(ctx, [user_view(u, views.current(st, ctx.now)) for u, st in entries])


def _date(ctx: AdminContext, name: str, default: date) -> date:
    value = ctx.query.get(name)
    if not value:
        return default
    try:
        if not DATE.fullmatch(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{name}: {value!r} is not a date (YYYY-MM-DD)", param=name) from None


def _days_after(day: date, days: int) -> date:
    """`day` moved by `days`, held at the calendar's ends (0001-01-01, 9999-12-31)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.min if days < 0 else date.max


@route("GET", "/spend/report")
async def spend_report(ctx: AdminContext) -> list[dict[str, Any]]:
    """Spend from the ledger's calls between start_date and end_date (UTC days, both
    inclusive; default the last 30 days), grouped by model, provider, team, user, key,
    client (the application that made the call) or a metadata field."""
    group_by = ctx.query.get("group_by") or "team"
    if not views.report_group_ok(group_by):
        raise ApiError(400, f"group_by: cannot group by {group_by!r}; use model, provider, team, user, key, "
                       "client or a metadata field name such as project or cost_center", param="group_by")
    today = ctx.now.astimezone(UTC).date()
    end = _date(ctx, "end_date", today)
    start = _date(ctx, "start_date", _days_after(end, -(REPORT_DAYS_DEFAULT - 1)))
    if start > end:
        raise ApiError(400, f"start_date {start} is after end_date {end}", param="start_date")
    since = datetime.combine(start, time(), UTC)
    until = datetime.combine(_days_after(end, 1), time(), UTC) if end < date.max else datetime.max.replace(tzinfo=UTC)
    rows = await read(ctx, views.spend_report, since, until, group_by)
    aliases = {t.team_id: t.team_alias for t in await find(ctx, TeamRecord)} if group_by == "team" else {}
    out = []
    for row in rows:
        item = {k: v for k, v in row.items() if k != "spend_nanos"}
        item["spend"] = usd(row["spend_nanos"])
        if group_by == "team":
            item["team_alias"] = aliases.get(row["group_by_value"])
        item["start_date"], item["end_date"] = start.isoformat(), end.isoformat()
        out.append(item)
    return out
