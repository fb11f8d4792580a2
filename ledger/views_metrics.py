"""The ledger reads behind spendgate's Prometheus metrics.

Two shapes, both cheap at scrape time:

- `call_totals(store, after_id)`: the `calls` rows added since the last read, already
  aggregated by every label the call counters use. The metrics keep running totals in
  memory and fold each batch in, so a scrape reads only what is new (an index range on
  the primary key), and the totals always equal what the ledger holds — after a restart
  (the first read starts at id 0) and with other proxy processes writing the same file.
- `budget_snapshot(store)`: every key, team and user with its spend this period and its
  budget, in one pass over `budgets` joined to the directory.

Plain functions taking the store first, so they run on the ledger's reader thread:
`await ledger.read(call_totals, after_id)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .model import iso

if TYPE_CHECKING:
    from .store import Store

# One row per distinct label combination of the rows in the batch.
_CALL_TOTALS_SQL = """
SELECT provider, model, endpoint, status, error, team_id, user_id,
       COALESCE(key_alias, key_masked) AS key_label,
       COUNT(*) AS calls,
       COALESCE(SUM(cost_nanos), 0) AS cost_nanos,
       SUM(CASE WHEN cost_nanos IS NULL AND status != 'unmetered' THEN 1 ELSE 0 END) AS unpriced,
       SUM(CASE WHEN anomaly IS NOT NULL THEN 1 ELSE 0 END) AS anomalous,
       COALESCE(SUM(input_tokens), 0), COALESCE(SUM(cache_read_tokens), 0),
       COALESCE(SUM(cache_write_tokens), 0), COALESCE(SUM(output_tokens), 0),
       COALESCE(SUM(reasoning_tokens), 0)
FROM calls
WHERE id > ? AND id <= ?
GROUP BY provider, model, endpoint, status, error, team_id, user_id, key_label
"""

TOKEN_CLASSES = ("input", "cache_read", "cache_write", "output", "reasoning")


@dataclass(frozen=True, slots=True)
class CallGroup:
    provider: str
    model: str
    endpoint: str
    status: str
    error: str
    team: str
    user: str
    key: str
    calls: int
    cost_nanos: int
    unpriced: int  # cost unknown for want of a price (unmetered calls are not)
    anomalous: int  # reported more usage than possible (clamped; `calls.anomaly` has the raw figures)
    tokens: tuple[int, int, int, int, int]  # in TOKEN_CLASSES order


@dataclass(frozen=True, slots=True)
class CallBatch:
    last_id: int  # the highest call id included: pass it as `after_id` next time
    groups: list[CallGroup]


def call_totals(store: Store, after_id: int) -> CallBatch:
    """The calls after `after_id`, aggregated (one read transaction: a consistent cut)."""
    return store.read_transaction(lambda: _call_totals(store.conn, after_id))


def _call_totals(conn: Any, after_id: int) -> CallBatch:
    last_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM calls").fetchone()[0]
    if last_id <= after_id:
        return CallBatch(after_id, [])
    groups = [
        CallGroup(
            provider=r[0] or "", model=r[1] or "", endpoint=r[2] or "", status=r[3] or "",
            error=r[4] or "", team=r[5] or "", user=r[6] or "", key=r[7] or "",
            calls=r[8], cost_nanos=r[9], unpriced=r[10], anomalous=r[11], tokens=tuple(r[12:17]),
        )
        for r in conn.execute(_CALL_TOTALS_SQL, (after_id, last_id))
    ]
    return CallBatch(last_id, groups)


@dataclass(frozen=True, slots=True)
class ScopeBudget:
    kind: str  # global | team | user | key
    id: str  # the scope's id: "global", a team id, a user id, a key's SHA-256
    name: str  # how people know it: team alias, key alias or masked key, user id
    spend_nanos: int  # this period
    max_nanos: int | None  # None: no budget
    soft_nanos: int | None


@dataclass
class BudgetSnapshot:
    scopes: list[ScopeBudget] = field(default_factory=list)


# A period whose reset time passed but that the clock has not rolled over yet reads as 0.
_SPEND = "CASE WHEN b.reset_at IS NOT NULL AND b.duration IS NOT NULL AND b.reset_at <= :now THEN 0 ELSE b.spend_nanos END"

_BUDGETS_SQL = f"""
SELECT 'key', k.hash, COALESCE(k.key_alias, k.key_masked, ''),
       COALESCE({_SPEND}, 0), b.max_nanos, b.soft_nanos
FROM keys k LEFT JOIN budgets b ON b.kind = 'key' AND b.id = k.hash
WHERE k.deleted_at IS NULL
UNION ALL
SELECT 'team', t.team_id, COALESCE(t.team_alias, t.team_id),
       COALESCE({_SPEND}, 0), b.max_nanos, b.soft_nanos
FROM teams t LEFT JOIN budgets b ON b.kind = 'team' AND b.id = t.team_id
UNION ALL
SELECT 'team', b.id, b.id, {_SPEND}, b.max_nanos, b.soft_nanos
FROM budgets b WHERE b.kind = 'team' AND NOT EXISTS (SELECT 1 FROM teams t WHERE t.team_id = b.id)
UNION ALL
SELECT 'user', u.user_id, u.user_id, COALESCE({_SPEND}, 0), b.max_nanos, b.soft_nanos
FROM users u LEFT JOIN budgets b ON b.kind = 'user' AND b.id = u.user_id
UNION ALL
SELECT 'user', b.id, b.id, {_SPEND}, b.max_nanos, b.soft_nanos
FROM budgets b WHERE b.kind = 'user' AND NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = b.id)
UNION ALL
SELECT 'global', b.id, b.id, {_SPEND}, b.max_nanos, b.soft_nanos
FROM budgets b WHERE b.kind = 'global'
"""


def budget_snapshot(store: Store, now: datetime | None = None) -> BudgetSnapshot:
    """Every scope's spend this period and budget (one query, one read transaction)."""
    rows = store.conn.execute(_BUDGETS_SQL, {"now": iso(now or datetime.now(UTC))}).fetchall()
    return BudgetSnapshot([ScopeBudget(*r) for r in rows])
