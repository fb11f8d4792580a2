"""Read-only views behind the admin UI: overview figures, spend per day, top spenders (by
key, team, user, model, provider or client application) and recent calls of one key, team,
user or model.

Plain functions taking the store first (they run on the ledger's reader thread). Money
stays in integer nano-dollars; the endpoints turn it into USD. Days are UTC days, taken
from the calls' settlement time `ts` (ISO text, so its first ten characters are the day).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .model import iso

if TYPE_CHECKING:
    from .store import Store

# What a chart can be stacked or ranked by: the column, and how an empty value reads.
GROUPS = {
    "model": "COALESCE(model, '(unknown)')",
    "provider": "provider",
    "team": "COALESCE(team_id, '(no team)')",
    "user": "COALESCE(user_id, '(no user)')",
    "key": "COALESCE(key_hash, '(no key)')",
    "client": "COALESCE(client, '(unknown)')",
}
# Which calls a detail page lists, by the query argument naming them.
FILTERS = {"key": "key_hash", "team": "team_id", "user": "user_id", "model": "model"}


@dataclass(frozen=True, slots=True)
class Window:
    """Figures for calls settled at or after `since`."""

    spend_nanos: int
    calls: int
    blocked: int
    unpriced: int  # cost unknown for want of a price
    unmetered: int = 0  # to a provider's endpoint spendgate cannot meter (cost unknown)
    anomalous: int = 0  # reported more usage than possible: clamped, the raw figures kept


def window(store: Store, since: datetime | None) -> Window:
    row = store.conn.execute(
        "SELECT COALESCE(SUM(cost_nanos), 0), SUM(CASE WHEN status != 'blocked' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN status = 'blocked' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN cost_nanos IS NULL AND status != 'unmetered' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN status = 'unmetered' THEN 1 ELSE 0 END), SUM(CASE WHEN anomaly IS NOT NULL THEN 1 ELSE 0 END)"
        " FROM calls WHERE ts >= ?",
        (iso(since) if since else "",),
    ).fetchone()
    return Window(*(value or 0 for value in row))


def counts(store: Store) -> dict[str, int]:
    """How many keys (live), teams and users the directory holds."""
    q = store.conn.execute
    return {
        "keys": q("SELECT COUNT(*) FROM keys WHERE deleted_at IS NULL").fetchone()[0],
        "teams": q("SELECT COUNT(*) FROM teams").fetchone()[0],
        "users": q("SELECT COUNT(*) FROM users").fetchone()[0],
    }


def daily_spend(
    store: Store, since: datetime, group_by: str, where: tuple[str, str] | None = None
) -> list[tuple[str, str, int]]:
    """(day, group value, spend nanos) for every day and group with calls since `since`.
    `where` = (filter name from FILTERS, value) narrows it to one key, team, user or model."""
    column = GROUPS[group_by]
    sql = f"SELECT substr(ts, 1, 10) AS day, {column} AS grp, SUM(COALESCE(cost_nanos, 0)) FROM calls WHERE ts >= ?"
    params: list[Any] = [iso(since)]
    if where is not None:
        sql += f" AND {FILTERS[where[0]]} = ?"
        params.append(where[1])
    sql += " AND status != 'blocked' GROUP BY day, grp ORDER BY day"
    return [(r[0], r[1], r[2]) for r in store.conn.execute(sql, params)]


def top_spenders(store: Store, since: datetime, group_by: str, limit: int,
                 where: tuple[str, str] | None = None) -> list[tuple[str, int, int]]:
    """(group value, spend nanos, calls) of the biggest spenders since `since`; `where` as
    for `daily_spend` (a key's clients, a user's models...)."""
    column = GROUPS[group_by]
    sql = f"SELECT {column} AS grp, SUM(COALESCE(cost_nanos, 0)) AS spend, COUNT(*) FROM calls WHERE ts >= ?"
    params: list[Any] = [iso(since)]
    if where is not None:
        sql += f" AND {FILTERS[where[0]]} = ?"
        params.append(where[1])
    sql += (" AND status != 'blocked' GROUP BY grp HAVING SUM(COALESCE(cost_nanos, 0)) > 0"
            " ORDER BY spend DESC, grp LIMIT ?")
    params.append(limit)
    return [(r[0], r[1], r[2]) for r in store.conn.execute(sql, params)]


CALL_COLUMNS = (
    "id, ts, provider, endpoint, model, streamed, input_tokens, cache_read_tokens, cache_write_tokens,"
    " output_tokens, reasoning_tokens, cost_nanos, status, http_status, latency_ms, key_hash, key_masked,"
    " key_alias, user_id, team_id, metadata, error, client, anomaly"
)


def recent_calls(store: Store, where: tuple[str, str] | None, limit: int) -> list[dict[str, Any]]:
    """The newest calls (of one key, team, user or model), newest first."""
    sql = f"SELECT {CALL_COLUMNS} FROM calls"
    params: list[Any] = []
    if where is not None:
        sql += f" WHERE {FILTERS[where[0]]} = ?"
        params.append(where[1])
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    cur = store.conn.execute(sql, params)
    names = [c[0] for c in cur.description]
    out = []
    for row in cur.fetchall():
        item = dict(zip(names, row))
        item["metadata"] = json.loads(item["metadata"]) if item["metadata"] else {}
        item["anomaly"] = json.loads(item["anomaly"]) if item["anomaly"] else None
        out.append(item)
    return out


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def days_back(now: datetime, days: int) -> datetime:
    """Midnight UTC `days - 1` days before today: a window of `days` whole days."""
    return day_start(now) - timedelta(days=days - 1)
