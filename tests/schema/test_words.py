"""The catalogues (schema/words/<lang>.json): one sorted file per language, the same keys
and `{parameters}` in each, every key read somewhere, a missing key a clear failure."""

from __future__ import annotations

import json
import re
import string
import typing
from pathlib import Path

import pytest
from pydantic_core import core_schema

from schema import words
from schema.abuse import SourceKind
from schema.states import (
    ESCALATE_EVENT,
    LOCATE_EVENT,
    MERGED_IN_EVENT,
    OPEN_STATES,
    PRIMARY_CHANGED_EVENT,
    RECEIVE_EVENT,
    REPLY_EVENT,
    Action,
    Category,
    Outcome,
    Priority,
    Role,
    State,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["schema", "core", "workflows", "activities", "api", "web", "app.py", "worker.py"]

# Keys only Vietnamese has: the English of a validation error is pydantic's own message;
# the public feeds (CAP, Open311 discovery and services), the reporter's push
# notifications and the staff's ready phrases to the reporter are Vietnamese only; a staff
# notice is stored once, as one text (a Vietnamese subject, a body in both languages).
VI_ONLY = ("pydantic.", "feed.", "push.", "phrase.", "notice.")

EVENTS = {a.value for a in Action} | {RECEIVE_EVENT, LOCATE_EVENT, ESCALATE_EVENT,
                                      MERGED_IN_EVENT, REPLY_EVENT, PRIMARY_CHANGED_EVENT}
# Keys the code builds from data (`t(lang, f"cat.{c}")`, `t('tl.' ~ ev.action)`): the
# prefix, and the values the rest may take (None: whatever the code passes, so the prefix
# itself must appear in the code).
BUILT: dict[str, set[str] | None] = {
    "st.": {s.value for s in State},
    "note.": {s.value for s in State},
    "state.": {s.value for s in State} | {"pending"},
    "alert.waiting.": {s.value for s in OPEN_STATES},
    "action.": {a.value for a in Action},
    "staff.done.": {a.value for a in Action},
    "tl.": EVENTS,
    "story.": EVENTS | {"merged"},
    "cat.": {c.value for c in Category},
    "feed.open311.service.": {c.value for c in Category},
    "push.": {f"{a.value}.{part}" for a in Action for part in ("title", "body")},
    "outcome.": {o.value for o in Outcome},
    "role.": {r.value for r in Role},
    "sender.": {r.value for r in Role},
    "staff.actor.": {r.value for r in Role},
    "source.": {s.value for s in SourceKind},
    "prio.": {str(p.value) for p in Priority},
    "pydantic.": set(typing.get_args(core_schema.ErrorType)) | {"generic"},
    "step.": None,
    "refusal.": None,  # api/wording.py: REFUSALS, checked against the codes by test_wording
    "staff.field.": None,
    "staff.src.": None,
    "staff.sup.": None,
    "staff.group.": None,
}


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


def test_every_key_is_read_somewhere() -> None:
    source = _source_text()
    unused = []
    for key in words.CATALOGUES["vi"]:
        if re.search(rf"['\"`]{re.escape(key)}['\"`]", source):
            continue
        prefix = next((p for p in BUILT if key.startswith(p)), None)
        if prefix is None:
            unused.append(key)
        elif (values := BUILT[prefix]) is not None:
            if key[len(prefix):] not in values:
                unused.append(key)
        elif not re.search(rf"['\"]{re.escape(prefix)}['\"{{]", source):
            unused.append(key)
    assert not unused, f"no code reads these: {unused}"


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
