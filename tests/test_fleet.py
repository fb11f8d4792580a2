"""A fleet: three mitmdump processes on one PostgreSQL ledger, under load, one of them killed.

60 concurrent clients, 20 per proxy, in three groups of 20:
  - team clients: two virtual keys of one team whose budget covers ~10 calls,
  - key clients: one virtual key whose own budget covers ~10 calls,
  - small clients: a virtual key whose budget covers ~5 calls,
all under a global budget of ~24 calls — less than the groups want together, so each kind
of scope (key, team, global) is the one that stops some of the calls.

Wave 1: every client makes one slow streamed call at once; while they are in flight the
third proxy is killed with SIGKILL (its calls die with it, their holds stay in the ledger).
Wave 2: once the others have reaped the dead instance's holds, 40 clients on the two live
proxies spend until refused. Then: every scope ≤ its max, the global budget used up (the
dead holds were released, not leaked), spend equal to the rows behind it (nothing charged
twice), no reservation left, each 50 % threshold alerted exactly once, and the two live
instances answer every spend view and metric the same.

Calls cost $0.00105 each (tests/test_e2e_budget.py SMALL_USAGE) and reserve ~$0.0012.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from alert_receivers import HttpReceiver
from e2e_helpers import Ledger, start_proxy, wait_for

MASTER = "sk-fleet-master"
CALL_NANOS = 1_050_000
USAGE = {"prompt_tokens": 20, "completion_tokens": 100, "total_tokens": 120}
TEAM_MAX = KEY_MAX = 10 * CALL_NANOS
SMALL_MAX = 5 * CALL_NANOS
GLOBAL_MAX = 24 * CALL_NANOS
RESERVED = 1_300_000  # a bit more than one call's reservation: a budget this close to its max is used up
URL = "https://api.openai.com/v1/chat/completions"
STALE_AFTER = 3  # seconds: the killed instance's holds are reaped this long after its last beat


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def call(client: httpx.Client, key: str, *, stream: bool, delay_ms: int = 0) -> str:
    """One chat call; 'ok' (served in full), 'refused' (a budget's 429), or what went wrong."""
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
    headers = {"Authorization": f"Bearer {key}", "x-fake-usage": json.dumps(USAGE)}
    if stream:
        body["stream"] = True
        headers["x-fake-delay-ms"] = str(delay_ms)
    try:
        with client.stream("POST", URL, json=body, headers=headers) as r:
            text = r.read().decode()
    except httpx.HTTPError as e:
        return f"error: {type(e).__name__}"
    if r.status_code == 429 and json.loads(text)["error"]["type"] == "budget_exceeded":
        return "refused"
    if r.status_code == 200 and (not stream or "[DONE]" in text):
        return "ok"
    return f"status {r.status_code}: {text[:200]}"


@pytest.fixture(scope="module")
def fleet(fake_provider_session, pg_server, tmp_path_factory):
    """Run the whole scenario once; the tests below check its outcome."""
    dsn = pg_server.create_database("fleet")
    receiver = HttpReceiver()
    config = {
        "litellm_settings": {"max_budget": GLOBAL_MAX / 1e9, "budget_duration": "30d",
                             "alerting": ["webhook"], "alerting_threshold": 0.5,
                             "webhook_url": receiver.url("/hook"), "success_callback": ["prometheus"]},
        "general_settings": {"master_key": MASTER, "database_url": dsn},
        "providers": {"openai": {"api_key": "sk-real-upstream"}},
    }
    options = {"budget_instance_stale_after": STALE_AFTER, "budget_alert_lease": 3, "budget_alert_timeout": 1,
               "budget_alert_retry_base": "0.05", "budget_alert_poll_interval": "0.2"}
    work = tmp_path_factory.mktemp("fleet")
    with ThreadPoolExecutor(3) as pool:
        proxies = list(pool.map(lambda i: start_proxy(fake_provider_session.url, work / f"p{i}", config, **options),
                                range(3)))
    out = {"proxies": proxies, "receiver": receiver, "ledger": Ledger(dsn)}
    try:
        admin = proxies[0].admin_client(MASTER)
        team = admin.post("/team/new", json={"team_alias": "fleet-team", "max_budget": TEAM_MAX / 1e9}).json()
        keys = {
            "team": [admin.post("/key/generate", json={"team_id": team["team_id"], "key_alias": f"team-{i}"}).json()["key"]
                     for i in range(2)],
            "key": [admin.post("/key/generate", json={"key_alias": "budgeted", "max_budget": KEY_MAX / 1e9}).json()["key"]],
            "small": [admin.post("/key/generate", json={"key_alias": "small", "max_budget": SMALL_MAX / 1e9}).json()["key"]],
            "warm": [admin.post("/key/generate", json={"key_alias": "warm-up"}).json()["key"]],
        }
        out["team_id"], out["keys"] = team["team_id"], keys
        # every proxy knows the keys (the directory revision is polled every second)
        for p in proxies:
            assert call(p.httpx_client(), keys["warm"][0], stream=False) == "ok"
        fake_provider_session.reset()
        pids = {p.proc.pid: i for i, p in enumerate(proxies)}
        instances = {pids[r["pid"]]: r["id"] for r in out["ledger"].query("SELECT id, pid FROM instances")}
        assert sorted(instances) == [0, 1, 2]
        out["dead_instance"] = instances[2]

        groups = [g for g in ("team", "key", "small") for _ in range(20)]
        clients = [proxies[i % 3].httpx_client(timeout=30) for i in range(60)]
        outcomes: dict[int, list[tuple[int, str]]] = {0: [], 1: [], 2: []}  # per proxy: (wave, outcome)
        lock = threading.Lock()

        def wave1(i):
            group = groups[i]
            key = keys[group][i % len(keys[group])]
            # the third proxy's streams last longer: still in flight, holding budget, when it dies
            result = call(clients[i], key, stream=True, delay_ms=2500 if i % 3 == 2 else 300)
            with lock:
                outcomes[i % 3].append((1, result))

        with ThreadPoolExecutor(60) as pool:
            futures = [pool.submit(wave1, i) for i in range(60)]
            # kill the third proxy while its admitted calls are mid-stream, holding budget
            def dead_holds():
                return out["ledger"].query(
                    "SELECT COUNT(*) AS n FROM reservations WHERE instance_id = ?", (instances[2],))[0]["n"]

            wait_for(lambda: dead_holds() >= 1, 30)
            time.sleep(0.3)  # the rest of its admissions
            out["dead_holds"] = dead_holds()
            os.kill(proxies[2].proc.pid, signal.SIGKILL)
            proxies[2].proc.wait(10)
            for f in futures:
                f.result()
        # the others carry on: the dead instance's holds are reaped within STALE_AFTER + a beat
        t0 = time.monotonic()
        out["reaped"] = wait_for(lambda: out["ledger"].query(
            "SELECT COUNT(*) AS n FROM reservations WHERE instance_id = ?", (instances[2],))[0]["n"] == 0, 20)
        out["reaped_after"] = time.monotonic() - t0

        def wave2(i):
            group = groups[i]
            key = keys[group][i % len(keys[group])]
            proxy = i % 3 if i % 3 != 2 else 1  # the dead proxy's clients move over
            client = clients[i] if i % 3 != 2 else clients[i - 1]
            refused = 0
            for _ in range(10):  # until refused three times (a refusal may be others' holds)
                result = call(client, key, stream=False)
                with lock:
                    outcomes[proxy].append((2, result))
                if result != "ok":
                    refused += 1
                    if refused == 3:
                        break
                    time.sleep(0.05)

        with ThreadPoolExecutor(60) as pool:
            list(pool.map(wave2, range(60)))
        out["outcomes"] = outcomes
        out["upstream_requests"] = len(fake_provider_session.requests())
        # everything settled: no hold left anywhere
        out["idle"] = wait_for(lambda: out["ledger"].query(
            "SELECT COUNT(*) AS n FROM reservations")[0]["n"] == 0, 15)
        yield out
    finally:
        for p in proxies:
            p.stop()
        receiver.stop()


def budget(ledger: Ledger, kind: str, id_: str) -> dict:
    [row] = ledger.query("SELECT spend_nanos, reserved_nanos, max_nanos FROM budgets WHERE kind = ? AND id = ?",
                         (kind, id_))
    return row


def test_the_fleet_served_and_refused_and_the_dead_proxy_took_its_calls_with_it(fleet):
    o = fleet["outcomes"]
    live = [r for p in (0, 1) for _, r in o[p]]
    assert all(r in ("ok", "refused") for r in live), Counter(live)  # the others carried on, no 5xx
    assert any(r == "ok" for w, r in o[0] + o[1] if w == 2)  # and served after the kill
    assert fleet["dead_holds"] > 0  # it held budget when it died
    assert any(r.startswith("error") for _, r in o[2])  # its clients saw it die


def test_every_scope_ends_within_its_max_and_the_dead_holds_were_released(fleet):
    ledger = fleet["ledger"]
    assert fleet["reaped"], "the killed instance's reservations were never released"
    assert fleet["reaped_after"] < STALE_AFTER + 8
    assert fleet["idle"] and ledger.query("SELECT SUM(reserved_nanos) AS r FROM budgets")[0]["r"] == 0
    g = budget(ledger, "global", "global")
    t = budget(ledger, "team", fleet["team_id"])
    k = budget(ledger, "key", sha(fleet["keys"]["key"][0]))
    s = budget(ledger, "key", sha(fleet["keys"]["small"][0]))
    assert (g["max_nanos"], t["max_nanos"], k["max_nanos"], s["max_nanos"]) == (GLOBAL_MAX, TEAM_MAX, KEY_MAX, SMALL_MAX)
    for scope in (g, t, k, s):
        assert scope["spend_nanos"] <= scope["max_nanos"]
    # used up: a budget with leaked holds would have refused calls with money left
    assert g["spend_nanos"] > GLOBAL_MAX - RESERVED


def test_nothing_is_charged_twice_spend_equals_the_rows(fleet):
    ledger = fleet["ledger"]
    rows = ledger.query("SELECT status, cost_nanos, team_id, key_hash, uid FROM calls")
    ok = [r for r in rows if r["status"] == "ok"]
    assert all(r["cost_nanos"] == CALL_NANOS for r in ok)
    assert len({r["uid"] for r in rows}) == len(rows)
    g = budget(ledger, "global", "global")
    # the warm-up calls (one per proxy) are in the global budget too
    assert g["spend_nanos"] == sum(r["cost_nanos"] or 0 for r in rows)
    assert budget(ledger, "team", fleet["team_id"])["spend_nanos"] == sum(
        r["cost_nanos"] or 0 for r in rows if r["team_id"] == fleet["team_id"])
    key = sha(fleet["keys"]["key"][0])
    assert budget(ledger, "key", key)["spend_nanos"] == sum(r["cost_nanos"] or 0 for r in rows if r["key_hash"] == key)
    served_live = sum(r == "ok" for p in (0, 1) for _, r in fleet["outcomes"][p])
    served_dead = sum(r == "ok" for _, r in fleet["outcomes"][2])
    assert served_live <= len(ok) - 3 <= served_live + served_dead  # every call served by a live proxy is recorded
    assert len(ok) - 3 <= fleet["upstream_requests"]  # and none recorded that upstream did not see


def test_each_threshold_is_alerted_exactly_once(fleet):
    receiver, ledger = fleet["receiver"], fleet["ledger"]
    wanted = {("global", "global"), ("team", "fleet-team"), ("key", "budgeted")}

    def fifty_percent():
        seen = {(b["scope"], b["key_alias"] if b["scope"] == "key" else b["key"])
                for b in receiver.bodies("/hook") if b["event"] == "budget_alert"}
        return wanted <= seen

    assert wait_for(fifty_percent, 20), receiver.bodies("/hook")
    assert wait_for(lambda: ledger.query(
        "SELECT COUNT(*) AS n FROM alert_deliveries WHERE status != 'sent'")[0]["n"] == 0, 20)
    posts = receiver.posts("/hook")
    ids = Counter(p["headers"]["x-spendgate-alert-id"] for p in posts)
    assert max(ids.values()) == 1, ids
    what = Counter((b["event"], b["scope"], b["key"], b["budget_threshold"]) for b in receiver.bodies("/hook"))
    assert max(what.values()) == 1, what
    assert len(posts) == ledger.query("SELECT COUNT(*) AS n FROM alerts")[0]["n"]


def test_every_live_instance_answers_the_same(fleet):
    a, b = (p.admin_client(MASTER) for p in fleet["proxies"][:2])
    for path in ("/spend/keys", "/spend/teams", "/key/list", "/team/info?team_id=" + fleet["team_id"],
                 "/ui/api/top?by=key", "/ui/api/calls?limit=20", "/alerts"):
        ra, rb = a.get(path), b.get(path)
        assert ra.status_code == rb.status_code == 200, (path, ra.text, rb.text)
        ja, jb = ra.json(), rb.json()
        if path == "/alerts":  # this_process differs by design
            ja.pop("this_process", None), jb.pop("this_process", None)
        assert ja == jb, path
    oa, ob = a.get("/ui/api/overview").json(), b.get("/ui/api/overview").json()
    oa.pop("now"), ob.pop("now")
    assert oa == ob

    def ledger_series(client):
        from prometheus_client.parser import text_string_to_metric_families

        text = client.get("/metrics").text
        return sorted((s.name, sorted(s.labels.items()), s.value)
                      for f in text_string_to_metric_families(text) for s in f.samples
                      if not s.name.startswith(("spendgate_added_latency", "spendgate_alert_deliveries_total")))

    assert wait_for(lambda: ledger_series(a) == ledger_series(b), 15)
