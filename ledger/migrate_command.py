"""`spendgate migrate DATABASE_URL` (or `python -m ledger.migrate_command DATABASE_URL`): bring a
ledger's schema up to date now.

Proxies migrate at start-up with the same code (`Store.migrate`); running this first, ahead
of a rollout, only moves that moment to when the operator chooses and shows the version
(docs/deploy.md). The URL is a `general_settings.database_url`: a path, `sqlite:///PATH` or
`postgresql://...`.
"""

from __future__ import annotations

import sys

from config.schema import parse_database_url

from .migrations import MIGRATIONS, applied, current_version
from .store import Store

USAGE = "usage: python -m ledger.migrate_command DATABASE_URL   (sqlite:///path.db or postgresql://...)"


def open_store(engine: str, target: str) -> Store:
    """A store of its own on the ledger (closed by the caller)."""
    if engine == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore(target)
    from .postgres import PostgresStore  # psycopg is only needed for PostgreSQL

    return PostgresStore.open(target)


def main(argv: list[str] | None = None) -> int:
    """Migrate, print every recorded migration and the version; 2 on a usage error."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    engine, target = parse_database_url(args[0])
    store = open_store(engine, target)
    try:
        before = store.write_transaction(lambda: current_version(store.conn))
        version = store.migrate()
        rows = applied(store.conn)
    finally:
        store.close()
    names = {m.version: m.name for m in MIGRATIONS}
    for number, applied_at in rows:
        print(f"  v{number} {names.get(number, '(newer than this spendgate)')}: applied {applied_at}")
    print(f"{engine} ledger at schema version {version} (was {before})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
