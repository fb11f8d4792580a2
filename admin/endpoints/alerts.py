"""Budget alerts: `GET /alerts` (recent alerts and how each channel's delivery went) and
`POST /alerts/test` (send a test alert through every configured channel now).

The seed's "Alerts Not Firing" checklist in two calls: is an alert in the outbox, did the
receiver take it (status, attempts, its last answer), and does the channel work at all.
Destinations are masked (`https://hooks.slack.com/…`): webhook URLs carry tokens.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from admin.api import AdminContext, ApiError, route
from admin.schemas import Ident
from alerts import channels, outbox, render
from alerts.addon import find
from alerts.subjects import Routes


class AlertTestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: Ident | None = None
    """Test only this team's `default_team_settings` channels (default: the global channels
    and every configured team's)."""


@route("GET", "/alerts")
async def list_alerts(ctx: AdminContext) -> dict:
    """Newest first. `?limit=` (default 50, at most 500), `?status=pending|sending|sent|failed|dropped`
    keeps alerts with a delivery in that state."""
    rt = ctx.runtime
    try:
        limit = min(max(int(ctx.query.get("limit", 50)), 1), 500)
    except ValueError:
        raise ApiError(400, "limit must be a whole number", param="limit") from None
    status = ctx.query.get("status")
    if status and status not in (outbox.PENDING, outbox.SENDING, outbox.SENT, outbox.FAILED, outbox.DROPPED):
        raise ApiError(400, "status must be one of pending, sending, sent, failed, dropped", param="status")
    rows = await rt.ledger.read(outbox.recent, limit, status)
    raiser = find(ctx.state)
    routes = raiser.delivery.routes if raiser else Routes()
    settings = rt.config.litellm_settings
    alerts = []
    for row in rows:
        a = row["alert"]
        routing = routes.routing(rt.config, row["route_team"])
        alerts.append({
            "id": row["id"],
            "alert_id": row["uid"],
            **render.webhook(a),
            "label": a.subject.label,
            "threshold": a.threshold,
            "period_start": a.period_start,
            "route_team": row["route_team"],
            "deliveries": [
                {**d, "destination": channels.destination(d["channel"], routing, settings)}
                for d in row["deliveries"]
            ],
        })
    body = {"alerts": alerts, "deliveries": await rt.ledger.read(outbox.counts)}
    if raiser is not None:
        body["this_process"] = {
            "alerts_raised_total": dict(raiser.alerts_raised_total),
            "deliveries_total": [{"channel": c, "outcome": o, "count": n}
                                 for (c, o), n in sorted(raiser.deliveries_total.items())],
        }
    return body


@route("POST", "/alerts/test", body=AlertTestRequest)
async def test_alert(ctx: AdminContext, body: AlertTestRequest) -> dict:
    """Send a test alert through every configured channel now (bypassing the outbox and
    its dedupe) and report each channel's result, with the receiver's answer on failure."""
    rt = ctx.runtime
    raiser = find(ctx.state)
    if raiser is None:
        raise ApiError(503, "the alert dispatcher is not running", "service_unavailable")
    results = await raiser.delivery.send_test(rt, body.team_id)
    reply: dict = {"ok": bool(results) and all(r["ok"] for r in results), "results": results}
    if not results:
        reply["message"] = (
            "no alert channel is configured: set litellm_settings.alerting (slack, webhook, email) with "
            "its destination, or alerting in default_team_settings")
    return reply
