"""Liveness and configuration: `GET /health`, `GET /config` (secrets redacted)."""

from __future__ import annotations

from admin.api import AdminContext, route


@route("GET", "/health", access="public")
async def health(ctx: AdminContext) -> dict:
    rt = ctx.state.runtime
    return {
        "status": "healthy" if rt is not None else "starting",
        "ledger": rt.ledger.engine if rt else None,
    }


@route("GET", "/config")
async def config(ctx: AdminContext) -> dict:
    """The effective config, as the seed's `jq '.litellm_settings.alerting'` expects."""
    return ctx.runtime.config.redacted()
