"""A fake LLM provider for end-to-end tests: each provider's shapes in a module of its own
under tests/fakes/ (openai.py: OpenAI, Azure and OpenAI-compatible; openai_media.py: OpenAI's
images and audio; anthropic.py and gemini.py, with their Vertex AI paths; cohere.py; bedrock.py:
the Bedrock runtime, with an event-stream encoder; server.py: the server and its control API).
This module is its entry point.

Plain HTTP/1.1 on loopback (stdlib ``ThreadingHTTPServer``, one thread per connection,
keep-alive, chunked streaming). It never talks to the internet.

Library use::

    fake = start_fake_provider()          # background thread, port 0 = free port
    fake.url, fake.port, fake.requests(), fake.reset(), fake.stop()

Script use (``make demo``)::

    python tests/fake_provider.py --port 9999    # prints "listening on http://127.0.0.1:9999"

Endpoints (POST, JSON body; the response's model echoes the request's model, from the body
or, for Gemini and Azure without a body model, from the URL)::

    /v1/chat/completions            OpenAI chat, "stream": true -> SSE chat.completion.chunk
    /v1/responses                   OpenAI Responses, stream -> response.created ... response.completed
    /v1/completions                 OpenAI legacy completions (stream too)
    /v1/embeddings                  OpenAI embeddings (float or base64)
    /openai/deployments/{dep}/{chat/completions|completions|embeddings|responses}?api-version=...
                                    Azure OpenAI, same shapes
    /v1/messages                    Anthropic messages (stream -> message_start ... message_stop)
    /v1beta/models/{m}:generateContent         Gemini (also /v1/models/...)
    /v1beta/models/{m}:streamGenerateContent   ?alt=sse -> SSE "data: {...}\\r\\n\\r\\n";
                                               without  -> a JSON array streamed in pieces
    /model/{id}/converse            Bedrock Converse (id percent-encoded, as boto3 sends it)
    /model/{id}/converse-stream     -> application/vnd.amazon.eventstream: messageStart ... metadata
    /model/{id}/invoke              Bedrock InvokeModel: an Anthropic Messages body, and the
                                    x-amzn-bedrock-input/output-token-count headers
    /model/{id}/invoke-with-response-stream
                                    -> event stream of `chunk`s: base64 Anthropic stream events,
                                    the last with amazon-bedrock-invocationMetrics
    /v1/models/{m}:embedContent, :batchEmbedContents   Gemini embeddings: no usage (as the
                                               Gemini API), unless x-fake-usage gives usageMetadata
    /{v1|v1beta1}[/projects/{p}/locations/{l}]/publishers/google/models/{m}:{method}
                                    Gemini on Vertex AI, same shapes; embeddings with usageMetadata
    /{v1|v1beta1}/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict|streamRawPredict
                                    Claude on Vertex AI: Anthropic shapes, the model from the URL
    /v2/chat                        Cohere chat ("stream": true -> SSE message-start ... message-end, [DONE])
    /v2/embed, /v2/rerank           Cohere embed and rerank (meta.billed_units; also under /v1)
    anything else                   404 JSON (OpenAI error shape)

Default usage (deterministic, so tests can hand-compute prices):

    OpenAI chat / legacy completions:
        prompt_tokens 1000 (prompt_tokens_details.cached_tokens 200),
        completion_tokens 500 (completion_tokens_details.reasoning_tokens 100), total 1500
    OpenAI Responses:
        input_tokens 1000 (input_tokens_details.cached_tokens 200),
        output_tokens 500 (output_tokens_details.reasoning_tokens 100), total 1500
    OpenAI embeddings:  prompt_tokens 1000, total_tokens 1000
    Anthropic: input_tokens 700 (excludes cache), cache_read_input_tokens 200,
        cache_creation_input_tokens 100 (cache_creation.ephemeral_5m_input_tokens 100),
        output_tokens 500.  Stream: message_start.usage carries the input/cache counts and
        output_tokens 1; the single message_delta carries the cumulative output_tokens 500.
    Gemini: promptTokenCount 1000 (includes cachedContentTokenCount 200),
        candidatesTokenCount 400, thoughtsTokenCount 100, totalTokenCount 1500.
        Streams carry usageMetadata on every chunk; candidatesTokenCount grows and the
        last chunk carries exactly the final numbers.
    Bedrock Converse: inputTokens 700 (excludes cache), cacheReadInputTokens 200,
        cacheWriteInputTokens 100, outputTokens 500, totalTokens 1500 (stream: in `metadata`).
        InvokeModel: the Anthropic figures.
    Gemini embeddings: none on the Gemini API; Vertex AI: usageMetadata.promptTokenCount 1000.
    Cohere chat: usage.billed_units input_tokens 1000, output_tokens 500 (`tokens`, which
        are not billed: 1807 / 512).  Embed: meta.billed_units.input_tokens 1000.
        Rerank: meta.billed_units.search_units 1.

Per-request controls (request headers):

    x-fake-usage: JSON   replaces the usage object verbatim, in the provider's own shape
                         (OpenAI chat "usage", Responses "usage", Anthropic "usage",
                         Gemini "usageMetadata", Bedrock Converse "usage"); fields you omit
                         are absent.
    x-fake-delay-ms: N   pause N ms between stream events
    x-fake-first-chunk-then-wait-ms: N
                         send the first stream event, wait N ms, then send the rest
    x-fake-encoding: gzip|br|zstd
                         Content-Encoding of the body; streams are compressed incrementally
                         and flushed after every event
    x-fake-cut-after: N  send N stream events then drop the connection (no terminating
                         chunk, FIN). On a non-streamed reply: send N bytes of the body, drop.
    x-fake-cut-mode: rst make the drop a TCP reset instead of a FIN
    x-fake-status: 500   error reply with this status, in the provider's error shape
    x-fake-chunks: N     number of text pieces in the reply (default 5)
    x-fake-hang-ms: N    wait N ms before answering at all (an upstream gone quiet)
    x-fake-corrupt-frame: N
                         Bedrock event streams: the N-th message (0-based) gets a bad CRC
    x-fake-body: TEXT    a non-streamed success reply's body is TEXT verbatim (a malformed answer)

Control API (not recorded):

    GET  /_fake/requests  -> JSON list of {method, path, query, headers, body, time}
                             (path includes the query string, headers have lower-case names,
                             body is text)
    POST /_fake/reset     -> clears it
    GET  /_fake/health    -> {"ok": true}
"""

from __future__ import annotations

import sys

from fakes.anthropic import ANTHROPIC_USAGE
from fakes.common import CONTROL_HEADERS, DEFAULT_CHUNKS, DEFAULT_TEXT
from fakes.gemini import GEMINI_USAGE
from fakes.openai import OPENAI_EMBEDDINGS_USAGE, OPENAI_RESPONSES_USAGE, OPENAI_USAGE
from fakes.server import FakeProvider, FakeProviderServer, main, start_fake_provider

__all__ = [
    "ANTHROPIC_USAGE", "CONTROL_HEADERS", "DEFAULT_CHUNKS", "DEFAULT_TEXT", "GEMINI_USAGE",
    "OPENAI_EMBEDDINGS_USAGE", "OPENAI_RESPONSES_USAGE", "OPENAI_USAGE", "FakeProvider",
    "FakeProviderServer", "main", "start_fake_provider",
]

if __name__ == "__main__":
    sys.exit(main())
