"""Who spends: virtual keys, teams and users, stored beside their budgets.

A key, team or user row says who it is; its budget is a `budgets` row of the same id
(kind key/team/user), changed in the same transaction. Every change bumps
`directory_revision`, which each proxy process polls to refresh its in-memory copy.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from .model import BudgetSpec, ScopeRef, ScopeState, iso, parse_iso


def _json(value: Any) -> str | None:
    return None if value in (None, [], {}) else json.dumps(value, sort_keys=True)


def _unjson(text: str | None, empty: Any) -> Any:
    return json.loads(text) if text else empty


@dataclass
class KeyRecord:
    hash: str
    key_masked: str
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    models: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    issued: bool = False
    blocked: bool = False
    expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


@dataclass
class TeamRecord:
    team_id: str
    team_alias: str | None = None
    members: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    blocked: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class UserRecord:
    user_id: str
    user_email: str | None = None
    team_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


_JSON_FIELDS = {"models": list, "metadata": dict, "members": list}
_TIME_FIELDS = {"expires_at", "created_at", "updated_at", "deleted_at"}
_BOOL_FIELDS = {"issued", "blocked"}
_TABLES = {KeyRecord: ("keys", "hash"), TeamRecord: ("teams", "team_id"), UserRecord: ("users", "user_id")}
_KINDS = {KeyRecord: "key", TeamRecord: "team", UserRecord: "user"}


def _to_row(rec: Any) -> dict[str, Any]:
    row = {}
    for f in fields(rec):
        value = getattr(rec, f.name)
        if f.name in _JSON_FIELDS:
            value = _json(value)
        elif f.name in _TIME_FIELDS:
            value = iso(value)
        elif f.name in _BOOL_FIELDS:
            value = int(value)
        row[f.name] = value
    return row


@functools.cache
def _readers(cls: type) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    """Each field of `cls` with how its column is read back (None: as stored), worked out once
    per record class: listing 10,000 keys read `fields()` 10,000 times."""
    readers: list[tuple[str, Callable[[Any], Any] | None]] = []
    for f in fields(cls):
        if f.name in _JSON_FIELDS:
            empty = _JSON_FIELDS[f.name]
            readers.append((f.name, lambda value, empty=empty: _unjson(value, empty())))
        elif f.name in _TIME_FIELDS:
            readers.append((f.name, parse_iso))
        elif f.name in _BOOL_FIELDS:
            readers.append((f.name, bool))
        else:
            readers.append((f.name, None))
    return tuple(readers)


@functools.cache
def _row_reader(cls: type, columns: tuple[str, ...]) -> Callable[[Sequence[Any]], Any]:
    """A record from one row of `SELECT *` with these columns (a column the table lacks
    reads as None), planned once per table shape: the directory's reload reads every key."""
    where = {name: i for i, name in enumerate(columns)}
    plan = tuple((name, where.get(name), read) for name, read in _readers(cls))

    def from_row(row: Sequence[Any]) -> Any:
        values = {}
        for name, i, read in plan:
            value = None if i is None else row[i]
            values[name] = value if read is None else read(value)
        return cls(**values)

    return from_row


def _reader_of(cls: type, cur: Any) -> Callable[[Sequence[Any]], Any]:
    return _row_reader(cls, tuple(c[0] for c in cur.description))


def stamp(rec: KeyRecord | TeamRecord | UserRecord, now: datetime) -> None:
    """A record's times as saving it sets them: created once, updated at every save. The
    admin API stamps its records before the write too: with the writer in a process of its
    own (`ledger_writer: process`) the save stamps a copy, and the answer shows the record."""
    if rec.created_at is None:
        rec.created_at = now
    rec.updated_at = now


class DirectoryOps:
    """Directory operations for the ledger's Store (which provides conn, write_transaction,
    read_transaction and _configure)."""

    conn: Any

    def _bump(self) -> None:
        self.conn.execute("UPDATE directory_revision SET revision = revision + 1 WHERE id = 1")

    def revision(self) -> int:
        return self.conn.execute("SELECT revision FROM directory_revision WHERE id = 1").fetchone()[0]

    def save(self, rec: KeyRecord | TeamRecord | UserRecord, budget: BudgetSpec | None, now: datetime):
        """Insert or replace a key/team/user and, when given, its budget — atomically."""

        def work() -> ScopeState | None:
            state = self._save(rec, budget, now)
            self._bump()
            return state

        return self.write_transaction(work)

    def _save(self, rec: KeyRecord | TeamRecord | UserRecord, budget: BudgetSpec | None, now: datetime):
        """`save` inside a transaction the caller holds (no revision bump)."""
        table, pk = _TABLES[type(rec)]
        stamp(rec, now)
        row = _to_row(rec)
        # Replace the whole record (every column is written), portable upsert form.
        updates = ", ".join(f"{name} = excluded.{name}" for name in row if name != pk)
        self.conn.execute(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})"
            f" ON CONFLICT ({pk}) DO UPDATE SET {updates}",
            tuple(row.values()),
        )
        if budget is None:
            return None
        return self._configure(ScopeRef(_KINDS[type(rec)], row[pk]), budget, now)

    def apply(
        self,
        now: datetime,
        saves: list[tuple[Any, BudgetSpec | None]] = (),
        removes: list[tuple[type, str]] = (),
        budgets: list[tuple[ScopeRef, BudgetSpec]] = (),
        resets: list[ScopeRef] = (),
    ) -> list[ScopeState | None]:
        """Several directory changes as one transaction and one revision bump (an admin
        request touching a key, its new user and a team's member list). Order: saves,
        removes, bare budget changes, then manual resets (spend to 0, new period from now).
        Returns the budget state of each save (None where no budget was given)."""

        def work() -> list[ScopeState | None]:
            states = [self._save(rec, budget, now) for rec, budget in saves]
            for cls, id_ in removes:
                self._remove(cls, id_, now)
            for ref, spec in budgets:
                self._configure(ref, spec, now)
            for ref in resets:
                self._set_spend(ref, now)
            self._bump()
            return states

        return self.write_transaction(work)

    def get(self, cls: type, id_: str) -> Any:
        table, pk = _TABLES[cls]
        cur = self.conn.execute(f"SELECT * FROM {table} WHERE {pk} = ?", (id_,))
        row = cur.fetchone()
        if row is None:
            return None
        return _reader_of(cls, cur)(row)

    def find(self, cls: type, **where: Any) -> list[Any]:
        table, pk = _TABLES[cls]
        clauses = [f"{name} = ?" for name, value in where.items() if value is not None]
        sql = f"SELECT * FROM {table}" + (" WHERE " + " AND ".join(clauses) if clauses else "")
        cur = self.conn.execute(sql + f" ORDER BY created_at, {pk}", [v for v in where.values() if v is not None])
        from_row = _reader_of(cls, cur)
        return [from_row(row) for row in cur.fetchall()]

    def remove(self, cls: type, id_: str, now: datetime) -> bool:
        """Issued keys become tombstones (so a deleted virtual key is refused, not passed
        upstream); a registered provider key's record, teams and users are deleted.
        Budget rows stay for history."""

        def work() -> bool:
            n = self._remove(cls, id_, now)
            self._bump()
            return n

        return self.write_transaction(work)

    def _remove(self, cls: type, id_: str, now: datetime) -> bool:
        table, pk = _TABLES[cls]
        if cls is KeyRecord:
            n = self.conn.execute(
                "UPDATE keys SET deleted_at = ?, updated_at = ? WHERE hash = ? AND deleted_at IS NULL AND issued = 1",
                (iso(now), iso(now), id_),
            ).rowcount
            n += self.conn.execute("DELETE FROM keys WHERE hash = ? AND issued = 0", (id_,)).rowcount
        else:
            n = self.conn.execute(f"DELETE FROM {table} WHERE {pk} = ?", (id_,)).rowcount
        return bool(n)

    def directory(self) -> tuple[int, list[KeyRecord], list[TeamRecord], list[UserRecord]]:
        """Everything a proxy process caches, with the revision it was read at (one snapshot)."""
        return self.read_transaction(
            lambda: (self.revision(), self.find(KeyRecord), self.find(TeamRecord), self.find(UserRecord))
        )
