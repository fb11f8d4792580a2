"""Tests of the end-to-end harness itself: the fake provider, and real clients talking HTTPS
through a real (bare) mitmdump with map-remote onto the fake. No addon involved."""

from __future__ import annotations

import concurrent.futures
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import brotli
import httpx
import pytest
import zstandard

from fake_provider import (
    ANTHROPIC_USAGE,
    GEMINI_USAGE,
    OPENAI_RESPONSES_USAGE,
    OPENAI_USAGE,
    start_fake_provider,
)
from proxy import STREAM_ADDON, MitmProxy

TESTS_DIR = Path(__file__).resolve().parent
MSGS = [{"role": "user", "content": "hi"}]


# --------------------------------------------------------------------------- helpers


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """Parse an SSE body into (event, data) pairs (handles \\n and \\r\\n)."""
    out = []
    for block in re.split(r"\r?\n\r?\n", text):
        if not block.strip():
            continue
        event, data = None, []
        for line in re.split(r"\r?\n", block):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        out.append((event, "\n".join(data)))
    return out


def sse_json(text: str) -> list[dict]:
    return [json.loads(d) for _, d in sse_events(text) if d and d != "[DONE]"]


@pytest.fixture
def direct(fake_provider):
    with httpx.Client(base_url=fake_provider.url, trust_env=False, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def bare_proxy(fake_provider_session, tmp_path_factory):
    """One bare mitmdump (no script) shared by this module's proxy tests."""
    with MitmProxy(fake_provider_session.url, workdir=tmp_path_factory.mktemp("bare")) as p:
        yield p


# --------------------------------------------------------------------------- fake, direct


def test_openai_chat_non_stream(direct, fake_provider):
    r = direct.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MSGS},
                    headers={"authorization": "Bearer sk-direct"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert "x-request-id" in r.headers
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o-mini"
    assert body["choices"][0]["message"]["content"]
    assert body["usage"] == OPENAI_USAGE
    u = body["usage"]
    assert (u["prompt_tokens"], u["prompt_tokens_details"]["cached_tokens"]) == (1000, 200)
    assert (u["completion_tokens"], u["completion_tokens_details"]["reasoning_tokens"]) == (500, 100)
    [rec] = fake_provider.requests()
    assert rec["method"] == "POST" and rec["path"] == "/v1/chat/completions"
    assert rec["headers"]["authorization"] == "Bearer sk-direct"
    assert json.loads(rec["body"])["model"] == "gpt-4o-mini"


def test_openai_chat_stream_with_and_without_include_usage(direct):
    r = direct.post("/v1/chat/completions", json={
        "model": "gpt-4.1", "messages": MSGS, "stream": True,
        "stream_options": {"include_usage": True}})
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers.get("transfer-encoding") == "chunked"
    events = sse_events(r.text)
    assert events[-1] == (None, "[DONE]")
    chunks = sse_json(r.text)
    assert all(c["model"] == "gpt-4.1" and c["object"] == "chat.completion.chunk" for c in chunks)
    *body_chunks, last = chunks
    assert last["choices"] == [] and last["usage"] == OPENAI_USAGE
    assert all(c["usage"] is None for c in body_chunks)
    assert body_chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in body_chunks)
    assert text.startswith("Hello")

    r = direct.post("/v1/chat/completions", json={"model": "gpt-4.1", "messages": MSGS,
                                                   "stream": True})
    chunks = sse_json(r.text)
    assert sse_events(r.text)[-1] == (None, "[DONE]")
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


def test_openai_responses_stream_and_not(direct):
    r = direct.post("/v1/responses", json={"model": "gpt-5", "input": "hi"})
    body = r.json()
    assert body["object"] == "response" and body["model"] == "gpt-5"
    assert body["usage"] == OPENAI_RESPONSES_USAGE

    r = direct.post("/v1/responses", json={"model": "gpt-5", "input": "hi", "stream": True})
    events = sse_events(r.text)
    types = [e for e, _ in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    assert types.index("response.output_text.delta") < types.index("response.output_text.done")
    datas = [json.loads(d) for _, d in events]
    assert [d["type"] for d in datas] == types
    assert [d["sequence_number"] for d in datas] == list(range(len(datas)))
    assert datas[0]["response"]["usage"] is None
    final = datas[-1]["response"]
    assert final["status"] == "completed" and final["model"] == "gpt-5"
    assert final["usage"]["input_tokens_details"]["cached_tokens"] == 200
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == 100


def test_openai_completions_and_embeddings(direct):
    r = direct.post("/v1/completions", json={"model": "gpt-3.5-turbo-instruct", "prompt": "x"})
    body = r.json()
    assert body["object"] == "text_completion" and body["model"] == "gpt-3.5-turbo-instruct"
    assert body["usage"]["prompt_tokens"] == 1000 and body["usage"]["completion_tokens"] == 500

    r = direct.post("/v1/completions", json={"model": "m", "prompt": "x", "stream": True,
                                              "stream_options": {"include_usage": True}})
    chunks = sse_json(r.text)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 1500

    r = direct.post("/v1/embeddings", json={"model": "text-embedding-3-small",
                                             "input": ["a", "b"]})
    body = r.json()
    assert body["model"] == "text-embedding-3-small"
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["usage"] == {"prompt_tokens": 1000, "total_tokens": 1000}
    r = direct.post("/v1/embeddings", json={"model": "e", "input": "a",
                                             "encoding_format": "base64"})
    assert isinstance(r.json()["data"][0]["embedding"], str)


def test_azure_deployment_routes(direct, fake_provider):
    r = direct.post("/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21",
                    json={"messages": MSGS}, headers={"api-key": "azkey"})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "my-gpt4o"  # no model in the body: echo the deployment
    assert body["usage"] == OPENAI_USAGE
    r = direct.post("/openai/deployments/dep/chat/completions?api-version=2024-10-21",
                    json={"model": "gpt-4o", "messages": MSGS, "stream": True,
                          "stream_options": {"include_usage": True}})
    assert sse_json(r.text)[-1]["usage"] == OPENAI_USAGE
    r = direct.post("/openai/deployments/emb/embeddings?api-version=2024-10-21",
                    json={"input": "x"})
    assert r.json()["model"] == "emb"
    rec = fake_provider.requests()[0]
    assert rec["query"] == {"api-version": "2024-10-21"}
    assert rec["headers"]["api-key"] == "azkey"


def test_anthropic_messages(direct):
    r = direct.post("/v1/messages", json={"model": "claude-sonnet-4-5", "max_tokens": 10,
                                           "messages": MSGS})
    body = r.json()
    assert body["type"] == "message" and body["model"] == "claude-sonnet-4-5"
    assert body["usage"] == ANTHROPIC_USAGE
    assert "request-id" in r.headers

    r = direct.post("/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 10,
                                           "messages": MSGS, "stream": True})
    events = sse_events(r.text)
    types = [e for e, _ in events]
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert types[-2] == "message_delta"
    assert {"content_block_start", "content_block_delta", "content_block_stop"} <= set(types)
    datas = [json.loads(d) for _, d in events]
    assert all(d["type"] == t for d, t in zip(datas, types))
    start_usage = datas[0]["message"]["usage"]
    assert datas[0]["message"]["model"] == "claude-haiku-4-5"
    assert (start_usage["input_tokens"], start_usage["cache_read_input_tokens"],
            start_usage["cache_creation_input_tokens"]) == (700, 200, 100)
    assert start_usage["output_tokens"] == 1
    assert datas[-2]["usage"]["output_tokens"] == 500  # cumulative, not an increment


def test_gemini_generate_and_streams(direct, fake_provider):
    r = direct.post("/v1beta/models/gemini-2.5-pro:generateContent?key=gk-1", json={})
    body = r.json()
    assert body["modelVersion"] == "gemini-2.5-pro"
    assert body["usageMetadata"] == GEMINI_USAGE
    assert fake_provider.requests()[0]["query"] == {"key": "gk-1"}

    r = direct.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", json={})
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "\r\n\r\n" in r.text
    chunks = sse_json(r.text)
    assert len(chunks) > 1
    assert all("usageMetadata" in c for c in chunks)
    assert chunks[-1]["usageMetadata"] == GEMINI_USAGE
    counts = [c["usageMetadata"]["candidatesTokenCount"] for c in chunks]
    assert counts == sorted(counts) and counts[-1] == 400
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"

    r = direct.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent", json={})
    assert r.headers["content-type"].startswith("application/json")
    assert r.text.startswith("[{") and "\n,{" in r.text and r.text.endswith("]")
    arr = r.json()
    assert len(arr) == len(chunks)
    assert arr[-1]["usageMetadata"] == GEMINI_USAGE


def test_unknown_path_is_404_json(direct):
    r = direct.post("/v2/nothing", json={})
    assert r.status_code == 404 and "error" in r.json()
    assert direct.get("/v1/chat/completions").status_code == 404


@pytest.mark.parametrize(
    "path,body,usage,pick",
    [
        ("/v1/chat/completions", {"model": "m"}, {"prompt_tokens": 7, "completion_tokens": 3,
                                                 "total_tokens": 10},
         lambda r: r.json()["usage"]),
        ("/v1/chat/completions", {"model": "m", "stream": True,
                                  "stream_options": {"include_usage": True}},
         {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
         lambda r: sse_json(r.text)[-1]["usage"]),
        ("/v1/responses", {"model": "m", "stream": True},
         {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
         lambda r: sse_json(r.text)[-1]["response"]["usage"]),
        ("/v1/messages", {"model": "m"}, {"input_tokens": 7, "output_tokens": 3},
         lambda r: r.json()["usage"]),
        ("/v1beta/models/g:streamGenerateContent?alt=sse", {},
         {"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10},
         lambda r: sse_json(r.text)[-1]["usageMetadata"]),
    ],
)
def test_usage_override(direct, path, body, usage, pick):
    r = direct.post(path, json=body, headers={"x-fake-usage": json.dumps(usage)})
    assert pick(r) == usage


def test_anthropic_stream_usage_override(direct):
    usage = {"input_tokens": 7, "cache_read_input_tokens": 0, "output_tokens": 42}
    r = direct.post("/v1/messages", json={"model": "m", "stream": True},
                    headers={"x-fake-usage": json.dumps(usage)})
    datas = sse_json(r.text)
    assert datas[0]["message"]["usage"] == {**usage, "output_tokens": 1}
    assert datas[-2]["usage"] == {"output_tokens": 42}


@pytest.mark.parametrize("path,kind", [
    ("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic"),
    ("/v1beta/models/g:generateContent", "gemini")])
def test_error_status(direct, path, kind):
    r = direct.post(path, json={"model": "m"}, headers={"x-fake-status": "500"})
    assert r.status_code == 500
    body = r.json()
    if kind == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "api_error"
    elif kind == "gemini":
        assert body["error"]["code"] == 500
    else:
        assert body["error"]["type"] == "server_error"
    r = direct.post(path, json={"model": "m"}, headers={"x-fake-status": "429"})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"


def test_cut_after_drops_the_connection(fake_provider):
    received = []
    with httpx.Client(base_url=fake_provider.url, trust_env=False, timeout=10) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            with c.stream("POST", "/v1/messages", json={"model": "m", "stream": True},
                          headers={"x-fake-cut-after": "2"}) as r:
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        received.append(line[6:].strip())
    assert received == ["message_start", "content_block_start"]
    # the server is fine afterwards
    r = httpx.post(fake_provider.url + "/v1/messages", json={"model": "m"}, trust_env=False)
    assert r.status_code == 200


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_encodings_direct(direct, encoding):
    r = direct.post("/v1/chat/completions", json={"model": "m"},
                    headers={"x-fake-encoding": encoding})
    assert r.headers["content-encoding"] == encoding
    assert r.json()["usage"] == OPENAI_USAGE

    # a stream is compressed incrementally: each HTTP chunk decodes on its own
    decoders = {"gzip": lambda: __import__("zlib").decompressobj(31),
                "br": lambda: brotli.Decompressor(),
                "zstd": lambda: zstandard.ZstdDecompressor().decompressobj()}
    dec = decoders[encoding]()
    step = dec.process if encoding == "br" else dec.decompress
    pieces = []
    with direct.stream("POST", "/v1/chat/completions",
                       json={"model": "m", "stream": True},
                       headers={"x-fake-encoding": encoding, "x-fake-delay-ms": "20"}) as r:
        assert r.headers["content-encoding"] == encoding
        for raw in r.iter_raw():
            out = step(raw)
            if out:
                pieces.append(out)
    text = b"".join(pieces).decode()
    assert sse_events(text)[-1] == (None, "[DONE]")
    assert len(pieces) >= 3  # decoded progressively, not only at the end


def test_control_api(direct, fake_provider):
    direct.post("/v1/chat/completions?key=abc", json={"model": "m"},
                headers={"x-custom": "1"})
    recs = direct.get("/_fake/requests").json()
    assert len(recs) == 1
    assert recs[0]["path"] == "/v1/chat/completions?key=abc"
    assert recs[0]["query"] == {"key": "abc"}
    assert recs[0]["headers"]["x-custom"] == "1"
    assert set(recs[0]) >= {"method", "path", "headers", "body"}
    assert direct.post("/_fake/reset").json() == {"ok": True}
    assert direct.get("/_fake/requests").json() == []
    assert fake_provider.requests() == []


def test_sixty_concurrent_streams_direct(fake_provider):
    limits = httpx.Limits(max_connections=60, max_keepalive_connections=60)
    with httpx.Client(trust_env=False, timeout=20, limits=limits) as c:
        def one(i):
            r = c.post(fake_provider.url + "/v1/chat/completions",
                       json={"model": f"m{i}", "stream": True,
                             "stream_options": {"include_usage": True}},
                       headers={"x-fake-delay-ms": "100"})
            return sse_json(r.text)[-1]

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(60) as ex:
            results = list(ex.map(one, range(60)))
        elapsed = time.monotonic() - t0
    # 8 events 100 ms apart: served in parallel, not one after another (60 x 0.7 s)
    assert elapsed < 10
    assert [r["model"] for r in results] == [f"m{i}" for i in range(60)]
    assert all(r["usage"] == OPENAI_USAGE for r in results)
    assert len(fake_provider.requests()) == 60


def test_script_mode_prints_listening_line():
    proc = subprocess.Popen([sys.executable, str(TESTS_DIR / "fake_provider.py"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert m, line
        r = httpx.post(m.group(1) + "/v1/messages", json={"model": "m"}, trust_env=False)
        assert r.json()["usage"]["input_tokens"] == 700
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_library_start_stop():
    fake = start_fake_provider()
    try:
        assert fake.url == f"http://127.0.0.1:{fake.port}"
        httpx.post(fake.url + "/v1/embeddings", json={"model": "e", "input": "x"},
                   trust_env=False)
        assert len(fake.requests()) == 1
        fake.reset()
        assert fake.requests() == []
    finally:
        fake.stop()


# --------------------------------------------------------------------------- through mitmdump


def test_proxy_basics(bare_proxy):
    assert bare_proxy.is_running()
    assert bare_proxy.url == f"http://127.0.0.1:{bare_proxy.port}"
    assert bare_proxy.ca_path.name == "mitmproxy-ca-cert.pem" and bare_proxy.ca_path.exists()
    env = bare_proxy.env()
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == bare_proxy.url
    for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        assert env[k] == str(bare_proxy.ca_path)
    assert "127.0.0.1" in env["NO_PROXY"] and "api.openai.com" not in env["NO_PROXY"]
    assert "proxy listening" in bare_proxy.log_text()


def test_openai_sdk_through_proxy(bare_proxy, fake_provider):
    client = bare_proxy.openai_client(api_key="sk-proj-harness")
    r = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert r.model == "gpt-4o-mini"
    assert r.usage.prompt_tokens == 1000
    assert r.usage.prompt_tokens_details.cached_tokens == 200
    assert r.usage.completion_tokens_details.reasoning_tokens == 100

    stream = client.chat.completions.create(model="gpt-4o", messages=MSGS, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith(
        "Hello")
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 1500

    recs = fake_provider.requests()
    assert [r["path"] for r in recs] == ["/v1/chat/completions"] * 2
    assert all(r["headers"]["authorization"] == "Bearer sk-proj-harness" for r in recs)
    assert json.loads(recs[1]["body"])["stream_options"] == {"include_usage": True}


def test_anthropic_sdk_stream_through_proxy(bare_proxy, fake_provider):
    client = bare_proxy.anthropic_client(api_key="sk-ant-harness")
    with client.messages.stream(model="claude-opus-4-7", max_tokens=64,
                                messages=MSGS) as stream:
        text = "".join(stream.text_stream)
        msg = stream.get_final_message()
    assert text.startswith("Hello")
    assert msg.model == "claude-opus-4-7"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens,
            msg.usage.cache_creation_input_tokens, msg.usage.output_tokens) == (700, 200, 100, 500)
    [rec] = fake_provider.requests()
    assert rec["path"] == "/v1/messages"
    # anthropic SDK 2.x sends the API key as "Authorization: Bearer" (older ones: x-api-key)
    assert (rec["headers"].get("authorization") == "Bearer sk-ant-harness"
            or rec["headers"].get("x-api-key") == "sk-ant-harness")
    assert "anthropic-version" in rec["headers"]


def test_azure_and_responses_through_proxy(bare_proxy, fake_provider):
    az = bare_proxy.azure_openai_client(azure_endpoint="https://my-res.openai.azure.com")
    r = az.chat.completions.create(model="prod-4o", messages=MSGS)
    assert r.usage.total_tokens == 1500
    oa = bare_proxy.openai_client()
    events = list(oa.responses.create(model="gpt-5", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.output_tokens_details.reasoning_tokens == 100
    paths = [r["path"] for r in fake_provider.requests()]
    assert paths[0].startswith("/openai/deployments/prod-4o/chat/completions?api-version=")
    assert paths[1] == "/v1/responses"


def test_curl_gemini_through_proxy(bare_proxy, fake_provider):
    url = ("https://generativelanguage.googleapis.com/v1beta/models/"
           "gemini-2.5-flash:generateContent?key=gk-harness")
    p = bare_proxy.curl("-X", "POST", url, "-H", "content-type: application/json",
                        "-H", "Authorization: Bearer ya29.harness",
                        "-d", json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}))
    assert p.returncode == 0, p.stderr
    body = json.loads(p.stdout)
    assert body["modelVersion"] == "gemini-2.5-flash"
    assert body["usageMetadata"] == GEMINI_USAGE
    [rec] = fake_provider.requests()
    assert rec["query"] == {"key": "gk-harness"}
    assert rec["headers"]["authorization"] == "Bearer ya29.harness"

    # curl picks up the proxy and CA from .env() too
    p = subprocess.run(["curl", "-sS", "-X", "POST", url, "-d", "{}"], env=bare_proxy.env(),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["usageMetadata"]["thoughtsTokenCount"] == 100


def test_unmapped_hosts_never_leave_the_machine(bare_proxy, fake_provider):
    p = bare_proxy.curl("-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "https://example.com/v1/chat/completions")
    assert p.stdout == "502"
    assert fake_provider.requests() == []
    assert "Name or service not known" not in bare_proxy.log_text()


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_encodings_through_proxy(bare_proxy, encoding):
    hdr = {"x-fake-encoding": encoding}
    with bare_proxy.httpx_client() as c:
        r = c.post("https://api.openai.com/v1/chat/completions", json={"model": "m"},
                   headers=hdr)
        assert r.headers["content-encoding"] == encoding
        assert r.json()["usage"] == OPENAI_USAGE
    client = bare_proxy.openai_client()
    chunks = list(client.chat.completions.create(
        model="m", messages=MSGS, stream=True, stream_options={"include_usage": True},
        extra_headers=hdr))
    assert chunks[-1].usage.prompt_tokens == 1000
    p = bare_proxy.curl("--compressed", "-X", "POST",
                        "https://api.anthropic.com/v1/messages", "-H", f"x-fake-encoding: {encoding}",
                        "-d", json.dumps({"model": "claude", "stream": True}))
    assert p.returncode == 0, p.stderr
    assert [e for e, _ in sse_events(p.stdout)][-1] == "message_stop"


def test_sixty_concurrent_calls_through_proxy(bare_proxy, fake_provider):
    client = bare_proxy.openai_client()

    def one(i):
        if i % 2:
            r = client.chat.completions.create(model=f"m{i}", messages=MSGS)
            return r.model, r.usage.total_tokens
        chunks = list(client.chat.completions.create(
            model=f"m{i}", messages=MSGS, stream=True,
            stream_options={"include_usage": True}, extra_headers={"x-fake-delay-ms": "10"}))
        return chunks[-1].model, chunks[-1].usage.total_tokens

    with concurrent.futures.ThreadPoolExecutor(60) as ex:
        results = list(ex.map(one, range(60)))
    assert results == [(f"m{i}", 1500) for i in range(60)]
    assert len(fake_provider.requests()) == 60


def _time_stream(client: httpx.Client, url: str, body: dict, headers: dict):
    """Return (t_first_event, t_end, events) measured from the request start."""
    t0 = time.monotonic()
    t_first = None
    events = []
    with client.stream("POST", url, json=body, headers=headers) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                if t_first is None:
                    t_first = time.monotonic() - t0
                events.append(line)
    return t_first, time.monotonic() - t0, events


def test_bare_mitmdump_buffers_streams(bare_proxy):
    """Documents mitmproxy's default: without `flow.response.stream`, the client gets the
    first event only when the whole stream is done."""
    with bare_proxy.httpx_client() as c:
        t_first, t_end, events = _time_stream(
            c, "https://api.openai.com/v1/chat/completions",
            {"model": "m", "stream": True}, {"x-fake-first-chunk-then-wait-ms": "800"})
    assert events[-1] == "data: [DONE]"
    assert t_first >= 0.7  # held back until the end
    assert t_end - t_first < 0.4


def test_make_proxy_streams_first_chunk_early(make_proxy, fake_provider):
    """make_proxy with a config and a script (the pass-through streaming addon): the config
    is written with a ledger under tmp_path, and a stream's first chunk reaches the client
    well before the stream ends."""
    proxy = make_proxy({"budgets": []}, script=STREAM_ADDON)
    assert proxy.config["general_settings"]["database_url"].startswith("sqlite:////")
    assert proxy.ledger_path is not None and proxy.ledger_path.name == "ledger.db"
    assert proxy.config_path.read_text().count("database_url") == 1
    assert f"budget_config={proxy.config_path}" in proxy.log_text()

    with proxy.httpx_client() as c:
        for url, body in [
            ("https://api.openai.com/v1/chat/completions", {"model": "m", "stream": True}),
            ("https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent"
             "?alt=sse", {}),
        ]:
            t_first, t_end, events = _time_stream(
                c, url, body, {"x-fake-first-chunk-then-wait-ms": "800"})
            assert len(events) > 2
            assert t_first is not None and t_end - t_first >= 0.6, (t_first, t_end)

    # the SDK sees the first chunk before the rest too
    client = proxy.openai_client()
    t0 = time.monotonic()
    stamps = [time.monotonic() - t0 for _ in client.chat.completions.create(
        model="m", messages=MSGS, stream=True,
        extra_headers={"x-fake-first-chunk-then-wait-ms": "800"})]
    assert stamps[-1] - stamps[0] >= 0.6
    assert len(fake_provider.requests()) == 3


def test_make_proxy_bare_and_clean_stop(make_proxy, tmp_path):
    proxy = make_proxy(script=None)
    assert proxy.is_running() and proxy.ledger_path is None and proxy.config_path is None
    with proxy.httpx_client() as c:
        r = c.post("https://api.anthropic.com/v1/messages", json={"model": "m"})
        assert r.json()["usage"]["output_tokens"] == 500
    proc = proxy.proc
    assert proxy.stop() == 0  # SIGINT -> clean exit; teardown's stop() is then a no-op
    assert proc.poll() == 0 and not proxy.is_running()

    with pytest.raises(Exception, match="does not exist"):
        MitmProxy("http://127.0.0.1:1", script=tmp_path / "nope.py", workdir=tmp_path).start()
