"""The pages' words: Vietnamese (default) and English, from the catalogues of
schema/words.py (schema/words/vi.json and en.json).

The language comes from `?lang=`, then the `lang` cookie, then Accept-Language.
`t(lang, key, **values)` returns the message, falling back to Vietnamese, then the key.
"""

from __future__ import annotations

from api.lang import COOKIE, LANGS, negotiate
from schema import words

__all__ = ["COOKIE", "LANGS", "negotiate", "t", "js_messages"]

# The messages the page scripts need (passed in a data attribute), by key prefix.
JS_PREFIXES = ("err.", "report.", "track.", "up.", "sos.")


def t(lang: str, key: str, **values: object) -> str:
    """The message `key` in `lang` (Vietnamese when missing), formatted with `values`.
    A key no catalogue holds reads as itself: templates build some keys from data
    (`'tl.' ~ ev.action`), and a page must not fail on one (schema.words.t is strict)."""
    try:
        return words.t(lang, key, **values)
    except words.MissingWord:
        return key


def js_messages(lang: str) -> dict[str, str]:
    """The subset of messages the page scripts need (passed in a data attribute)."""
    keys = [k for k in words.CATALOGUES[words.FALLBACK] if k.startswith(JS_PREFIXES)]
    return {k: t(lang, k) for k in keys}
