"""The seed's admin commands, run as written against a real mitmdump's admin port.

Every `curl` below is copied from the seed (../shared/seed/litellm-budgets-and-alerts.txt)
character for character. Before running one, only two things change:
  - `http://localhost:4000` becomes this proxy's admin URL;
  - the `# ...` annotations the seed writes inside JSON bodies (`"soft_budget": 80.0, # Alert
    at $80`) are removed: they are documentation, not JSON (LiteLLM rejects them too).
Commands piped into `jq` run through the real jq when it is installed, else through the
same filter evaluated in Python (force that with SPENDGATE_TEST_NO_JQ=1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from e2e_helpers import module_proxy, wait_for
from proxy import MitmProxy

MASTER = "sk-1234"
REAL_OPENAI = "sk-real-openai-upstream-0000"
CALL_NANOS = 7_250_000  # gpt-4o at the fake's default usage (tests/fake_provider.py)
CONFIG = {
    "general_settings": {"master_key": MASTER},
    "litellm_settings": {
        "max_budget": 1000.0,
        "budget_duration": "30d",
        "alerting": ["slack"],
        "alerting_threshold": 0.8,
        "slack_webhook_url": "http://127.0.0.1:9/slack",  # nothing listens: alerts stay local
    },
    "providers": {"openai": {"api_key": REAL_OPENAI}},
}

# --- the seed, verbatim -------------------------------------------------------------------------

KEY_BUDGET = """curl -X POST 'http://localhost:4000/key/generate' \\
-H 'Authorization: Bearer sk-1234' \\
-H 'Content-Type: application/json' \\
-d '{
"models": ["gpt-3.5-turbo"],
"max_budget": 100.0,
"budget_duration": "30d"
}'"""

TEAM_BUDGET = """curl -X POST 'http://localhost:4000/team/new' \\
-H 'Authorization: Bearer sk-1234' \\
-H 'Content-Type: application/json' \\
-d '{
"team_alias": "engineering",
"max_budget": 1000.0,
"budget_duration": "30d"
}'"""

USER_BUDGET = """curl -X POST 'http://localhost:4000/user/new' \\
-H 'Authorization: Bearer sk-1234' \\
-H 'Content-Type: application/json' \\
-d '{
"user_id": "john@example.com",
"max_budget": 50.0,
"budget_duration": "30d"
}'"""

SOFT_BUDGET = """curl -X POST 'http://localhost:4000/key/generate' \\
-H 'Authorization: Bearer sk-1234' \\
-H 'Content-Type: application/json' \\
-d '{
"models": ["gpt-3.5-turbo"],
"max_budget": 100.0,
"soft_budget": 80.0, # Alert at $80
"budget_duration": "30d"
}'"""

MANUAL_RESET = """curl -X POST 'http://localhost:4000/key/update' \\
-H 'Authorization: Bearer sk-1234' \\
-H 'Content-Type: application/json' \\
-d '{
"key": "sk-1234567890abcdef",
"spend": 0.0 # Reset spend to 0
}'"""

VIEW_KEY_SPEND = """curl -X GET 'http://localhost:4000/key/info' \\
-H 'Authorization: Bearer sk-1234567890abcdef'"""

VIEW_ALL_KEYS = """curl -X GET 'http://localhost:4000/spend/keys' \\
-H 'Authorization: Bearer sk-1234'"""

VIEW_TEAMS = """curl -X GET 'http://localhost:4000/spend/teams' \\
-H 'Authorization: Bearer sk-1234'"""

VIEW_USERS = """curl -X GET 'http://localhost:4000/spend/users' \\
-H 'Authorization: Bearer sk-1234'"""

DAILY_CHECK = """# Daily spend check
curl -X GET 'http://localhost:4000/spend/keys' \\
-H 'Authorization: Bearer sk-1234' \\
| jq '.[] | select(.spend > .max_budget * 0.8)'"""

TEAM_BUDGETS = """# Engineering team
curl -X POST 'http://localhost:4000/team/new' \\
-d '{
"team_alias": "engineering",
"max_budget": 5000.0,
"budget_duration": "30d"
}'
# Marketing team
curl -X POST 'http://localhost:4000/team/new' \\
-d '{
"team_alias": "marketing",
"max_budget": 1000.0,
"budget_duration": "30d"
}'"""

METADATA = """{
"metadata": {
"project": "chatbot-v2",
"cost_center": "engineering",
"environment": "production"
}
}"""

CONFIG_ALERTING = """# Verify alerting is enabled
curl -X GET 'http://localhost:4000/config' \\
-H 'Authorization: Bearer sk-1234' \\
| jq '.litellm_settings.alerting'"""

BUDGET_NOT_RESETTING = """curl -X GET 'http://localhost:4000/key/info' \\
-H 'Authorization: Bearer sk-1234567890abcdef' \\
| jq '.budget_reset_at'"""

SEED_KEY = "sk-1234567890abcdef"


# --- running them ------------------------------------------------------------------------------


def runnable(command: str) -> str:
    """Drop the seed's `# ...` notes after a JSON member (lines starting with a quote)."""
    return re.sub(r'(?m)^(".*?)\s+#[^\n]*$', r"\1", command)


def _py_filter(expr: str, doc):
    """The seed's jq filters, for machines without jq (same errors on null arithmetic)."""
    if expr == ".[] | select(.spend > .max_budget * 0.8)":
        return [i for i in doc if i.get("spend") > i.get("max_budget") * 0.8]
    if expr == ".litellm_settings.alerting":
        return [doc["litellm_settings"]["alerting"]]
    if expr == ".budget_reset_at":
        return [doc.get("budget_reset_at")]
    raise AssertionError(f"no Python stand-in for jq {expr!r}")


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    def json(self):
        return json.loads(self.stdout)

    def docs(self) -> list:
        """Every JSON document printed (jq prints one per selected item)."""
        dec, text, out, i = json.JSONDecoder(), self.stdout.strip(), [], 0
        while i < len(text):
            doc, i = dec.raw_decode(text, i)
            out.append(doc)
            while i < len(text) and text[i].isspace():
                i += 1
        return out


def run(proxy: MitmProxy, command: str) -> Ran:
    script = runnable(command).replace("http://localhost:4000", proxy.admin_url)
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    jq_expr = None
    if (shutil.which("jq") is None or os.environ.get("SPENDGATE_TEST_NO_JQ")) and "| jq '" in script:
        script, _, tail = script.rpartition("| jq '")
        jq_expr = tail.rstrip().removesuffix("'")
        script = script.rstrip().removesuffix("\\")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True, text=True,
                          timeout=30, env=env)
    if jq_expr is None:
        return Ran(done.returncode, done.stdout, done.stderr)
    try:
        out = _py_filter(jq_expr, json.loads(done.stdout))
    except TypeError as e:  # what jq reports as "cannot be multiplied"
        return Ran(5, "", f"jq: error: {e}")
    return Ran(done.returncode, "\n".join(json.dumps(d) for d in out), done.stderr)


# --- the proxy ---------------------------------------------------------------------------------


proxy = module_proxy(CONFIG)


@pytest.fixture(scope="module")
def seed_key(admin):
    """The seed's example key sk-1234567890abcdef, made with an explicit `key` as LiteLLM allows."""
    r = admin.post("/key/generate", json={"key": SEED_KEY, "models": ["gpt-3.5-turbo", "gpt-4o"],
                                          "max_budget": 100.0, "budget_duration": "30d"})
    assert r.status_code == 200, r.text
    return r.json()


def chat(proxy, key: str, n: int = 1) -> None:
    client = proxy.openai_client(api_key=key)
    for _ in range(n):
        client.chat.completions.create(model="gpt-4o", max_tokens=500, messages=[{"role": "user", "content": "hi"}])


def ledger_rows(proxy, **where) -> list[dict]:
    clause = " AND ".join(f"{k} = ?" for k in where) or "1"
    with sqlite3.connect(proxy.ledger_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM calls WHERE {clause} ORDER BY id", list(where.values()))]


def settled(proxy, n: int, **where) -> list[dict]:
    """The ledger rows once n of them are there (settlement is asynchronous)."""
    return wait_for(lambda: (lambda rows: rows if len(rows) >= n else None)(ledger_rows(proxy, **where))) or []


def about(when: str, expected: datetime, slack: float = 120) -> bool:
    got = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return abs((got - expected).total_seconds()) < slack


# --- tests -------------------------------------------------------------------------------------


def test_the_comment_stripping_only_removes_the_seeds_annotations():
    assert runnable(SOFT_BUDGET) == SOFT_BUDGET.replace(" # Alert at $80", "")
    assert runnable(MANUAL_RESET) == MANUAL_RESET.replace(" # Reset spend to 0", "")
    for command in (KEY_BUDGET, TEAM_BUDGET, USER_BUDGET, TEAM_BUDGETS, DAILY_CHECK, CONFIG_ALERTING):
        assert runnable(command) == command


def test_key_budget(proxy):
    r = run(proxy, KEY_BUDGET)
    assert r.returncode == 0, r.stderr
    body = r.json()
    raw = body["key"]
    assert raw.startswith("sk-") and len(raw) > 20
    assert re.fullmatch(r"[0-9a-f]{64}", body["token"])
    assert (body["models"], body["max_budget"], body["budget_duration"], body["spend"]) == (
        ["gpt-3.5-turbo"], 100.0, "30d", 0.0)
    assert about(body["budget_reset_at"], datetime.now(UTC) + timedelta(days=30))
    assert body["key_name"] == f"{raw[:5]}...{raw[-4:]}"
    # only the hash is stored: the raw key is nowhere in the ledger file
    with sqlite3.connect(proxy.ledger_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(FULL)")
        stored = conn.execute("SELECT hash, issued FROM keys WHERE hash = ?", (body["token"],)).fetchone()
    assert stored == (body["token"], 1)
    for path in proxy.ledger_path.parent.glob("ledger.db*"):
        assert raw.encode() not in path.read_bytes()


def test_team_budget(proxy, admin):
    r = run(proxy, TEAM_BUDGET)
    assert r.returncode == 0, r.stderr
    team = r.json()
    assert team["team_id"] and team["team_alias"] == "engineering"
    assert (team["max_budget"], team["budget_duration"], team["spend"]) == (1000.0, "30d", 0.0)
    info = admin.get("/team/info", params={"team_id": team["team_id"]}).json()
    assert info["team_info"]["team_alias"] == "engineering" and info["max_budget"] == 1000.0


def test_user_budget(proxy, admin):
    r = run(proxy, USER_BUDGET)
    assert r.returncode == 0, r.stderr
    user = r.json()
    assert (user["user_id"], user["max_budget"], user["budget_duration"]) == ("john@example.com", 50.0, "30d")
    assert user["key"].startswith("sk-")  # /user/new returns a key for the user, as LiteLLM
    info = admin.get("/user/info", params={"user_id": "john@example.com"}).json()
    assert info["max_budget"] == 50.0
    assert [k["token"] for k in info["keys"]] == [user["token"]]
    assert info["keys"][0]["user_id"] == "john@example.com"


def test_soft_budget(proxy, admin):
    r = run(proxy, SOFT_BUDGET)
    assert r.returncode == 0, r.stderr
    body = r.json()
    assert (body["max_budget"], body["soft_budget"]) == (100.0, 80.0)
    info = admin.get("/key/info", params={"key": body["token"]}).json()
    assert (info["soft_budget"], info["info"]["soft_budget"]) == (80.0, 80.0)


def test_view_key_spend_with_the_keys_own_bearer_then_manual_reset(proxy, seed_key):
    chat(proxy, SEED_KEY, 2)
    settled(proxy, 2, key_hash=seed_key["token"])
    r = run(proxy, VIEW_KEY_SPEND)
    assert r.returncode == 0, r.stderr
    info = r.json()
    assert info["key"] == "sk-12...cdef"  # masked, like the seed's "sk-1234...def"
    assert info["spend"] == 2 * CALL_NANOS / 1e9
    assert (info["max_budget"], info["models"]) == (100.0, ["gpt-3.5-turbo", "gpt-4o"])
    reset_at = info["budget_reset_at"]
    assert about(reset_at, datetime.now(UTC) + timedelta(days=30))
    for field in ("soft_budget", "key_alias", "team_id", "user_id", "metadata"):
        assert field in info and info["info"][field] == info[field]
    assert SEED_KEY not in r.stdout

    r = run(proxy, MANUAL_RESET)
    assert r.returncode == 0, r.stderr
    assert r.json()["spend"] == 0.0 and r.json()["budget_reset_at"] == reset_at
    after = run(proxy, VIEW_KEY_SPEND).json()
    assert after["spend"] == 0.0 and after["budget_reset_at"] == reset_at
    # the calls stay in the ledger; the new period starts after them
    assert len(ledger_rows(proxy, key_hash=seed_key["token"])) == 2
    chat(proxy, SEED_KEY)
    settled(proxy, 3, key_hash=seed_key["token"])
    assert run(proxy, VIEW_KEY_SPEND).json()["spend"] == CALL_NANOS / 1e9

    r = run(proxy, BUDGET_NOT_RESETTING)
    assert r.returncode == 0, r.stderr
    assert r.docs() == [reset_at]


def test_spend_lists_through_the_daily_check(proxy, admin):
    """The seed's jq filter over every list, with unbudgeted provider keys in the ledger."""
    team = admin.post("/team/new", json={"team_alias": "hot-team", "max_budget": 0.008}).json()
    user = admin.post("/user/new", json={"user_id": "hot@example.com", "max_budget": 0.008,
                                         "team_id": team["team_id"]}).json()
    hot = admin.post("/key/generate", json={"key_alias": "hot-key", "max_budget": 0.008,
                                           "user_id": "hot@example.com", "team_id": team["team_id"]}).json()
    cool = admin.post("/key/generate", json={"key_alias": "cool-key", "max_budget": 50.0}).json()
    chat(proxy, hot["key"])
    chat(proxy, cool["key"])
    chat(proxy, "sk-dev-unbudgeted-0000000001")  # a provider key: no max_budget
    settled(proxy, 1, key_hash=hot["token"])
    settled(proxy, 1, key_hash=cool["token"])

    r = run(proxy, DAILY_CHECK)
    assert r.returncode == 0 and "error" not in r.stderr, r.stderr
    flagged = r.docs()
    assert "hot-key" in [k["key_alias"] for k in flagged] and "cool-key" not in [k["key_alias"] for k in flagged]
    assert all(k["spend"] > k["max_budget"] * 0.8 for k in flagged)
    assert all(k["key"].count("...") == 1 and k["key"] != hot["key"] for k in flagged)

    for view, path, ident, expected in (
        (VIEW_TEAMS, "/spend/teams", "team_id", team["team_id"]),
        (VIEW_USERS, "/spend/users", "user_id", user["user_id"]),
    ):
        r = run(proxy, view)
        assert r.returncode == 0, r.stderr
        items = r.json()
        assert isinstance(items, list) and all(isinstance(i["max_budget"], float) for i in items)
        assert {i[ident]: i["spend"] for i in items}[expected] == CALL_NANOS / 1e9
        r = run(proxy, DAILY_CHECK.replace("/spend/keys", path))
        assert r.returncode == 0, r.stderr
        assert expected in [i[ident] for i in r.docs()]

    r = run(proxy, VIEW_ALL_KEYS)
    assert r.returncode == 0, r.stderr
    items = r.json()
    assert all(isinstance(i["spend"], float) and isinstance(i["max_budget"], float) for i in items)
    assert {"hot-key", "cool-key"} <= {i["key_alias"] for i in items}


def test_team_budgets_need_the_master_key_as_on_litellm(proxy, admin):
    """The seed's "Team Budgets" commands send no Authorization header: 401 JSON, nothing
    created. With the header the seed's other commands carry, they work."""
    r = run(proxy, TEAM_BUDGETS)
    assert r.returncode == 0, r.stderr
    errors = r.docs()
    assert len(errors) == 2 and all(e["error"]["type"] == "authentication_error" for e in errors)
    assert "marketing" not in [t["team_alias"] for t in admin.get("/spend/teams").json()]

    with_auth = TEAM_BUDGETS.replace("/team/new' \\\n", "/team/new' \\\n-H 'Authorization: Bearer sk-1234' \\\n")
    r = run(proxy, with_auth)
    assert r.returncode == 0, r.stderr
    made = r.docs()
    assert [(t["team_alias"], t["max_budget"], t["budget_duration"]) for t in made] == [
        ("engineering", 5000.0, "30d"), ("marketing", 1000.0, "30d")]
    listed = {t["team_id"]: t for t in admin.get("/spend/teams").json()}
    assert all(t["team_id"] in listed for t in made)


def test_metadata_tracks_costs_by_project(proxy, admin):
    body = json.loads(METADATA)
    key = admin.post("/key/generate", json={**body, "key_alias": "chatbot"}).json()
    assert key["metadata"] == body["metadata"]
    chat(proxy, key["key"], 2)
    settled(proxy, 2, key_hash=key["token"])
    for group_by, value in (("project", "chatbot-v2"), ("cost_center", "engineering"),
                            ("environment", "production")):
        r = admin.get("/spend/report", params={"group_by": group_by})
        assert r.status_code == 200, r.text
        row = {i["group_by_value"]: i for i in r.json()}[value]
        assert (row["spend"], row["calls"], row["input_tokens"], row["output_tokens"]) == (
            2 * CALL_NANOS / 1e9, 2, 2000, 1000)


def test_config_alerting(proxy):
    r = run(proxy, CONFIG_ALERTING)
    assert r.returncode == 0, r.stderr
    assert r.docs() == [["slack"]]


def test_provider_key_spend_equals_the_sum_of_its_ledger_rows(proxy, admin):
    dev = "sk-dev-abcdefghijklmnop1234"
    chat(proxy, dev, 3)
    from metering.credentials import key_hash

    token = key_hash(dev)
    rows = settled(proxy, 3, key_hash=token)
    total = sum(r["cost_nanos"] for r in rows)
    assert total == 3 * CALL_NANOS

    # unbudgeted: listed on request (the default list stays safe for jq's arithmetic)
    assert token not in [k["token"] for k in admin.get("/spend/keys").json()]
    everything = {k["token"]: k for k in admin.get("/spend/keys", params={"include_unbudgeted": "true"}).json()}
    entry = everything[token]
    assert (entry["key"], entry["spend"], entry["max_budget"], entry["provider_key"]) == (
        "sk-de...1234", total / 1e9, None, True)
    assert dev not in json.dumps(everything)

    # given a budget by its token, it joins the default list
    r = admin.post("/key/update", json={"key": token, "max_budget": 10.0, "key_alias": "dev-laptop"})
    assert r.status_code == 200, r.text
    listed = {k["token"]: k for k in admin.get("/spend/keys").json()}[token]
    assert (listed["spend"], listed["max_budget"], listed["key_alias"]) == (total / 1e9, 10.0, "dev-laptop")

    by_key = {i["group_by_value"]: i for i in admin.get("/spend/report", params={"group_by": "key"}).json()}
    assert by_key[token]["spend"] == total / 1e9 and by_key[token]["key_masked"] == "sk-de...1234"
    today = datetime.now(UTC).date().isoformat()
    by_model = admin.get("/spend/report", params={"group_by": "model", "start_date": today,
                                                  "end_date": today}).json()
    all_rows = ledger_rows(proxy)
    assert {i["group_by_value"]: round(i["spend"] * 1e9) for i in by_model} == {
        m: sum(r["cost_nanos"] or 0 for r in all_rows if r["model"] == m) for m in {r["model"] for r in all_rows}}
    assert sum(i["calls"] for i in by_model) == len([r for r in all_rows if r["status"] != "blocked"])


def test_spend_report_outside_the_range_is_empty(admin):
    r = admin.get("/spend/report", params={"group_by": "model", "start_date": "2020-01-01",
                                           "end_date": "2020-01-31"})
    assert r.status_code == 200 and r.json() == []
