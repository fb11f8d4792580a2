"""`make demo`: the whole story offline, no provider key needed.

Starts the fake provider from the tests, a real `mitmdump -s addon/budget.py` in front
of it (with api.openai.com mapped to the fake), and an OpenAI SDK client that spends
until the global budget blocks it; then prints what the ledger recorded.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

import openai
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_provider import start_fake_provider  # noqa: E402
from proxy import DEFAULT_SCRIPT, MitmProxy  # noqa: E402


def usd(nanos: int | None) -> str:
    return "unpriced" if nanos is None else f"${nanos / 1e9:,.6f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=0.05, help="global budget in USD (default 0.05)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="spendgate-demo-"))
    ledger = work / "ledger.db"
    config = {
        "litellm_settings": {"max_budget": args.budget, "budget_duration": "1d"},
        "general_settings": {"master_key": "sk-1234", "database_url": f"sqlite:///{ledger}"},
    }
    config_path = work / "budget.yaml"
    config_path.write_text(yaml.safe_dump(config))

    print(f"spendgate demo — global budget ${args.budget:.2f} per day, ledger {ledger}\n")
    with start_fake_provider() as fake, MitmProxy(
        fake.url, script=DEFAULT_SCRIPT, budget_config=config_path, workdir=work / "proxy"
    ) as proxy:
        print(f"fake provider  {fake.url}   (stands in for api.openai.com)")
        print(f"spendgate      {proxy.url}   (HTTPS_PROXY for the client)")
        print(f"admin API      {proxy.admin_url}\n")
        client = proxy.openai_client(api_key="sk-demo-developer-key-0001")
        # The fake reports 1000 prompt tokens; a real prompt of that size has ~4000 bytes,
        # and spendgate reserves by bytes (no token is shorter than one byte).
        context = "Summarise the quarterly figures. " * 125
        for n in range(1, 1000):
            try:
                reply = client.chat.completions.create(
                    model="gpt-4o", max_tokens=600, messages=[{"role": "user", "content": f"{context} question {n}"}]
                )
            except openai.RateLimitError as e:
                print(f"call {n:3d}: refused by spendgate — HTTP {e.status_code}")
                print(f"          {e.body['message']}")
                break
            u = reply.usage
            print(f"call {n:3d}: gpt-4o {u.prompt_tokens} in / {u.completion_tokens} out — served")
        admin = proxy.admin_client("sk-1234")
        health = admin.get("/health").json()

    with sqlite3.connect(ledger) as db:
        served, spend = db.execute(
            "SELECT COUNT(*), SUM(cost_nanos) FROM calls WHERE status != 'blocked'").fetchone()
        blocked = db.execute("SELECT COUNT(*) FROM calls WHERE status = 'blocked'").fetchone()[0]
        g = db.execute("SELECT spend_nanos, reserved_nanos, max_nanos, reset_at FROM budgets WHERE kind='global'").fetchone()
        last = db.execute("SELECT model, input_tokens, cache_read_tokens, output_tokens, reasoning_tokens, cost_nanos,"
                          " key_masked FROM calls WHERE status = 'ok' ORDER BY id DESC LIMIT 1").fetchone()
    print("\nWhat the ledger says")
    print(f"  calls served        {served}")
    print(f"  calls blocked       {blocked}")
    print(f"  spend (sum of rows) {usd(spend)}")
    print(f"  global budget       spend {usd(g[0])} / max {usd(g[2])}, held for calls in flight {usd(g[1])}")
    print(f"  budget resets       {g[3]}")
    if last:
        print(f"  one row             {last[0]}: {last[1]} input ({last[2]} cached), {last[3]} output "
              f"({last[4]} reasoning) = {usd(last[5])}, key {last[6]}")
    print(f"  admin /health       {health}")
    print(f"\n(the ledger stays at {ledger}; open it with sqlite3 or sqlite-utils)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
