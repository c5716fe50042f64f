"""Text at the boundary: the one place that cleans every text that enters the system.

Reports come from every kind of phone and keyboard and from other agencies' systems:
decomposed Unicode (macOS, Unikey's "Unicode tổ hợp"), Word's line break U+000B, NUL bytes,
lone surrogates from broken JSON encoders. `clean_text` turns any of them into a string that
PostgreSQL stores, XML 1.0 can carry and search can fold:

1. characters XML 1.0 forbids (C0 controls but tab/newline/CR, lone surrogates, U+FFFE/FFFF)
   and the other control characters (DEL, C1) are dropped; the line breaks people paste
   (CR LF, CR, U+000B, U+000C, NEL, U+2028, U+2029) become a newline first;
2. the result is put in Unicode Normalisation Form C (NFC);
3. leading and trailing white space is trimmed (in a single-line field every run of white
   space, newlines included, becomes one space).

Input models use the pydantic types below, so length limits count characters *after*
cleaning (`Field(max_length=...)` beside the type applies after the before-validator):

    description: Text = Field(min_length=1, max_length=5000)
    address: OptionalLine = Field(default=None, max_length=500)

In FastAPI query and form parameters use `Line | None` (or `Text | None`): a length limit
given there beside an Optional* type would be checked against its None and fail.

`fold` (lower case, marks removed, đ→d) is the search form of a cleaned text; the folded
`search_text` column of incidents and every search query are made with it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import BeforeValidator

# Pasted line breaks that are not "\n": CR LF, CR, VT (Word), FF, NEL, LINE/PARAGRAPH SEPARATOR.
_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
# Everything XML 1.0 forbids plus the other control characters (C0 but \t \n, DEL, C1),
# lone surrogates and the noncharacters U+FDD0..U+FDEF, U+xFFFE/U+xFFFF.
_DROP = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    + "".join(f"{chr(p << 16 | 0xFFFE)}{chr(p << 16 | 0xFFFF)}" for p in range(1, 17))
    + "]"
)
_SPACES = re.compile(r"\s+")
# Trailing white space on each line and runs of more than two blank lines.
_LINE_TAIL = re.compile(r"[ \t\u00a0]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(value: str, *, multiline: bool = True) -> str:
    """The cleaned form of `value` (see the module docstring). Idempotent; never raises on
    a str. A single-line field (`multiline=False`) has no newline or tab left."""
    value = _BREAKS.sub("\n", value)
    value = _DROP.sub("", value)
    value = unicodedata.normalize("NFC", value)
    if not multiline:
        return _SPACES.sub(" ", value).strip()
    value = _LINE_TAIL.sub("\n", value)
    value = _BLANK_LINES.sub("\n\n", value)
    return value.strip()


def clean_line(value: str) -> str:
    """`clean_text` for a single-line field (name, address, headline, file name)."""
    return clean_text(value, multiline=False)


def _before(multiline: bool, optional: bool) -> Any:
    def validate(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # pydantic's own type check answers
        cleaned = clean_text(value, multiline=multiline)
        if optional and not cleaned:
            return None
        return cleaned
    return validate


# The pydantic types every input model uses. An optional field left empty after cleaning
# becomes None; a required one fails its `min_length`.
Text = Annotated[str, BeforeValidator(_before(multiline=True, optional=False))]
Line = Annotated[str, BeforeValidator(_before(multiline=False, optional=False))]
OptionalText = Annotated[str | None, BeforeValidator(_before(multiline=True, optional=True))]
OptionalLine = Annotated[str | None, BeforeValidator(_before(multiline=False, optional=True))]


# --- search folding ---------------------------------------------------------------------------
_FOLD_EXTRA = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "ı": "i", "ł": "l", "ø": "o"})


def fold(value: str | None) -> str:
    """The search form of a text: cleaned to one line, lower case (casefold), tone and
    other combining marks removed (NFD, then marks dropped), đ/Đ → d.
    `fold("ĐÁNH NHAU ở Bến Thành") == "danh nhau o ben thanh"`."""
    if not value:
        return ""
    value = clean_line(value).casefold().translate(_FOLD_EXTRA)
    decomposed = unicodedata.normalize("NFD", value)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", unicodedata.normalize("NFC", stripped)).strip()


# --- numbers typed by hand ----------------------------------------------------------------
_ASCII_INT = re.compile(r"-?[0-9]{1,19}")


def ascii_int(text: str | None, low: int, high: int) -> int | None:
    """The integer a hand-read form field, query parameter or header holds — ASCII digits
    only (`str.isdigit` also says yes to "²" and "١", which `int` then refuses) — when it
    lies in [low, high]; None otherwise (also for None, "", "1e3", " 7", "99…9" past high).
    Pages and headers read with this never hand the database a number it cannot hold."""
    if not text or not _ASCII_INT.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None
