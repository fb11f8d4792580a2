"""A ledger that looks lived in: keys, teams, users with budgets, and past call rows.

For the tests and benchmarks that ask whether spendgate stays flat with size
(tests/test_metrics_scale.py, `scripts/bench_calls.py --populated`). Written straight into
SQLite in one transaction: a million rows take seconds, not the hours the proxy would.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from ledger.model import iso
from ledger.sqlite import SQLiteStore

COST = 7_250_000  # nano-dollars per past call


def seed(path: str | Path, *, keys: int, teams: int, users: int, calls: int, batch: int = 50_000) -> None:
    """Migrate the SQLite ledger at `path` and fill it: key i belongs to user i % users and team
    i % teams, nine keys in ten have a $10 budget; `calls` rows at random keys, their spend in
    the keys' budgets."""
    rnd = random.Random(7)
    store = SQLiteStore(path)
    store.migrate()
    now = iso(datetime.now(UTC))
    c = store.conn
    c.execute("BEGIN")
    c.executemany("INSERT INTO teams (team_id, team_alias, blocked, created_at, updated_at) VALUES (?, ?, 0, ?, ?)",
                  [(f"team-{i}", f"team {i}", now, now) for i in range(teams)])
    c.executemany("INSERT INTO users (user_id, team_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
                  [(f"user{i}@example.com", f"team-{i % teams}", now, now) for i in range(users)])
    c.executemany(
        "INSERT INTO keys (hash, key_masked, key_alias, user_id, team_id, issued, blocked, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, 1, 0, ?, ?)",
        [(f"{i:064x}", f"sk-ab...{i:04d}", f"key-{i}", f"user{i % users}@example.com", f"team-{i % teams}", now, now)
         for i in range(keys)])
    spend = [0] * keys
    for start in range(0, calls, batch):
        rows = []
        for _ in range(min(batch, calls - start)):
            i = rnd.randrange(keys)
            spend[i] += COST
            rows.append((now, now, rnd.choice(("gpt-4o", "gpt-4o-mini")), COST, f"{i:064x}", f"sk-ab...{i:04d}",
                         f"key-{i}", f"user{i % users}@example.com", f"team-{i % teams}"))
        c.executemany(
            "INSERT INTO calls (ts, started_at, provider, endpoint, path, model, input_tokens, output_tokens,"
            " cost_nanos, priced, status, key_hash, key_masked, key_alias, user_id, team_id)"
            " VALUES (?, ?, 'openai', 'chat', '/v1/chat/completions', ?, 1000, 500, ?, 1, 'ok', ?, ?, ?, ?, ?)", rows)
    budgets = [("key", f"{i:064x}", None if i % 10 == 0 else 10_000_000_000, spend[i]) for i in range(keys)]
    budgets += [("team", f"team-{i}", 100_000_000_000, 0) for i in range(teams)]
    budgets += [("user", f"user{i}@example.com", 50_000_000_000 if i % 2 else None, 0) for i in range(users)]
    c.executemany("INSERT INTO budgets (kind, id, max_nanos, duration, spend_nanos, reserved_nanos, period_start,"
                  " updated_at) VALUES (?, ?, ?, '30d', ?, 0, ?, ?)", [r + (now, now) for r in budgets])
    c.execute("COMMIT")
    store.close()
