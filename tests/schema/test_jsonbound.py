"""JSON bounds (core/jsonbound.py): the depth a parser would reach is never undercounted,
whatever the encoding, and the scan stays linear on text built to make it go back."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import jsonbound


@pytest.mark.parametrize(("text", "expected"), [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('["[[[[", "]]", "\\"[["]', 1),
    ('"unterminated [[[', 0), ('[[["\\', 3), ("[" * 5000, 5000),
])
def test_depth(text: str, expected: int) -> None:
    assert jsonbound.depth(text) == expected


# A tester's findings: brackets hidden from a byte-wise count by UTF-16 (U+0122 holds a `"`
# byte), and NUL-separated text in a form field, which json.loads(bytes) read as UTF-16.
@pytest.mark.parametrize("raw", [
    ('["\u0122",' + "[" * 5000 + '"').encode("utf-16-le"),
    ("[" * 5000).encode("utf-32"),
    ("[" * 5000).encode("utf-8-sig"),
    '[\x00"\x00"\x01"\x00,\x00' + "[\x00" * 2000 + '"\x00',
    ('[\x00"\x00"\x01"\x00,\x00' + "[\x00" * 2000 + '"\x00').encode(),
])
def test_no_encoding_hides_the_depth(raw: bytes | str) -> None:
    with pytest.raises(ValueError):  # JsonRefused, or a parser error before any depth
        jsonbound.loads(raw)


def test_escaped_quotes_scan_once() -> None:
    # Each `"` here opened a string that could not close, and a pattern that could fail
    # tried again from the next one: quadratic, 19 s for 40 kB. Linear, this is instant;
    # quadratic, it would hold the run for many minutes.
    body = b'"' + b'\\"' * 400_000
    assert jsonbound.check(body) is not None
    assert jsonbound.check(body + b"\\") is not None


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=30))
def test_depth_of_real_json_is_exact(value: object) -> None:
    def nesting(v: object) -> int:
        if isinstance(v, list):
            return 1 + max(map(nesting, v), default=0)
        if isinstance(v, dict):
            return 1 + max(map(nesting, v.values()), default=0)
        return 0

    for ensure_ascii in (True, False):
        text = json.dumps(value, ensure_ascii=ensure_ascii)
        assert jsonbound.depth(text) == nesting(value)
        for encoding in ("utf-8", "utf-16", "utf-32"):
            assert jsonbound.depth(jsonbound.text_of(text.encode(encoding)) or "") \
                == nesting(value)


def test_deeper_than_the_parser_can_go_is_refused() -> None:
    deep = "[" * (sys.getrecursionlimit() * 2) + "]" * (sys.getrecursionlimit() * 2)
    with pytest.raises(jsonbound.JsonRefused) as refused:
        jsonbound.loads(deep)
    assert refused.value.reason == "too_deep"
