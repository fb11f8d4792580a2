"""No raw key in any log line: one `redact()` for every message the process logs.

Keys reach log text by many roads: a failed admin request's query string
(`/key/info?key=sk-...`), a tornado warning quoting a request argument, an exception's
message. Rather than guard each call site, `LogRedaction` puts `RedactingFilter` on every
handler of the root logger (addon/redact.py) — mitmproxy's terminal log included — so
each record is cleaned once, whoever logged it; the admin listener's access log calls
`redact()` itself. (mitmdump's per-flow lines are printed, not logged:
`flow_detail=0` turns them off; see the README's Security section.)
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# A query or form value whose name says it is a credential: key=, api_key=, token=, ...
_SECRET_PARAM = re.compile(
    r"(?i)(?<![\w-])((?:api[_-]?)?key|(?:access[_-]?|refresh[_-]?|id[_-]?)?token|master[_-]?key|"
    r"password|passwd|secret|client[_-]?secret|auth|x-api-key)=([^&#\s\"'<>]+)"
)
# A credential header, as a header line or in a dict's repr: `Authorization: Bearer ...`.
_SECRET_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key|x-goog-api-key|cookie|set-cookie)"
    r"([\"']?\s*[:=]\s*[\"']?)((?:bearer|basic)\s+)?([^\s\"',;]+)"
)
# Keys by their look, wherever they appear: OpenAI/Anthropic/spendgate `sk-...`, Google `AIza...`.
_KEY_SHAPES = re.compile(r"\b(sk-)[A-Za-z0-9_\-]{4,}|\bAIza[0-9A-Za-z_\-]{20,}")


def _shape(m: re.Match) -> str:
    return (m.group(1) or "") + REDACTED


def redact(text: str) -> str:
    """`text` with every credential-looking value replaced by `[redacted]`."""
    if not text:
        return text
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _SECRET_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{REDACTED}", text)
    return _KEY_SHAPES.sub(_shape, text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and traceback) through `redact()`; never drops one."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


FILTER = RedactingFilter()  # one for the process: a reloaded script does not add another
