"""Human words for refusals: every action, state and role has a label in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api import wording
from schema import labels
from schema.states import Action, Category, Outcome, Role, State


def test_every_token_has_words() -> None:
    for table, enum in [(labels.ACTION_LABELS, Action), (labels.STATE_LABELS, State),
                        (labels.ROLE_LABELS, Role), (labels.CATEGORY_LABELS, Category),
                        (labels.OUTCOME_LABELS, Outcome)]:
        assert set(table) == set(enum)
        assert all(vi.strip() and en.strip() for vi, en in table.values())
        for value in enum:
            assert labels.label(value, "vi") == table[value][0]
            assert labels.label(value, "en") == table[value][1]


@pytest.mark.parametrize("action", list(Action))
def test_refusals_never_show_raw_tokens(action: Action) -> None:
    for state in State:
        for role in Role:
            details = {"action": action.value, "state": state.value, "role": role.value}
            for code in ("not_from_state", "role_not_now", "role_never"):
                vi, en = wording.refusal_words(code, details)
                assert (vi, en) != wording.UNKNOWN_REFUSAL
                assert f"'{action.value}'" not in vi + en and f"'{state.value}'" not in vi + en
                assert vi != en
        vi, _ = wording.refusal_words("not_from_state", {"action": action, "state": state})
        assert vi.startswith("Không thể thực hiện") and labels.STATE_LABELS[state][0] in vi


def test_every_refusal_code_has_words() -> None:
    """Each code the rules and the workflow refuse with is worded here, by itself or from
    its details: none is answered with the fallback."""
    root = Path(__file__).resolve().parents[2]
    said = re.compile(r'(?:Refusal|refusing)\(\s*"\w+",\s*"(\w+)"')
    codes = {code for path in [root / "schema/rules.py", *(root / "workflows").glob("*.py")]
             for code in said.findall(path.read_text())}
    codes |= {"stale", "no_change", "target_refused"}  # built apart (rules.changed, a reply)
    assert {"not_from_state", "other_unit", "target_closed", "text_required"} <= codes
    assert codes <= set(wording.REFUSALS) | wording.NAMED_REFUSALS
    assert set(wording.REFUSALS) <= codes, "words for a code nothing refuses with"
    assert all(vi.strip() and en.strip() and vi != en for vi, en in wording.REFUSALS.values())


def test_stale_names_the_last_change() -> None:
    vi, en = wording.refusal_words("stale", {
        "changed_action": "route", "changed_by": "operator2",
        "changed_at": "2026-01-02T08:02:00+00:00", "unit_name": "Đội 113"})
    assert en == ("The incident has just changed (route to Đội 113 by operator2 at 15:02). "
                  "Look again, then act.")
    assert vi.startswith("Vụ việc vừa thay đổi (đã") and "lúc 15:02" in vi


def test_retry_waits_are_worded_with_the_right_plural() -> None:
    from api.services.reporter_location import LocationTooSoon
    from api.throttle import LoginThrottled

    assert LoginThrottled(1).en.endswith("Try again in 1 second.")
    assert LoginThrottled(30).en.endswith("Try again in 30 seconds.")
    assert LoginThrottled(1).vi.endswith("sau 1 giây.")
    assert LocationTooSoon(1).en.endswith("send again in 1 second")
    from api.limits import _hourly

    assert "Try again in 1 minute." in _hourly(3, 30).en


def test_an_invalid_refusal_naming_a_field_is_that_fields_422_from_either_side() -> None:
    """The workflow's refusal of a rule and the API's own check of it answer alike: a 422
    whose `fields` name the field with both messages."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.exceptions import ApplicationError

    from api.cases import refusal, refusal_error
    from schema.rules import Refusal

    details = {"code": "no_such_question", "field": "reply_to", "reply_to": 7}
    from_workflow = refusal(WorkflowUpdateFailedError(
        ApplicationError("refused", details, type="Invalid")))
    from_api = refusal_error(Refusal("Invalid", "no_such_question", field="reply_to",
                                     reply_to=7))
    for error in (from_workflow, from_api):
        assert error.status == 422
        body = error.body("vi")
        assert body["fields"] == [{"field": "reply_to",
                                   "message": "Không có câu hỏi này để trả lời",
                                   "message_en": "there is no such question to answer"}]
    assert from_workflow.body("en") == from_api.body("en")
