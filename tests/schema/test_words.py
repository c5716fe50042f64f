"""The catalogues (schema/words/<lang>.json): one sorted file per language, the same keys
and `{parameters}` in each, a missing key a clear failure."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

from schema import words

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["schema", "core", "workflows", "activities", "api", "web", "app.py", "worker.py"]

# Keys only Vietnamese has: the English of a validation error is pydantic's own message.
VI_ONLY = ("pydantic.",)


def _fields(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name)


def _source_text() -> str:
    files: list[Path] = []
    for name in SOURCES:
        path = ROOT / name
        files += [path] if path.is_file() else [
            p for p in path.rglob("*") if p.suffix in (".py", ".html", ".js")]
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


@pytest.mark.parametrize("lang", words.LANGS)
def test_each_catalogue_is_one_sorted_file(lang: str) -> None:
    """Written as json.dumps writes it, keys sorted: a new word goes in its place, and a
    key given twice (which json.load would silently collapse) cannot hide."""
    text = (words.WORDS_DIR / f"{lang}.json").read_text(encoding="utf-8")
    pairs = json.loads(text, object_pairs_hook=list)
    assert len(pairs) == len(dict(pairs)), "a key is given twice"
    assert text == json.dumps(dict(pairs), ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def test_both_languages_have_the_same_keys_and_parameters() -> None:
    vi, en = words.CATALOGUES["vi"], words.CATALOGUES["en"]
    assert set(en) <= set(vi), sorted(set(en) - set(vi))
    missing = sorted(k for k in set(vi) - set(en) if not k.startswith(VI_ONLY))
    assert not missing, f"add English for these to schema/words/en.json: {missing}"
    for key in en:
        assert _fields(vi[key]) == _fields(en[key]), key
    assert all(text.strip() for cat in (vi, en) for text in cat.values())


def test_every_key_the_pages_name_exists() -> None:
    """`t('…')` with a literal key in a template or page module names a key we have."""
    source = _source_text()
    named = set(re.findall(r"\bt\((?:lang, *)?['\"]([a-z0-9_]+(?:\.[a-z0-9_]+)+)['\"]", source))
    assert named, "the pattern no longer finds the pages' keys"
    assert not sorted(named - set(words.CATALOGUES["vi"]))


def test_t_formats_falls_back_to_vietnamese_and_refuses_an_unknown_key() -> None:
    assert words.t("en", "report.located", accuracy=12).startswith("Location found (about 12 m")
    assert words.t("xx", "report.send") == "Gửi báo tin"
    assert words.t("en", "pydantic.missing") == "Thiếu trường bắt buộc"
    assert words.both("st.closed") == ("Đã kết thúc", "Closed")
    with pytest.raises(words.MissingWord, match="no.such.key"):
        words.t("vi", "no.such.key")
    with pytest.raises(KeyError):
        words.t("en", "no.such.key")
