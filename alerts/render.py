"""What each channel receives for an alert: Slack text and blocks, the webhook's JSON, an
email's subject, text and HTML. Pure formatting, so the payloads are tested as data.

The Slack text follows LiteLLM's documented alert line by line:

    🚨 Budget Alert
    Key: sk-1234...abcd
    Spend: $82.45 / $100.00 (82%)
    Budget Reset: 2024-04-15 10:30:00 UTC
    Consider increasing budget or optimizing usage.

and the webhook body carries exactly LiteLLM's documented fields, plus `scope`, `team_id`
and `user_id` (see docs/alerts.md for each field).
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from alerts.events import (
    BUDGET_EXCEEDED,
    PROJECTED_SPEND_ALERT,
    SOFT_BUDGET_ALERT,
    TEST_ALERT,
    USAGE_ANOMALY,
    Alert,
)
from ledger.model import NANOS_PER_USD, nanos_to_usd

HEADLINE = "🚨 Budget Alert"
ADVICE = "Consider increasing budget or optimizing usage."
ANOMALY_HEADLINE = "⚠️ Usage Anomaly"
ANOMALY_ADVICE = ("The provider's response claimed more usage than the request could produce: spendgate "
                  "recorded the figures clamped and kept the reported ones (calls.anomaly). Check the upstream.")
SCOPE_NAMES = {"global": "Proxy", "team": "Team", "user": "User", "key": "Key"}


def usd(nanos: int | None) -> str:
    """Dollars and cents as the seed writes them ($82.45); sub-dollar figures keep four
    decimals ($0.0073), as the proxy's 429 replies do."""
    value = (nanos or 0) / NANOS_PER_USD
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


def percent(a: Alert) -> int | None:
    """Whole percent of max_budget spent, rounded down (99.6 % is not "100%")."""
    if not a.max_nanos:
        return None
    return a.spend_nanos * 100 // a.max_nanos


def when(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC") if dt else "never"


def stamp(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def who(a: Alert) -> str:
    """`Key: sk-12...abcd`, `Team: engineering`, `User: john@example.com`, `Proxy: global budget`."""
    s = a.subject
    if a.scope == "key":
        name = s.key_masked or s.label
        if s.key_alias:
            name += f" ({s.key_alias})"
    elif a.scope == "global":
        name = "global budget"
    else:
        name = s.label if s.label == a.scope_id else f"{s.label} ({a.scope_id})"
    return f"{SCOPE_NAMES.get(a.scope, a.scope.title())}: {name}"


def spend_line(a: Alert) -> str:
    if a.max_nanos is None:
        return f"Spend: {usd(a.spend_nanos)} (no max budget)"
    return f"Spend: {usd(a.spend_nanos)} / {usd(a.max_nanos)} ({percent(a)}%)"


def detail(a: Alert) -> str | None:
    """The line that says what happened, for every event but a plain threshold crossing
    (whose Spend line already says it, as in the seed)."""
    if a.event == SOFT_BUDGET_ALERT:
        return f"Soft budget of {usd(a.soft_nanos)} reached (requests are not blocked)."
    if a.event == BUDGET_EXCEEDED:
        return "Budget exceeded: requests are blocked until the budget resets or is raised."
    if a.event == PROJECTED_SPEND_ALERT:
        share = f" ({a.projected_nanos * 100 // a.max_nanos}% of budget)" if a.max_nanos else ""
        runs_out = (f"at this rate the budget runs out {when(a.exhausted_at)}" if a.exhausted_at
                    else "the budget should last until the reset")
        return f"Projected spend: {usd(a.projected_nanos)} by the reset{share}; {runs_out}."
    if a.event == TEST_ALERT:
        return "This is a test alert from spendgate (POST /alerts/test): the channel works."
    return None


def _figure(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def anomaly_lines(a: Alert) -> list[str]:
    """A usage anomaly: who, which call, each figure as reported and as recorded."""
    facts = a.anomaly or {}
    recorded = facts.get("recorded") or {}
    figures = ", ".join(f"{name} {_figure(raw)} → {_figure(recorded.get(name))}"
                        for name, raw in (facts.get("reported") or {}).items())
    call = " ".join(str(facts[k]) for k in ("provider", "model", "path") if facts.get(k))
    return [ANOMALY_HEADLINE, who(a), f"Call: {call} (id {facts.get('call_id')})",
            f"Reported → recorded: {figures}", spend_line(a),
            "At most one such alert per key and window; every call's figures are in the ledger.", ANOMALY_ADVICE]


def text_lines(a: Alert) -> list[str]:
    if a.event == USAGE_ANOMALY:
        return anomaly_lines(a)
    lines = [HEADLINE if a.event != TEST_ALERT else f"{HEADLINE} (test)", who(a), spend_line(a)]
    extra = detail(a)
    if extra:
        lines.append(extra)
    lines += [f"Budget Reset: {when(a.reset_at)}", ADVICE]
    return lines


def slack(a: Alert) -> dict[str, Any]:
    """Incoming-webhook body: the seed's text (also the notification fallback) and Block Kit
    blocks with the same facts laid out."""
    lines = text_lines(a)
    if a.event == USAGE_ANOMALY:
        fields = [lines[1], lines[2], lines[3], f"Event: {a.event}"]
    else:
        fields = [lines[1], lines[2], f"Budget Reset: {when(a.reset_at)}", f"Event: {a.event}"]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": lines[0], "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _bold_label(f)} for f in fields]},
    ]
    extra = detail(a)
    if extra:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": extra}})
    advice = ANOMALY_ADVICE if a.event == USAGE_ANOMALY else ADVICE
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": advice}]})
    return {"text": "\n".join(lines), "blocks": blocks}


def _bold_label(line: str) -> str:
    label, _, value = line.partition(": ")
    return f"*{label}:*\n{value}"


def webhook(a: Alert) -> dict[str, Any]:
    """The seed's webhook payload. `budget_threshold` is in USD like `spend` and
    `max_budget` (threshold × max_budget; the soft budget for soft_budget_alert);
    `percentage` is spend / max_budget as a fraction."""
    s = a.subject
    if a.event == SOFT_BUDGET_ALERT:
        threshold_nanos = a.soft_nanos
    elif a.max_nanos is not None and a.threshold is not None:
        threshold_nanos = round(a.threshold * a.max_nanos)
    else:
        threshold_nanos = None
    body: dict[str, Any] = {
        "event": a.event,
        "timestamp": stamp(a.raised_at),
        "key": s.key_masked if a.scope == "key" and s.key_masked else s.label,
        "key_alias": s.key_alias,
        "spend": nanos_to_usd(a.spend_nanos),
        "max_budget": nanos_to_usd(a.max_nanos),
        "budget_threshold": nanos_to_usd(threshold_nanos),
        "percentage": round(a.spend_nanos / a.max_nanos, 4) if a.max_nanos else None,
        "budget_reset_at": stamp(a.reset_at),
        "metadata": dict(s.metadata),
        "scope": a.scope,
        "team_id": s.team_id,
        "user_id": s.user_id,
    }
    if a.event == PROJECTED_SPEND_ALERT:
        body["projected_spend"] = nanos_to_usd(a.projected_nanos)
        body["projected_exhausted_at"] = stamp(a.exhausted_at)
    if a.event == USAGE_ANOMALY:
        body["anomaly"] = a.anomaly
    return body


def email_subject(a: Alert) -> str:
    if a.event == USAGE_ANOMALY:
        facts = a.anomaly or {}
        return f"{ANOMALY_HEADLINE}: {who(a)} ({facts.get('provider')} {facts.get('model') or ''})".replace(" )", ")")
    pct = percent(a)
    at = f" at {pct}% of {usd(a.max_nanos)}" if pct is not None else f" spent {usd(a.spend_nanos)}"
    kind = {SOFT_BUDGET_ALERT: "soft budget reached", BUDGET_EXCEEDED: "budget exceeded",
            PROJECTED_SPEND_ALERT: "projected to overspend", TEST_ALERT: "test"}.get(a.event)
    return f"{HEADLINE}: {who(a)}{at}" + (f" ({kind})" if kind else "")


def email_text(a: Alert) -> str:
    return "\n".join(text_lines(a)) + "\n"


def email_html(a: Alert) -> str:
    lines = text_lines(a)
    advice = lines[-1]
    rows = "".join(
        f"<tr><th align='left' style='padding-right:1em'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, _, v in (line.partition(": ") for line in lines[1:-1])
        if v
    )
    notes = "".join(f"<p>{html.escape(line)}</p>" for line in lines[1:-1] if ": " not in line)
    return (
        f"<html><body><h2>{html.escape(lines[0])}</h2><table>{rows}</table>{notes}"
        f"<p><em>{html.escape(advice)}</em></p></body></html>"
    )
