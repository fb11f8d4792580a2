"""End to end: reported usage is not trusted blindly.

A response claiming more than its request could produce is recorded clamped to what was
possible, with the raw figure in `anomaly`; a row is always written and the hold always
released, whatever the numbers (2**63 overflowed SQLite before; 9e15 was a $1.35 billion
call that blocked the global budget until it reset).
"""

from __future__ import annotations

import json

import pytest
from e2e_helpers import Ledger

CONFIG = {"litellm_settings": {"max_budget": 100.0, "budget_duration": "30d"}}
HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("claimed", [2**63, 1e30, 9 * 10**15], ids=["2^63", "1e30", "9e15"])
def test_an_impossible_usage_report_is_recorded_clamped_and_holds_nothing(make_proxy, fake_provider, claimed):
    proxy = make_proxy(CONFIG)
    ledger = Ledger(proxy.ledger_path)
    since = ledger.mark()
    usage = {"prompt_tokens": claimed, "completion_tokens": 5, "total_tokens": claimed}
    client = proxy.openai_client()
    client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=HI, max_tokens=10, extra_headers={"x-fake-usage": json.dumps(usage)})
    row = ledger.row(since)
    assert row["input_tokens"] == 128_000  # gpt-4o's context window: no more input was possible
    assert json.loads(row["anomaly"]) == {"input_tokens": int(claimed)}
    # 128_000 x $2.50/M + 5 x $10/M
    assert row["cost_nanos"] == 320_050_000 and row["status"] == "ok"
    budget = ledger.settled()
    assert budget["spend_nanos"] == 320_050_000 and budget["reserved_nanos"] == 0
    assert "reported more than it could have used" in proxy.log_text()
    # the budget still serves the next call
    client.chat.completions.create(model="gpt-4o", messages=HI, max_tokens=10)
