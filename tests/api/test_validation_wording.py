"""Every 422 speaks the caller's language: a JSON array as the body, `1e308`, a string
where a number goes, a number too large for any integer... each field message is
Vietnamese in a Vietnamese answer and English in an English one (api/errors.py,
`pydantic_messages`: the one place that words pydantic's errors)."""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic_core import core_schema

from api.errors import GENERIC_VI, PYDANTIC_VI, pydantic_messages
from tests.api.conftest import Stack

# Letters only Vietnamese (of vi/en) writes: a message with none of them is not Vietnamese.
_VI_LETTERS = set("àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ"
                  "ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬĐÈÉẺẼẸÊỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢÙÚỦŨỤƯỪỨỬỮỰỲÝỶỸỴ")


def is_vietnamese(text: str) -> bool:
    return any(c in _VI_LETTERS for c in text)


def test_every_pydantic_error_type_has_vietnamese() -> None:
    types = set(typing.get_args(core_schema.ErrorType))
    missing = types - set(PYDANTIC_VI)
    assert not missing, f"add Vietnamese for these pydantic error types to api/errors.py: " \
                        f"{sorted(missing)}"
    for kind, template in PYDANTIC_VI.items():
        assert is_vietnamese(template), kind
    assert is_vietnamese(GENERIC_VI)


def test_context_fills_the_vietnamese() -> None:
    vi, en = pydantic_messages({"type": "less_than_equal", "msg": "Input should be less "
                                "than or equal to 90", "ctx": {"le": 90.0}})
    assert vi == "Phải nhỏ hơn hoặc bằng 90" and en.startswith("Input should")
    vi, _ = pydantic_messages({"type": "string_too_long", "msg": "x", "ctx": {}})
    assert vi == "Quá dài: tối đa … ký tự"  # a context value missing never raises
    vi, _ = pydantic_messages({"type": "some_future_type", "msg": "Something new"})
    assert vi == GENERIC_VI
    vi, en = pydantic_messages({"type": "value_error", "msg": "Value error, bad",
                                "ctx": {"vi": "Hỏng"}})
    assert (vi, en) == ("Hỏng", "bad")


# (method, path, who, body as raw JSON text or form dict, query)
CASES: list[tuple[str, str, str | None, Any, dict[str, str] | None]] = [
    ("POST", "/api/v1/reports", None, "[]", None),
    ("POST", "/api/v1/reports", None, "[1, 2, 3]", None),
    ("POST", "/api/v1/reports", None, "1e308", None),
    ("POST", "/api/v1/reports", None, '"a string"', None),
    ("POST", "/api/v1/reports", None, "null", None),
    ("POST", "/api/v1/reports", None, "{not json", None),
    ("POST", "/api/v1/reports", None,
     '{"category": 1e308, "description": 12, "location": {"lat": 1e308, "lon": "x"},'
     ' "attachments": {}, "report_id": 99999999999999999999999999999, "silent": "maybe",'
     ' "reporter": [], "extra": 1}', None),
    ("POST", "/api/v1/reports", None,
     '{"category": "crime", "description": "x", "location": {"lat": 10.77, "lon": 106.7,'
     ' "accuracy_m": 1e308}}', None),
    ("GET", "/api/v1/incidents", "operator", None,
     {"limit": "1e308", "priority": "99999999999999999999999", "state": "flying",
      "ward": "-1e308", "overdue": "perhaps"}),
    ("GET", "/api/v1/wards/locate", None, None, {"lat": "1e308", "lon": "NaN"}),
    ("GET", "/api/v1/stats", "supervisor", None,
     {"from": "9999-99-99", "to": "0001-01-01T00:00:00+14:00", "group_by": "x"}),
    ("GET", "/api/v1/wards/99999999999999999999999", None, None, None),
    ("GET", "/api/v1/incidents/not-a-uuid", "operator", None, None),
    ("POST", "/api/v1/auth/password", "operator", '{"current_password": [], '
     '"new_password": 1e308}', None),
    ("POST", "/api/v1/track/some-token/info", None, '{"text": 1e308, "attachments": "x"}',
     None),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]} {c[1]} {str(c[3] or c[4])[:30]}")
async def test_422_in_both_languages(make_stack: Callable[..., Awaitable[Stack]],
                                     case: tuple[str, str, str | None, Any, Any]) -> None:
    stack = await make_stack(with_worker=False)
    method, path, who, body, query = case
    answers = {}
    for lang in ("vi", "en"):
        headers = {"Accept-Language": lang, "Content-Type": "application/json"}
        if who:
            headers.update(stack.auth(who))
        r = await stack.client.request(method, path, content=body, params=query,
                                       headers=headers)
        assert r.status_code == 422, (lang, r.status_code, r.text)
        answers[lang] = r.json()
    vi, en = answers["vi"], answers["en"]
    assert vi["error"] == en["error"] == "validation_error"
    assert is_vietnamese(vi["detail"]) and not is_vietnamese(en["detail"])
    assert vi["fields"] and len(vi["fields"]) == len(en["fields"])
    for fv, fe in zip(vi["fields"], en["fields"], strict=True):
        assert fv["field"] == fe["field"]
        assert is_vietnamese(fv["message"]), (fv, vi)
        assert not is_vietnamese(fe["message"]), fe
