"""Small read endpoints for the admin UI (master key or a UI session), beside LiteLLM's:

    GET /ui/api/overview                 this period's and today's spend, calls, blocked,
                                         unpriced, unmetered and anomalous calls; the global
                                         budget; directory counts
    GET /ui/api/daily?by=model&days=30   spend per UTC day, stacked by model, team, provider,
                                         user, key or client (the biggest few; the rest as
                                         "other"); narrowed by ?key=TOKEN, ?team=ID, ?user=ID
                                         or ?model=
    GET /ui/api/top?by=key&days=30       the biggest spenders of the window (narrowed alike)
    GET /ui/api/calls?key=TOKEN&limit=50 recent calls (of one key, team, user or model)

Lists of keys, teams and users, and every change, use LiteLLM's endpoints (`/spend/keys`,
`/key/generate`, `/key/update`, ...). Money is USD; days are UTC.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from admin.api import AdminContext, ApiError, route
from admin.endpoints.common import budget_view, query_int, read, spend_of
from admin.metrics import enabled as metrics_enabled
from ledger import views_ui
from ledger.model import nanos_to_usd

MAX_SERIES = 6  # stacked groups drawn by name; the rest are summed as "other"


def _label(ctx: AdminContext, group_by: str, value: str) -> str:
    """How a person knows a group: team alias, key alias or masked key, else the value."""
    if group_by in ("team", "key"):
        return ctx.runtime.directory.label(group_by, value)
    return value


def _where(ctx: AdminContext) -> tuple[str, str] | None:
    given = [(name, ctx.query[name]) for name in views_ui.FILTERS if ctx.query.get(name)]
    if len(given) > 1:
        raise ApiError(400, "give at most one of key, team, user, model", param=given[1][0])
    return given[0] if given else None


def _group(ctx: AdminContext, default: str) -> str:
    by = ctx.query.get("by") or default
    if by not in views_ui.GROUPS:
        raise ApiError(400, f"by: use one of {', '.join(views_ui.GROUPS)}", param="by")
    return by


def _window(w: views_ui.Window) -> dict[str, Any]:
    return {"spend": nanos_to_usd(w.spend_nanos), "calls": w.calls, "blocked": w.blocked, "unpriced": w.unpriced,
            "unmetered": w.unmetered, "anomalous": w.anomalous}


@route("GET", "/ui/api/overview")
async def overview(ctx: AdminContext) -> dict[str, Any]:
    glob = await spend_of(ctx, "global", "global")
    since = glob.period_start if glob.duration else None  # no period: all time
    today = views_ui.day_start(ctx.now)
    return {
        "now": ctx.now,
        "global": budget_view(glob) | {"period_start": since},
        "period": _window(await read(ctx, views_ui.window, since)) | {"since": since},
        "today": _window(await read(ctx, views_ui.window, today)) | {"since": today},
        "counts": await read(ctx, views_ui.counts),
        "metrics_enabled": metrics_enabled(ctx.runtime),
    }


@route("GET", "/ui/api/daily")
async def daily(ctx: AdminContext) -> dict[str, Any]:
    days = query_int(ctx, "days", 30, 1, 366)
    by = _group(ctx, "model")
    since = views_ui.days_back(ctx.now, days)
    rows = await read(ctx, views_ui.daily_spend, since, by, _where(ctx))
    labels = [(since + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]
    index = {d: i for i, d in enumerate(labels)}
    totals: dict[str, int] = {}
    for _, group, nanos in rows:
        totals[group] = totals.get(group, 0) + nanos
    spenders = [g for g, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])) if n > 0]
    # The biggest few by name, the rest as "other" (unless that would be a single group).
    named = spenders if len(spenders) <= MAX_SERIES + 1 else spenders[:MAX_SERIES]
    values: dict[str, list[int]] = {g: [0] * days for g in named}
    other = [0] * days
    for day, group, nanos in rows:
        if day in index:
            (values[group] if group in values else other)[index[day]] += nanos
    series = [{"id": g, "name": _label(ctx, by, g), "values": [nanos_to_usd(v) for v in values[g]]} for g in named]
    if any(other):
        series.append({"id": None, "name": "other", "values": [nanos_to_usd(v) for v in other]})
    return {"by": by, "days": labels, "series": series,
            "total": nanos_to_usd(sum(totals.values()))}


@route("GET", "/ui/api/top")
async def top(ctx: AdminContext) -> dict[str, Any]:
    days = query_int(ctx, "days", 30, 1, 366)
    limit = query_int(ctx, "limit", 10, 1, 100)
    by = _group(ctx, "key")
    rows = await read(ctx, views_ui.top_spenders, views_ui.days_back(ctx.now, days), by, limit, _where(ctx))
    return {"by": by, "days": days, "items": [
        {"id": g, "name": _label(ctx, by, g), "spend": nanos_to_usd(n), "calls": calls} for g, n, calls in rows]}


@route("GET", "/ui/api/calls")
async def calls(ctx: AdminContext) -> dict[str, Any]:
    limit = query_int(ctx, "limit", 50, 1, 500)
    rows = await read(ctx, views_ui.recent_calls, _where(ctx), limit)
    for row in rows:
        row["cost"] = nanos_to_usd(row.pop("cost_nanos"))
        row["key"] = row["key_alias"] or row["key_masked"]
        row["team_alias"] = _label(ctx, "team", row["team_id"]) if row["team_id"] else None
    return {"calls": rows}
