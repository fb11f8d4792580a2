"""No raw key in a log line (addon/redact.py). The admin listener's own log lines are
checked end to end in test_admin_hardening.py."""

from __future__ import annotations

import logging

import pytest

from addon.redact import LogRedaction
from core.redact import FILTER, RedactingFilter, redact

SECRETS = ["sk-secret-abcdefgh1234", "sk-ant-api03-XYZxyz_0123456789", "AIzaSyD-abcdefghijklmnopqrstuvwxyz012345",
           "plain-token-value", "dXNlcjpwYXNzd29yZA=="]


@pytest.mark.parametrize("text", [
    "404 GET /key/info?key=sk-secret-abcdefgh1234 (127.0.0.1) 2.53ms",
    "GET /v1beta/models/gemini:generateContent?key=AIzaSyD-abcdefghijklmnopqrstuvwxyz012345&alt=sse",
    "GET /x?api_key=plain-token-value&token=plain-token-value&access_token=plain-token-value",
    "headers: {'authorization': 'Bearer plain-token-value', 'x-api-key': 'plain-token-value'}",
    "Authorization: Bearer sk-ant-api03-XYZxyz_0123456789",
    "Proxy-Authorization: Basic dXNlcjpwYXNzd29yZA==",
    "a key sk-secret-abcdefgh1234 in free text",
    "Cookie: spendgate_session=plain-token-value",
])
def test_credentials_are_redacted(text):
    clean = redact(text)
    assert not any(secret in clean for secret in SECRETS), clean
    assert "[redacted]" in clean
    assert redact(clean) == clean  # idempotent: a line redacted twice reads the same


def test_what_is_not_a_credential_is_left_alone():
    for text in ("GET /key/list?key_alias=prod&team_id=eng&size=5", "task-1234 risk-factors", "status=ok",
                 '{"type": "authentication_error"}', "budget_exceeded for team 'sk'"):
        assert redact(text) == text


def test_the_filter_rewrites_messages_arguments_and_tracebacks():
    record = logging.LogRecord("spendgate", logging.WARNING, __file__, 1, "bad key %s at %s",
                               ("sk-secret-abcdefgh1234", "/key/info?key=plain-token-value"), None)
    try:
        raise ValueError("sk-secret-abcdefgh1234 is unknown")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record) is True
    text = logging.Formatter().format(record)
    assert not any(secret in text for secret in SECRETS) and "ValueError" in text


def test_the_addon_redacts_every_root_handler_once():
    root = logging.getLogger()
    handler = logging.Handler()
    lines: list[str] = []
    handler.emit = lambda record: lines.append(handler.format(record))
    root.addHandler(handler)
    try:
        LogRedaction().load(None)
        LogRedaction().running()  # a reloaded script: still one filter
        assert handler.filters == [FILTER]
        logging.getLogger("tornado.access").warning("404 GET /key/info?key=%s", "sk-secret-abcdefgh1234")
        logging.getLogger("spendgate.admin").error("x-api-key: %s", "plain-token-value")
    finally:
        root.removeHandler(handler)
    assert len(lines) == 2 and not any(s in line for line in lines for s in SECRETS), lines
