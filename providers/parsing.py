"""The machinery every usage parser shares: feeding, JSON reading, and never raising.

A parser keeps the best usage known so far, so a stream cut off half-way still yields what
the provider had said (Anthropic's input counts arrive first, OpenAI's only at the very
end), plus a count of generated characters to estimate output that was never reported.
Each wire format's parser lives with its provider (providers/openai.py, anthropic.py, ...).

Provider input is untrusted: nothing here raises. The first problem is kept in `error`
and parsing carries on with whatever else is readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import jsontext
from core.usage import TokenUsage
from core.vocab import STANDARD_TIERS
from providers.values import count

__all__ = ["JSON_ERRORS", "UsageParser", "count_at", "get_path", "is_done", "slen"]

JSON_ERRORS = (ValueError, UnicodeDecodeError, RecursionError, TypeError)


def get_path(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]... or None when any step is missing or not an object."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def count_at(obj: Any, *keys: str) -> int:
    return count(get_path(obj, *keys)) or 0


def slen(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def is_done(data: bytes | str) -> bool:
    return len(data) < 16 and data.strip() in (b"[DONE]", "[DONE]")


class UsageParser:
    """Accumulates model, usage and generated-text size for one response.

    Feed either one whole body (`feed_body`) or the stream's events in order
    (`feed_event`). Read `usage` at any time: it is the provider's latest
    report, possibly partial; `complete` says the final report was seen.
    """

    def __init__(self) -> None:
        self.model: str | None = None
        self.complete: bool = False
        #: The provider's end-of-stream marker was seen ([DONE], message_stop, a
        #: terminal Responses event, a Gemini finishReason). With `complete`
        #: False it means "ended normally but reported no usage".
        self.ended: bool = False
        #: Characters of generated text (content, reasoning, tool arguments) seen,
        #: to estimate output a cut-off stream never reported.
        self.output_chars: int = 0
        self.error: str | None = None
        self.events: int = 0  # stream events fed (blank `data:` lines excluded)
        #: The tier that served the call, as the response reports it (OpenAI's
        #: `service_tier`, Anthropic's `usage.service_tier`): the ledger's column, and
        #: what prices the call where the tier has prices of its own.
        self.service_tier: str | None = None
        #: What the reply says the call was charged, in nano-dollars, where the provider
        #: states it (OpenRouter's `usage.cost`): the call's cost, bounded (metering/bounds.py).
        self.reported_cost_nanos: int | None = None
        #: Why the provider bills this call after its reply, which carries no usage (an
        #: OpenAI background response, queued): it is charged what was held, the most it
        #: could cost, as a call cut by a kill is (metering/call.py).
        self.billed_later: str | None = None
        #: The latest usage report read, for parsers that keep one (most do).
        self._usage: TokenUsage | None = None
        #: The last stream event fed, and whether it carried only the usage spendgate asked
        #: for (set by the parser that asks: `is_usage_only_event` answers for it at once).
        self.last_event: bytes | str | None = None
        self.last_event_usage_only = False

    # -- public interface --------------------------------------------------------

    @property
    def usage(self) -> TokenUsage | None:
        return self._usage

    def feed_body(self, body: bytes | str) -> None:
        """A complete, already-decoded, non-streamed response body."""
        obj = self._load(body, "response body")
        if obj is not None:
            self._guarded(self._on_body, obj, "response body")

    def feed_headers(self, headers: Mapping[str, str]) -> None:
        """The response's headers, before its body: some providers report usage there
        (Bedrock's `x-amzn-bedrock-*-token-count`). Most parsers ignore them."""

    def feed_event(self, data: bytes | str, event: str | None = None) -> None:
        """One SSE event's data, or one element of Gemini's JSON-array stream."""
        self.last_event, self.last_event_usage_only = data, False
        if not data or data.isspace():  # a bare `data:` line: nothing to read
            return
        self.events += 1
        if is_done(data):
            self.ended = True
            self._on_done()
            return
        obj = self._load(data, "stream event")
        if obj is not None:
            self._guarded(self._on_event, obj, "stream event", event)

    def feed_decoded(self, obj: dict[str, Any], event: str | None = None) -> None:
        """One event already decoded as a JSON object (a WebSocket message its session has
        read): counted and parsed as `feed_event` would, without decoding it a second time."""
        self.events += 1
        self._guarded(self._on_event, obj, "stream event", event)

    def end_of_stream(self) -> None:
        """The streamed body's last byte arrived (told by the stream tap)."""

    @property
    def price_context(self) -> dict[str, str] | None:
        """What else than usage picks the price (genai-prices' `price_context`): the served
        tier, unless it is a standard one (most calls: nothing to look up)."""
        tier = self.service_tier
        return {"service_tier": tier} if tier and tier not in STANDARD_TIERS else None

    def is_usage_only_event(self, data: bytes | str) -> bool:
        """True for an event that only carries usage spendgate asked for (see OpenAIChatParser)."""
        return False

    def note_error(self, message: str) -> None:
        """Record a problem; the first one is kept."""
        if self.error is None:
            self.error = message

    # -- for subclasses ----------------------------------------------------------

    def _on_body(self, obj: Any) -> None:
        self._on_event(obj, None)

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        pass

    def _on_done(self) -> None:
        pass

    def _take_tier(self, value: Any) -> None:
        if isinstance(value, str) and value:
            self.service_tier = value

    def _take_model(self, value: Any) -> None:
        if self.model is None and isinstance(value, str) and value:
            self.model = value

    def _load(self, data: bytes | str, what: str, allow_list: bool = False) -> Any:
        try:
            obj = jsontext.loads(data)
        except JSON_ERRORS:
            self.note_error(f"invalid JSON in {what}")
            return None
        if isinstance(obj, dict) or (allow_list and isinstance(obj, list)):
            return obj
        self.note_error(f"unexpected {what}: not a JSON object")
        return None

    def _guarded(self, fn: Any, obj: Any, what: str, *args: Any) -> None:
        try:
            fn(obj, *args)
        except Exception as exc:  # a shape we did not foresee must not break the proxy
            self.note_error(f"unexpected {what} shape: {type(exc).__name__}: {exc}")
