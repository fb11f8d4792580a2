"""Who a budget scope is, and whose alert settings apply to it.

Team routing (`default_team_settings`): a team's settings decide the channels, thresholds
and destinations for the team's own budget AND for the budgets of its keys and users (a
key's `team_id`, a user's `team_id`), so a team hears about every budget it owns in one
place. The global budget, and keys and users without a team, follow the global settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alerts.events import Subject
from config.schema import AlertRouting, SpendgateConfig

if TYPE_CHECKING:
    from metering.directory_cache import DirectoryCache


class Routes:
    """`litellm_settings.alerts_for(team_id)`, computed once per config and team (it
    validates a pydantic model, too slow to repeat on every settlement)."""

    def __init__(self) -> None:
        self._config: SpendgateConfig | None = None
        self._cache: dict[str | None, AlertRouting] = {}
        self._channels_config: SpendgateConfig | None = None
        self._any_channel = False

    def routing(self, config: SpendgateConfig, team_id: str | None) -> AlertRouting:
        if config is not self._config:
            self._config, self._cache = config, {}
        found = self._cache.get(team_id)
        if found is None:
            found = self._cache[team_id] = config.litellm_settings.alerts_for(team_id)
        return found

    def any_channel(self, config: SpendgateConfig) -> bool:
        """False when no alert can go anywhere: the listener then does nothing at all
        (asked twice per call: answered once per config)."""
        if config is not self._channels_config:
            s = config.litellm_settings
            self._channels_config = config
            self._any_channel = bool(s.alerting) or any(t.alerting for t in s.default_team_settings)
        return self._any_channel


def subject(directory: DirectoryCache, kind: str, id_: str) -> Subject:
    """The scope as people know it, from the directory as it is now."""
    label = directory.label(kind, id_)
    if kind == "key":
        k = directory.keys.get(id_)
        if k is None:
            return Subject(label=label)
        team = k.team_id
        if team is None and k.user_id in directory.users:
            team = directory.users[k.user_id].team_id
        return Subject(label=label, key_masked=k.key_masked, key_alias=k.key_alias,
                       team_id=team, user_id=k.user_id, metadata=dict(k.metadata), route_team=team)
    if kind == "team":
        t = directory.teams.get(id_)
        return Subject(label=label, team_id=id_, metadata=dict(t.metadata) if t else {}, route_team=id_)
    if kind == "user":
        u = directory.users.get(id_)
        team = u.team_id if u else None
        return Subject(label=label, team_id=team, user_id=id_, metadata=dict(u.metadata) if u else {},
                       route_team=team)
    return Subject(label=label)


class RuntimeContext:
    """The rules' view of a running proxy: the directory and the config's routing."""

    def __init__(self, config: SpendgateConfig, directory: DirectoryCache, routes: Routes):
        self.config, self.directory, self.routes = config, directory, routes

    def subject(self, kind: str, id_: str) -> Subject:
        return subject(self.directory, kind, id_)

    def routing(self, team_id: str | None) -> AlertRouting:
        return self.routes.routing(self.config, team_id)
