"""Read token usage out of provider responses, whole or streamed.

One parser per wire format and endpoint kind. Each keeps the best usage known
so far, so a stream cut off half-way still yields what the provider had said
(Anthropic's input counts arrive first, OpenAI's only at the very end), plus a
count of generated characters to estimate output that was never reported.

Provider input is untrusted: nothing here raises. The first problem is kept in
`error` and parsing carries on with whatever else is readable.
"""

from __future__ import annotations

import json
from typing import Any

from providers._values import count
from providers.endpoint import Endpoint
from providers.usage import TokenUsage

__all__ = [
    "AnthropicMessagesParser",
    "GeminiParser",
    "OpenAIChatParser",
    "OpenAIEmbeddingsParser",
    "OpenAIResponsesParser",
    "UsageParser",
    "parser_for",
]

_JSON_ERRORS = (ValueError, UnicodeDecodeError, RecursionError, TypeError)


def _get(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]... or None when any step is missing or not an object."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _n(obj: Any, *keys: str) -> int:
    return count(_get(obj, *keys)) or 0


def _slen(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _is_done(data: bytes | str) -> bool:
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

    # -- public interface --------------------------------------------------------

    @property
    def usage(self) -> TokenUsage | None:
        return None

    def feed_body(self, body: bytes | str) -> None:
        """A complete, already-decoded, non-streamed response body."""
        obj = self._load(body, "response body")
        if obj is not None:
            self._guarded(self._on_body, obj, "response body")

    def feed_event(self, data: bytes | str, event: str | None = None) -> None:
        """One SSE event's data, or one element of Gemini's JSON-array stream."""
        if not data or data.isspace():  # a bare `data:` line: nothing to read
            return
        self.events += 1
        if _is_done(data):
            self.ended = True
            self._on_done()
            return
        obj = self._load(data, "stream event")
        if obj is not None:
            self._guarded(self._on_event, obj, "stream event", event)

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

    def _take_model(self, value: Any) -> None:
        if self.model is None and isinstance(value, str) and value:
            self.model = value

    def _load(self, data: bytes | str, what: str, allow_list: bool = False) -> Any:
        try:
            obj = json.loads(data)
        except _JSON_ERRORS:
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


class _NoParser(UsageParser):
    """For an endpoint no parser knows: says so once, meters nothing."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__()
        self.note_error(f"no usage parser for style={endpoint.style} kind={endpoint.kind}")


# --- OpenAI -------------------------------------------------------------------------


def _openai_usage(u: Any) -> TokenUsage | None:
    """Chat/completions usage: prompt_tokens already includes cached tokens,
    completion_tokens already includes reasoning tokens."""
    if not isinstance(u, dict):
        return None
    prompt = count(u.get("prompt_tokens"))
    completion = count(u.get("completion_tokens"))
    if prompt is None and completion is None:
        total = count(u.get("total_tokens"))
        if total is None:
            return None
        prompt = total  # embeddings-like shape: no split reported
    return TokenUsage(
        input_tokens=prompt or 0,
        cache_read_tokens=_n(u, "prompt_tokens_details", "cached_tokens"),
        # some OpenAI-compatible gateways report cache writes here, inside prompt_tokens
        cache_write_tokens=_n(u, "prompt_tokens_details", "cache_write_tokens"),
        output_tokens=completion or 0,
        reasoning_tokens=_n(u, "completion_tokens_details", "reasoning_tokens"),
    )


def _chat_delta_chars(delta: Any) -> int:
    if not isinstance(delta, dict):
        return 0
    chars = (
        _slen(delta.get("content"))
        + _slen(delta.get("refusal"))
        + _slen(delta.get("reasoning_content"))  # DeepSeek, vLLM
        + _slen(delta.get("reasoning"))  # OpenRouter, Ollama
    )
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            fn = _get(call, "function")
            chars += _slen(_get(fn, "name")) + _slen(_get(fn, "arguments"))
    fn = delta.get("function_call")
    if isinstance(fn, dict):
        chars += _slen(fn.get("name")) + _slen(fn.get("arguments"))
    return chars


class OpenAIChatParser(UsageParser):
    """OpenAI chat/completions and legacy completions (also Azure, vLLM, Ollama...).

    A stream reports usage only when `stream_options.include_usage` was set, in
    a last chunk with `choices: []`, followed by `data: [DONE]`.
    """

    def __init__(self, legacy_completions: bool = False) -> None:
        super().__init__()
        self._legacy = legacy_completions
        self._usage: TokenUsage | None = None
        self._last_data: bytes | str | None = None
        self._last_usage_only = False

    @property
    def usage(self) -> TokenUsage | None:
        return self._usage

    def _on_body(self, obj: Any) -> None:
        self._take_model(obj.get("model"))
        choices = obj.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if self._legacy:
                    self.output_chars += _slen(_get(choice, "text"))
                else:
                    self.output_chars += _chat_delta_chars(_get(choice, "message"))
        usage = _openai_usage(obj.get("usage"))
        if usage is None:
            self.note_error("no usage in response body")
            return
        self._usage = usage
        self.complete = True

    def feed_event(self, data: bytes | str, event: str | None = None) -> None:
        self._last_data = data
        self._last_usage_only = False
        super().feed_event(data, event)

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        self._take_model(obj.get("model"))
        choices = obj.get("choices")
        finished = False
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                if self._legacy:
                    self.output_chars += _slen(choice.get("text"))
                else:
                    self.output_chars += _chat_delta_chars(choice.get("delta"))
                if choice.get("finish_reason"):
                    finished = True
        raw = obj.get("usage")
        if raw is None:
            return
        usage = _openai_usage(raw)
        if usage is None:
            self.note_error("unexpected usage shape in stream event")
            return
        self._usage = usage
        no_choices = not choices
        self._last_usage_only = no_choices
        if no_choices or finished:
            self.complete = True

    def _on_done(self) -> None:
        # Whatever usage came before [DONE] was the last the provider will send.
        if self._usage is not None:
            self.complete = True

    def is_usage_only_event(self, data: bytes | str) -> bool:
        """The trailing chunk with usage and no choices, which spendgate asks for
        on the client's behalf and may hide from clients that index choices[0]."""
        if data is self._last_data:
            return self._last_usage_only
        if _is_done(data):
            return False
        try:
            obj = json.loads(data)
        except _JSON_ERRORS:
            return False
        return (
            isinstance(obj, dict)
            and not obj.get("choices")
            and isinstance(obj.get("usage"), dict)
        )


class OpenAIEmbeddingsParser(UsageParser):
    """Embeddings: `usage.prompt_tokens`, no output."""

    def __init__(self) -> None:
        super().__init__()
        self._usage: TokenUsage | None = None

    @property
    def usage(self) -> TokenUsage | None:
        return self._usage

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        self._take_model(obj.get("model"))
        u = obj.get("usage")
        tokens = count(_get(u, "prompt_tokens"))
        if tokens is None:
            tokens = count(_get(u, "total_tokens"))
        if tokens is None:
            self.note_error("no usage in response body")
            return
        self._usage = TokenUsage(input_tokens=tokens)
        self.complete = True


_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _responses_usage(u: Any) -> TokenUsage | None:
    if not isinstance(u, dict):
        return None
    inp = count(u.get("input_tokens"))
    out = count(u.get("output_tokens"))
    if inp is None and out is None:
        return None
    return TokenUsage(
        input_tokens=inp or 0,
        cache_read_tokens=_n(u, "input_tokens_details", "cached_tokens"),
        cache_write_tokens=_n(u, "input_tokens_details", "cache_write_tokens"),
        output_tokens=out or 0,
        reasoning_tokens=_n(u, "output_tokens_details", "reasoning_tokens"),
    )


def _responses_output_chars(output: Any) -> int:
    chars = 0
    if not isinstance(output, list):
        return 0
    for item in output:
        if not isinstance(item, dict):
            continue
        chars += _slen(item.get("arguments")) + _slen(item.get("input"))
        for key in ("content", "summary"):
            parts = item.get(key)
            if isinstance(parts, list):
                for part in parts:
                    chars += _slen(_get(part, "text")) + _slen(_get(part, "refusal"))
    return chars


class OpenAIResponsesParser(UsageParser):
    """OpenAI Responses API: usage at `usage` in a body, or at `response.usage`
    in the terminal stream event (completed, incomplete or failed)."""

    def __init__(self) -> None:
        super().__init__()
        self._usage: TokenUsage | None = None

    @property
    def usage(self) -> TokenUsage | None:
        return self._usage

    def _on_body(self, obj: Any) -> None:
        self._take_model(obj.get("model"))
        self.output_chars += _responses_output_chars(obj.get("output"))
        usage = _responses_usage(obj.get("usage"))
        if usage is None:
            self.note_error("no usage in response body")
            return
        self._usage = usage
        self.complete = True

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        etype = obj.get("type")
        if not isinstance(etype, str):
            etype = event or ""
        if etype.endswith(".delta"):
            if "audio" not in etype:  # audio deltas are base64, not text
                self.output_chars += _slen(obj.get("delta"))
            return
        response = obj.get("response")
        if not isinstance(response, dict):
            return
        model = response.get("model")
        if isinstance(model, str) and model:
            self.model = model
        usage = _responses_usage(response.get("usage"))
        if usage is not None:
            self._usage = usage
        if etype in _RESPONSES_TERMINAL:
            self.ended = True
            if usage is not None:
                self.complete = True


# --- Anthropic ----------------------------------------------------------------------

_ANTHROPIC_KEYS = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
)


class AnthropicMessagesParser(UsageParser):
    """Anthropic Messages: `input_tokens` excludes cache reads and writes.

    A stream reports input and cache counts in `message_start`, and a
    cumulative `output_tokens` (sometimes with updated input/cache counts) in
    `message_delta`: the latest value of each field wins, nothing is summed.
    """

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[str, int] = {}
        self._thinking = 0

    @property
    def usage(self) -> TokenUsage | None:
        c = self._counts
        if not c:
            return None
        cache_read = c.get("cache_read_input_tokens", 0)
        cache_write = c.get("cache_creation_input_tokens", 0)
        return TokenUsage(
            input_tokens=c.get("input_tokens", 0) + cache_read + cache_write,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            output_tokens=c.get("output_tokens", 0),
            reasoning_tokens=self._thinking,
        )

    def _merge(self, u: Any) -> bool:
        if not isinstance(u, dict):
            return False
        seen = False
        for key in _ANTHROPIC_KEYS:
            v = count(u.get(key))
            if v is not None:
                self._counts[key] = v
                seen = True
        thinking = count(_get(u, "output_tokens_details", "thinking_tokens"))
        if thinking is not None:
            self._thinking = thinking
        return seen

    def _on_body(self, obj: Any) -> None:
        self._take_model(obj.get("model"))
        content = obj.get("content")
        if isinstance(content, list):
            for block in content:
                self.output_chars += self._block_chars(block)
        if not self._merge(obj.get("usage")):
            self.note_error("no usage in response body")
            return
        self.complete = True

    @staticmethod
    def _block_chars(block: Any) -> int:
        if not isinstance(block, dict):
            return 0
        chars = _slen(block.get("text")) + _slen(block.get("thinking"))
        if isinstance(block.get("input"), dict) and block["input"]:
            chars += len(json.dumps(block["input"]))
        return chars

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        etype = obj.get("type") or event
        if etype == "content_block_delta":
            delta = obj.get("delta")
            if isinstance(delta, dict):
                self.output_chars += (
                    _slen(delta.get("text"))
                    + _slen(delta.get("partial_json"))
                    + _slen(delta.get("thinking"))
                )
        elif etype == "message_start":
            message = obj.get("message")
            if isinstance(message, dict):
                self._take_model(message.get("model"))
                self._merge(message.get("usage"))
        elif etype == "message_delta":
            if self._merge(obj.get("usage")):
                self.complete = True
        elif etype == "content_block_start":
            self.output_chars += self._block_chars(obj.get("content_block"))
        elif etype == "message_stop":
            self.ended = True


# --- Gemini -------------------------------------------------------------------------

_GEMINI_KEYS = (
    "promptTokenCount",
    "cachedContentTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "toolUsePromptTokenCount",
    "totalTokenCount",
)


class GeminiParser(UsageParser):
    """Gemini generateContent: `usageMetadata` on the body or on every chunk.

    promptTokenCount includes cachedContentTokenCount; output is
    candidatesTokenCount + thoughtsTokenCount; tool-use prompt tokens are input.
    A chunk with a candidate `finishReason` (or a blocked prompt) is the last.
    """

    def __init__(self) -> None:
        super().__init__()
        self._meta: dict[str, int] = {}

    @property
    def usage(self) -> TokenUsage | None:
        m = self._meta
        if not m:
            return None
        prompt = m.get("promptTokenCount", 0) + m.get("toolUsePromptTokenCount", 0)
        thoughts = m.get("thoughtsTokenCount", 0)
        candidates = m.get("candidatesTokenCount")
        if candidates is None and "totalTokenCount" in m:
            # Older chunks omit the candidates count; the total is the sum of all parts.
            output = max(m["totalTokenCount"] - prompt, thoughts)
        else:
            output = (candidates or 0) + thoughts
        return TokenUsage(
            input_tokens=prompt,
            cache_read_tokens=m.get("cachedContentTokenCount", 0),
            output_tokens=output,
            reasoning_tokens=thoughts,
        )

    def feed_body(self, body: bytes | str) -> None:
        # A buffered streamGenerateContent without alt=sse is a JSON array of chunks.
        obj = self._load(body, "response body", allow_list=True)
        if isinstance(obj, list):
            for item in obj:
                if isinstance(item, dict):
                    self._guarded(self._on_event, item, "response body", None)
            if self._meta:
                self.complete = True
            else:
                self.note_error("no usage in response body")
        elif obj is not None:
            self._guarded(self._on_body, obj, "response body")

    def _on_body(self, obj: Any) -> None:
        self._on_event(obj, None)
        if self._meta:
            self.complete = True
        else:
            self.note_error("no usage in response body")

    def _on_event(self, obj: dict[str, Any], event: str | None) -> None:
        model = obj.get("modelVersion")
        if isinstance(model, str) and model:
            self.model = model
        finished = isinstance(_get(obj, "promptFeedback", "blockReason"), str)
        candidates = obj.get("candidates")
        if isinstance(candidates, list):
            for cand in candidates:
                if not isinstance(cand, dict):
                    continue
                if cand.get("finishReason"):
                    finished = True
                parts = _get(cand, "content", "parts")
                if isinstance(parts, list):
                    for part in parts:
                        if not isinstance(part, dict):
                            continue
                        self.output_chars += _slen(part.get("text"))
                        call = part.get("functionCall")
                        if isinstance(call, dict):
                            self.output_chars += len(json.dumps(call))
        meta = obj.get("usageMetadata")
        if isinstance(meta, dict):
            for key in _GEMINI_KEYS:
                v = count(meta.get(key))
                if v is not None:
                    self._meta[key] = v
        if finished:
            self.ended = True
            if self._meta:
                self.complete = True


# --- choosing -----------------------------------------------------------------------


def parser_for(endpoint: Endpoint) -> UsageParser:
    """A fresh parser for one response from `endpoint`."""
    style, kind = endpoint.style, endpoint.kind
    if style == "openai":
        if kind == "chat":
            return OpenAIChatParser()
        if kind == "completions":
            return OpenAIChatParser(legacy_completions=True)
        if kind == "responses":
            return OpenAIResponsesParser()
        if kind == "embeddings":
            return OpenAIEmbeddingsParser()
    elif style == "anthropic" and kind == "messages":
        return AnthropicMessagesParser()
    elif style == "gemini":
        return GeminiParser()
    return _NoParser(endpoint)
