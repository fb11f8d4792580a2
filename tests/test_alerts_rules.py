"""Alert rules as pure functions: thresholds, soft budgets, 100 %, refusals, projections.

The clock is a parameter (`now`), so every case pins the time it is evaluated at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts import rules
from alerts.events import BUDGET_ALERT, BUDGET_EXCEEDED, PROJECTED_SPEND_ALERT, SOFT_BUDGET_ALERT, Subject
from config.load import parse_config
from ledger.model import Denial, ScopeState, SpendChange

USD = 1_000_000_000
T0 = datetime(2024, 4, 1, 10, 30, tzinfo=UTC)
RESET = T0 + timedelta(days=30)


def state(spend, max_usd=100, soft_usd=None, kind="global", id_="global", period_start=T0, reset_at=RESET):
    return ScopeState(kind, id_, None if max_usd is None else max_usd * USD,
                      None if soft_usd is None else soft_usd * USD, "30d" if reset_at else None,
                      round(spend * USD), 0, period_start, reset_at)


class Ctx:
    """The rules' context from a config dict and a fixed directory of subjects."""

    def __init__(self, litellm_settings, subjects=None):
        self.config = parse_config({"litellm_settings": litellm_settings})
        self.subjects = subjects or {}

    def subject(self, kind, id_):
        return self.subjects.get((kind, id_), Subject(label=id_))

    def routing(self, team_id):
        return self.config.litellm_settings.alerts_for(team_id)


SLACK = {"alerting": ["slack"], "slack_webhook_url": "https://hooks.example/x"}
FOUR = Ctx({**SLACK, "alerting_thresholds": [0.5, 0.75, 0.9, 1.0]})


def events(candidates):
    return [(c.alert.event, c.alert.level) for c in candidates]


def settle(ctx, before, after, now=T0 + timedelta(days=1), projection=None, **kw):
    return rules.from_settlement([SpendChange(state(after, **kw), round(before * USD))], ctx, now, projection)


def test_each_threshold_alerts_when_one_settlement_crosses_it():
    assert events(settle(FOUR, 0, 49.99)) == []
    assert events(settle(FOUR, 49.99, 50)) == [(BUDGET_ALERT, "0.5")]  # exactly 50 % crosses
    assert events(settle(FOUR, 50, 74)) == []  # already past 50 %: not again
    assert events(settle(FOUR, 74, 76)) == [(BUDGET_ALERT, "0.75")]
    assert events(settle(FOUR, 89.5, 90)) == [(BUDGET_ALERT, "0.9")]


def test_a_jump_over_several_thresholds_raises_each():
    assert events(settle(FOUR, 10, 95)) == [(BUDGET_ALERT, "0.5"), (BUDGET_ALERT, "0.75"), (BUDGET_ALERT, "0.9")]


def test_reaching_100_percent_is_budget_exceeded_and_a_1_0_threshold_is_that_alert():
    assert events(settle(FOUR, 95, 100)) == [(BUDGET_EXCEEDED, "1")]
    assert events(settle(FOUR, 95, 130)) == [(BUDGET_EXCEEDED, "1")]
    # without any threshold configured, 100 % still alerts
    assert events(settle(Ctx(SLACK), 95, 100)) == [(BUDGET_EXCEEDED, "1")]


def test_thresholds_read_as_written_not_as_binary_floats():
    assert rules.fraction_of(0.9, 100 * USD) == 90 * USD  # 0.9 as a float is a hair above 9/10
    assert rules.fraction_of(0.7, 3) == 3  # 2.1 rounds up: spend 2 has not reached 70 % of 3


def test_alerting_threshold_and_alerting_thresholds_are_merged():
    ctx = Ctx({**SLACK, "alerting_threshold": 0.8, "alerting_thresholds": [0.5]})
    assert events(settle(ctx, 0, 85)) == [(BUDGET_ALERT, "0.5"), (BUDGET_ALERT, "0.8")]


def test_no_channels_no_alerts():
    assert settle(Ctx({"alerting_thresholds": [0.5]}), 0, 100) == []


def test_scopes_without_a_budget_never_alert():
    assert settle(FOUR, 0, 1000, max_usd=None) == []


def test_soft_budget_crossing_alerts_once_whatever_the_thresholds():
    found = settle(FOUR, 70, 81, soft_usd=80, kind="key", id_="h1")
    assert events(found) == [(BUDGET_ALERT, "0.75"), (SOFT_BUDGET_ALERT, f"soft={80 * USD}")]
    soft = found[1].alert
    assert soft.threshold == 0.8 and soft.soft_nanos == 80 * USD
    assert events(settle(FOUR, 81, 85, soft_usd=80, kind="key", id_="h1")) == []


def test_soft_budget_without_max_budget():
    found = settle(Ctx(SLACK), 5, 12, max_usd=None, soft_usd=10, kind="user", id_="u")
    assert events(found) == [(SOFT_BUDGET_ALERT, f"soft={10 * USD}")]
    assert found[0].alert.threshold is None


def test_denial_is_budget_exceeded_with_the_same_dedupe_key_as_reaching_100_percent():
    st = state(97)
    [denied] = rules.from_denial(Denial(st, 5 * USD), FOUR, T0 + timedelta(days=2))
    [reached] = settle(FOUR, 99, 100)
    assert denied.alert.event == BUDGET_EXCEEDED
    assert denied.alert.dedupe_key == reached.alert.dedupe_key


def test_dedupe_key_changes_with_the_period_and_the_max_budget():
    [a] = settle(FOUR, 40, 60)
    [b] = settle(FOUR, 40, 60, now=T0 + timedelta(days=2))
    [next_period] = settle(FOUR, 40, 60, period_start=RESET, reset_at=RESET + timedelta(days=30))
    [raised] = settle(FOUR, 80, 120, max_usd=200)
    assert a.alert.dedupe_key == b.alert.dedupe_key  # same period: the same alert
    assert next_period.alert.dedupe_key != a.alert.dedupe_key
    assert raised.alert.level == "0.5" and raised.alert.dedupe_key != a.alert.dedupe_key


def test_team_settings_route_the_team_its_keys_and_its_users():
    ctx = Ctx(
        {**SLACK, "alerting_threshold": 0.5,
         "default_team_settings": [{"team_id": "team-marketing", "alerting": ["email"], "alerting_threshold": 0.9,
                                    "email_alerts_to": ["marketing@example.com"]}]},
        subjects={("key", "k"): Subject(label="k", team_id="team-marketing", route_team="team-marketing"),
                  ("team", "team-marketing"): Subject(label="marketing", route_team="team-marketing")},
    )
    changes = [SpendChange(state(60), 40 * USD),
               SpendChange(state(95, kind="team", id_="team-marketing"), 40 * USD),
               SpendChange(state(95, kind="key", id_="k"), 40 * USD)]
    found = rules.from_settlement(changes, ctx, T0 + timedelta(days=1))
    assert [(c.alert.scope, c.alert.level, c.channels) for c in found] == [
        ("global", "0.5", ("slack",)), ("team", "0.9", ("email",)), ("key", "0.9", ("email",))]


# --- projected spend ---------------------------------------------------------------------------

PROJ = rules.Projection(threshold=0.9)


def test_projection_alerts_with_projected_spend_and_the_run_out_date():
    # 6 of 30 days gone, $40 spent: $200 projected; $100 runs out on day 15
    now = T0 + timedelta(days=6)
    [c] = settle(Ctx(SLACK), 30, 40, now=now, projection=PROJ)
    a = c.alert
    assert (a.event, a.level, a.projected_nanos) == (PROJECTED_SPEND_ALERT, "0.9", 200 * USD)
    assert a.exhausted_at == T0 + timedelta(days=15)


def test_projection_below_the_threshold_or_too_early_or_already_spent_is_quiet():
    assert settle(Ctx(SLACK), 20, 25, now=T0 + timedelta(days=10), projection=PROJ) == []  # $75 projected
    # day 1 of 30 is under the default 10 %: $5 in one day would project $150
    assert settle(Ctx(SLACK), 4, 5, now=T0 + timedelta(days=1), projection=PROJ) == []
    assert settle(Ctx(SLACK), 4, 5, now=T0 + timedelta(days=1),
                  projection=rules.Projection(0.9, min_elapsed=0.01)) != []
    # no period: nothing to project to
    assert settle(Ctx(SLACK), 4, 5, now=T0 + timedelta(days=10), projection=PROJ, reset_at=None) == []


def test_projection_at_exactly_the_threshold_fires_and_lasts_the_period():
    now = T0 + timedelta(days=15)
    [c] = settle(Ctx(SLACK), 40, 45, now=now, projection=PROJ)  # $90 projected = 0.9 × $100
    assert c.alert.projected_nanos == 90 * USD
    assert c.alert.exhausted_at is None  # at this rate $100 lasts past the reset


def test_projection_is_evaluated_with_the_clock_given():
    # same spend, later in the period: the rate is lower
    assert settle(Ctx(SLACK), 35, 40, now=T0 + timedelta(days=6), projection=PROJ) != []
    assert settle(Ctx(SLACK), 35, 40, now=T0 + timedelta(days=20), projection=PROJ) == []


@pytest.mark.parametrize("spend", [100, 120])
def test_no_projection_once_the_budget_is_spent(spend):
    found = settle(Ctx(SLACK), 99, spend, now=T0 + timedelta(days=6), projection=PROJ)
    assert events(found) == [(BUDGET_EXCEEDED, "1")]


# --- usage anomalies ---------------------------------------------------------------------------


def anomalous_call(key="k1", uid="c1"):
    from core.usage import TokenUsage
    from ledger.model import CallRecord

    return CallRecord(started_at=T0, provider="openai", endpoint="chat", path="/v1/chat/completions",
                      model="gpt-4o", usage=TokenUsage(input_tokens=128_000, output_tokens=5),
                      cost_nanos=320_050_000, key_hash=key, uid=uid,
                      anomaly={"input_tokens": 9 * 10**15, "cost_nanos": 10**20})


def test_an_anomalous_call_alerts_about_its_key_once_per_window_budget_or_not():
    from alerts.events import USAGE_ANOMALY

    ctx = Ctx(SLACK, {("key", "k1"): Subject(label="alpha", key_masked="sk-k1...", route_team=None)})
    now = datetime(2024, 4, 1, 10, 59, 59, tzinfo=UTC)
    [c] = rules.from_anomaly(anomalous_call(), [], ctx, now)
    a = c.alert
    assert (a.event, a.scope, a.scope_id, a.max_nanos, c.channels) == (USAGE_ANOMALY, "key", "k1", None, ("slack",))
    assert a.period_start == datetime(2024, 4, 1, 10, tzinfo=UTC)  # the hour it falls in
    assert a.anomaly == {"call_id": "c1", "provider": "openai", "model": "gpt-4o", "path": "/v1/chat/completions",
                         "reported": {"input_tokens": 9 * 10**15, "cost_nanos": 10**20},
                         "recorded": {"input_tokens": 128_000, "cost_nanos": 320_050_000}}
    # another call of the key in the same hour: the same dedupe key (the outbox keeps one);
    # the next hour, or another key, or window 0: a new alert
    same = rules.from_anomaly(anomalous_call(uid="c2"), [], ctx, now - timedelta(minutes=59))[0].alert
    assert same.dedupe_key == a.dedupe_key
    assert rules.from_anomaly(anomalous_call(), [], ctx, now + timedelta(seconds=1))[0].alert.dedupe_key != a.dedupe_key
    assert rules.from_anomaly(anomalous_call("k2"), [], ctx, now)[0].alert.dedupe_key != a.dedupe_key
    per_call = [rules.from_anomaly(anomalous_call(uid=u), [], ctx, now, window=0)[0].alert.dedupe_key for u in "ab"]
    assert per_call[0] != per_call[1]
    # with the key's budget in the settlement, the alert says where the key stands
    with_budget = rules.from_anomaly(anomalous_call(), [SpendChange(state(12, kind="key", id_="k1"), 0)], ctx, now)
    assert (with_budget[0].alert.spend_nanos, with_budget[0].alert.max_nanos) == (12 * USD, 100 * USD)


def test_an_anomaly_without_a_key_is_the_global_scopes_and_none_without_a_channel():
    call = anomalous_call(key=None)
    assert [c.alert.scope for c in rules.from_anomaly(call, [], Ctx(SLACK), T0)] == ["global"]
    assert rules.from_anomaly(call, [], Ctx({}), T0) == []
    call.anomaly = None
    assert rules.from_anomaly(call, [], Ctx(SLACK), T0) == []
