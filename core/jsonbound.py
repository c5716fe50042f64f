"""JSON read within bounds: a size and a nesting depth checked before any parser sees it.

Python's `json` recurses once per nesting level, so `[` * 100,000 raises RecursionError
(not a ValueError) from `json.loads`, and a library that catches only ValueError answers
500 (issue #20: the console's "reject group" form). Every JSON the app reads from a client
(a request body, a form field) is checked here first.

The depth is counted without recursion and in linear time: the text is read as `json.loads`
reads it (bytes decoded by `json.detect_encoding`, so UTF-16 and UTF-32 bodies too), strings
are removed, then each bracket steps the depth up or down. A string runs to its closing
quote or, unterminated, to the end of the text (where a parser would stop), and a backslash
may end the text: so every match attempt succeeds and the scan never goes back (a pattern
that could fail made `"\\"` * 20,000 take seconds: a tester's finding).
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32  # the deepest body the API takes is 4 levels (a report's location)
MAX_BODY_BYTES = 1 << 20  # 1 MiB: the largest JSON body the API takes is a few KiB

_STRING = re.compile(r'"[^"\\]*+(?:\\.?[^"\\]*+)*+(?:"|\Z)', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonRefused(ValueError):
    """JSON over its bounds: `too_large` (more than `limit` bytes) or `too_deep` (nested
    more than `limit` levels)."""

    def __init__(self, reason: str, limit: int) -> None:
        super().__init__(f"JSON {reason.replace('_', ' ')} (limit {limit})")
        self.reason = reason
        self.limit = limit


def text_of(raw: bytes | str) -> str | None:
    """`raw` as the text `json.loads` would read: bytes decoded in the encoding it
    detects (UTF-8, -16 or -32), str as it is; None for bytes that do not decode (the
    parser refuses those before any nesting)."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode(json.detect_encoding(raw), "surrogatepass")
    except UnicodeDecodeError:
        return None


def depth(text: str) -> int:
    """How deeply `text` nests arrays and objects (0 for a scalar). For text that is not
    JSON the count may be off, but never lower than a parser would go."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check(raw: bytes | str, *, max_bytes: int = MAX_BODY_BYTES,
          max_depth: int = MAX_DEPTH) -> str | None:
    """The text of `raw` (`text_of`), or JsonRefused when it is over `max_bytes` (bytes
    as sent, or a str's length in UTF-8) or nests deeper than `max_depth`."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise JsonRefused("too_large", max_bytes)
    text = text_of(raw)
    if text is not None and depth(text) > max_depth:
        raise JsonRefused("too_deep", max_depth)
    return text


def loads(raw: bytes | str, *, max_bytes: int = MAX_BODY_BYTES,
          max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` after `check`. Raises JsonRefused (over a bound) or ValueError (not
    JSON, or bytes that do not decode)."""
    text = check(raw, max_bytes=max_bytes, max_depth=max_depth)
    if text is None:
        raise ValueError("JSON bytes that do not decode")
    return json.loads(text)
