"""core.jsontext.loads: provider JSON read by orjson, and what orjson refuses by the
standard library, so that every body reads as json.loads reads it."""

from __future__ import annotations

import json

import pytest

from core import jsontext

SAME_AS_JSON = [
    b'{"model": "gpt-4o-mini", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}',
    '{"text": "caf\u00e9 \u2603"}',
    b'{"a": NaN, "b": Infinity, "c": -Infinity}',  # orjson refuses these: the standard library reads them
    b'"\\ud800"',  # a lone surrogate escape
    '{"model": "x"}'.encode("utf-16"),  # not UTF-8: json.loads detects the encoding
    b'{"a": 1, "a": 2}',  # the last one wins in both
    b'  [1, 2.5, true, null]  ',
    b'{"n": 18446744073709551615}',  # the largest integer orjson keeps an integer
]


@pytest.mark.parametrize("text", SAME_AS_JSON)
def test_reads_what_the_standard_library_reads(text):
    expected, got = json.loads(text), jsontext.loads(text)
    assert repr(got) == repr(expected)  # (repr: NaN is not equal to itself)


@pytest.mark.parametrize("text", [b"", b"{", b"{'a': 1}", b"\xff\xfe{", b"[" * 5000 + b"]" * 5000])
def test_what_neither_reads_fails_as_the_standard_library_fails(text):
    with pytest.raises((ValueError, RecursionError)):
        jsontext.loads(text)
