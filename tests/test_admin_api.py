"""The admin API against a real mitmdump: auth, client mistakes, and the life of keys,
teams and users. (The seed's own commands are in test_admin_seed.py.)

Every client mistake must come back as a JSON error naming what to fix — 400/401/403/
404/405/422, never a 500.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import time

import httpx
import openai
import pytest

from metering.credentials import key_hash
from admin import endpoints  # noqa: F401  (registers the routes)
from admin.api import ROUTES
from e2e_helpers import module_proxy, wait_for

MASTER = "sk-1234"
REAL_OPENAI = "sk-real-openai-upstream-0000"
CONFIG = {"general_settings": {"master_key": MASTER}, "providers": {"openai": {"api_key": REAL_OPENAI}}}
CALL_NANOS = 7_250_000


proxy = module_proxy(CONFIG)


def ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["message"] and err["code"] == str(status)
    return err


def new_key(admin, **body) -> dict:
    return ok(admin.post("/key/generate", json=body))


def chat(proxy, key, model="gpt-4o"):
    return proxy.openai_client(api_key=key).chat.completions.create(
        model=model, max_tokens=500, messages=[{"role": "user", "content": "hi"}])


# --- auth --------------------------------------------------------------------------------------

OURS = [r for r in ROUTES if r.path.split("/")[1] in ("key", "team", "user", "spend", "config", "health")]
MASTER_ROUTES = sorted({(r.method, r.path) for r in OURS if r.access == "master"})


@pytest.mark.parametrize(("method", "path"), MASTER_ROUTES)
def test_master_routes_need_the_master_key(proxy, admin, method, path):
    key = new_key(admin)["key"]
    for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": f"Bearer {key}"},
                    {"Authorization": "Basic c2stMTIzNA=="}):
        with httpx.Client(base_url=proxy.admin_url, trust_env=False) as c:
            r = c.request(method, path, headers=headers, json={} if method == "POST" else None)
        err = error(r, 401)
        assert err["type"] == "authentication_error"
        assert MASTER not in r.text


def test_only_health_is_public_and_only_key_info_takes_a_keys_own_token():
    mine = OURS
    assert {(r.method, r.path) for r in mine if r.access == "public"} == {("GET", "/health")}
    assert {(r.method, r.path) for r in mine if r.access == "master_or_own_key"} == {("GET", "/key/info")}
    assert len([r for r in mine if r.access == "master"]) == 18


def test_key_info_rules(proxy, admin):
    a, b = new_key(admin, key_alias="info-a"), new_key(admin, key_alias="info-b")
    as_a = proxy.admin_client(a["key"])
    assert ok(as_a.get("/key/info"))["token"] == a["token"]
    assert ok(as_a.get("/key/info", params={"key": a["key"]}))["key_alias"] == "info-a"
    assert ok(as_a.get("/key/info", params={"key": a["token"]}))["key_alias"] == "info-a"
    assert error(as_a.get("/key/info", params={"key": b["key"]}), 403)["type"] == "permission_error"
    assert error(as_a.get("/key/info", params={"key": "sk-does-not-exist"}), 403)
    # x-api-key works like a bearer token
    with httpx.Client(base_url=proxy.admin_url, trust_env=False) as c:
        assert ok(c.get("/key/info", headers={"x-api-key": a["key"]}))["token"] == a["token"]
        assert error(c.get("/key/info"), 401)["type"] == "authentication_error"
        assert error(c.get("/key/info", headers={"Authorization": "Bearer sk-never-issued"}), 401)
    # the master key names the key; without one there is nothing to look up
    assert ok(admin.get("/key/info", params={"key": b["token"]}))["info"]["key_alias"] == "info-b"
    assert error(admin.get("/key/info"), 400)["param"] == "key"
    assert error(admin.get("/key/info", params={"key": "sk-does-not-exist"}), 404)["type"] == "not_found_error"


def test_deleted_and_expired_keys_cannot_read_their_info(proxy, admin):
    gone, brief = new_key(admin), new_key(admin, duration="1s")
    ok(admin.post("/key/delete", json={"keys": [gone["key"]]}))
    assert error(proxy.admin_client(gone["key"]).get("/key/info"), 401)
    assert error(admin.get("/key/info", params={"key": gone["token"]}), 404)
    time.sleep(1.1)
    assert "expired" in error(proxy.admin_client(brief["key"]).get("/key/info"), 401)["message"]


# --- client mistakes ---------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "status", "param", "says"), [
    ("/key/generate", b"{not json", 400, None, "not valid JSON"),
    ("/key/generate", b"[1, 2]", 400, None, "JSON object"),
    ("/key/generate", b"\xff\xfe\x00", 400, None, "not valid JSON"),
    ("/key/generate", {"max_budget": "lots"}, 422, "max_budget", "valid number"),
    ("/key/generate", {"max_budget": True}, 422, "max_budget", "number"),
    ("/key/generate", {"max_budget": -5}, 422, "max_budget", "greater than or equal to 0"),
    ("/key/generate", {"models": "gpt-4o"}, 422, "models", "valid list"),
    ("/key/generate", {"models": [1, 2]}, 422, "models.0", "valid string"),
    ("/key/generate", {"metadata": ["project"]}, 422, "metadata", "valid dictionary"),
    ("/key/generate", {"budget_duration": "30x"}, 422, "budget_duration", "'30x' is not a duration"),
    ("/key/generate", {"duration": "forever"}, 422, "duration", "is not a duration"),
    ("/key/generate", {"max_budget": 10, "soft_budget": 20}, 422, "soft_budget", "above max_budget"),
    ("/key/generate", {"key": "my-key-123"}, 422, "key", "must start with 'sk-'"),
    ("/key/generate", {"key": "sk-1234"}, 400, "key", "master key"),
    ("/key/generate", {"provider_key": True}, 422, "key", "provider_key needs"),
    ("/key/generate", {"team_id": "no-such-team"}, 404, "team_id", "not found"),
    ("/key/update", {}, 422, "key", "Field required"),
    ("/key/update", {"key": "sk-no-such-key"}, 404, "key", "not found"),
    ("/key/delete", {}, 422, "body", "give `keys`"),
    ("/key/delete", {"keys": "sk-x"}, 422, "keys", "valid list"),
    ("/team/new", {"members": [{"role": "admin"}]}, 422, "members.0", "user_id or user_email"),
    ("/team/new", {"max_budget": "1e3x"}, 422, "max_budget", "valid number"),
    ("/team/update", {"team_id": "no-such-team"}, 404, "team_id", "not found"),
    ("/team/update", {"max_budget": 5}, 422, "team_id", "Field required"),
    ("/team/member_add", {"team_id": "no-such-team", "member": {"user_id": "u"}}, 404, "team_id", "not found"),
    ("/team/member_add", {"team_id": "t"}, 422, "member", "Field required"),
    ("/team/delete", {"team_ids": []}, 422, "team_ids", "at least 1"),
    ("/team/delete", {"team_ids": ["no-such-team"]}, 404, "team_ids", "no-such-team"),
    ("/user/new", {"team_id": "no-such-team"}, 404, "team_id", "not found"),
    ("/user/new", {"user_id": 42}, 422, "user_id", "valid string"),
    ("/user/update", {}, 422, "body", "user_id"),
    ("/user/update", {"user_id": "nobody"}, 404, "user_id", "not found"),
    ("/user/update", {"user_email": "nobody@example.com"}, 404, "user_email", "no user"),
    ("/user/delete", {"user_ids": "u"}, 422, "user_ids", "valid list"),
    ("/user/delete", {"user_ids": ["nobody"]}, 404, "user_ids", "nobody"),
])
def test_malformed_bodies_and_unknown_ids(admin, path, body, status, param, says):
    r = admin.post(path, content=body) if isinstance(body, bytes) else admin.post(path, json=body)
    err = error(r, status)
    assert err["param"] == param and says in err["message"], err


@pytest.mark.parametrize(("path", "params", "status", "param", "says"), [
    ("/team/info", {}, 400, "team_id", "team_id="),
    ("/team/info", {"team_id": "no-such-team"}, 404, "team_id", "not found"),
    ("/user/info", {}, 400, "user_id", "user_id="),
    ("/user/info", {"user_id": "nobody"}, 404, "user_id", "not found"),
    ("/spend/report", {"group_by": "'; DROP TABLE calls; --"}, 400, "group_by", "cannot group by"),
    ("/spend/report", {"start_date": "2024-13-01"}, 400, "start_date", "YYYY-MM-DD"),
    ("/spend/report", {"end_date": "yesterday"}, 400, "end_date", "YYYY-MM-DD"),
    ("/spend/report", {"start_date": "2024-02-01", "end_date": "2024-01-01"}, 400, "start_date", "after"),
    ("/spend/keys", {"include_unbudgeted": "maybe"}, 400, "include_unbudgeted", "true or false"),
    ("/key/list", {"page": "two"}, 400, "page", "whole number"),
    ("/key/list", {"size": "0"}, 400, "size", "between"),
])
def test_bad_query_arguments(admin, path, params, status, param, says):
    err = error(admin.get(path, params=params), status)
    assert err["param"] == param and says in err["message"], err


def test_wrong_method_unknown_path_and_tolerated_extras(admin):
    assert "POST" in error(admin.get("/key/generate"), 405)["message"]
    assert error(admin.get("/key/nothing"), 404)["type"] == "not_found_error"
    # LiteLLM fields spendgate does not use are accepted and ignored
    made = new_key(admin, tpm_limit=10, rpm_limit=5, aliases={}, guardrails=["x"], send_invite_email=False)
    assert made["key"].startswith("sk-") and "tpm_limit" not in made
    # an empty body is a key with no limits, as on LiteLLM
    r = admin.post("/key/generate", content=b"")
    assert ok(r)["max_budget"] is None
    # a form-encoded content type (curl -d without -H) is still read as JSON
    r = admin.post("/team/new", content=b'{"team_alias": "form"}',
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert ok(r)["team_alias"] == "form"


def test_spend_other_than_zero_is_refused(admin):
    key = new_key(admin, max_budget=5)
    err = error(admin.post("/key/update", json={"key": key["key"], "spend": 3.5}), 400)
    assert err["param"] == "spend" and "only be reset to 0" in err["message"]
    team = ok(admin.post("/team/new", json={"team_alias": "t-spend"}))
    assert error(admin.post("/team/update", json={"team_id": team["team_id"], "spend": 1}), 400)["param"] == "spend"
    # soft above the key's existing max
    err = error(admin.post("/key/update", json={"key": key["token"], "soft_budget": 6}), 422)
    assert err["param"] == "soft_budget"


def test_a_failed_delete_deletes_nothing(admin):
    key = new_key(admin, key_alias="survivor")
    err = error(admin.post("/key/delete", json={"keys": [key["key"], "sk-no-such-key-0000"]}), 404)
    assert "sk-no...0000" in err["message"] and "sk-no-such-key-0000" not in err["message"]
    assert ok(admin.get("/key/info", params={"key": key["token"]}))["key_alias"] == "survivor"
    error(admin.post("/key/delete", json={"key_aliases": ["survivor", "no-such-alias"]}), 404)
    assert ok(admin.get("/key/info", params={"key": key["token"]}))["key_alias"] == "survivor"


# --- keys --------------------------------------------------------------------------------------


def test_key_update_changes_only_what_it_names(proxy, admin):
    key = new_key(admin, key_alias="upd", models=["gpt-4o"], max_budget=10, soft_budget=8,
                  budget_duration="30d", metadata={"project": "a"})
    token = key["token"]
    got = ok(admin.post("/key/update", json={"key": key["key"], "metadata": {"project": "b"}, "models": []}))
    assert (got["metadata"], got["models"], got["max_budget"], got["soft_budget"], got["key_alias"]) == (
        {"project": "b"}, [], 10.0, 8.0, "upd")
    got = ok(admin.post("/key/update", json={"key": token, "max_budget": None, "soft_budget": None}))
    assert (got["max_budget"], got["soft_budget"], got["budget_duration"]) == (None, None, "30d")
    got = ok(admin.post("/key/update", json={"key": token, "budget_duration": "1d", "max_budget": 3}))
    assert (got["budget_duration"], got["max_budget"]) == ("1d", 3.0)
    assert got["budget_reset_at"] < key["budget_reset_at"]
    got = ok(admin.post("/key/update", json={"key": token, "duration": "1h", "blocked": True}))
    assert got["expires"] is not None and got["blocked"] is True
    # the proxy sees the change at once
    with pytest.raises(openai.AuthenticationError):
        chat(proxy, key["key"])
    got = ok(admin.post("/key/update", json={"key": token, "blocked": False, "duration": None}))
    assert got["expires"] is None and got["blocked"] is False
    other = new_key(admin, key_alias="taken")
    err = error(admin.post("/key/update", json={"key": token, "key_alias": "taken"}), 400)
    assert err["param"] == "key_alias"
    assert error(admin.post("/key/generate", json={"key_alias": "taken"}), 400)["param"] == "key_alias"
    assert other["key_alias"] == "taken"


def test_explicit_keys_are_unique(admin):
    ok(admin.post("/key/generate", json={"key": "sk-explicit-0001"}))
    err = error(admin.post("/key/generate", json={"key": "sk-explicit-0001"}), 400)
    assert "already exists" in err["message"] and "sk-explicit-0001" not in err["message"]


def test_generate_with_an_unknown_user_creates_the_user(admin):
    key = new_key(admin, user_id="auto-made@example.com")
    info = ok(admin.get("/user/info", params={"user_id": "auto-made@example.com"}))
    assert [k["token"] for k in info["keys"]] == [key["token"]] and info["max_budget"] is None


def test_key_list(admin):
    team = ok(admin.post("/team/new", json={"team_alias": "listing"}))
    made = [new_key(admin, team_id=team["team_id"], key_alias=f"list-{i}") for i in range(3)]
    listed = ok(admin.get("/key/list", params={"team_id": team["team_id"]}))
    assert listed["keys"] == [k["token"] for k in made] and listed["total_count"] == 3
    page = ok(admin.get("/key/list", params={"team_id": team["team_id"], "size": 2, "page": 2,
                                             "return_full_object": "true"}))
    assert [k["key_alias"] for k in page["keys"]] == ["list-2"] and page["total_pages"] == 2
    assert all("..." in k["key"] for k in page["keys"])
    assert ok(admin.get("/key/list", params={"key_alias": "list-1"}))["keys"] == [made[1]["token"]]


def test_delete_by_alias_refuses_the_key_on_the_proxy(proxy, admin, fake):
    key = new_key(admin, key_alias="to-delete")
    chat(proxy, key["key"])
    got = ok(admin.post("/key/delete", json={"key_aliases": ["to-delete"]}))
    assert got == {"deleted_keys": ["to-delete"], "tokens": [key["token"]]}
    with pytest.raises(openai.AuthenticationError):
        chat(proxy, key["key"])
    assert key["token"] not in ok(admin.get("/key/list"))["keys"]


def test_a_provider_key_registered_before_first_use(proxy, admin, fake):
    dev = "sk-dev-registered-000000001"
    got = ok(admin.post("/key/generate", json={"key": dev, "provider_key": True, "max_budget": 1.0,
                                               "key_alias": "dev-box"}))
    assert (got["key"], got["provider_key"], got["token"]) == ("sk-de...0001", True, key_hash(dev))
    assert dev not in json.dumps(got)
    chat(proxy, dev)
    # passed through as the developer's own key, not swapped
    assert fake.requests()[-1]["headers"]["authorization"] == f"Bearer {dev}"
    spent = wait_for(lambda: ok(admin.get("/key/info", params={"key": dev}))["spend"])
    assert spent == CALL_NANOS / 1e9
    # a registered provider key cannot be issued as a virtual key; registering it again updates it
    assert "provider key" in error(admin.post("/key/generate", json={"key": dev}), 400)["message"]
    again = ok(admin.post("/key/generate", json={"key": dev, "provider_key": True, "max_budget": 2.0,
                                                 "key_alias": "dev-box"}))
    assert (again["max_budget"], again["spend"], again["created_at"]) == (2.0, CALL_NANOS / 1e9, got["created_at"])
    ok(admin.post("/key/delete", json={"keys": [dev]}))
    info = ok(admin.get("/key/info", params={"key": dev}))  # still tracked by its traffic
    assert (info["max_budget"], info["key_alias"], info["provider_key"], info["spend"]) == (
        None, None, True, CALL_NANOS / 1e9)
    chat(proxy, dev)  # deleting a provider key's settings does not block the developer


def test_a_seen_provider_key_cannot_become_a_virtual_key(proxy, admin):
    dev = "sk-dev-seen-in-traffic-0002"
    chat(proxy, dev)
    wait_for(lambda: admin.get("/key/info", params={"key": dev}).status_code == 200)
    err = error(admin.post("/key/generate", json={"key": dev}), 400)
    assert "provider_key" in err["message"]


# --- teams and users ---------------------------------------------------------------------------


def test_team_members_keys_and_delete(proxy, admin):
    team = ok(admin.post("/team/new", json={
        "team_alias": "platform", "team_id": "team-platform", "max_budget": 20, "soft_budget": 15,
        "members": ["ann@example.com"], "members_with_roles": [{"user_id": "bob@example.com", "role": "admin"}],
        "metadata": {"cost_center": "infra"}, "models": ["gpt-4o"]}))
    assert (team["team_id"], team["members"], team["soft_budget"]) == (
        "team-platform", ["ann@example.com", "bob@example.com"], 15.0)
    assert error(admin.post("/team/new", json={"team_id": "team-platform"}), 400)["param"] == "team_id"
    added = ok(admin.post("/team/member_add", json={"team_id": "team-platform", "member": [
        {"user_id": "cy@example.com"}, {"user_email": "dee@example.com", "role": "user"}]}))
    assert len(added["members"]) == 4 and {u["team_id"] for u in added["updated_users"]} == {"team-platform"}
    assert ok(admin.get("/user/info", params={"user_id": "cy@example.com"}))["team_id"] == "team-platform"
    key = new_key(admin, team_id="team-platform", user_id="ann@example.com")
    chat(proxy, key["key"])
    info = wait_for(lambda: (lambda i: i if i["spend"] else None)(
        ok(admin.get("/team/info", params={"team_id": "team-platform"}))))
    assert info["spend"] == CALL_NANOS / 1e9 and info["team_info"]["spend"] == info["spend"]
    assert [k["token"] for k in info["keys"]] == [key["token"]]
    assert {m["user_id"] for m in info["team_memberships"]} >= {"ann@example.com", "cy@example.com"}
    updated = ok(admin.post("/team/update", json={"team_id": "team-platform", "spend": 0, "team_alias": "plat"}))
    assert (updated["spend"], updated["team_alias"], updated["max_budget"]) == (0.0, "plat", 20.0)

    got = ok(admin.post("/team/delete", json={"team_ids": ["team-platform"]}))
    assert got["deleted_teams"] == ["team-platform"] and got["deleted_keys"] == [key["key_name"]]
    error(admin.get("/team/info", params={"team_id": "team-platform"}), 404)
    error(admin.get("/key/info", params={"key": key["token"]}), 404)
    assert ok(admin.get("/user/info", params={"user_id": "ann@example.com"}))["team_id"] is None


def test_user_lifecycle(proxy, admin):
    team = ok(admin.post("/team/new", json={"team_alias": "users-team"}))
    user = ok(admin.post("/user/new", json={"user_id": "eve@example.com", "user_email": "eve@example.com",
                                            "team_id": team["team_id"], "max_budget": 5, "models": ["gpt-4o"],
                                            "metadata": {"desk": "7"}}))
    assert (user["team_id"], user["teams"], user["models"]) == (team["team_id"], [team["team_id"]], ["gpt-4o"])
    assert error(admin.post("/user/new", json={"user_id": "eve@example.com"}), 400)["param"] == "user_id"
    key_info = ok(admin.get("/key/info", params={"key": user["key"]}))
    assert (key_info["user_id"], key_info["team_id"], key_info["models"]) == (
        "eve@example.com", team["team_id"], ["gpt-4o"])
    no_key = ok(admin.post("/user/new", json={"user_id": "quiet@example.com", "auto_create_key": False}))
    assert no_key["key"] is None

    chat(proxy, user["key"])
    spent = wait_for(lambda: ok(admin.get("/user/info", params={"user_id": "eve@example.com"}))["spend"])
    assert spent == CALL_NANOS / 1e9
    got = ok(admin.post("/user/update", json={"user_email": "eve@example.com", "spend": 0.0, "max_budget": 6}))
    assert (got["spend"], got["max_budget"], got["user_id"]) == (0.0, 6.0, "eve@example.com")
    info = ok(admin.get("/user/info", params={"user_id": "eve@example.com"}))
    assert info["user_info"]["max_budget"] == 6.0 and [t["team_id"] for t in info["teams"]] == [team["team_id"]]
    assert info["metadata"] == {"desk": "7"}

    got = ok(admin.post("/user/delete", json={"user_ids": ["eve@example.com"]}))
    assert got["deleted_users"] == ["eve@example.com"] and len(got["deleted_keys"]) == 1
    error(admin.get("/user/info", params={"user_id": "eve@example.com"}), 404)
    assert "eve@example.com" not in ok(admin.get("/team/info", params={"team_id": team["team_id"]}))["members"]
    with pytest.raises(openai.AuthenticationError):
        chat(proxy, user["key"])


# --- no client mistake is a 500 ----------------------------------------------------------------

FUZZ_VALUES = [None, 0, -1, 1.5, 1e300, "x", "", "30d", "99999999999d", "1000000mo", True, [], {}, ["a"], [1],
               {"a": 1}, {"user_id": "fuzz-member"}, "sk-" + "a" * 20, "é" * 300]
FUZZ_QUERY = ["", "x", "0", "-1", "99999999999999999999", "2024-02-30", "true", "\x00", "a" * 2000, "model"]


def test_no_field_value_is_a_server_error(proxy, admin):
    base_key = new_key(admin, key_alias="fuzz-base", max_budget=1)
    base_team = ok(admin.post("/team/new", json={"team_id": "fuzz-team"}))
    ok(admin.post("/user/new", json={"user_id": "fuzz-user"}))
    required = {
        "/key/update": {"key": base_key["token"]},
        "/team/update": {"team_id": base_team["team_id"]},
        "/team/member_add": {"team_id": base_team["team_id"], "member": {"user_id": "fuzz-member"}},
        "/user/update": {"user_id": "fuzz-user"},
    }
    requests = []
    for r in OURS:
        if r.body is None:
            continue
        for name in r.body.model_fields:
            values = FUZZ_VALUES
            if r.path.endswith("/delete") and name in ("keys", "key_aliases", "team_ids", "user_ids"):
                values = [v for v in FUZZ_VALUES if not (isinstance(v, list) and v and isinstance(v[0], str))]
            requests += [("POST", r.path, {**required.get(r.path, {}), name: v}) for v in values]
    for r in OURS:
        if r.method == "GET":
            for name in ("key", "team_id", "user_id", "group_by", "start_date", "end_date", "page", "size",
                         "return_full_object", "include_unbudgeted", "provider_key"):
                requests += [("GET", r.path, {name: v}) for v in FUZZ_QUERY]

    def send(req):
        method, path, data = req
        resp = admin.post(path, json=data) if method == "POST" else admin.get(path, params=data)
        try:
            shaped = resp.status_code == 200 or "error" in resp.json()
        except ValueError:
            shaped = False
        return None if resp.status_code < 500 and shaped else (path, data, resp.status_code, resp.text[:200])

    with cf.ThreadPoolExecutor(8) as pool:
        bad = [b for b in pool.map(send, requests) if b]
    assert not bad, bad[:10]
    # the base records survived whatever the fuzz did to them, readable as ever
    assert ok(admin.get("/key/info", params={"key": base_key["token"]}))["token"] == base_key["token"]


# --- the answers' JSON (admin.api.encode_json) ------------------------------------------------


def test_answers_write_times_in_utc_to_the_second_whichever_writer_writes_them():
    """orjson writes the answers; what it refuses (an integer past 64 bits, a key that is not
    a string) falls back to the standard library, which must write times the same way."""
    from datetime import UTC, datetime, timedelta, timezone

    from pydantic import BaseModel

    from admin.api import encode_json

    class Model(BaseModel):
        n: int

    at = datetime(2026, 12, 2, 14, 55, 32, 123456, tzinfo=UTC)
    plain = {"at": at, "other_zone": at.astimezone(timezone(timedelta(hours=2))), "model": Model(n=1),
             "text": "café", "none": None}
    expected = {"at": "2026-12-02T14:55:32Z", "other_zone": "2026-12-02T16:55:32+02:00", "model": {"n": 1},
                "text": "café", "none": None}
    assert json.loads(encode_json(plain)) == expected
    fallback = {**plain, "big": 2**70, 3: "an int key"}
    fell_back = json.loads(encode_json(fallback))
    assert fell_back["big"] == 2**70 and fell_back["3"] == "an int key"
    assert {k: fell_back[k] for k in expected} == expected
