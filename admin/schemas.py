"""Request bodies of the admin API, LiteLLM's field names.

Tolerant like LiteLLM: fields spendgate does not use (`tpm_limit`, `rpm_limit`,
`aliases`, `guardrails`, ...) are accepted and ignored. Typed like pydantic: a budget
that is not a number, a duration that is not `30d`-style, a model list that is not a list
of strings gets a 422 naming the field. Update bodies only change the fields they carry
(`model_fields_set`); an explicit `null` clears a field (`"max_budget": null` removes the
limit).

Bounded, because what is stored is copied into every call's ledger row and every answer:
ids and labels are at most 256 characters, lists at most `MAX_ITEMS` entries, `metadata`
at most `MAX_METADATA_BYTES` as JSON (the whole body at most 1 MiB: `admin.guard`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from config.durations import Duration


def _money(value: Any) -> Any:
    if value == "":  # LiteLLM's UI sends "" for "no budget"
        return None
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "must be a number of USD, not true/false")
    return value


def soft_above_max(soft: float, top: float) -> PydanticCustomError:
    return PydanticCustomError(
        "soft_above_max",
        "soft_budget ({soft}) is above max_budget ({top}): the soft budget is the alert threshold below "
        "the hard limit",
        {"soft": f"{soft:g}", "top": f"{top:g}"},
    )


MAX_USD = 1_000_000_000  # $1B: far above any budget, and its nanos fit SQLite's 64-bit integers
MAX_DURATION_DAYS = 100 * 366

Money = Annotated[
    Annotated[float, Field(ge=0, le=MAX_USD, allow_inf_nan=False)] | None, BeforeValidator(_money)
]

MAX_ITEMS = 1000  # entries of a list field: models, keys, aliases, members, ids
MAX_METADATA_BYTES = 16 * 1024  # `metadata` as compact UTF-8 JSON

Ident = Annotated[str, Field(min_length=1, max_length=256)]
Label = Annotated[str, Field(max_length=256)]
KeyName = Annotated[str, Field(min_length=1, max_length=512)]  # a raw key (explicit keys go to 512) or a token


def _listed(item: Any) -> Any:
    """A list of at most MAX_ITEMS `item`s."""
    return Annotated[list[item], Field(max_length=MAX_ITEMS)]


Models = _listed(Label)


def _sane_duration(value: Duration) -> Duration:
    """`30d`-style text that also fits the calendar (no `99999999999d`)."""
    try:
        end = value.add_to(datetime.now(UTC))
    except (OverflowError, ValueError):
        end = None
    if end is None or end - datetime.now(UTC) > timedelta(days=MAX_DURATION_DAYS):
        raise PydanticCustomError("duration", "{value} is too long (at most 100 years)", {"value": repr(str(value))})
    return value


Period = Annotated[Duration, AfterValidator(_sane_duration)]


def _plain_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Metadata comes back in every response and is copied into every call's row: strict
    JSON (no NaN/Infinity) of at most MAX_METADATA_BYTES."""
    if value is not None:
        try:
            text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        except ValueError:
            raise PydanticCustomError("json", "must not contain NaN or Infinity") from None
        size = len(text.encode())
        if size > MAX_METADATA_BYTES:
            raise PydanticCustomError("too_long", "is {size} bytes as JSON; at most {limit} (16 KB)",
                                      {"size": size, "limit": MAX_METADATA_BYTES})
    return value


Metadata = Annotated[dict[str, Any] | None, AfterValidator(_plain_json)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    def given(self, name: str) -> bool:
        return name in self.model_fields_set


class BudgetFields(Body):
    max_budget: Money = None
    soft_budget: Money = None
    budget_duration: Period | None = None

    @field_validator("soft_budget")
    @classmethod
    def _soft_below_max(cls, soft: float | None, info: ValidationInfo) -> float | None:
        top = info.data.get("max_budget")
        if soft is not None and top is not None and soft > top:
            raise soft_above_max(soft, top)
        return soft

    def budget_given(self) -> bool:
        return bool({"max_budget", "soft_budget", "budget_duration"} & self.model_fields_set)


class KeyFields(BudgetFields):
    key_alias: Label | None = None
    models: Models | None = None
    team_id: Ident | None = None
    user_id: Ident | None = None
    metadata: Metadata = None
    duration: Period | None = None  # expiry, from now
    blocked: bool | None = None


class GenerateKeyRequest(KeyFields):
    key: Annotated[str, Field(max_length=512)] | None = None  # an explicit key, as LiteLLM allows
    provider_key: bool = False  # spendgate: register an existing provider key instead


class UpdateKeyRequest(KeyFields):
    key: KeyName  # the raw key or its token (hash)
    spend: Annotated[float, Field(allow_inf_nan=False)] | None = None


class DeleteKeyRequest(Body):
    keys: _listed(KeyName) | None = None
    key_aliases: _listed(Label) | None = None

    @model_validator(mode="after")
    def _something(self):
        if not self.keys and not self.key_aliases:
            raise PydanticCustomError("missing", "give `keys` (raw keys or tokens) and/or `key_aliases`")
        return self


class Member(Body):
    user_id: Ident | None = None
    user_email: Label | None = None
    role: Literal["admin", "user"] = "user"

    @model_validator(mode="before")
    @classmethod
    def _plain_id(cls, value: Any) -> Any:
        return {"user_id": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _someone(self):
        if self.user_id is None and self.user_email is None:
            raise PydanticCustomError("missing", "a member needs user_id or user_email")
        return self


class TeamFields(BudgetFields):
    team_alias: Label | None = None
    metadata: Metadata = None
    models: Models | None = None
    blocked: bool | None = None


class NewTeamRequest(TeamFields):
    team_id: Ident | None = None
    members: _listed(Member) = []
    members_with_roles: _listed(Member) = []


class UpdateTeamRequest(TeamFields):
    team_id: Ident
    spend: Annotated[float, Field(allow_inf_nan=False)] | None = None


class TeamMemberAddRequest(Body):
    team_id: Ident
    member: Member | _listed(Member)

    def member_list(self) -> list[Member]:
        return self.member if isinstance(self.member, list) else [self.member]


class DeleteTeamRequest(Body):
    team_ids: list[Ident] = Field(min_length=1, max_length=MAX_ITEMS)


class UserFields(BudgetFields):
    user_email: Label | None = None
    team_id: Ident | None = None
    metadata: Metadata = None
    models: Models | None = None


class TeamRef(Body):
    team_id: Ident | None = None


class NewUserRequest(UserFields):
    user_id: Ident | None = None
    teams: _listed(Ident | TeamRef) | None = None  # LiteLLM: more teams to join
    auto_create_key: bool = True
    key_alias: Label | None = None
    duration: Period | None = None  # expiry of the key created with the user

    def team_ids(self) -> list[str]:
        out = [self.team_id] if self.team_id else []
        for t in self.teams or []:
            tid = t if isinstance(t, str) else t.team_id
            if tid and tid not in out:
                out.append(tid)
        return out


class UpdateUserRequest(UserFields):
    user_id: Ident | None = None
    spend: Annotated[float, Field(allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _someone(self):
        if self.user_id is None and self.user_email is None:
            raise PydanticCustomError("missing", "give user_id (or user_email) of the user to update")
        return self


class DeleteUserRequest(Body):
    user_ids: list[Ident] = Field(min_length=1, max_length=MAX_ITEMS)
