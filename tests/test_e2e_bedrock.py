"""End to end: boto3's `bedrock-runtime` client → real mitmdump with the addon → the fake
Bedrock runtime (tests/fakes/bedrock.py).

The client is made as for AWS itself: region us-east-1, no `endpoint_url` (the proxy maps
`bedrock-runtime.us-east-1.amazonaws.com` to the fake), the proxy's CA as `verify`.

Prices are genai-prices' `aws` figures (its comments cite the AWS price list API,
AmazonBedrockFoundationModels, us-east-1). For Claude Sonnet 4.5 genai-prices has two
entries: `global.` cross-region inference at Anthropic's list price ($3 / $15 per MTok,
cache read $0.30, 5-minute cache write $3.75), and everything else — the in-region id and
the geographic `us.`/`eu.`/`apac.` profiles — 10% above it ($3.30 / $16.50, cache read
$0.33, cache write $4.125), as AWS prices in-region and geo inference for the newer Claude
models. Each test asserts the figure of the id it calls, computed by hand below from the
fake's usage: 700 uncached input, 200 cache read, 100 cache write (5 min), 500 output.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import botocore.eventstream
import botocore.exceptions
import httpx
import pytest


from e2e_helpers import module_proxy

MASTER = "sk-1234"
REAL_KEY_ID = "AKIAREALUPSTREAM0001"
REAL_SECRET = "real/Secret+Key/forUpstream0000000000000"
REAL_API_KEY = "ABSKrealbedrockapikey0000"
HOST = "bedrock-runtime.us-east-1.amazonaws.com"
CONFIG = {
    "general_settings": {"master_key": MASTER},
    "providers": {"bedrock": {"aws_access_key_id": REAL_KEY_ID, "aws_secret_access_key": REAL_SECRET}},
}

SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
US_SONNET = "us." + SONNET
GLOBAL_SONNET = "global." + SONNET
PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/" + US_SONNET
NOVA_ARN = "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"

# Sonnet 4.5, in-region or geo profile: 700 × $3.30/M + 200 × $0.33/M + 100 × $4.125/M + 500 × $16.50/M
REGIONAL_NANOS = 2_310_000 + 66_000 + 412_500 + 8_250_000  # $0.0110385
# Sonnet 4.5, global profile: 700 × $3/M + 200 × $0.30/M + 100 × $3.75/M + 500 × $15/M
GLOBAL_NANOS = 2_100_000 + 60_000 + 375_000 + 7_500_000  # $0.010035

MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
ANTHROPIC_BODY = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300,
                             "messages": [{"role": "user", "content": "hi"}]})


proxy = module_proxy(CONFIG)


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch):
    """boto3 reads credentials and Bedrock API keys from the environment: only the test's count."""
    for name in ("AWS_BEARER_TOKEN_BEDROCK", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


@pytest.fixture
def since(proxy):
    return proxy.ledger.mark()


def tokens(row):
    return row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"], row["output_tokens"]


# --- each operation, priced ----------------------------------------------------------------


def test_converse_with_a_geo_profile_is_priced_at_the_regional_rate(proxy, since, fake):
    reply = proxy.bedrock_client().converse(modelId=US_SONNET, messages=MESSAGES, inferenceConfig={"maxTokens": 300})
    assert reply["usage"]["inputTokens"] == 700 and reply["output"]["message"]["content"]
    [seen] = fake.requests()
    assert seen["path"] == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"  # as boto3 encodes it
    row = proxy.ledger.row(since)
    assert (row["provider"], row["endpoint"], row["model"], row["status"], row["streamed"]) == (
        "bedrock", "converse", US_SONNET, "ok", 0)
    assert tokens(row) == (1000, 200, 100, 500)  # inputTokens excludes the cache: added back
    assert row["cost_nanos"] == REGIONAL_NANOS
    assert row["key_masked"] == "AKIAI...MPLE"


def test_converse_stream_with_the_global_profile_is_priced_at_the_global_rate(proxy, since):
    reply = proxy.bedrock_client().converse_stream(modelId=GLOBAL_SONNET, messages=MESSAGES)
    events = list(reply["stream"])
    assert [next(iter(e)) for e in events][-2:] == ["messageStop", "metadata"]
    row = proxy.ledger.row(since)
    assert (row["endpoint"], row["model"], row["status"], row["streamed"], row["usage_source"]) == (
        "converse", GLOBAL_SONNET, "ok", 1, "reported")
    assert tokens(row) == (1000, 200, 100, 500)
    assert row["cost_nanos"] == GLOBAL_NANOS


def test_invoke_model_with_an_inference_profile_arn_is_priced_as_its_profile(proxy, since, fake):
    reply = proxy.bedrock_client().invoke_model(modelId=PROFILE_ARN, body=ANTHROPIC_BODY)
    body = json.loads(reply["body"].read())
    assert body["model"] == "claude-sonnet-4-5-20250929"
    [seen] = fake.requests()
    assert "%2Fus.anthropic" in seen["path"] and urllib.parse.unquote(seen["path"]).startswith(
        "/model/" + PROFILE_ARN)
    row = proxy.ledger.row(since)
    # the URL's profile, not the body's `claude-sonnet-4-5-20250929`, names the model
    assert (row["endpoint"], row["model"], row["status"]) == ("invoke", US_SONNET, "ok")
    assert tokens(row) == (1000, 200, 100, 500)
    assert row["cost_nanos"] == REGIONAL_NANOS


def test_invoke_model_with_response_stream_reads_the_anthropic_events_in_its_chunks(proxy, since):
    reply = proxy.bedrock_client().invoke_model_with_response_stream(modelId=SONNET, body=ANTHROPIC_BODY)
    chunks = [json.loads(e["chunk"]["bytes"]) for e in reply["body"]]
    assert chunks[-1]["type"] == "message_stop" and "amazon-bedrock-invocationMetrics" in chunks[-1]
    row = proxy.ledger.row(since)
    assert (row["endpoint"], row["model"], row["status"], row["streamed"]) == ("invoke", SONNET, "ok", 1)
    assert tokens(row) == (1000, 200, 100, 500)
    assert row["cost_nanos"] == REGIONAL_NANOS  # the in-region id: the regional entry


def test_a_foundation_model_arn_is_priced_as_its_model(proxy, since):
    usage = {"inputTokens": 1000, "outputTokens": 400, "totalTokens": 1400}
    client = proxy.bedrock_client(headers={"x-fake-usage": json.dumps(usage)})
    client.converse(modelId=NOVA_ARN, messages=MESSAGES)
    row = proxy.ledger.row(since)
    assert (row["model"], row["status"], tokens(row)) == ("amazon.nova-pro-v1:0", "ok", (1000, 0, 0, 400))
    # Nova Pro: 1000 × $0.80/M + 400 × $3.20/M
    assert row["cost_nanos"] == 800_000 + 1_280_000


def test_two_calls_with_one_access_key_are_one_key(proxy, since, fake):
    client = proxy.bedrock_client(access_key="AKIAONEKEYFORTWOCALLS")
    client.converse(modelId=US_SONNET, messages=MESSAGES)
    client.converse(modelId=US_SONNET, messages=[{"role": "user", "content": [{"text": "and again"}]}])
    first, second = proxy.ledger.rows(since, 2)
    assert first["key_hash"] == second["key_hash"] and first["key_masked"] == "AKIAO...ALLS"
    signatures = {r["headers"]["authorization"].rsplit("Signature=", 1)[1] for r in fake.requests()}
    assert len(signatures) == 2  # a new signature each call; one key in the ledger
    other = proxy.bedrock_client(access_key="AKIAANOTHERKEY000001")
    other.converse(modelId=US_SONNET, messages=MESSAGES)
    assert proxy.ledger.rows(since, 3)[2]["key_hash"] != first["key_hash"]


# --- bad input stays harmless ---------------------------------------------------------------


def test_a_stream_cut_off_upstream_is_charged_an_estimate(proxy, since):
    client = proxy.bedrock_client(headers={"x-fake-cut-after": "3"})
    reply = client.converse_stream(modelId=US_SONNET, messages=MESSAGES)
    with pytest.raises(Exception):  # the SDK sees the stream end early
        list(reply["stream"])
    row = proxy.ledger.row(since)
    assert (row["status"], row["usage_source"], row["streamed"]) == ("partial", "estimated", 1)
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["cost_nanos"] > 0
    assert proxy.ledger.settled()["reserved_nanos"] == 0


def test_a_malformed_frame_is_recorded_and_the_stream_still_delivered_unchanged(proxy, since, fake):
    corrupt = {"x-fake-corrupt-frame": "2"}
    client = proxy.bedrock_client(headers=corrupt)
    reply = client.converse_stream(modelId=US_SONNET, messages=MESSAGES)
    got = []
    with pytest.raises(botocore.eventstream.ChecksumMismatch):
        for event in reply["stream"]:
            got.append(event)
    assert len(got) == 2  # the SDK read the frames before the bad one, as it would from AWS
    row = proxy.ledger.row(since)
    assert row["status"] == "partial" and row["usage_source"] == "estimated"
    assert "Checksum" in row["error"] and row["cost_nanos"] > 0
    # The bytes the client got are the fake's, unchanged: the same stream fetched directly.
    path = fake.requests()[0]["path"]
    headers = {"content-type": "application/json", **corrupt}
    direct = httpx.post(fake.url + path, content=json.dumps({"messages": MESSAGES}), headers=headers).content
    with proxy.httpx_client() as http:
        proxied = http.post(f"https://{HOST}{path}", content=json.dumps({"messages": MESSAGES}),
                            headers={**headers, "authorization": "Bearer ABSKsomebedrockkey"}).content
    assert proxied == direct and len(direct) > 200


def test_an_upstream_error_is_passed_on_in_its_shape_and_not_charged(proxy, since):
    client = proxy.bedrock_client(headers={"x-fake-status": "400"})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.converse(modelId=US_SONNET, messages=MESSAGES)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    row = proxy.ledger.row(since)
    assert (row["status"], row["cost_nanos"], row["http_status"]) == ("upstream_error", 0, 400)


# --- virtual keys and budgets -----------------------------------------------------------------


def generate(proxy, **body) -> str:
    r = proxy.admin_client(MASTER).post("/key/generate", json=body)
    assert r.status_code == 200, r.text
    return r.json()["key"]


def signature_is_valid(seen: dict, secret: str, token: str | None = None, host: str = HOST) -> bool:
    """Recompute the SigV4 signature of what the fake received, as AWS would check it: with the
    host the client asked for (the proxy's test mapping rewrote the Host header afterwards)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})", seen["headers"]["authorization"])
    assert m, seen["headers"]["authorization"]
    key, region, service, signed, signature = m.groups()
    headers = {name: host if name == "host" else seen["headers"][name] for name in signed.split(";")}
    request = AWSRequest(method=seen["method"], url=f"https://{host}{seen['path']}", data=seen["body"].encode(),
                         headers=headers)
    request.context["timestamp"] = seen["headers"]["x-amz-date"]
    signer = SigV4Auth(Credentials(key, secret, token), service, region)
    return signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request) == signature


def test_a_virtual_key_as_access_key_id_is_re_signed_with_the_real_aws_keys(proxy, since, fake):
    key = generate(proxy, key_alias="bedrock-sigv4")
    client = proxy.bedrock_client(access_key=key, secret_key="anything: spendgate never sees it used")
    client.converse(modelId=US_SONNET, messages=MESSAGES)
    [seen] = fake.requests()
    assert seen["headers"]["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={REAL_KEY_ID}/") and "/us-east-1/bedrock/aws4_request" in seen["headers"][
        "authorization"]
    assert signature_is_valid(seen, REAL_SECRET)
    assert key not in json.dumps(seen)
    row = proxy.ledger.row(since)
    assert (row["key_alias"], row["cost_nanos"]) == ("bedrock-sigv4", REGIONAL_NANOS)


def test_a_virtual_key_as_bedrock_api_key_is_re_signed_too(proxy, since, fake, monkeypatch):
    key = generate(proxy, key_alias="bedrock-bearer")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", key)  # boto3 then sends `Authorization: Bearer`
    client = proxy.bedrock_client()
    reply = client.invoke_model_with_response_stream(modelId=US_SONNET, body=ANTHROPIC_BODY)
    list(reply["body"])
    [seen] = fake.requests()
    assert seen["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={REAL_KEY_ID}/")
    assert signature_is_valid(seen, REAL_SECRET)
    assert key not in json.dumps(seen)
    assert proxy.ledger.row(since)["key_alias"] == "bedrock-bearer"


def test_a_budget_refusal_reaches_boto3_as_a_readable_error(proxy, since, fake):
    key = generate(proxy, max_budget=0.000001)
    client = proxy.bedrock_client(access_key=key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.converse(modelId=US_SONNET, messages=MESSAGES, inferenceConfig={"maxTokens": 300})
    error = e.value.response["Error"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Code"] == "budget_exceeded" and "budget exceeded" in error["Message"]
    assert fake.requests() == []
    row = proxy.ledger.row(since)
    assert (row["status"], row["error"], row["http_status"]) == ("blocked", "budget_exceeded", 429)


def test_with_only_a_bedrock_api_key_configured_a_virtual_key_is_sent_as_it(make_proxy, fake):
    proxy = make_proxy({"general_settings": {"master_key": MASTER},
                        "providers": {"bedrock": {"api_key": REAL_API_KEY}}})
    key = generate(proxy)
    client = proxy.bedrock_client(access_key=key, session_token="FwoGZXIvYXdzEtemporary")
    client.converse(modelId=US_SONNET, messages=MESSAGES)
    [seen] = fake.requests()
    assert seen["headers"]["authorization"] == f"Bearer {REAL_API_KEY}"
    assert "x-amz-date" not in seen["headers"] and "x-amz-security-token" not in seen["headers"]
    assert key not in json.dumps(seen)


def test_without_a_bedrock_credential_a_virtual_key_gets_a_clear_error(make_proxy, fake):
    proxy = make_proxy({"general_settings": {"master_key": MASTER}})
    client = proxy.bedrock_client(access_key=generate(proxy))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.converse(modelId=US_SONNET, messages=MESSAGES)
    message = e.value.response["Error"]["Message"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert "providers.bedrock.aws_access_key_id and providers.bedrock.aws_secret_access_key" in message
    assert "providers.bedrock.api_key" in message
    assert fake.requests() == []


# --- the anthropic SDK's Bedrock clients ------------------------------------------------------

MANTLE_HOST = "bedrock-mantle.us-east-1.api.aws"


def anthropic_bedrock(proxy, cls="AnthropicBedrock", access_key="AKIAANTHROPICSDK0001"):
    import anthropic

    return getattr(anthropic, cls)(aws_region="us-east-1", aws_access_key=access_key, aws_secret_key="s3cret",
                                   http_client=proxy.httpx2_client(), max_retries=0)


def test_the_anthropic_sdks_bedrock_client_is_metered_too(proxy, since, fake):
    client = anthropic_bedrock(proxy)
    with client.messages.stream(model=US_SONNET, max_tokens=300, messages=[{"role": "user", "content": "hi"}]) as s:
        assert "".join(s.text_stream)
    [seen] = fake.requests()
    assert seen["path"] == f"/model/{US_SONNET}/invoke-with-response-stream"  # its ':' unencoded
    row = proxy.ledger.row(since)
    assert (row["provider"], row["endpoint"], row["model"], row["streamed"], row["status"]) == (
        "bedrock", "invoke", US_SONNET, 1, "ok")
    assert row["cost_nanos"] == REGIONAL_NANOS


def test_bedrock_mantle_anthropic_messages_are_metered_and_virtual_keys_re_signed_for_it(proxy, since, fake):
    key = generate(proxy, key_alias="mantle")
    client = anthropic_bedrock(proxy, "AnthropicBedrockMantle", access_key=key)
    client.messages.create(model=SONNET, max_tokens=300, messages=[{"role": "user", "content": "hi"}])
    [seen] = fake.requests()
    assert seen["path"] == "/anthropic/v1/messages"
    assert seen["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={REAL_KEY_ID}/")
    assert "/us-east-1/bedrock-mantle/aws4_request" in seen["headers"]["authorization"]
    assert signature_is_valid(seen, REAL_SECRET, host=MANTLE_HOST)
    assert key not in json.dumps(seen)
    row = proxy.ledger.row(since)
    assert (row["provider"], row["endpoint"], row["model"], row["key_alias"]) == (
        "bedrock-mantle", "messages", SONNET, "mantle")
    assert row["cost_nanos"] == REGIONAL_NANOS


def test_bedrock_openai_style_calls_are_recorded_as_unmetered(proxy, since):
    with proxy.httpx_client() as http:
        for host, path in ((MANTLE_HOST, "/v1/chat/completions"), (HOST, "/openai/v1/chat/completions")):
            http.post(f"https://{host}{path}", json={"model": "openai.gpt-oss-120b-1:0", "messages": []},
                      headers={"authorization": "Bearer ABSKsomekey"})
    rows = proxy.ledger.rows(since, 2)
    assert [(r["provider"], r["status"], r["model"], r["cost_nanos"]) for r in rows] == [
        ("bedrock-mantle", "unmetered", "openai.gpt-oss-120b-1:0", None),
        ("bedrock", "unmetered", "openai.gpt-oss-120b-1:0", None)]
