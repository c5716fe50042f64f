"""Which actions the console's one dispatch form sends (api/services/dispatch.py `steps`):
verify while received, classify before it is classified or when category or priority
changed, then route; never an action the caller may not take."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from api.auth import Principal
from api.services.detail import allowed_actions
from api.services.dispatch import steps
from schema.incidents import IncidentDetail
from schema.states import Action, Category, Role, State

V, C, R = Action.VERIFY, Action.CLASSIFY, Action.ROUTE


def _case(state: State, priority: int = 2, allowed: Any = None) -> IncidentDetail:
    if allowed is None:
        operator = Principal(id="u", username="operator", role=Role.OPERATOR, unit_id=None,
                             full_name="", sid="", via="bearer")
        allowed = allowed_actions(operator, state, None)
    return cast(IncidentDetail, SimpleNamespace(
        state=state, category=Category.CRIME, priority=priority, allowed_actions=allowed))


@pytest.mark.parametrize(("state", "category", "priority", "expected"), [
    (State.RECEIVED, "crime", 2, [V, C, R]),  # classified even unchanged: its own event
    (State.RECEIVED, "fire_explosion", 1, [V, C, R]),
    (State.VERIFIED, "crime", 2, [C, R]),
    (State.CLASSIFIED, "crime", 2, [R]),
    (State.CLASSIFIED, "crime", 1, [C, R]),
    (State.CLASSIFIED, "other", "2", [C, R]),
    (State.ROUTED, "crime", 1, [R]),  # classify is no longer open: re-route only
])
def test_steps(state: State, category: str, priority: Any, expected: list[Action]) -> None:
    assert steps(_case(state), category, priority) == expected


def test_no_verify_for_a_caller_who_may_not() -> None:
    assert steps(_case(State.RECEIVED, allowed=[C]), "crime", 2) == [C, R]
