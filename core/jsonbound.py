"""JSON read within bounds: a size and a nesting depth checked before any parser sees it.

Python's `json` recurses once per nesting level, so `[` * 100,000 raises RecursionError
(not a ValueError) from `json.loads`, and a library that catches only ValueError answers
500 (issue #20: the console's "reject group" form). Every JSON the app reads from a client
(a request body, a form field, a cursor) is checked here first.

The depth is counted without recursion: strings are removed (a valid JSON string always
matches `_STRING`), then each bracket steps the depth up or down.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32  # the deepest body the API takes is 4 levels (a report's location)
MAX_BODY_BYTES = 1 << 20  # 1 MiB: the largest JSON body the API takes is a few KiB

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JsonRefused(ValueError):
    """JSON over its bounds: `too_large` (more than `limit` bytes) or `too_deep` (nested
    more than `limit` levels)."""

    def __init__(self, reason: str, limit: int) -> None:
        super().__init__(f"JSON {reason.replace('_', ' ')} (limit {limit})")
        self.reason = reason
        self.limit = limit


def depth(raw: bytes) -> int:
    """How deeply `raw` nests arrays and objects (0 for a scalar). For text that is not
    JSON the count may be off, but never lower than a parser would go."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check(raw: bytes | str, *, max_bytes: int = MAX_BODY_BYTES,
          max_depth: int = MAX_DEPTH) -> bytes:
    """`raw` as bytes (str is UTF-8 encoded), or JsonRefused when it is over `max_bytes`
    bytes or nests deeper than `max_depth`."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise JsonRefused("too_large", max_bytes)
    if depth(data) > max_depth:
        raise JsonRefused("too_deep", max_depth)
    return data


def loads(raw: bytes | str, *, max_bytes: int = MAX_BODY_BYTES,
          max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` after `check`. Raises JsonRefused (over a bound) or
    json.JSONDecodeError (not JSON): both ValueErrors."""
    return json.loads(check(raw, max_bytes=max_bytes, max_depth=max_depth))
