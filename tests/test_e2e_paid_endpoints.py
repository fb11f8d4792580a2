"""End to end: the paid endpoints beyond chat, through a real mitmdump with the openai and
anthropic SDKs against the fake provider (tests/fakes/openai_media.py, openai.py,
anthropic.py).

Every cost below is the bill computed by hand from the provider's price page for the fake's
usage (or the `x-fake-usage` the test sends); genai-prices 0.2.3 gives the same figure where
it has the model, and pricing/supplement.py prices what it lacks (dall-e).
"""

from __future__ import annotations

import io
import json

import pytest
from e2e_helpers import Ledger, start_proxy

CONFIG = {"litellm_settings": {"max_budget": 100.0, "budget_duration": "30d"}}
AUDIO_FILE = b"ID3" + bytes(32_000 - 3)  # 32,000 bytes: 2 s at the 16 kB/s estimate


@pytest.fixture(scope="module")
def proxy(fake_provider_session, tmp_path_factory):
    p = start_proxy(fake_provider_session.url, tmp_path_factory.mktemp("paid"), CONFIG)
    yield p
    p.stop()


@pytest.fixture
def ledger(proxy, fake_provider) -> Ledger:
    return proxy.ledger


def units(row) -> dict:
    return json.loads(row["units"]) if row["units"] else {}


def audio(name: str = "speech.mp3"):
    f = io.BytesIO(AUDIO_FILE)
    f.name = name
    return f


# --- images -----------------------------------------------------------------------------


def test_gpt_image_generation_is_priced_from_text_and_image_tokens(proxy, ledger):
    since = ledger.mark()
    reply = proxy.openai_client().images.generate(model="gpt-image-1", prompt="a cat", quality="high")
    assert reply.data[0].b64_json and reply.usage.output_tokens == 4160
    row = ledger.row(since)
    # gpt-image-1: 50 text in x $5/M + 500 image in x $10/M + 4,160 image out x $40/M
    #   = $0.00025 + $0.005 + $0.1664 = $0.17165 (genai-prices: the same)
    assert row["cost_nanos"] == 171_650_000
    assert (row["endpoint"], row["model"], row["status"], row["usage_source"]) == (
        "images", "gpt-image-1", "ok", "reported")
    assert (row["input_tokens"], row["output_tokens"]) == (550, 4160)
    assert units(row) == {"input_image_tokens": 500, "output_image_tokens": 4160}


def test_gpt_image_edit_uploads_are_read_and_priced(proxy, ledger, fake_provider):
    since = ledger.mark()
    png = io.BytesIO(b"\x89PNG\r\n\x1a\n" + bytes(5000))
    png.name = "in.png"
    proxy.openai_client().images.edit(model="gpt-image-1", image=[png], prompt="add a hat")
    sent = fake_provider.requests()[-1]
    assert sent["headers"]["content-type"].startswith("multipart/form-data")
    row = ledger.row(since)
    assert (row["endpoint"], row["path"], row["model"]) == ("images", "/v1/images/edits", "gpt-image-1")
    assert row["cost_nanos"] == 171_650_000  # as above: the fake's usage, $0.17165


def test_streamed_image_generation_is_priced_from_its_completed_event(proxy, ledger):
    since = ledger.mark()
    events = list(proxy.openai_client().images.generate(
        model="gpt-image-1", prompt="a cat", stream=True, partial_images=2))
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    row = ledger.row(since)
    assert (row["streamed"], row["status"], row["cost_nanos"]) == (1, "ok", 171_650_000)  # $0.17165


def test_dalle_3_is_priced_per_image_by_size_and_quality(proxy, ledger):
    since = ledger.mark()
    proxy.openai_client().images.generate(model="dall-e-3", prompt="a cat", size="1024x1792", quality="hd")
    row = ledger.row(since)
    # OpenAI's price page: dall-e-3 HD 1024x1792, $0.120 an image (genai-prices has no dall-e)
    assert row["cost_nanos"] == 120_000_000
    assert (row["price_source"], row["usage_source"], units(row)) == (
        "spendgate supplement", "reported", {"images_1024x1792_hd": 1})


def test_dalle_2_bills_every_image(proxy, ledger):
    since = ledger.mark()
    proxy.openai_client().images.generate(model="dall-e-2", prompt="a cat", size="512x512", n=2)
    # dall-e-2 512x512: $0.018 an image, x 2
    assert ledger.row(since)["cost_nanos"] == 36_000_000


def test_a_gpt_image_reply_without_usage_is_charged_its_bound_as_an_estimate(proxy, ledger):
    since = ledger.mark()
    proxy.openai_client().images.generate(
        model="gpt-image-1", prompt="a cat", quality="low", size="1024x1024",
        extra_headers={"x-fake-usage": json.dumps("no usage here")})
    row = ledger.row(since)
    assert (row["status"], row["usage_source"]) == ("ok", "estimated")
    # The request's bound: the body's bytes as text tokens, 272 image tokens out (low,
    # 1024x1024, OpenAI's table) at $40/M: 272 x $40/M = $0.01088, plus the input
    body_bytes = row["input_tokens"]
    assert row["output_tokens"] == 272 and 60 < body_bytes < 120
    assert row["cost_nanos"] == body_bytes * 5_000 + 10_880_000


# --- audio ------------------------------------------------------------------------------


def test_gpt_4o_transcribe_prices_audio_and_text_input_apart(proxy, ledger, fake_provider):
    since = ledger.mark()
    reply = proxy.openai_client().audio.transcriptions.create(model="gpt-4o-transcribe", file=audio())
    assert reply.text
    assert fake_provider.requests()[-1]["headers"]["content-type"].startswith("multipart/form-data")
    row = ledger.row(since)
    # 50 text in x $2.50/M + 1,000 audio in x $6/M + 200 out x $10/M
    #   = $0.000125 + $0.006 + $0.002 = $0.008125 (genai-prices: the same)
    assert row["cost_nanos"] == 8_125_000
    assert (row["endpoint"], row["input_tokens"], row["output_tokens"], units(row)) == (
        "transcription", 1050, 200, {"input_audio_tokens": 1000})


def test_whisper_is_priced_by_the_reported_duration(proxy, ledger):
    since = ledger.mark()
    proxy.openai_client().audio.transcriptions.create(model="whisper-1", file=audio())
    row = ledger.row(since)
    # 90 s = 1.5 min x $0.006/min = $0.009 (genai-prices: $0.36/h, the same)
    assert row["cost_nanos"] == 9_000_000
    assert units(row) == {"audio_seconds": 90, "input_audio_seconds": 90}
    assert (row["input_tokens"], row["output_tokens"], row["usage_source"]) == (0, 0, "reported")


def test_a_plain_text_transcript_is_estimated_from_the_upload(proxy, ledger):
    since = ledger.mark()
    text = proxy.openai_client().audio.transcriptions.create(model="whisper-1", file=audio(), response_format="text")
    assert isinstance(text, str) and text
    row = ledger.row(since)
    # 32,000 bytes at 16,000 bytes/s (128 kbit/s) = 2 s x $0.006/min = $0.0002, flagged estimated
    assert (row["status"], row["usage_source"], row["cost_nanos"]) == ("ok", "estimated", 200_000)


def test_a_translation_reports_no_usage_and_is_estimated(proxy, ledger):
    since = ledger.mark()
    proxy.openai_client().audio.translations.create(model="whisper-1", file=audio())
    row = ledger.row(since)
    assert (row["endpoint"], row["usage_source"], row["cost_nanos"]) == ("translation", "estimated", 200_000)


def test_a_streamed_transcription_is_priced_from_its_done_event(proxy, ledger):
    since = ledger.mark()
    events = list(proxy.openai_client().audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=audio(), stream=True))
    assert events[-1].type == "transcript.text.done"
    row = ledger.row(since)
    # 50 text x $1.25/M + 1,000 audio x $3/M + 200 out x $5/M = $0.0000625 + $0.003 + $0.001 = $0.0040625
    assert (row["streamed"], row["cost_nanos"]) == (1, 4_062_500)


def test_tts_1_is_priced_by_the_requests_characters(proxy, ledger):
    since = ledger.mark()
    reply = proxy.openai_client().audio.speech.create(model="tts-1", voice="alloy", input="x" * 1000)
    assert len(reply.content) == 4 * 16384  # every audio byte passed through
    row = ledger.row(since)
    # 1,000 characters x $15/M = $0.015 (genai-prices: the same)
    assert (row["cost_nanos"], units(row), row["usage_source"]) == (15_000_000, {"input_characters": 1000},
                                                                     "reported")
    assert row["streamed"] == 1  # passed through as it arrived


def test_tts_1_hd_costs_twice_as_much(proxy, ledger):
    since = ledger.mark()
    proxy.openai_client().audio.speech.create(model="tts-1-hd", voice="alloy", input="x" * 1000)
    assert ledger.row(since)["cost_nanos"] == 30_000_000  # 1,000 x $30/M


def test_gpt_4o_mini_tts_audio_reply_is_estimated_from_the_text(proxy, ledger):
    since = ledger.mark()
    proxy.openai_client().audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="y" * 300)
    row = ledger.row(since)
    # Estimated: 300 bytes / 4 = 75 text tokens in x $0.60/M; 300 chars x 20/15 = 400 audio
    # tokens out x $12/M: $0.000045 + $0.0048 = $0.004845
    assert (row["status"], row["usage_source"], row["cost_nanos"]) == ("ok", "estimated", 4_845_000)


def test_gpt_4o_mini_tts_sse_reports_its_usage(proxy, ledger):
    since = ledger.mark()
    with proxy.openai_client().audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="alloy", input="hello", stream_format="sse") as reply:
        body = reply.read()
    assert b"speech.audio.done" in body
    row = ledger.row(since)
    # 100 text in x $0.60/M + 1,000 audio out x $12/M = $0.00006 + $0.012 = $0.01206
    assert (row["usage_source"], row["cost_nanos"]) == ("reported", 12_060_000)


# --- fees beyond tokens ---------------------------------------------------------------


def test_responses_web_search_calls_are_billed_per_call(proxy, ledger):
    since = ledger.mark()
    reply = proxy.openai_client().responses.create(model="gpt-5", input="news?", tools=[{"type": "web_search"}])
    assert [item.type for item in reply.output][:2] == ["web_search_call", "web_search_call"]
    row = ledger.row(since)
    # gpt-5: 800 x $1.25/M + 200 cached x $0.125/M + 500 x $10/M + 2 searches x $10/1k
    #   = $0.001 + $0.000025 + $0.005 + $0.02 = $0.026025 (genai-prices: the same)
    assert row["cost_nanos"] == 26_025_000
    assert units(row) == {"web_searches": 2}


def test_streamed_responses_count_their_web_search_calls(proxy, ledger):
    since = ledger.mark()
    with proxy.openai_client().responses.stream(model="gpt-5", input="news?",
                                                tools=[{"type": "web_search"}]) as stream:
        stream.get_final_response()
    row = ledger.row(since)
    assert (row["streamed"], row["cost_nanos"], units(row)) == (1, 26_025_000, {"web_searches": 2})


@pytest.mark.parametrize("tier, nanos", [
    # gpt-5 at flex: 800 x $0.625/M + 200 x $0.0625/M + 500 x $5/M = $0.0030125
    ("flex", 3_012_500),
    # at priority: 800 x $2.50/M + 200 x $0.25/M + 500 x $20/M = $0.01205
    ("priority", 12_050_000),
])
def test_the_served_tier_is_recorded_and_priced(proxy, ledger, tier, nanos):
    since = ledger.mark()
    reply = proxy.openai_client().chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "hi"}], service_tier=tier)
    assert reply.service_tier == tier
    row = ledger.row(since)
    assert (row["service_tier"], row["cost_nanos"]) == (tier, nanos)


def test_a_default_tier_call_is_priced_as_before(proxy, ledger):
    since = ledger.mark()
    proxy.openai_client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    row = ledger.row(since)
    # 800 x $2.50/M + 200 x $1.25/M + 500 x $10/M = $0.00725
    assert (row["service_tier"], row["cost_nanos"], row["units"]) == ("default", 7_250_000, None)


WEB_SEARCH_USAGE = {"input_tokens": 10_000, "output_tokens": 1_000, "server_tool_use": {"web_search_requests": 3},
                    "service_tier": "standard"}


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_web_searches_are_billed(proxy, ledger, stream):
    since = ledger.mark()
    client = proxy.anthropic_client()
    kwargs = dict(model="claude-sonnet-4-5", max_tokens=1024, messages=[{"role": "user", "content": "news?"}],
                  tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
                  extra_headers={"x-fake-usage": json.dumps(WEB_SEARCH_USAGE)})
    if stream:
        with client.messages.stream(**kwargs) as s:
            s.get_final_message()
    else:
        client.messages.create(**kwargs)
    row = ledger.row(since)
    # claude-sonnet-4-5: 10k x $3/M + 1k x $15/M + 3 searches x $10/1k = $0.03 + $0.015 + $0.03 = $0.075
    assert row["cost_nanos"] == 75_000_000
    assert (units(row), row["service_tier"]) == ({"web_searches": 3}, "standard")


def test_anthropic_one_hour_cache_writes_cost_twice_the_input_price(proxy, ledger):
    since = ledger.mark()
    usage = {"input_tokens": 1_000, "cache_creation_input_tokens": 50_000, "cache_read_input_tokens": 0,
             "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 50_000},
             "output_tokens": 500}
    proxy.anthropic_client().messages.create(
        model="claude-sonnet-4-5", max_tokens=1024, messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-fake-usage": json.dumps(usage)})
    row = ledger.row(since)
    # 1k x $3/M + 50k 1-hour writes x $6/M + 500 x $15/M = $0.003 + $0.30 + $0.0075 = $0.3105
    # (at the 5-minute rate, $3.75/M, it would have been $0.198)
    assert row["cost_nanos"] == 310_500_000
    assert units(row) == {"cache_write_1h_tokens": 50_000}


# --- free calls -------------------------------------------------------------------------


def test_free_calls_hold_nothing_and_leave_no_row(proxy, ledger):
    ledger.settled()  # earlier tests' calls hold nothing any more
    since = ledger.mark()
    openai_client, anthropic_client = proxy.openai_client(), proxy.anthropic_client()
    for call in (
        lambda: anthropic_client.messages.count_tokens(model="claude-sonnet-4-5",
                                                       messages=[{"role": "user", "content": "hi"}]),
        lambda: openai_client.moderations.create(model="omni-moderation-latest", input="hi"),
        lambda: openai_client.models.list(),
        lambda: openai_client.files.retrieve("file-abc"),
    ):
        try:
            call()
        except Exception:  # the fake answers these with 404: what matters is the ledger
            pass
    out = proxy.curl("-sS", "-X", "POST",
                     "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:countTokens",
                     "-H", "x-goog-api-key: AIza-test", "-H", "content-type: application/json", "-d", "{}")
    assert out.returncode == 0
    assert ledger.rows(since, 1, timeout=0.5) == []
    assert ledger.budget()["reserved_nanos"] == 0
