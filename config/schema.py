"""The settings schema: one pydantic model tree is the single source of truth.

Section and key names follow LiteLLM's proxy config (`litellm_settings`, `general_settings`)
so a LiteLLM budgets-and-alerts config carries over unchanged; spendgate's own settings sit
beside them. Every field's docstring is its documentation: `python -m config.reference`
renders them into docs/config-reference.md. Unknown keys are errors everywhere, because a
misspelt budget key that is silently ignored means no budget.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from config.durations import Duration
from core.vocab import ApiStyle
from providers.registry import config_names, credential_fields, credential_places

Secret = SecretStr
"""A credential (or a URL embedding one): prints as `**********`; `.get_secret_value()` reads it."""

MASK = "**********"

BUILTIN_PROVIDERS = config_names()
"""Provider names spendgate recognises by their public API hosts (providers/registry.py);
any other name under `providers:` is a custom provider."""


def _check_email(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
        raise PydanticCustomError("email", "{value} is not an email address", {"value": repr(value)})
    return value


def _check_host(value: str) -> str:
    if not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:[0-9]{1,5})?", value):
        raise PydanticCustomError(
            "host",
            "expected a host name with an optional port, like llm.internal.example.com or "
            "localhost:11434 (no scheme or path), got {value}",
            {"value": repr(value)},
        )
    return value.lower()


def _check_destination(value: str) -> str:
    """An IP address or network (`10.0.0.0/8`, `fd00::/8`), or a host name with an optional port."""
    try:
        return str(ipaddress.ip_network(value.strip("[]"), strict=False))
    except ValueError:
        pass
    try:
        return _check_host(value)
    except PydanticCustomError:
        raise PydanticCustomError(
            "destination",
            "expected an IP address, a network like 10.0.0.0/8, or a host name with an optional port "
            "like ollama.lan:11434, got {value}",
            {"value": repr(value)},
        ) from None


Money = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Threshold = Annotated[float, Field(gt=0, le=1)]
Channel = Literal["slack", "webhook", "email"]
EmailAddress = Annotated[str, AfterValidator(_check_email)]
Host = Annotated[str, AfterValidator(_check_host)]
Destination = Annotated[str, AfterValidator(_check_destination)]
TokenCount = Annotated[int, Field(ge=1)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _raise_at(problems: list[tuple[tuple[str | int, ...], str]]) -> None:
    """Report several problems at once, each at its own key path below the validated value."""
    if problems:
        raise ValidationError.from_exception_data(
            "config",
            [
                InitErrorDetails(type=PydanticCustomError("config", message), loc=loc, input=None)
                for loc, message in problems
            ],
        )


# --- alerts -------------------------------------------------------------------------------


class AlertRouting(_Model):
    """Which channels budget alerts go to, at which fractions of the budget."""

    alerting: list[Channel] = []
    """Channels that receive budget alerts. Each channel needs its destination: `slack` a
    `slack_webhook_url`, `webhook` a `webhook_url`, `email` an `email_alerts_to` list."""

    alerting_threshold: Threshold | None = None
    """Fraction of the budget (0 < x ≤ 1) at which to alert, e.g. `0.8` for 80%. Applies to every
    scope with a `max_budget` (global, team, user, key); alerts once per budget period. Reaching
    100% always sends a `budget_exceeded` alert, so `1.0` adds nothing."""

    alerting_thresholds: list[Threshold] | None = None
    """Several fractions to alert at, e.g. `[0.5, 0.75, 0.9, 1.0]`; merged with
    `alerting_threshold`. Each threshold alerts once per budget period (and again if the budget
    is changed and the threshold crossed anew); the 100% alert is `budget_exceeded`."""

    slack_webhook_url: Secret | None = None
    """Slack incoming-webhook URL for `slack` alerts (it embeds a token: use `os.environ/NAME`)."""

    slack_alert_to_webhook_url: Secret | None = None
    """Alternative Slack webhook URL for budget alerts (LiteLLM's name); used when
    `slack_webhook_url` is not set."""

    webhook_url: Secret | None = None
    """URL that `webhook` alerts are POSTed to as JSON."""

    email_alerts_to: list[EmailAddress] = []
    """Recipients of `email` alerts."""

    def thresholds(self) -> list[float]:
        """Every alert threshold from `alerting_threshold` and `alerting_thresholds`, sorted, unique."""
        merged = set(self.alerting_thresholds or [])
        if self.alerting_threshold is not None:
            merged.add(self.alerting_threshold)
        return sorted(merged)

    def _missing_destinations(self) -> list[tuple[str, str]]:
        """(field, problem) for each enabled channel that has nowhere to send to."""
        needs = {
            "slack": ("slack_webhook_url", self.slack_webhook_url or self.slack_alert_to_webhook_url),
            "webhook": ("webhook_url", self.webhook_url),
            "email": ("email_alerts_to", self.email_alerts_to),
        }
        return [
            (needs[channel][0], f"required when alerting includes '{channel}'")
            for channel in dict.fromkeys(self.alerting)
            if not needs[channel][1]
        ]


_THRESHOLD_FIELDS = {"alerting_threshold", "alerting_thresholds"}


class TeamAlertSettings(AlertRouting):
    """Alert settings for one team. Keys set here replace the global `litellm_settings` value
    for that team's alerts; keys left out are inherited (setting either threshold key replaces
    both)."""

    doc_default: ClassVar[str] = "inherited"
    """What the reference shows as the default of keys left out: the global value applies."""

    team_id: str
    """The team these settings apply to."""


class GlobalBudget(_Model):
    """The proxy-wide spending limit (its own class so these keys lead the section)."""

    max_budget: Money | None = None
    """Maximum spend in USD across the whole proxy per budget period. When it is reached,
    every request is rejected until the period resets. Unset: no global budget."""

    budget_duration: Duration | None = None
    """How often the budget resets (`30s`, `15m`, `12h`, `1d`, `7d`, `30d`, `1mo`). Periods
    roll from when the budget was first applied; months are calendar months. Unset: never."""


class LitellmSettings(AlertRouting, GlobalBudget):
    """Keys keep LiteLLM's names, so a LiteLLM config's budget and alert settings load unchanged."""

    smtp_host: str | None = None
    """SMTP server that sends `email` alerts."""

    smtp_port: int = Field(default=587, ge=1, le=65535)
    """SMTP server port. 587: STARTTLS is required (no alert is sent in clear); 465: implicit
    TLS; any other port: STARTTLS when the server offers it. The password is only sent over
    TLS (or to a server on loopback)."""

    smtp_user: str | None = None
    """SMTP login user name. Unset: send without logging in."""

    smtp_password: Secret | None = None
    """SMTP login password."""

    smtp_sender: str | None = None
    """`From` address of alert emails. Unset: `smtp_user` if it is an address, else
    `spendgate@localhost`."""

    default_team_settings: list[TeamAlertSettings] = []
    """Per-team alert settings that override the global ones for that team's budget alerts: the
    team's own budget and the budgets of its keys and users."""

    success_callback: list[str] = []
    """LiteLLM callbacks run after each successful call. `prometheus` turns on spendgate's
    Prometheus metrics; other LiteLLM callback names are accepted and have no effect."""

    def alerts_for(self, team_id: str | None = None) -> AlertRouting:
        """The alert routing that applies to `team_id`: the global settings, overridden by
        the keys that team's `default_team_settings` entry sets."""
        team = next((t for t in self.default_team_settings if t.team_id == team_id), None)
        return self._routing_with(team)

    def _routing_with(self, team: TeamAlertSettings | None) -> AlertRouting:
        routing = {name: getattr(self, name) for name in AlertRouting.model_fields}
        if team is not None:
            overridden = team.model_fields_set & routing.keys()
            if overridden & _THRESHOLD_FIELDS:
                overridden |= _THRESHOLD_FIELDS
            routing.update({name: getattr(team, name) for name in overridden})
        return AlertRouting.model_validate(routing)

    @model_validator(mode="after")
    def _alerts_can_be_delivered(self) -> LitellmSettings:
        """An alert with nowhere to go fails silently when it matters; say so at load time."""
        global_missing = self._missing_destinations()
        problems = [((field,), problem) for field, problem in global_missing]
        seen_teams: dict[str, int] = {}
        for index, team in enumerate(self.default_team_settings):
            at = ("default_team_settings", index)
            if team.team_id in seen_teams:
                first = seen_teams[team.team_id]
                problems.append(((*at, "team_id"), f"duplicate team_id (also in entry [{first}])"))
            seen_teams.setdefault(team.team_id, index)
            for field, problem in self._routing_with(team)._missing_destinations():
                if (field, problem) not in global_missing:
                    problems.append(((*at, field), problem))
        _raise_at(problems)
        return self


# --- storage and behaviour ----------------------------------------------------------------


class DatabaseTarget(NamedTuple):
    """Where the ledger lives: `("sqlite", file path)` or `("postgresql", DSN)`."""

    engine: Literal["sqlite", "postgresql"]
    target: str


_DATABASE_FORMS = "use a file path, sqlite:///relative.db, sqlite:////abs/path.db or postgresql://..."


def parse_database_url(url: str) -> DatabaseTarget:
    """Resolve `database_url`; ValueError (never echoing the URL, which may hold a password)."""
    if "://" not in url:
        if not url.strip():
            raise ValueError(f"empty database_url ({_DATABASE_FORMS})")
        return DatabaseTarget("sqlite", url)
    scheme, rest = url.split("://", 1)
    if scheme.lower() in ("postgresql", "postgres"):
        return DatabaseTarget("postgresql", url)
    if scheme.lower() == "sqlite" and rest.startswith("/") and rest[1:]:
        return DatabaseTarget("sqlite", rest[1:])  # sqlite:///x.db → x.db, sqlite:////a/x.db → /a/x.db
    raise ValueError(f"unsupported database URL {scheme}://... ({_DATABASE_FORMS})")


def mask_password(url: str) -> str:
    """`url` with any password (in the user info or a `password=` parameter) masked."""
    url = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:)[^/?#@]*@", rf"\g<1>{MASK}@", url)
    return re.sub(r"([?&]password=)[^&#]*", rf"\g<1>{MASK}", url)


class GeneralSettings(_Model):
    """LiteLLM's `general_settings` keys, plus spendgate's own proxy-wide behaviour."""

    master_key: Secret | None = None
    """Admin key for spendgate's admin API (`Authorization: Bearer <master_key>`). Unset: the
    admin API is disabled."""

    database_url: str = "sqlite:///spendgate.db"
    """Where the spend ledger is stored: a file path (`ledger.db`, `/var/lib/spendgate/ledger.db`),
    `sqlite:///relative.db`, `sqlite:////absolute/path.db`, or `postgresql://user:pass@host/db`
    (also `postgres://`)."""

    store_model_in_db: bool = False
    """Accepted for LiteLLM compatibility; has no effect."""

    projected_spend_alerts: bool = False
    """Alert ahead of time (`projected_spend_alert`, once per period) when spend so far,
    extrapolated linearly to the end of the budget period, is projected to reach
    `projected_spend_threshold` of the budget. Only budgets with a `budget_duration`, and only
    once 10% of the period has passed (mitmproxy option `budget_alert_projection_min_elapsed`)."""

    projected_spend_threshold: float = Field(default=0.9, gt=0, allow_inf_nan=False)
    """Fraction of the budget that projected spend must reach for a projected-spend alert."""

    unpriced_models: Literal["allow", "block"] = "allow"
    """Calls to a model with no known price (neither genai-prices nor `pricing` knows it):
    `allow` forwards them and records their tokens with unknown cost; `block` rejects them."""

    unmetered_endpoints: Literal["track", "block"] = "track"
    """Requests to a recognised provider's host that spendgate cannot meter (an endpoint it
    has no usage parser for, a batch job; docs/providers.md lists what is metered): `track`
    forwards them and records each as a ledger row with status `unmetered` (its cost
    unknown, never $0); `block` refuses them with 403 `endpoint_not_metered` before the
    provider sees them. Free reads (GET, token counts, moderations) pass either way."""

    unknown_keys: Literal["track", "block"] = "track"
    """Requests whose API key spendgate has no record of: `track` forwards them and meters
    their spend under that key; `block` rejects them."""

    require_proxy_auth: bool = False
    """Require clients to authenticate to the proxy itself (HTTP proxy authentication) before
    any request is forwarded."""

    require_auth_for_metrics_endpoint: bool = Field(
        default=False, validation_alias=AliasChoices("require_auth_for_metrics_endpoint", "metrics_require_auth"))
    """Require the master key (`Authorization: Bearer <master_key>`) to read the Prometheus
    metrics endpoint, `/metrics`. LiteLLM's name; `metrics_require_auth` (spendgate's earlier
    name) sets the same thing."""

    allowed_private_destinations: list[Destination] = []
    """Loopback and private destinations (IP addresses, networks such as `10.0.0.0/8`, or host
    names with an optional port) the proxy may relay to when it listens on an address other
    machines can reach. Such a proxy otherwise refuses, with a 403, any destination that is or
    resolves to a loopback, private (RFC 1918, ULA), link-local or other non-public address —
    except the hosts of `providers:` entries. Its own admin listener is refused whatever this
    says."""

    on_ledger_error: Literal["fail_open", "fail_closed"] = "fail_closed"
    """When the spend ledger's database cannot be reached at admission: `fail_closed` (the
    default) rejects the call with a 503 `ledger_unavailable` JSON error (no unchecked spend);
    `fail_open` forwards it without budget checks. Either way the calls that were served are
    recorded: a settlement that can't be written is spooled (in memory and in
    `<confdir>/spendgate-spool`) and recorded once the database is back."""

    ledger_writer: Literal["auto", "thread", "process"] = "auto"
    """Where the SQLite ledger's writes run: `thread`, a thread of the proxy's process (their
    CPU is the proxy's); `process`, a process of its own that the proxy starts, and starts
    again if it dies, so that the SQLite work runs beside the proxy on another core (a kill
    of either loses nothing: docs/ledger.md); `auto` (the default), `process` on a machine
    with more than one CPU, else `thread`. With PostgreSQL the database server does that
    work, and the writes run in a thread: `process` is refused there."""

    upstream_idle_timeout: Seconds = 600.0
    """Seconds a provider may send nothing (no response headers, no stream bytes) on a metered
    call before spendgate cuts it: the connection is closed, the client gets an error, and the
    call is settled at once from what was seen, its row saying why. 600 matches the OpenAI and
    Anthropic SDKs' own timeout; `providers.<name>.idle_timeout` sets one provider's."""

    default_max_output_tokens: TokenCount = 16384
    """Output tokens to reserve budget for when a call sets no `max_tokens` and its model has
    no `max_output_tokens` in `pricing`."""
    realtime_max_output_tokens: TokenCount = 4096
    """Output tokens to reserve for a turn of a realtime socket (OpenAI Realtime, Gemini Live)
    when neither the turn (`response.max_output_tokens`) nor the session
    (`max_response_output_tokens`, Live's `maxOutputTokens`) bounds it, or the bound is
    `inf`. Reserved as audio output, the dearest kind; the turn settles at its reported usage
    (docs/websocket.md)."""
    realtime_vad_hold_seconds: Seconds = 60.0
    """On a Realtime socket with server-side turn detection (`server_vad` / `semantic_vad`
    with `create_response`), audio from the client admits a turn ahead, reserving a realtime
    turn's bound, for the response the server's voice detection may start; a hold no
    response used within this many seconds is given back (the next audio admits a new one)."""

    @model_validator(mode="before")
    @classmethod
    def _one_metrics_auth_key(cls, data: Any) -> Any:
        """Both names of the metrics setting at once would leave one silently ignored."""
        if isinstance(data, dict) and {"require_auth_for_metrics_endpoint", "metrics_require_auth"} <= data.keys():
            _raise_at([(("metrics_require_auth",), "the same setting as require_auth_for_metrics_endpoint: "
                                                    "give only one of them")])
        return data

    @model_validator(mode="after")
    def _writer_process_is_sqlite(self) -> GeneralSettings:
        if self.ledger_writer == "process" and self.database_url_info().engine != "sqlite":
            _raise_at([(("ledger_writer",), "a writer process is for the SQLite ledger; with PostgreSQL "
                                            "use thread or auto")])
        return self

    def writer_process(self) -> bool:
        """Whether the ledger's writes run in a process of their own (`ledger_writer`)."""
        if self.ledger_writer == "auto":
            return self.database_url_info().engine == "sqlite" and (os.cpu_count() or 1) > 1
        return self.ledger_writer == "process"

    @field_validator("database_url")
    @classmethod
    def _database_url_form(cls, value: str) -> str:
        try:
            parse_database_url(value)
        except ValueError as error:
            raise PydanticCustomError("database_url", str(error)) from None
        return value

    def database_url_info(self) -> DatabaseTarget:
        """The ledger backend `database_url` names: `("sqlite", path)` or `("postgresql", dsn)`."""
        return parse_database_url(self.database_url)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, mask_password(value) if name == "database_url" else value


# --- upstreams and prices -----------------------------------------------------------------


class ProviderConfig(_Model):
    """An upstream LLM API. Built-in names (every provider in docs/providers.md: openai,
    azure, anthropic, gemini, groq, mistral, ...) are recognised by their public hosts; any
    other name is a custom provider (a vLLM, Ollama or internal gateway) and needs `host`
    and `api_style`."""

    host: Host | None = None
    """Host (with optional port) whose requests belong to this provider, e.g.
    `llm.internal.example.com` or `localhost:11434`. Required for a custom provider."""

    api_style: ApiStyle | None = None
    """Wire format the host speaks, which decides how requests and usage are read. Required
    for a custom provider; built-in providers use their own."""

    api_key: Secret | None = None
    """The real upstream credential, e.g. `os.environ/OPENAI_API_KEY`: what a virtual key's
    calls are sent with. For `bedrock`, a Bedrock API key (sent as `Authorization: Bearer`,
    boto3's `AWS_BEARER_TOKEN_BEDROCK`), used when no AWS access key is set."""

    aws_access_key_id: Secret | None = None
    """`bedrock` only: the AWS access key id a virtual key's calls are re-signed with (SigV4),
    with `aws_secret_access_key`, e.g. `os.environ/AWS_ACCESS_KEY_ID`. Wins over `api_key`."""

    aws_secret_access_key: Secret | None = None
    """`bedrock` only: the secret access key of `aws_access_key_id`."""

    aws_session_token: Secret | None = None
    """`bedrock` only: the session token of temporary credentials (`aws_access_key_id` from
    STS or an assumed role). Temporary credentials expire: the config must be reloaded with
    fresh ones before they do."""

    price_provider: str | None = None
    """genai-prices provider id whose prices apply to this host's models (e.g. `openai` for a
    host serving OpenAI models). Unset: only `pricing` entries price its models."""

    idle_timeout: Seconds | None = None
    """Seconds this provider may send nothing on a call before it is cut. Unset:
    `general_settings.upstream_idle_timeout`."""

    def secrets(self) -> dict[str, str]:
        """The credentials this entry sets, by field name (what a virtual key's real
        replacement is made of)."""
        return {name: value.get_secret_value() for name in type(self).model_fields
                if isinstance(value := getattr(self, name), SecretStr)}


class ModelPricing(_Model):
    """Prices for one model in USD per token (LiteLLM's model-cost field names). Entries here
    take precedence over genai-prices."""

    input_cost_per_token: Money
    """USD per input (prompt) token."""

    output_cost_per_token: Money
    """USD per output (completion) token."""

    cache_read_input_token_cost: Money | None = None
    """USD per input token read from the prompt cache. Unset: `input_cost_per_token`."""

    cache_creation_input_token_cost: Money | None = None
    """USD per input token written to the prompt cache. Unset: `input_cost_per_token`."""

    output_cost_per_reasoning_token: Money | None = None
    """USD per reasoning token. Unset: `output_cost_per_token`."""

    max_output_tokens: TokenCount | None = None
    """The model's output limit: the budget reserved for a call that sets no `max_tokens`."""

    max_input_tokens: TokenCount | None = None
    """The model's context (input) limit."""


def _credential_problems(name: str, provider: ProviderConfig) -> list[tuple[tuple[str, ...], str]]:
    """Credential fields the provider does not take, and half key pairs (an AWS access key
    id without its secret, or the reverse)."""
    secrets = provider.secrets()
    places = credential_places(name)
    usable = credential_fields(name)
    problems = [((name, field), f"not a credential {name!r} takes (it takes {', '.join(sorted(usable))})")
                for field in secrets if field not in usable]
    for place in places:
        given = [f for f in place.needs if f in secrets]
        missing = [f for f in place.needs if f not in secrets]
        if given and missing:
            problems += [((name, field), f"needs {' and '.join(missing)} set too") for field in given]
    return problems


# --- the whole file -----------------------------------------------------------------------


class SpendgateConfig(_Model):
    """Everything in spendgate's YAML config file."""

    litellm_settings: LitellmSettings = Field(default_factory=LitellmSettings)
    """The global budget, and where and when budget alerts go."""

    general_settings: GeneralSettings = Field(default_factory=GeneralSettings)
    """Admin key, ledger database and proxy-wide behaviour."""

    providers: dict[str, ProviderConfig] = {}
    """Upstream LLM APIs by name: settings for built-in providers, or custom hosts to meter."""

    pricing: dict[str, ModelPricing] = {}
    """Prices by model name, for models genai-prices does not know or to override it."""

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_mean_defaults(cls, data: Any) -> Any:
        """`providers:` with every entry commented out is YAML null: treat it as absent."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @field_validator("providers")
    @classmethod
    def _providers_are_complete(cls, providers: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        problems = [
            ((name, field), "required for a custom provider")
            for name, provider in providers.items()
            if name not in BUILTIN_PROVIDERS
            for field in ("host", "api_style")
            if getattr(provider, field) is None
        ]
        problems += [problem for name, provider in providers.items() for problem in _credential_problems(name, provider)]
        _raise_at(problems)
        return providers

    def redacted(self) -> dict[str, Any]:
        """The effective config in its YAML shape, every secret replaced by `**********`:
        safe to log or serve from the admin API."""
        data = self.model_dump(mode="json")  # Secret fields dump masked
        general = data["general_settings"]
        general["database_url"] = mask_password(general["database_url"])
        return data
