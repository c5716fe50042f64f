"""Human words for refusals: every action, state and role has a label in both languages."""

from __future__ import annotations

import pytest

from api import wording
from schema import labels
from schema.states import Action, Category, Outcome, Role, State, role_may, steps


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
            for kind in ("IllegalTransition", "Forbidden"):
                worded = wording.refusal(kind, action.value, state.value, role.value)
                if worded is None:
                    continue
                vi, en = worded
                assert f"'{action.value}'" not in vi + en and f"'{state.value}'" not in vi + en
                assert vi != en
        vi, en = wording.refusal("IllegalTransition", action, state) or ("", "")
        if steps(action, state) is None:
            assert vi.startswith("Không thể thực hiện") and labels.STATE_LABELS[state][0] in vi
        else:
            assert vi == ""


def test_which_refusal_is_worded() -> None:
    assert wording.refusal("IllegalTransition", "close", "routed", "officer") == \
        wording.role_not_now(Action.CLOSE, State.ROUTED, Role.OFFICER)
    assert not role_may(Action.CLOSE, Role.OFFICER, State.ROUTED)
    assert wording.refusal("Forbidden", "acknowledge", "routed", "operator") == \
        wording.role_never(Action.ACKNOWLEDGE, Role.OPERATOR)
    # An officer of another unit: the workflow's own words stay.
    assert wording.refusal("Forbidden", "acknowledge", "routed", "officer") is None
    assert wording.refusal("IllegalTransition", "fly", "routed") is None
    assert wording.refusal("Invalid", "merge", "received", "operator") is None


def test_retry_waits_are_worded_with_the_right_plural() -> None:
    from api.services.reporter_location import LocationTooSoon
    from api.throttle import LoginThrottled

    assert LoginThrottled(1).en.endswith("Try again in 1 second.")
    assert LoginThrottled(30).en.endswith("Try again in 30 seconds.")
    assert LoginThrottled(1).vi.endswith("sau 1 giây.")
    assert LocationTooSoon(1).en.endswith("send again in 1 second")
    from api.limits import _hourly

    assert "Try again in 1 minute." in _hourly(3, 30).en
