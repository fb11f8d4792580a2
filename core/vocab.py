"""spendgate's vocabularies: every set of words the code, the config schema, the ledger and
the docs share, one `StrEnum` each, defined here and nowhere else.

A `StrEnum` member *is* its string (`CallStatus.OK == "ok"`), so rows, JSON and YAML keep
plain text while code gets a name it can't misspell. Adding a word means adding it here;
the generated docs (docs/providers.md, docs/config-reference.md) and docs/ledger.md's
tables are checked against these lists by tests.
"""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    """How a metered call ended: the `calls.status` column."""

    OK = "ok"
    """The call was priced from the provider's usage report (or, for an API whose answers
    may carry none, from the request's own count: usage_source `estimated`)."""
    UNPRICED = "unpriced"
    """Usage reported, but nobody knows the model's price: `cost_nanos` is NULL, never 0."""
    PARTIAL = "partial"
    """The response was cut off (client or upstream hung up): charged for what was seen."""
    PARSE_ERROR = "parse_error"
    """The response could not be read: charged an estimate from the request and the text seen."""
    ERROR = "error"
    """The request never reached the provider (connection refused, DNS, TLS): not charged."""
    BLOCKED = "blocked"
    """spendgate refused the call (budget, key, model, unpriced model): never forwarded."""
    UPSTREAM_ERROR = "upstream_error"
    """The provider answered with an error and reported no usage: providers don't bill these."""
    UNMETERED = "unmetered"
    """A call to a recognised provider that spendgate cannot price (no parser for the
    endpoint): recorded so it is never invisible (`general_settings.unmetered_endpoints`)."""
    INTERRUPTED = "interrupted"
    """The proxy was killed while the call was in flight: recorded at the next start from the
    local journal, charged what was held for it."""


class UsageSource(StrEnum):
    """Where a call row's token counts come from: the `calls.usage_source` column."""

    REPORTED = "reported"
    """The provider's own usage report."""
    ESTIMATED = "estimated"
    """Estimated from the request's size and the text seen (the report never arrived), or
    counted from the request for an API whose answers may report no usage (Gemini API
    embeddings)."""
    NONE = "none"
    """No usage: the call was refused, never reached the provider, or is not billed."""


class PriceSource(StrEnum):
    """Where a call row's cost comes from when it is not the price list's own figure
    (`genai-prices 0.2.x`, with ` + spendgate supplement` where pricing/supplement.py
    added to it): the `calls.price_source` column."""

    REPORTED = "reported"
    """The provider's own statement of what it charged (OpenRouter's `usage.cost`),
    bounded like usage (metering/bounds.py)."""
    CONFIG = "config"
    """A `pricing:` override in the config."""
    SUPPLEMENT = "spendgate supplement"
    """Priced by pricing/supplement.py alone (dall-e images, whisper-1 seconds)."""
    UNPRICED = "unpriced"
    """Nobody knows the model's price: the cost is NULL, never 0."""
    UNMETERED = "unmetered"
    """An endpoint spendgate cannot price."""
    NOT_BILLED = "not billed"
    """A call the provider does not bill (an error reply without usage)."""
    HELD = "held"
    """Charged what was held for it: its pricing failed, or the proxy stopped mid-call."""
    BLOCKED = "blocked"
    """Refused by spendgate: never forwarded, never billed."""


class ScopeKind(StrEnum):
    """Budget scopes, widest first: the `budgets.kind` column."""

    GLOBAL = "global"
    TEAM = "team"
    USER = "user"
    KEY = "key"


class EndpointKind(StrEnum):
    """What a metered endpoint does: the `calls.endpoint` column."""

    CHAT = "chat"
    RESPONSES = "responses"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    MESSAGES = "messages"
    GENERATE = "generate"
    CONVERSE = "converse"
    """AWS Bedrock's Converse API: one message shape for every model it serves."""
    INVOKE = "invoke"
    """AWS Bedrock's InvokeModel: the model's own request and response body."""
    RERANK = "rerank"
    """Reranking documents against a query: billed per search, not per token (Cohere)."""
    IMAGES = "images"
    """Image generation and edits (OpenAI `/images/generations`, `/images/edits`)."""
    TRANSCRIPTION = "transcription"
    """Speech to text (OpenAI `/audio/transcriptions`)."""
    TRANSLATION = "translation"
    """Speech to English text (OpenAI `/audio/translations`)."""
    SPEECH = "speech"
    """Text to speech (OpenAI `/audio/speech`)."""
    REALTIME = "realtime"
    """A turn of a realtime session over a WebSocket (OpenAI Realtime, Gemini Live): text,
    audio and images in, text and audio out."""
    UNMETERED = "unmetered"
    """Not a metered endpoint: a call the ledger records as `unmetered`."""


#: Service tiers that mean the standard price: OpenAI's `default` and `auto`, Anthropic's
#: `standard` (and its request's `standard_only`). Any other tier a provider reports may
#: have prices of its own (OpenAI `flex`, `priority`).
STANDARD_TIERS = frozenset({"default", "auto", "standard", "standard_only", "on_demand"})


class ApiStyle(StrEnum):
    """The wire formats a custom provider host can speak (`providers.<name>.api_style`)."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class Framing(StrEnum):
    """How a streamed response is cut into events."""

    SSE = "sse"
    """text/event-stream: `data:` lines, blank-line separated."""
    JSON_ARRAY = "json_array"
    """One JSON array whose elements arrive one by one (Gemini without `alt=sse`)."""
    AWS_EVENTSTREAM = "aws_eventstream"
    """application/vnd.amazon.eventstream: binary length-prefixed, CRC-checked messages (Bedrock)."""
    RAW = "raw"
    """An opaque body passed through as it arrives (audio): no events, only its end."""


class Transport(StrEnum):
    """How a metered call travelled: the `calls.transport` column."""

    HTTP = "http"
    WEBSOCKET = "websocket"
