"""The config package, as a reference: what spendgate accepts, what it rejects, and how it says so.

Seed snippets are LiteLLM's budgets-and-alerts doc (/work/shared/seed), re-indented.
"""

from __future__ import annotations

import json
import os
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from config import reference
from config.durations import Duration, next_boundary
from config.load import ConfigError, load_config, parse_config
from config.schema import MASK, DatabaseTarget, SpendgateConfig

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-live-very-secret-0123456789"


@pytest.fixture
def load(tmp_path):
    """Write YAML text to a file and load it, as the addon does."""

    def _load(text: str) -> SpendgateConfig:
        path = tmp_path / "spendgate.yaml"
        path.write_text(textwrap.dedent(text))
        return load_config(path)

    return _load


def problems(load, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return caught.value.problems


# --- the seed's snippets --------------------------------------------------------------------

SEED_ENV = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXX",
    "ENGINEERING_SLACK_WEBHOOK": "https://hooks.slack.com/services/T000/B111/YYYY",
    "SMTP_HOST": "smtp.gmail.com",
    "SMTP_USER": "your-email@gmail.com",
    "SMTP_PASSWORD": "your-app-password",
    "DATABASE_URL": "postgresql://spend:hunter2@db.internal:5432/spendgate",
}

SEED_SNIPPETS = {
    "global budget": """
        litellm_settings:
          max_budget: 1000.0 # Maximum spend in USD
          budget_duration: 30d # Budget reset period
        """,
    "slack": """
        litellm_settings:
          alerting: ["slack"]
          alerting_threshold: 0.8 # Alert at 80% budget
          # Slack webhook URL
          slack_webhook_url: os.environ/SLACK_WEBHOOK_URL
          # Optional: Customize alert message
          slack_alert_to_webhook_url: os.environ/SLACK_WEBHOOK_URL
        """,
    "webhook": """
        litellm_settings:
          alerting: ["webhook"]
          alerting_threshold: 0.8
          # Custom webhook URL
          webhook_url: https://example.com/alerts
        """,
    "email": """
        litellm_settings:
          alerting: ["email"]
          alerting_threshold: 0.8
          # Email settings
          email_alerts_to: ["admin@example.com", "finance@example.com"]
          # SMTP configuration
          smtp_host: os.environ/SMTP_HOST
          smtp_port: 587
          smtp_user: os.environ/SMTP_USER
          smtp_password: os.environ/SMTP_PASSWORD
          smtp_sender: alerts@example.com
        """,
    "budget reset schedule": """
        litellm_settings:
          max_budget: 100.0
          budget_duration: 1d
        """,
    "projected spend": """
        general_settings:
          projected_spend_alerts: true
          projected_spend_threshold: 0.9 # Alert at 90% of projected
        litellm_settings:
          alerting: ["slack"]
          slack_webhook_url: os.environ/SLACK_WEBHOOK_URL
        """,
    "multi-channel": """
        litellm_settings:
          alerting: ["slack", "webhook", "email"]
          alerting_threshold: 0.8
          slack_webhook_url: os.environ/SLACK_WEBHOOK_URL
          webhook_url: https://example.com/alerts
          email_alerts_to: ["admin@example.com"]
        """,
    "team-specific": """
        litellm_settings:
          default_team_settings:
            - team_id: team-engineering
              alerting: ["slack"]
              alerting_threshold: 0.8
              slack_webhook_url: os.environ/ENGINEERING_SLACK_WEBHOOK
            - team_id: team-marketing
              alerting: ["email"]
              alerting_threshold: 0.9
              email_alerts_to: ["marketing@example.com"]
        """,
    "custom thresholds": """
        litellm_settings:
          # Alert at multiple thresholds
          alerting_thresholds: [0.5, 0.75, 0.9, 1.0]
          alerting: ["slack"]
          slack_webhook_url: os.environ/SLACK_WEBHOOK_URL
        """,
    "troubleshooting database": """
        general_settings:
          database_url: os.environ/DATABASE_URL
          store_model_in_db: true
        """,
    "prometheus": """
        litellm_settings:
          success_callback: ["prometheus"]
        """,
}


@pytest.fixture
def seed_env(monkeypatch):
    for name, value in SEED_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("snippet", SEED_SNIPPETS.values(), ids=SEED_SNIPPETS.keys())
def test_every_seed_snippet_loads(load, seed_env, snippet):
    assert isinstance(load(snippet), SpendgateConfig)


def test_global_budget(load):
    settings = load(SEED_SNIPPETS["global budget"]).litellm_settings
    assert settings.max_budget == 1000.0
    assert settings.budget_duration == Duration(30, "d")


def test_environment_values_fill_secrets(load, seed_env):
    settings = load(SEED_SNIPPETS["email"]).litellm_settings
    assert settings.smtp_host == "smtp.gmail.com"
    assert settings.smtp_password.get_secret_value() == "your-app-password"
    assert str(settings.smtp_password) == MASK


def test_custom_thresholds_are_merged_sorted_and_unique(load, seed_env):
    settings = load(SEED_SNIPPETS["custom thresholds"]).litellm_settings
    assert settings.thresholds() == [0.5, 0.75, 0.9, 1.0]
    both = settings.model_copy(update={"alerting_threshold": 0.8, "alerting_thresholds": [0.9, 0.5, 0.9]})
    assert both.thresholds() == [0.5, 0.8, 0.9]
    assert load("litellm_settings: {}").litellm_settings.thresholds() == []


def test_team_settings_override_the_global_alerts(load, seed_env):
    settings = load(
        SEED_SNIPPETS["team-specific"]
        + """
        # global alerts, which teams inherit unless they set a key themselves
          alerting: ["slack"]
          alerting_thresholds: [0.5, 1.0]
          slack_webhook_url: os.environ/SLACK_WEBHOOK_URL
        """
    ).litellm_settings
    engineering = settings.alerts_for("team-engineering")
    assert engineering.alerting == ["slack"]
    assert engineering.thresholds() == [0.8]  # a team threshold replaces the global list
    assert engineering.slack_webhook_url.get_secret_value() == SEED_ENV["ENGINEERING_SLACK_WEBHOOK"]
    marketing = settings.alerts_for("team-marketing")
    assert (marketing.alerting, marketing.email_alerts_to) == (["email"], ["marketing@example.com"])
    assert marketing.slack_webhook_url.get_secret_value() == SEED_ENV["SLACK_WEBHOOK_URL"]  # inherited
    assert settings.alerts_for("team-without-settings").thresholds() == [0.5, 1.0]
    assert settings.alerts_for(None).alerting == ["slack"]


def test_database_url_from_the_environment(load, seed_env):
    general = load(SEED_SNIPPETS["troubleshooting database"]).general_settings
    assert general.database_url_info() == ("postgresql", SEED_ENV["DATABASE_URL"])
    assert general.store_model_in_db is True  # accepted; no effect


def test_prometheus_callback(load):
    assert load(SEED_SNIPPETS["prometheus"]).litellm_settings.success_callback == ["prometheus"]


# --- files ------------------------------------------------------------------------------------


def test_an_empty_or_comment_only_file_gives_the_defaults(load):
    assert load("") == SpendgateConfig()
    assert load("# nothing yet\n") == SpendgateConfig()
    assert parse_config(None) == SpendgateConfig()


def test_an_empty_section_gives_its_defaults(load):
    config = load("""
        litellm_settings:
        providers:
          # vllm: ...
        """)
    assert config == SpendgateConfig()


def test_defaults():
    config = SpendgateConfig()
    assert config.litellm_settings.max_budget is None
    assert config.general_settings.database_url_info() == ("sqlite", "spendgate.db")
    assert config.general_settings.on_ledger_error == "fail_closed"
    assert config.general_settings.default_max_output_tokens == 16384
    assert config.litellm_settings.smtp_port == 587


def test_the_example_config_needs_no_environment(monkeypatch):
    for name in list(os.environ):
        monkeypatch.delenv(name)
    config = load_config(REPO / "config" / "example.yaml")
    assert config.litellm_settings.max_budget == 100.0
    assert str(config.litellm_settings.budget_duration) == "30d"
    assert config.general_settings.database_url == "sqlite:///spendgate.db"
    assert config.general_settings.master_key.get_secret_value() == "sk-1234"
    assert config.pricing  # shows the pricing shape


def test_a_missing_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(caught.value)
    assert caught.value.problems == ["file not found"]


def test_a_yaml_syntax_error_names_the_file_and_line(load, tmp_path):
    with pytest.raises(ConfigError) as caught:
        load("""
            litellm_settings:
              max_budget: 10
             budget_duration: 1d
            """)
    assert str(tmp_path / "spendgate.yaml") in str(caught.value)
    assert caught.value.problems[0].startswith("line 4, column 2: ")


def test_a_duplicate_key_is_an_error_not_a_silent_override(load):
    # Pasting two seed snippets one after the other would otherwise drop the first budget.
    assert problems(load, SEED_SNIPPETS["global budget"] + SEED_SNIPPETS["prometheus"]) == [
        "line 6, column 1: duplicate key 'litellm_settings' (first at line 2)"
    ]


def test_the_top_level_must_be_a_mapping(load):
    assert problems(load, "- litellm_settings\n") == [
        "expected a mapping of sections at the top level, got a list"
    ]


# --- error messages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "litellm_settings: {budget_duration: 30x}",
            "litellm_settings.budget_duration: '30x' is not a duration (use 30s, 15m, 12h, 1d, 7d, 30d, 1mo)",
        ),
        ("general_settings: {maxbudget: 10}", "general_settings.maxbudget: unknown key"),
        ("litellm_settings: {max_budget: abc}", "litellm_settings.max_budget: expected a number, got 'abc'"),
        ("litellm_settings: {max_budget: -1}", "litellm_settings.max_budget: must be at least 0, got -1"),
        ("litellm_settings: {max_budget: .inf}", "litellm_settings.max_budget: expected a finite number, got inf"),
        ("litellm_settings: {alerting_threshold: 80}", "litellm_settings.alerting_threshold: must be at most 1, got 80"),
        (
            "litellm_settings: {alerting: [sms]}",
            "litellm_settings.alerting[0]: expected 'slack', 'webhook' or 'email', got 'sms'",
        ),
        (
            "litellm_settings: {alerting: [slack]}",
            "litellm_settings.slack_webhook_url: required when alerting includes 'slack'",
        ),
        (
            "litellm_settings: {email_alerts_to: [finance]}",
            "litellm_settings.email_alerts_to[0]: 'finance' is not an email address",
        ),
        ("providers: {vllm: {api_style: openai}}", "providers.vllm.host: required for a custom provider"),
        ("providers: {vllm: {host: 'localhost:8000'}}", "providers.vllm.api_style: required for a custom provider"),
        (
            "providers: {ollama: {host: 'http://localhost:11434', api_style: openai}}",
            "providers.ollama.host: expected a host name with an optional port, like llm.internal.example.com"
            " or localhost:11434 (no scheme or path), got 'http://localhost:11434'",
        ),
        (
            "pricing: {gpt-4.1-custom: {input_cost_per_token: 0.000001}}",
            'pricing["gpt-4.1-custom"].output_cost_per_token: required',
        ),
        ("litellm_settings: [max_budget]", "litellm_settings: expected a mapping, got a list"),
        (
            "litellm_settings: {default_team_settings: [{team_id: a}, {team_id: a}]}",
            "litellm_settings.default_team_settings[1].team_id: duplicate team_id (also in entry [0])",
        ),
    ],
)
def test_error_messages_name_the_key_path(load, yaml_text, message):
    assert problems(load, yaml_text) == [message]


def test_an_unset_environment_variable(load, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert problems(load, "providers: {openai: {api_key: os.environ/OPENAI_API_KEY}}") == [
        "providers.openai.api_key: environment variable OPENAI_API_KEY is not set"
    ]


def test_every_problem_is_reported_at_once(load, monkeypatch):
    for name in ("OPENAI_API_KEY", "TEAM_HOOK"):
        monkeypatch.delenv(name, raising=False)
    found = problems(load, """
        litellm_settings:
          max_budget: abc
          budget_duration: 30x
          default_team_settings:
            - team_id: t
              webhook_url: os.environ/TEAM_HOOK
        general_settings:
          maxbudget: 10
        providers:
          openai:
            api_key: os.environ/OPENAI_API_KEY
        """)
    assert found == [
        "litellm_settings.default_team_settings[0].webhook_url: environment variable TEAM_HOOK is not set",
        "providers.openai.api_key: environment variable OPENAI_API_KEY is not set",
        "litellm_settings.max_budget: expected a number, got 'abc'",
        "litellm_settings.budget_duration: '30x' is not a duration (use 30s, 15m, 12h, 1d, 7d, 30d, 1mo)",
        "general_settings.maxbudget: unknown key",
    ]


def test_the_message_is_a_header_then_one_problem_per_line(load):
    with pytest.raises(ConfigError) as caught:
        load("general_settings: {maxbudget: 10, unknown_keys: allow}")
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("invalid config ") and lines[0].endswith("spendgate.yaml (2 problems):")
    assert lines[1:] == [
        "general_settings.unknown_keys: expected 'track' or 'block', got 'allow'",
        "general_settings.maxbudget: unknown key",
    ]
    assert "pydantic" not in str(caught.value)


def test_built_in_providers_need_no_host(load):
    config = load("""
        providers:
          openai: {price_provider: openai}
          anthropic: {}
          ollama:
            host: LOCALHOST:11434
            api_style: openai
        """)
    assert config.providers["openai"].host is None
    assert config.providers["ollama"].host == "localhost:11434"


def test_custom_pricing(load):
    price = load("""
        pricing:
          llama-3.1-8b-instruct:
            input_cost_per_token: 1e-7
            output_cost_per_token: 0.0000002
            cache_read_input_token_cost: 0.00000001
            max_output_tokens: 8192
        """).pricing["llama-3.1-8b-instruct"]
    assert (price.input_cost_per_token, price.output_cost_per_token) == (1e-7, 2e-7)
    assert price.cache_creation_input_token_cost is None
    assert price.max_output_tokens == 8192


# --- database_url -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/var/lib/spendgate/ledger.db", ("sqlite", "/var/lib/spendgate/ledger.db")),
        ("ledger.db", ("sqlite", "ledger.db")),
        ("sqlite:///relative.db", ("sqlite", "relative.db")),
        ("sqlite:////abs/path.db", ("sqlite", "/abs/path.db")),
        ("postgresql://spend:pw@db:5432/spendgate", ("postgresql", "postgresql://spend:pw@db:5432/spendgate")),
        ("postgres://db/spendgate", ("postgresql", "postgres://db/spendgate")),
        ("postgresql:///spendgate?host=/tmp/pg", ("postgresql", "postgresql:///spendgate?host=/tmp/pg")),
    ],
)
def test_database_url_forms(url, expected):
    info = parse_config({"general_settings": {"database_url": url}}).general_settings.database_url_info()
    assert info == expected and isinstance(info, DatabaseTarget)


@pytest.mark.parametrize("url", ["mysql://root:pw@db/x", "sqlite:///", "sqlite://host/x.db", ""])
def test_unsupported_database_urls(url):
    with pytest.raises(ConfigError) as caught:
        parse_config({"general_settings": {"database_url": url}})
    [problem] = caught.value.problems
    assert problem.startswith("general_settings.database_url: ")
    assert "postgresql://..." in problem and "pw" not in problem


# --- secrets ----------------------------------------------------------------------------------

ALL_SECRETS = """
    litellm_settings:
      slack_webhook_url: os.environ/SECRET
      slack_alert_to_webhook_url: os.environ/SECRET
      webhook_url: os.environ/SECRET
      smtp_password: os.environ/SECRET
      default_team_settings:
        - team_id: t
          slack_webhook_url: os.environ/SECRET
          webhook_url: os.environ/SECRET
    general_settings:
      master_key: os.environ/SECRET
      database_url: postgresql://spend:os.environ-is-not-used-here@db/spendgate
    providers:
      openai:
        api_key: os.environ/SECRET
    """


def test_redacted_hides_every_secret(load, monkeypatch):
    monkeypatch.setenv("SECRET", SECRET)
    config = load(ALL_SECRETS)
    redacted = config.redacted()
    assert SECRET not in json.dumps(redacted)
    assert redacted["litellm_settings"]["webhook_url"] == MASK
    assert redacted["litellm_settings"]["default_team_settings"][0]["slack_webhook_url"] == MASK
    assert redacted["general_settings"]["master_key"] == MASK
    assert redacted["general_settings"]["database_url"] == f"postgresql://spend:{MASK}@db/spendgate"
    assert redacted["providers"]["openai"]["api_key"] == MASK
    assert redacted["litellm_settings"]["smtp_port"] == 587  # the effective config, defaults included
    assert parse_config(redacted).litellm_settings.smtp_password.get_secret_value() == MASK  # YAML shape


def test_redacted_is_the_yaml_shape(load, seed_env):
    redacted = load(SEED_SNIPPETS["global budget"]).redacted()
    assert redacted["litellm_settings"]["budget_duration"] == "30d"
    assert parse_config(redacted).litellm_settings.budget_duration == Duration(30, "d")


def test_repr_and_str_never_show_secrets(load, monkeypatch):
    monkeypatch.setenv("SECRET", SECRET)
    config = load(ALL_SECRETS)
    assert SECRET not in repr(config) and SECRET not in str(config)
    assert "os.environ-is-not-used-here" not in repr(config)


def test_secrets_stay_out_of_error_messages(load, monkeypatch):
    monkeypatch.setenv("SECRET", SECRET)
    with pytest.raises(ConfigError) as caught:
        load("""
            litellm_settings:
              max_budget: os.environ/SECRET
              budget_duration: os.environ/SECRET
              alerting: [os.environ/SECRET]
            general_settings:
              master_key: 8675309
              database_url: mysql://root:os.environ-is-not-used-here@db/x
              typo_key: os.environ/SECRET
            """)
    text = str(caught.value)
    assert SECRET not in text and "8675309" not in text and "os.environ-is-not-used-here" not in text
    assert caught.value.problems[:4] == [
        "litellm_settings.max_budget: expected a number, got the value of os.environ/SECRET",
        "litellm_settings.budget_duration: the value of os.environ/SECRET is not a duration"
        " (use 30s, 15m, 12h, 1d, 7d, 30d, 1mo)",
        "litellm_settings.alerting[0]: expected 'slack', 'webhook' or 'email', got the value of os.environ/SECRET",
        "general_settings.master_key: expected a string, got a number",
    ]


def test_yaml_errors_do_not_quote_the_line(load):
    with pytest.raises(ConfigError) as caught:
        load(f"general_settings:\n  master_key: {SECRET}: oops\n")
    assert SECRET not in str(caught.value)


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["30s", "15m", "12h", "1d", "7d", "30d", "1mo", "2mo"])
def test_duration_text_round_trips(text):
    assert str(Duration.parse(text)) == text


@pytest.mark.parametrize("text", ["30x", "0d", "-1d", "1w", "1.5h", "30 d", "d", "", "01d"])
def test_invalid_durations(text):
    with pytest.raises(ValueError, match="is not a duration"):
        Duration.parse(text)


def test_a_duration_field_accepts_text_and_dumps_text():
    class Window(BaseModel):
        every: Duration | None = None

    assert Window.model_validate({"every": "7d"}).every == Duration(7, "d")
    assert Window.model_validate({}).every is None
    assert Window(every=Duration(1, "mo")).model_dump(mode="json") == {"every": "1mo"}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (utc(2024, 1, 31), "1mo", utc(2024, 2, 29)),  # leap year
        (utc(2023, 1, 31), "1mo", utc(2023, 2, 28)),
        (utc(2024, 3, 31, 10, 30), "1mo", utc(2024, 4, 30, 10, 30)),
        (utc(2024, 11, 30), "2mo", utc(2025, 1, 30)),
        (utc(2024, 12, 31), "1mo", utc(2025, 1, 31)),
        (utc(2024, 1, 1), "30d", utc(2024, 1, 31)),
        (utc(2024, 1, 1), "12h", utc(2024, 1, 1, 12)),
        (utc(2024, 1, 1), "15m", utc(2024, 1, 1, 0, 15)),
        (utc(2024, 1, 1), "30s", utc(2024, 1, 1, 0, 0, 30)),
    ],
)
def test_add_to(start, duration, expected):
    assert Duration.parse(duration).add_to(start) == expected


def test_periods_roll_from_the_start():
    start, day = utc(2024, 4, 15, 10, 30), Duration(1, "d")
    assert next_boundary(start, day, start) == (start, utc(2024, 4, 16, 10, 30))
    assert next_boundary(start, day, utc(2024, 4, 18, 9)) == (utc(2024, 4, 17, 10, 30), utc(2024, 4, 18, 10, 30))
    # a boundary instant belongs to the period it starts
    assert next_boundary(start, day, utc(2024, 4, 18, 10, 30))[0] == utc(2024, 4, 18, 10, 30)


def test_monthly_periods_do_not_drift_after_a_short_month():
    start, month = utc(2024, 1, 31), Duration(1, "mo")
    assert next_boundary(start, month, utc(2024, 2, 10)) == (utc(2024, 1, 31), utc(2024, 2, 29))
    assert next_boundary(start, month, utc(2024, 3, 1)) == (utc(2024, 2, 29), utc(2024, 3, 31))  # not Mar 29
    assert next_boundary(start, month, utc(2024, 3, 31)) == (utc(2024, 3, 31), utc(2024, 4, 30))


def test_a_start_far_in_the_past_is_computed_not_looped(monkeypatch):
    now = utc(2026, 11, 29, 15, 52, 7, 250000)
    assert next_boundary(utc(1970, 1, 1), Duration(1, "s"), now) == (now.replace(microsecond=0), utc(2026, 11, 29, 15, 52, 8))
    calls = []
    original = Duration.add_to
    monkeypatch.setattr(Duration, "add_to", lambda self, *a: calls.append(a) or original(self, *a))
    period_start, reset_at = next_boundary(utc(1900, 1, 31), Duration(1, "mo"), now)
    assert (period_start, reset_at) == (utc(2026, 10, 31), utc(2026, 11, 30))
    assert len(calls) <= 6


def test_now_before_the_start_gets_the_earlier_period():
    start = utc(2024, 4, 15)
    assert next_boundary(start, Duration(7, "d"), start - timedelta(seconds=1)) == (utc(2024, 4, 8), start)
    assert next_boundary(start, Duration(1, "mo"), utc(2024, 4, 1)) == (utc(2024, 3, 15), start)


# --- the generated reference ------------------------------------------------------------------


def _models(model: type[BaseModel]):
    yield model
    for name, field in model.model_fields.items():
        if nested := reference._nested(name, field.annotation):
            yield from _models(nested[0])


def test_every_field_is_documented():
    undocumented = [
        f"{model.__name__}.{name}"
        for model in _models(SpendgateConfig)
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert undocumented == []


def test_the_committed_reference_is_up_to_date():
    committed = (REPO / "docs" / "config-reference.md").read_text()
    assert committed == reference.render(), "run `make docs` and commit docs/config-reference.md"
