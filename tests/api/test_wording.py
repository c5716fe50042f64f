"""Human words for refusals: every action, state and role has a label in both languages."""

from __future__ import annotations

import pytest

from api import wording
from schema.states import Action, Role, State, role_may, steps


def test_every_token_has_words() -> None:
    for table, enum in [(wording.ACTION_VI, Action), (wording.ACTION_EN, Action),
                        (wording.STATE_VI, State), (wording.STATE_EN, State),
                        (wording.ROLE_VI, Role), (wording.ROLE_EN, Role)]:
        assert set(table) == set(enum)
        assert all(v.strip() for v in table.values())


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
            assert vi.startswith("Không thể thực hiện") and wording.STATE_VI[state] in vi
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
