"""Read-only views for the admin API: spend per scope and spend reports.

Each function takes a `Store` first, so it runs on the ledger's reader thread:
`await ledger.read(views.key_entries)`. Money stays in integer nanos here; the admin API
turns it into USD at the edge.

A scope's spend is its `budgets` row's current-period spend, which settlement keeps equal
to the sum of its ledger rows since `period_start`. A period whose `reset_at` has passed
but that no call or clock tick has rolled over yet is reported as rolled over (spend 0,
the next reset time) without writing anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .directory import KeyRecord, TeamRecord, UserRecord
from .model import ScopeRef, ScopeState, iso
from .periods import period_containing

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True, slots=True)
class Spend:
    """A scope's budget and spend as of `now`."""

    spend_nanos: int
    reserved_nanos: int
    max_nanos: int | None
    soft_nanos: int | None
    duration: str | None
    period_start: datetime | None
    reset_at: datetime | None


NO_SPEND = Spend(0, 0, None, None, None, None, None)


def current(st: ScopeState | None, now: datetime) -> Spend:
    """The scope's figures in the period containing `now` (a due reset applied virtually)."""
    if st is None:
        return NO_SPEND
    spend, start, reset_at = st.spend_nanos, st.period_start, st.reset_at
    if reset_at is not None and st.duration and reset_at <= now:
        start, reset_at = period_containing(reset_at, st.duration, now)
        spend = 0
    return Spend(spend, st.reserved_nanos, st.max_nanos, st.soft_nanos, st.duration, start, reset_at)


def scope_spend(store: Store, ref: ScopeRef, now: datetime) -> Spend:
    return current(store.scope(ref), now)


def scope_map(store: Store, kind: str) -> dict[str, ScopeState]:
    return {st.id: st for st in store.scopes(kind)}


def masked_from_calls(store: Store, hashes: list[str]) -> dict[str, str]:
    """How each key hash looked in traffic (the masked form the addon recorded)."""
    found: dict[str, str] = {}
    for i in range(0, len(hashes), 500):
        chunk = hashes[i:i + 500]
        rows = store.conn.execute(
            f"SELECT key_hash, MAX(key_masked) FROM calls WHERE key_hash IN ({', '.join('?' for _ in chunk)})"
            " AND key_masked IS NOT NULL GROUP BY key_hash",
            chunk,
        )
        found.update({h: m for h, m in rows})
    return found


def key_seen(store: Store, hash_: str) -> bool:
    """Whether a key hash has any trace: a budget row or a ledger row."""
    if store.scope(ScopeRef("key", hash_)) is not None:
        return True
    return store.conn.execute("SELECT 1 FROM calls WHERE key_hash = ? LIMIT 1", (hash_,)).fetchone() is not None


@dataclass(frozen=True, slots=True)
class KeyEntry:
    hash: str
    masked: str
    record: KeyRecord | None  # None: a provider key only seen in traffic
    state: ScopeState | None


def key_entries(store: Store, held: tuple[int, list[KeyRecord]] | None = None) -> list[KeyEntry]:
    """Every key the ledger knows, deleted ones left out: records (issued and registered
    provider keys) and provider keys that only have a budget row from their traffic.

    `held`: a directory revision and every key record at it (tombstones too), when the
    caller holds them already — the admin API passes the proxy's directory cache, which a
    listing of 10,000 keys would otherwise read and parse again. They are used only if the
    directory is still at that revision in the snapshot the budgets are read from."""
    return store.read_transaction(lambda: _key_entries(store, held))


def _key_entries(store: Store, held: tuple[int, list[KeyRecord]] | None) -> list[KeyEntry]:
    records = held[1] if held is not None and store.revision() == held[0] else store.find(KeyRecord)
    live = {k.hash: k for k in records if k.deleted_at is None}
    tombstones = {k.hash for k in records if k.deleted_at is not None}
    states = scope_map(store, "key")
    bare = [h for h in states if h not in live and h not in tombstones]
    masked = masked_from_calls(store, bare)
    out = [KeyEntry(h, r.key_masked, r, states.get(h)) for h, r in live.items()]
    out += [KeyEntry(h, masked.get(h, "unknown"), None, states[h]) for h in bare]
    return out


def key_entry(store: Store, hash_: str) -> KeyEntry | None:
    rec = store.get(KeyRecord, hash_)
    st = store.scope(ScopeRef("key", hash_))
    if rec is None and st is None:
        if not key_seen(store, hash_):
            return None
    masked = rec.key_masked if rec else masked_from_calls(store, [hash_]).get(hash_, "unknown")
    return KeyEntry(hash_, masked, rec, st)


def team_entries(store: Store) -> list[tuple[TeamRecord, ScopeState | None]]:
    states = scope_map(store, "team")
    return [(t, states.get(t.team_id)) for t in store.find(TeamRecord)]


def user_entries(store: Store) -> list[tuple[UserRecord, ScopeState | None]]:
    states = scope_map(store, "user")
    return [(u, states.get(u.user_id)) for u in store.find(UserRecord)]


def sum_calls(store: Store, column: str, value: str, since: datetime) -> int:
    """The sum of a scope's ledger rows since `since` (what its spend must equal)."""
    if column not in ("key_hash", "user_id", "team_id"):
        raise ValueError(f"not a scope column: {column}")
    row = store.conn.execute(
        f"SELECT COALESCE(SUM(cost_nanos), 0) FROM calls WHERE {column} = ? AND ts >= ?", (value, iso(since))
    ).fetchone()
    return row[0]


# -- spend report -------------------------------------------------------------------------------

REPORT_COLUMNS = {
    "model": "model",
    "provider": "provider",
    "team": "team_id",
    "user": "user_id",
    "key": "key_hash",
    "client": "client",
}
METADATA_FIELD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")


def report_group_ok(group_by: str) -> bool:
    return group_by in REPORT_COLUMNS or METADATA_FIELD.fullmatch(group_by) is not None


def spend_report(store: Store, start: datetime, end: datetime, group_by: str) -> list[dict[str, Any]]:
    """Spend from the `calls` rows with start <= ts < end, grouped by a column or by a
    metadata field (`project`, `cost_center`, ...). Biggest spend first; refused calls
    count as `blocked_calls`, not `calls`; calls spendgate cannot meter are `calls` and
    `unmetered_calls` (their cost is unknown, and they are not `unpriced_calls`: no price
    is missing, there is nothing to price); `anomalous_calls` reported more usage than
    they could have used (clamped, the raw figures in the row's `anomaly`)."""
    if group_by in REPORT_COLUMNS:
        expr, params = REPORT_COLUMNS[group_by], []
    elif METADATA_FIELD.fullmatch(group_by):
        # The field name is a bound parameter: nothing from the client reaches the SQL text.
        expr, params = store.dialect.json_field("metadata", group_by)
    else:
        raise ValueError(f"cannot group by {group_by!r}")
    sql = f"""
        SELECT {expr} AS value,
               COALESCE(SUM(cost_nanos), 0) AS spend_nanos,
               SUM(CASE WHEN status != 'blocked' THEN 1 ELSE 0 END) AS calls,
               SUM(CASE WHEN status = 'blocked' THEN 1 ELSE 0 END) AS blocked_calls,
               COALESCE(SUM(CASE WHEN status != 'blocked' THEN input_tokens END), 0) AS input_tokens,
               COALESCE(SUM(CASE WHEN status != 'blocked' THEN output_tokens END), 0) AS output_tokens,
               SUM(CASE WHEN cost_nanos IS NULL AND status != 'unmetered' THEN 1 ELSE 0 END) AS unpriced_calls,
               SUM(CASE WHEN status = 'unmetered' THEN 1 ELSE 0 END) AS unmetered_calls,
               SUM(CASE WHEN anomaly IS NOT NULL THEN 1 ELSE 0 END) AS anomalous_calls,
               MAX(key_masked) AS key_masked,
               MAX(key_alias) AS key_alias
        FROM calls WHERE ts >= ? AND ts < ?
        GROUP BY value ORDER BY spend_nanos DESC, calls DESC, value
    """
    rows = store.conn.execute(sql, [*params, iso(start), iso(end)]).fetchall()
    out = []
    for value, spend, calls, blocked, inp, outp, unpriced, unmetered, anomalous, masked, alias in rows:
        item: dict[str, Any] = {
            "group_by": group_by,
            "group_by_value": _report_value(value),
            "spend_nanos": spend,
            "calls": calls or 0,
            "blocked_calls": blocked or 0,
            "input_tokens": inp,
            "output_tokens": outp,
            "unpriced_calls": unpriced or 0,
            "unmetered_calls": unmetered or 0,
            "anomalous_calls": anomalous or 0,
        }
        if group_by == "key":
            item["key_masked"], item["key_alias"] = masked, alias
        out.append(item)
    return out


def _report_value(value: Any) -> Any:
    """Group values as ids (strings); a metadata value that is an object or list stays JSON text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value) if not isinstance(value, (dict, list)) else json.dumps(value)
