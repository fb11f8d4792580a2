"""The in-memory copy of keys, teams and users that the hot path reads.

Looking a key up must not cost a database round trip per request, so each process
keeps the whole directory in dicts and reloads it when `directory_revision` moves
(checked every clock tick, and right after this process's own admin writes). A key
created on another instance is found on a cache miss by one direct read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.vocab import ScopeKind
from ledger import AsyncLedger, Store
from ledger.directory import KeyRecord, TeamRecord, UserRecord


@dataclass
class DirectoryCache:
    revision: int = -1
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    teams: dict[str, TeamRecord] = field(default_factory=dict)
    users: dict[str, UserRecord] = field(default_factory=dict)

    async def refresh(self, ledger: AsyncLedger) -> bool:
        """Reload if another writer changed the directory; True when it did. A change may
        be a budget set or reset: the process's budget leases are re-checked too."""
        if await ledger.read(Store.revision) == self.revision:
            return False
        self.load(*await ledger.read(Store.directory))
        ledger.leases.invalidate()
        return True

    def load(self, revision: int, keys: list[KeyRecord], teams: list[TeamRecord], users: list[UserRecord]) -> None:
        self.keys = {k.hash: k for k in keys}
        self.teams = {t.team_id: t for t in teams}
        self.users = {u.user_id: u for u in users}
        self.revision = revision

    async def key(self, ledger: AsyncLedger, hash_: str) -> KeyRecord | None:
        found = self.keys.get(hash_)
        if found is None:
            found = await ledger.read(Store.get, KeyRecord, hash_)
            if found is not None:
                self.keys[hash_] = found
        return found

    def label(self, kind: str, id_: str) -> str:
        """How a person knows a scope: a team's alias, a key's alias or masked form (a key
        hash the directory doesn't know is shortened: never shown in full)."""
        if kind == ScopeKind.TEAM:
            team = self.teams.get(id_)
            return (team.team_alias if team else None) or id_
        if kind == ScopeKind.KEY:
            k = self.keys.get(id_)
            return (k.key_alias or k.key_masked) if k else id_[:12]
        return id_
