"""The HTTP adapter's branches, in-process: mitmproxy's `taddons` and `tflow`, as mitmproxy
tests its own addons — a real ledger (SQLite in a temporary directory), no proxy process,
milliseconds each.

Refusals, fail-open and fail-closed, stream usage injection, a call that never reached
upstream, a client that left, the virtual-key swap, and the flows the meter must not touch.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow

from addon.http import METADATA_KEY, HttpMeter
from addon.loader import ConfigLoader
from ledger import BudgetSpec, LedgerUnavailable, ScopeRef, Store
from ledger.directory import KeyRecord
from metering.credentials import key_hash, mask
from metering.meter import Meter
from metering.runtime import ProcessState

CHAT_URL = "https://api.openai.com/v1/chat/completions"
REPLY = {"id": "c1", "object": "chat.completion", "model": "gpt-4o",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 1000, "completion_tokens": 500}}
VIRTUAL = "sk-virtual-1234567890abcdef"
GLOBAL = ScopeRef.global_()


def flow_for(url: str = CHAT_URL, body: dict | None = None, method: str = "POST", **headers: str) -> http.HTTPFlow:
    flow = tflow.tflow()
    content = json.dumps(body if body is not None else {"model": "gpt-4o", "messages": [], "max_tokens": 100})
    flow.request = http.Request.make(method, url, content.encode() if method == "POST" else b"",
                                     {"content-type": "application/json", **headers})
    return flow


class Harness:
    """ConfigLoader + HttpMeter on one ProcessState, configured from a YAML dict."""

    def __init__(self, tmp_path: Path, config: dict):
        config.setdefault("general_settings", {})["database_url"] = f"sqlite:///{tmp_path / 'ledger.db'}"
        path = tmp_path / "budget.yaml"
        path.write_text(json.dumps(config))
        self.path = path
        self.state = ProcessState()
        self.loader = ConfigLoader(self.state)
        self.meter = HttpMeter(self.state, Meter(self.state))

    @property
    def rt(self):
        return self.state.runtime

    async def rows(self) -> list[dict]:
        await self.meter.done()  # every settlement written
        return await self.rt.ledger.read(Store.calls)


def scenario(tmp_path: Path, config: dict):
    """Run `body(harness)` inside a taddons context with the config loaded."""

    def run(body):
        async def main():
            h = Harness(tmp_path, config)
            with taddons.context(h.loader, h.meter) as tctx:
                tctx.configure(h.loader, budget_config=str(h.path), budget_ledger_spool=str(tmp_path / "spool"))
                try:
                    return await body(h)
                finally:
                    await h.meter.done()
                    h.loader.done()

        return asyncio.run(main())

    return run


async def through(h: Harness, flow: http.HTTPFlow, reply: dict | None = REPLY) -> http.HTTPFlow:
    """The hooks of one call in mitmproxy's order; `reply` None: no response."""
    await h.meter.request(flow)
    if flow.response is None and reply is not None:
        flow.response = http.Response.make(200, json.dumps(reply).encode(), {"content-type": "application/json"})
        h.meter.responseheaders(flow)
        h.meter.response(flow)
    return flow


def test_a_metered_call_is_settled_from_its_usage(tmp_path):
    async def body(h):
        flow = await through(h, flow_for(authorization="Bearer sk-real-key-0000000001"))
        assert flow.metadata[METADATA_KEY].reservation is not None
        [row] = await h.rows()
        # gpt-4o: 1000 x $2.50/M + 500 x $10/M
        assert (row["status"], row["cost_nanos"], row["key_masked"]) == ("ok", 7_500_000, "sk-re...0001")

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}})(body)


def test_a_call_to_a_providers_host_is_metered_whatever_its_host_header_says(tmp_path):
    """mitmproxy connects where the client's CONNECT (or SNI) said; a Host header that names
    no provider (`api.openai.com:x`, which an edge may ignore) does not take it out of the meter."""
    async def body(h):
        for host in ("api.openai.com:x", "localhost:8080"):
            flow = flow_for(authorization="Bearer sk-real-key-0000000001")
            flow.request.headers["host"] = host
            assert flow.request.host == "api.openai.com"
            await through(h, flow)
            assert METADATA_KEY in flow.metadata, host
        assert [row["status"] for row in await h.rows()] == ["ok", "ok"]

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}})(body)


class FailingListener:
    """A spend listener whose work inside the settlement's transaction raises (an outbox
    refusing its insert), which rolls the transaction back."""

    def settled(self, event): pass

    def denied(self, event): pass

    def in_settlement(self, rt, record):
        def hook(store, changes):
            raise ValueError("the listener's work failed")
        return hook


def test_a_call_whose_alerts_fail_in_its_settlement_is_still_recorded(tmp_path, caplog):
    """An alert hook that raises inside the settlement's transaction rolls it back: the row
    is written again without the alerts, at its real cost, not lost with them."""
    async def body(h):
        h.state.listeners.append(FailingListener())
        await through(h, flow_for(authorization="Bearer sk-real-key-0000000001"))
        [row] = await h.rows()
        assert (row["status"], row["cost_nanos"]) == ("ok", 7_500_000)
        assert (await h.rt.ledger.scope(GLOBAL)).spend_nanos == 7_500_000
        assert not h.rt.journal._where  # done: nothing left to replay
        assert "recorded without the alerts" in caplog.text

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}})(body)


def test_alerts_rolled_back_with_their_settlement_are_raised_when_it_is_written_again(tmp_path):
    """The alert raiser enqueues a crossing inside the settlement, then another listener's
    work fails and rolls the transaction back: the row is written again without that work,
    and the crossing's alert is raised anew, not taken as raised by the rolled-back attempt."""
    from alerts import outbox
    from alerts.addon import AlertRaiser

    async def body(h):
        raiser = AlertRaiser(h.state)
        h.state.listeners.append(FailingListener())  # after the raiser: its enqueue ran, then rolled back
        await through(h, flow_for(authorization="Bearer sk-real-key-0000000001"))  # $0.0075 of $0.01
        await h.rows()
        await raiser._background.wait()
        alerts = await h.rt.ledger.read(outbox.recent)
        assert [(a["alert"].event, a["alert"].threshold) for a in alerts] == [("budget_alert", 0.5)]

    scenario(tmp_path, {"litellm_settings": {"max_budget": 0.01, "alerting": ["webhook"],
                                             "alerting_thresholds": [0.5],
                                             "webhook_url": "http://127.0.0.1:9/hook"}})(body)


def test_a_settlement_spooled_in_memory_only_stays_in_the_journal_until_it_is_written(tmp_path, monkeypatch):
    """The database away and the spool's disk full: the settlement is kept in memory only,
    so the journal keeps the call open (a kill now replays it at the next start) until the
    spool's replay writes its row."""
    import errno
    import sqlite3

    async def body(h):
        spool = h.rt.ledger.spool

        def away(*args, **kwargs):
            raise sqlite3.OperationalError("disk I/O error")

        def full(lines):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(Store, "settle_many", away)
        monkeypatch.setattr(Store, "settle", away)  # (the spool's replay writes one at a time)
        monkeypatch.setattr(spool, "_append", full)
        flow = await through(h, flow_for(authorization="Bearer sk-real-key-0000000001"))
        uid = flow.metadata[METADATA_KEY].uid
        await h.meter.done()  # settled: spooled, in memory only
        assert uid in spool.unsaved and uid in h.rt.journal._where
        monkeypatch.undo()  # the database back (the disk still full would change nothing)
        assert await h.rt.ledger.flush_spool() == 1
        assert not spool.unsaved and uid not in h.rt.journal._where
        [row] = await h.rows()
        assert (row["uid"], row["cost_nanos"]) == (uid, 7_500_000)

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}, "general_settings": {"ledger_writer": "thread"}})(body)


def test_a_background_response_is_charged_what_was_held(tmp_path):
    """`background: true`: the reply says `queued`, with no usage; OpenAI bills the response
    when it completes (its usage comes from a later GET, a free read). The call is charged the
    most it could cost, as held, and says why — not an input-only estimate."""
    async def body(h):
        flow = flow_for("https://api.openai.com/v1/responses",
                        {"model": "gpt-4o", "input": "write a report", "background": True, "max_output_tokens": 1000},
                        authorization="Bearer sk-real-key-0000000001")
        queued = {"id": "resp_1", "object": "response", "model": "gpt-4o", "status": "queued",
                  "background": True, "output": [], "usage": None}
        await through(h, flow, reply=queued)
        held = flow.metadata[METADATA_KEY].reservation.amount_nanos
        [row] = await h.rows()
        assert held > 1000 * 10_000  # 1,000 output tokens at $10/M at least
        assert (row["status"], row["price_source"], row["cost_nanos"]) == ("ok", "held", held)
        assert "background response" in row["error"]
        assert (await h.rt.ledger.scope(GLOBAL)).spend_nanos == held

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}})(body)


def test_over_budget_is_answered_429_in_the_providers_place_and_recorded(tmp_path):
    async def body(h):
        flow = await through(h, flow_for(), reply=None)
        assert flow.response.status_code == 429
        assert flow.response.headers["x-should-retry"] == "false"
        assert json.loads(flow.response.content)["error"]["type"] == "budget_exceeded"
        assert METADATA_KEY not in flow.metadata  # never forwarded
        [row] = await h.rows()
        assert (row["status"], row["error"], row["cost_nanos"]) == ("blocked", "budget_exceeded", 0)

    scenario(tmp_path, {"litellm_settings": {"max_budget": 0.0000001}})(body)


@pytest.mark.parametrize("policy", ["fail_closed", "fail_open"])
def test_an_unreachable_ledger_follows_on_ledger_error(tmp_path, policy):
    async def body(h):
        async def unreachable(*args, **kwargs):
            raise LedgerUnavailable("the spend ledger's database is unreachable")

        h.rt.ledger.reserve = unreachable
        flow = await through(h, flow_for(authorization="Bearer sk-real-key-0000000001"), reply=None)
        if policy == "fail_closed":
            assert flow.response.status_code == 503
            assert json.loads(flow.response.content)["error"]["type"] == "ledger_unavailable"
        else:  # forwarded unchecked, and still metered
            call = flow.metadata[METADATA_KEY]
            assert flow.response is None and call.reservation is None and call.identity.key is not None

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0},
                        "general_settings": {"on_ledger_error": policy}})(body)


def test_an_admission_bug_is_refused_without_its_text_and_logged(tmp_path, caplog):
    """Not the ledger being away but a bug under admission: the client learns the ledger is
    unavailable, not the exception's text (paths, statements); the log has it whole."""
    async def body(h):
        async def broken(*args, **kwargs):
            raise RuntimeError("no such table: /srv/spendgate/secret-path.db calls_v9")

        h.rt.ledger.reserve = broken
        flow = await through(h, flow_for(authorization="Bearer sk-real-key-0000000001"), reply=None)
        assert flow.response.status_code == 503
        error = json.loads(flow.response.content)["error"]
        assert error["type"] == "ledger_unavailable" and "secret-path" not in error["message"]
        assert "internal error" in error["message"]
        assert "secret-path" in caplog.text

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}})(body)


def test_a_stream_without_include_usage_gets_it_asked_for(tmp_path):
    async def body(h):
        flow = flow_for(body={"model": "gpt-4o", "stream": True, "messages": []})
        await h.meter.request(flow)
        sent = json.loads(flow.request.content)
        assert sent["stream_options"] == {"include_usage": True} and sent["stream"] is True
        assert flow.request.headers["accept-encoding"] == "identity"
        assert flow.metadata[METADATA_KEY].drop_usage_event

    scenario(tmp_path, {})(body)


def test_a_call_that_never_reached_upstream_is_not_charged(tmp_path):
    async def body(h):
        flow = await through(h, flow_for(), reply=None)
        flow.server_conn.timestamp_tcp_setup = None  # the connection was never set up
        flow.error = tflow.terr("Connect call failed")
        h.meter.error(flow)
        [row] = await h.rows()
        assert (row["status"], row["cost_nanos"], row["usage_source"]) == ("error", 0, "none")

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}})(body)


def test_a_flow_already_gone_is_left_alone(tmp_path):
    async def body(h):
        flow = flow_for()
        flow.live = False  # gone before the hook ran: the guard idiom
        await h.meter.request(flow)
        assert METADATA_KEY not in flow.metadata and flow.response is None
        assert await h.rows() == []

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}})(body)


def test_a_client_that_left_while_its_call_was_admitted_holds_nothing(tmp_path):
    async def body(h):
        await through(h, flow_for())  # leases granted: the next admission is from memory
        global_ = h.rt.ledger.leases
        credit = global_.credit(GLOBAL)
        assert credit > 0
        flow = flow_for()
        reserve = h.rt.ledger.reserve

        async def client_leaves(*args, **kwargs):
            outcome = await reserve(*args, **kwargs)
            flow.live = False
            return outcome

        h.rt.ledger.reserve = client_leaves
        await h.meter.request(flow)
        await h.meter.done()
        assert METADATA_KEY not in flow.metadata and flow.response is None
        assert global_.credit(GLOBAL) == credit  # the call's hold went back
        assert len(await h.rows()) == 1  # the first call only

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}})(body)


@pytest.mark.parametrize(("url", "method"), [
    ("https://example.com/v1/chat/completions", "POST"),  # not a provider
    ("https://api.openai.com/v1/models", "GET"),  # a free read
    ("https://api.openai.com/v1/moderations", "POST"),  # a free endpoint
])
def test_flows_spendgate_does_not_meter_are_untouched(tmp_path, url, method):
    async def body(h):
        flow = flow_for(url, method=method)
        before = flow.request.get_state()
        await h.meter.request(flow)
        assert METADATA_KEY not in flow.metadata and flow.response is None
        assert flow.request.get_state() == before

    scenario(tmp_path, {})(body)


def test_an_unmetered_write_is_forwarded_and_recorded(tmp_path):
    async def body(h):
        flow = await through(h, flow_for("https://api.openai.com/v1/batches", {"input_file_id": "f"}),
                             reply={"id": "batch_1"})
        [row] = await h.rows()
        assert (row["status"], row["cost_nanos"], row["endpoint"]) == ("unmetered", None, "unmetered")
        assert flow.metadata[METADATA_KEY].reservation is None

    scenario(tmp_path, {"litellm_settings": {"max_budget": 10.0}})(body)


def test_every_row_names_the_client_application_from_its_headers(tmp_path):
    async def body(h):
        await through(h, flow_for(**{"user-agent": "codex_cli_rs/0.169.0 (Ubuntu 24.04; x86_64) xterm",
                                     "originator": "codex_cli_rs"}))
        refused = await through(h, flow_for(body={"model": "gpt-4o", "messages": [], "max_tokens": 100_000}),
                                reply=None)  # its most ($1) is over the budget: refused, no user-agent
        assert refused.response.status_code == 429
        await through(h, flow_for("https://api.openai.com/v1/batches", {"input_file_id": "f"},
                                  **{"user-agent": "curl/8.5.0"}), reply={"id": "batch_1"})
        rows = await h.rows()
        assert sorted((r["status"], r["client"]) for r in rows) == [
            ("blocked", None), ("ok", "codex/0.169"), ("unmetered", "curl")]

    scenario(tmp_path, {"litellm_settings": {"max_budget": 0.5}})(body)


def test_a_virtual_key_in_two_headers_never_reaches_upstream(tmp_path):
    async def body(h):
        rec = KeyRecord(hash=key_hash(VIRTUAL), key_masked=mask(VIRTUAL), issued=True)
        await h.rt.ledger.write(Store.save, rec, BudgetSpec(), datetime.now(UTC))
        assert await h.rt.directory.refresh(h.rt.ledger)
        flow = flow_for(authorization=f"Bearer {VIRTUAL}", **{"x-api-key": VIRTUAL, "api-key": VIRTUAL})
        await h.meter.request(flow)
        headers = flow.request.headers
        assert headers["authorization"] == "Bearer sk-the-real-openai-key"
        assert "x-api-key" not in headers and "api-key" not in headers
        assert VIRTUAL not in bytes(flow.request.content).decode() + str(headers)

    scenario(tmp_path, {"providers": {"openai": {"api_key": "sk-the-real-openai-key"}}})(body)


def test_the_header_snapshot_reads_as_mitmproxys_headers_do():
    from addon.http import _content, _pretty_host, header_map

    req = http.Request.make("POST", CHAT_URL, b"{}", [(b"Content-Type", b"application/json"),
                                                     (b"X-Dup", b"a"), (b"x-dup", b"b"),
                                                     (b"X-Odd", b"caf\xc3\xa9 \xff")])
    req.headers["Host"] = "Spoofed.Example.com:8443"
    snapshot = header_map(req.headers)
    assert {name: snapshot[name] for name in snapshot} == {name.lower(): req.headers[name] for name in req.headers}
    assert snapshot["x-dup"] == "a, b" and snapshot.get("content-encoding") is None
    # the host the client asked for, as mitmproxy's pretty_host has it: Host header, h2 authority, else the target
    assert _pretty_host(req, snapshot) == req.pretty_host == "Spoofed.Example.com"
    del req.headers["host"]
    assert _pretty_host(req, header_map(req.headers)) == req.pretty_host == "api.openai.com"
    req.http_version, req.authority = "HTTP/2.0", "h2.example.com"
    assert _pretty_host(req, header_map(req.headers)) == req.pretty_host == "h2.example.com"
    # a body read without its content-encoding unless it has one
    req.headers["content-encoding"] = "gzip"
    req.content = b'{"model": "m"}'
    assert req.raw_content != b'{"model": "m"}' and _content(req, header_map(req.headers)) == b'{"model": "m"}'
    assert _content(req, None) == b'{"model": "m"}'


def test_proxy_credentials_on_a_request_are_seen_whatever_their_case():
    from addon.proxyauth import _has_proxy_authorization

    for name in ("Proxy-Authorization", "proxy-authorization", "PROXY-AUTHORIZATION"):
        req = http.Request.make("GET", "http://example.com/", b"", {name: "Basic eDp5", "accept": "*/*"})
        assert _has_proxy_authorization(req.headers) is ("proxy-authorization" in req.headers) is True
    req = http.Request.make("GET", "http://example.com/", b"", {"proxy-authorization-x": "1", "authorization": "k"})
    assert _has_proxy_authorization(req.headers) is ("proxy-authorization" in req.headers) is False


def test_a_body_set_through_the_snapshot_is_set_as_mitmproxy_sets_it():
    from addon.http import _set_content, header_map

    for extra in ({}, {"content-encoding": "gzip"}, {"transfer-encoding": "chunked"}):
        ours = http.Request.make("POST", CHAT_URL, b"{}", {"content-type": "application/json", **extra})
        theirs = http.Request.make("POST", CHAT_URL, b"{}", {"content-type": "application/json", **extra})
        _set_content(ours, header_map(ours.headers), b'{"stream": true}')
        theirs.content = b'{"stream": true}'
        assert ours.raw_content == theirs.raw_content and ours.content == b'{"stream": true}'
        assert ours.headers.fields == theirs.headers.fields
