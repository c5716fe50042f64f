"""schema.text: every incoming text is cleaned in one place (NFC, no character XML 1.0
forbids, no other control character but newline and tab, trimmed), and the pydantic types
count limits after cleaning. Property tests with hypothesis, plus the inputs people send."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import BaseModel, Field, ValidationError

from schema.text import Line, OptionalLine, OptionalText, Text, clean_line, clean_text, fold

# Any code point, lone surrogates included (what a broken JSON encoder can send).
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=200)
# Texts made of what goes wrong most: controls, breaks, marks, noncharacters, spaces.
NASTY = st.lists(st.sampled_from(
    ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\r", "\r\n", "\n", "\t", "\x7f", "\x85", "\x9f",
     "\ud800", "\udfff", "\ufffe", "\uffff", "\U0010ffff", "\u2028", "\u2029", "\u00a0", " ",
     "a", "e\u0301", "\u0303", "Đ", "ờ", "🔥", "\u202e", "א"]), max_size=60).map("".join)

XML_FORBIDDEN = {*range(0, 9), 11, 12, *range(14, 32), *range(0xD800, 0xE000), 0xFFFE, 0xFFFF}


def _xml_ok(value: str) -> bool:
    el = etree.Element("x")
    el.text = value  # lxml refuses a string XML cannot carry
    return etree.fromstring(etree.tostring(el)).text in (value, None)


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, NASTY))
def test_cleaned_text_is_xml_safe_nfc_trimmed_and_stable(raw: str) -> None:
    out = clean_text(raw)
    assert not any(ord(c) in XML_FORBIDDEN for c in out)
    assert all(c in "\n\t" or unicodedata.category(c) != "Cc" for c in out)
    assert unicodedata.is_normalized("NFC", out)
    assert out == out.strip()
    assert clean_text(out) == out  # idempotent
    assert _xml_ok(out)
    out.encode("utf-8")  # no lone surrogate: PostgreSQL and every encoder take it


@settings(max_examples=300, deadline=None)
@given(st.one_of(ANY_TEXT, NASTY))
def test_a_line_has_no_newline_or_tab_and_folding_is_stable(raw: str) -> None:
    line = clean_line(raw)
    assert "\n" not in line and "\t" not in line and "  " not in line
    assert clean_line(line) == line
    folded = fold(raw)
    assert fold(folded) == folded
    assert not any(unicodedata.combining(c) for c in unicodedata.normalize("NFD", folded))


@pytest.mark.parametrize(("raw", "expected"), [
    ("Cháy\x00 nhà", "Cháy nhà"),  # NUL (PostgreSQL refuses it)
    ("Dòng 1\x0bDòng 2", "Dòng 1\nDòng 2"),  # Word's manual line break
    ("a\r\nb\rc", "a\nb\nc"),
    ("cha\u0301y nha\u0300", "cháy nhà"),  # NFD (macOS, Unikey "tổ hợp") becomes NFC
    ("  \t ĐÁNH NHAU \n\n\n\n ở chợ  \n", "ĐÁNH NHAU\n\n ở chợ"),
    ("x\ufffe\uffffy\ud800z", "xyz"),
    ("bell\x07 esc\x1b[31m del\x7f c1\x9b", "bell esc[31m del c1"),
    ("🔥 שריפה 火事", "🔥 שריפה 火事"),  # emoji and RTL text stay
    ("\x00\x0b\x0c  ", ""),
])
def test_inputs_people_send(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("Nguyễn\x00 Văn\tA", "Nguyễn Văn A"),
    ("12 Lê Lợi,\r\nQuận 1", "12 Lê Lợi, Quận 1"),
    ("Cảnh báo\x0bcháy lớn", "Cảnh báo cháy lớn"),
])
def test_single_line_fields(raw: str, expected: str) -> None:
    assert clean_line(raw) == expected


class _Model(BaseModel):
    description: Text = Field(min_length=1, max_length=5)
    headline: Line = Field(min_length=1, max_length=3)
    note: OptionalText = Field(default=None, max_length=4)
    name: OptionalLine = Field(default=None, max_length=4)


def test_limits_count_characters_after_normalisation() -> None:
    # Five NFD letters are ten code points; after NFC they are five characters.
    m = _Model(description="e\u0301" * 5, headline=" ab\x00c ")
    assert m.description == "é" * 5 and m.headline == "abc"
    with pytest.raises(ValidationError) as err:
        _Model(description="é" * 6, headline="a")
    assert err.value.errors()[0]["type"] == "string_too_long"


@pytest.mark.parametrize("empty", ["", "   ", "\x00", "\x0b\x0c\n", "\ud800"])
def test_empty_after_cleaning(empty: str) -> None:
    with pytest.raises(ValidationError) as err:
        _Model(description=empty, headline="a")
    assert err.value.errors()[0]["type"] == "string_too_short"
    m = _Model(description="x", headline="a", note=empty, name=empty)
    assert m.note is None and m.name is None


def test_non_strings_are_left_to_pydantic() -> None:
    with pytest.raises(ValidationError) as err:
        _Model(description=5, headline="a")  # type: ignore[arg-type]
    assert err.value.errors()[0]["type"] == "string_type"


@settings(max_examples=200, deadline=None)
@given(description=st.one_of(ANY_TEXT, NASTY), address=st.one_of(ANY_TEXT, NASTY),
       name=st.one_of(ANY_TEXT, NASTY), phone=st.one_of(ANY_TEXT, NASTY))
def test_a_report_body_is_refused_or_clean(description: str, address: str, name: str,
                                           phone: str) -> None:
    """Whatever the texts, the report model either refuses them or holds only clean text."""
    from schema.reports import ReportCreate

    try:
        body = ReportCreate(category="crime", description=description,
                            location={"lat": 10.77, "lon": 106.7}, address=address,
                            reporter={"name": name, "phone": phone})
    except ValidationError:
        return
    texts = [body.description, body.address, body.reporter.name, body.reporter.phone]
    for text in filter(None, texts):
        assert text == clean_text(text) and _xml_ok(text)
        assert "\x00" not in text
